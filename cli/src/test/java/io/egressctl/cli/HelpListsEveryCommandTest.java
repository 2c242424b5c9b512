package io.egressctl.cli;

import io.egressctl.cli.audit.AuditCommand;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code ./egressctl help} names every command egressctl dispatches, every audit command and every
 * benchmark, so a command added to the script or the CLI without its line in the help fails here.
 */
class HelpListsEveryCommandTest {

    @Test
    void helpNamesEveryDispatchedCommandAuditCommandAndBenchmark() throws Exception {
        Path root = DocumentedVariablesTest.repositoryRoot();
        String help = run(root, "help");
        assertThat(run(root, "--help")).isEqualTo(help);

        List<String> commands = dispatched(Files.readString(root.resolve("egressctl")));
        assertThat(commands).contains("stack", "status", "up", "bench", "audit", "datacenter", "chaos");
        for (String command : commands) {
            assertThat(help).as("egressctl help names '%s'", command).containsPattern("(?m)^  (stack |bench |audit )?" + Pattern.quote(command) + "\\b");
        }
        for (String audit : auditCommands()) {
            assertThat(help).as("audit command %s", audit).containsPattern("audit .*\\b" + Pattern.quote(audit) + "\\b");
        }
        for (String bench : List.of("api", "compiler", "agent", "audit", "integrity")) {
            assertThat(help).as("bench %s", bench).contains("bench " + bench);
        }
        assertThat(help).contains("status [--wait [SECONDS]]", "stack restart", "stack wait");
    }

    /** The command names of egressctl's top-level {@code case "$cmd" in} (help's own aliases left out). */
    static List<String> dispatched(String script) {
        String block = script.substring(script.indexOf("case \"$cmd\" in"));
        block = block.substring(0, block.indexOf("\nesac"));
        List<String> out = new ArrayList<>();
        Matcher m = Pattern.compile("(?m)^  ([a-z][a-z| -]*)\\)").matcher(block);
        while (m.find()) {
            for (String name : m.group(1).split("\\|")) {
                String n = name.trim();
                if (!n.isEmpty() && !n.startsWith("-") && !n.equals("help")) {
                    out.add(n);
                }
            }
        }
        return out;
    }

    /** The commands AuditCommand's usage lists (the lines under "commands:"). */
    static List<String> auditCommands() {
        String usage = AuditCommand.USAGE;
        String section = usage.substring(usage.indexOf("commands:"), usage.indexOf("times:"));
        List<String> out = new ArrayList<>();
        Matcher m = Pattern.compile("(?m)^  ([a-z][a-z0-9.-]+)\\s").matcher(section);
        while (m.find()) {
            out.add(m.group(1));
        }
        assertThat(out).contains("history", "verify", "replay-check", "migrate-0.1");
        return out;
    }

    private static String run(Path root, String arg) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("bash", root.resolve("egressctl").toString(), arg).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(out).isZero();
        return out;
    }
}
