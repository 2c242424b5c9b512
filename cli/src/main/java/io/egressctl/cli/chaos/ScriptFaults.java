package io.egressctl.cli.chaos;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Faults done by {@code scripts/faults.sh} ({@code inject FAULT}, {@code after FAULT}) against the local
 * stack; its progress lines go to {@code err}. A run that does not finish within {@code timeoutSeconds}
 * is killed and counts as a failed fault.
 *
 * @param script         path of {@code scripts/faults.sh}
 * @param timeoutSeconds bound of one call
 * @param err            where the script's lines go
 */
public record ScriptFaults(Path script, long timeoutSeconds, PrintStream err) implements FaultInjector {

    public ScriptFaults {
        if (!Files.isRegularFile(script)) {
            throw new IllegalArgumentException("fault script " + script + " does not exist");
        }
    }

    @Override
    public void inject(String fault) throws Exception {
        run("inject", fault);
    }

    @Override
    public void after(String fault) throws Exception {
        run("after", fault);
    }

    private void run(String what, String fault) throws Exception {
        Process p = new ProcessBuilder(List.of("bash", script.toString(), what, fault)).redirectErrorStream(true).start();
        Thread pump = new Thread(() -> {
            try (var in = new java.io.BufferedReader(new java.io.InputStreamReader(p.getInputStream()))) {
                in.lines().forEach(l -> err.println("  " + l));
            } catch (java.io.IOException ignored) {
                // the script ended
            }
        }, "fault-script-output");
        pump.setDaemon(true);
        pump.start();
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            throw new IllegalStateException("faults.sh " + what + " " + fault + " did not finish within " + timeoutSeconds + " s");
        }
        pump.join(2_000);
        if (p.exitValue() != 0) {
            throw new IllegalStateException("faults.sh " + what + " " + fault + " failed (exit " + p.exitValue() + ")");
        }
    }
}
