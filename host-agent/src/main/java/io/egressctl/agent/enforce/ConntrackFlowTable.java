package io.egressctl.agent.enforce;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The real {@link FlowTable}: runs {@code conntrack -D --mark <m>} (conntrack-tools), inside the
 * agent's network namespace through {@code ip netns exec <ns>} when it has one, like the nft runner.
 * No shell; the mark is passed as a decimal number. conntrack prints every deleted entry on stdout
 * (discarded) and a summary on stderr; it exits 1 when nothing matched, with "0 flow entries have
 * been deleted", which is success here. A run that outlives the timeout is killed.
 */
public final class ConntrackFlowTable implements FlowTable {

    private static final Pattern NETNS = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
    private static final Pattern DELETED = Pattern.compile("(\\d+) flow entries have been deleted");

    private final List<String> prefix;
    private final Duration timeout;

    /**
     * @param conntrackBinary path or name of conntrack (looked up on PATH)
     * @param netns           namespace to run in, or null/empty for the agent's own
     * @param timeout         longest one run may take
     */
    public ConntrackFlowTable(String conntrackBinary, String netns, Duration timeout) {
        if (conntrackBinary == null || conntrackBinary.isBlank()) {
            throw new IllegalArgumentException("conntrack binary must be set");
        }
        List<String> p = new ArrayList<>();
        if (netns != null && !netns.isBlank()) {
            if (!NETNS.matcher(netns).matches()) {
                throw new IllegalArgumentException("not a network namespace name: '" + netns + "'");
            }
            p.addAll(List.of("ip", "netns", "exec", netns));
        }
        p.add(conntrackBinary);
        this.prefix = List.copyOf(p);
        this.timeout = timeout;
    }

    @Override
    public String name() {
        return "conntrack";
    }

    /** The command a deletion of {@code mark}'s flows runs. */
    public List<String> command(int mark) {
        List<String> cmd = new ArrayList<>(prefix);
        cmd.addAll(List.of("-D", "--mark", Integer.toUnsignedString(mark)));
        return cmd;
    }

    @Override
    public long endFlows(int mark) throws EnforcementException {
        List<String> cmd = command(mark);
        return outcome(String.join(" ", cmd), run(cmd));
    }

    /**
     * Checks once that conntrack runs here and may read the table ({@code conntrack -C}: the binary,
     * the namespace and the privilege), so a missing tool is said at start-up.
     *
     * @throws EnforcementException with conntrack's own message when it cannot
     */
    public void check() throws EnforcementException {
        List<String> cmd = new ArrayList<>(prefix);
        cmd.add("-C");
        Run r = run(cmd);
        if (r.exit() != 0) {
            throw new EnforcementException(String.join(" ", cmd) + " failed (exit " + r.exit() + "): " + r.stderr().strip());
        }
    }

    /** One run's exit status and stderr. */
    record Run(int exit, String stderr) {
    }

    private Run run(List<String> cmd) throws EnforcementException {
        String where = String.join(" ", cmd);
        Process p;
        try {
            p = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        } catch (IOException e) {
            throw new EnforcementException("cannot start " + where + ": " + e.getMessage(), e);
        }
        try {
            p.getOutputStream().close();
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                throw new EnforcementException(where + " did not finish within " + timeout + " and was killed");
            }
            return new Run(p.exitValue(), read(p.getErrorStream()));
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new EnforcementException("interrupted while running " + where, e);
        } catch (IOException e) {
            p.destroyForcibly();
            throw new EnforcementException("cannot read the output of " + where + ": " + e.getMessage(), e);
        }
    }

    /** What one run's exit status and stderr mean: the entries deleted, or why it failed. */
    static long outcome(String where, Run run) throws EnforcementException {
        int exit = run.exit();
        String stderr = run.stderr();
        Matcher m = DELETED.matcher(stderr == null ? "" : stderr);
        long deleted = m.find() ? Long.parseLong(m.group(1)) : -1;
        if (exit == 0) {
            return deleted;
        }
        if (exit == 1 && deleted == 0) {
            return 0; // nothing matched: conntrack's way of saying so
        }
        String text = stderr == null || stderr.isBlank() ? "(conntrack wrote nothing to stderr)" : stderr.strip();
        throw new EnforcementException(where + " failed (exit " + exit + "): " + text);
    }

    private static String read(InputStream in) throws IOException {
        try (in) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
