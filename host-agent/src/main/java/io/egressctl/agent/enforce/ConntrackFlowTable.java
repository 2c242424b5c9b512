package io.egressctl.agent.enforce;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The real {@link FlowTable}: runs {@code conntrack -D --mark <m>} (conntrack-tools), inside the
 * agent's network namespace through {@code ip netns exec <ns>} when it has one, like the nft runner.
 * No shell; the mark is passed as a decimal number. conntrack prints every deleted entry on stdout
 * (discarded) and a summary on stderr; it exits 1 when nothing matched, with "0 flow entries have
 * been deleted", which is success here. A run that outlives the timeout is killed.
 *
 * <p>Several ports at once ({@link #endFlows(List)}) go to one {@code conntrack -R -} process, one
 * {@code -D --mark <m>} line each. With {@code keepSpare} that process is started ahead and waits
 * for its input, as the nft runner's spare does: the flows are ended before the apply is reported,
 * and starting a process (with {@code ip netns exec}) was most of the agent's time per change
 * (measured on the data center in a box: 2 ports, 35 ms each, beside 25 ms for nft's apply). conntrack
 * opens its netlink socket when it starts but deletes what it finds when it reads each line, so a
 * spare started long ago ends flows started since. In that mode conntrack does not say how many
 * entries it deleted: the count is -1.
 */
public final class ConntrackFlowTable implements FlowTable {

    private static final Pattern NETNS = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
    private static final Pattern DELETED = Pattern.compile("(\\d+) flow entries have been deleted");

    private final List<String> prefix;
    private final Duration timeout;
    /** The idle {@code conntrack -R -}, or null without keepSpare. */
    private final SpareProcess spare;

    /**
     * @param conntrackBinary path or name of conntrack (looked up on PATH)
     * @param netns           namespace to run in, or null/empty for the agent's own
     * @param timeout         longest one run may take
     */
    public ConntrackFlowTable(String conntrackBinary, String netns, Duration timeout) {
        this(conntrackBinary, netns, timeout, false);
    }

    /**
     * @param conntrackBinary path or name of conntrack (looked up on PATH)
     * @param netns           namespace to run in, or null/empty for the agent's own
     * @param timeout         longest one run may take
     * @param keepSpare       keep a {@code conntrack -R -} process started for the next batch (see the class comment)
     */
    public ConntrackFlowTable(String conntrackBinary, String netns, Duration timeout, boolean keepSpare) {
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
        if (keepSpare) {
            ExecutorService starter = Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, "conntrack-spare");
                t.setDaemon(true);
                return t;
            });
            this.spare = new SpareProcess(() -> start(batchCommand()), starter);
            spare.refill();
        } else {
            this.spare = null;
        }
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

    /** The command a batch runs: conntrack reading {@code -D --mark <m>} lines from its stdin. */
    public List<String> batchCommand() {
        List<String> cmd = new ArrayList<>(prefix);
        cmd.addAll(List.of("-R", "-"));
        return cmd;
    }

    /** The lines a batch writes for {@code marks}. */
    static String batchInput(List<Integer> marks) {
        StringBuilder sb = new StringBuilder(marks.size() * 24);
        for (int mark : marks) {
            sb.append("-D --mark ").append(Integer.toUnsignedString(mark)).append('\n');
        }
        return sb.toString();
    }

    /** Ends the flows of every mark with one {@code conntrack -R -} (the spare when one is ready). */
    @Override
    public long endFlows(List<Integer> marks) throws EnforcementException {
        if (marks.isEmpty()) {
            return 0;
        }
        List<String> cmd = batchCommand();
        String where = String.join(" ", cmd);
        Process taken = spare == null ? null : spare.take();
        Process p = taken != null ? taken : start(cmd);
        try {
            try (OutputStream in = p.getOutputStream()) {
                in.write(batchInput(marks).getBytes(StandardCharsets.US_ASCII));
            } catch (IOException e) {
                // conntrack exited before reading its input; its exit status and stderr say why.
            }
            Run r = await(p, where);
            if (r.exit() != 0) {
                String text = r.stderr() == null || r.stderr().isBlank() ? "(conntrack wrote nothing to stderr)" : r.stderr().strip();
                throw new EnforcementException(where + " failed (exit " + r.exit() + "): " + text);
            }
            return -1;
        } finally {
            if (spare != null) {
                spare.refill(); // the next spare starts once this batch is over
            }
        }
    }

    /** The idle {@code conntrack -R -} process ready for the next batch, if one is alive (tests). */
    public java.util.Optional<ProcessHandle> spare() {
        return spare == null ? java.util.Optional.empty() : spare.handle();
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
        Process p = start(cmd);
        try {
            p.getOutputStream().close();
        } catch (IOException e) {
            // nothing to write; the exit status tells
        }
        return await(p, where);
    }

    private static Process start(List<String> cmd) throws EnforcementException {
        try {
            return new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        } catch (IOException e) {
            throw new EnforcementException("cannot start " + String.join(" ", cmd) + ": " + e.getMessage(), e);
        }
    }

    private Run await(Process p, String where) throws EnforcementException {
        try {
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
