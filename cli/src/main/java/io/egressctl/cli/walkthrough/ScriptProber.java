package io.egressctl.cli.walkthrough;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Probes and kernel listings through {@code scripts/datacenter.sh}: {@code probe VM KIND ARGS} (it
 * retries a failed attempt once, so a slow answer on a loaded machine is not taken for a block) and
 * {@code ruleset HOST} (the host namespace's egressctl tables, as nft lists them).
 */
public final class ScriptProber implements Prober {

    private final Path script;
    private final Map<String, String> environment;

    public ScriptProber(Path script) {
        this(script, Map.of());
    }

    /**
     * @param environment added to the script's environment, e.g. {@code EGRESS_HOME} and
     *                    {@code EGRESS_DC_PREFIX} of a data center other than the default one
     */
    public ScriptProber(Path script, Map<String, String> environment) {
        this.script = script;
        this.environment = Map.copyOf(environment);
    }

    @Override
    public String probe(Probe probe) {
        List<String> cmd = new ArrayList<>(List.of("probe"));
        cmd.addAll(probe.command());
        String out = run(cmd, 30).trim();
        String first = out.isEmpty() ? "" : out.lines().findFirst().orElse("");
        return first.equals(Probe.PASS) || first.equals(Probe.BLOCKED) || first.startsWith("error")
                ? first : "error: " + (first.isEmpty() ? "no answer from " + script : first);
    }

    /** The egressctl tables in the kernel of a host of the data center (empty when there are none). */
    public String ruleset(String hostId) {
        return run(List.of("ruleset", hostId), 30);
    }

    private String run(List<String> args, int timeoutSeconds) {
        List<String> cmd = new ArrayList<>(List.of("bash", script.toString()));
        cmd.addAll(args);
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD);
            pb.environment().putAll(environment);
            Process p = pb.start();
            p.getOutputStream().close();
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return "error: " + String.join(" ", args) + " took longer than " + timeoutSeconds + " s";
            }
            return new String(out, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "error: cannot run " + script + ": " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "error: interrupted";
        }
    }
}
