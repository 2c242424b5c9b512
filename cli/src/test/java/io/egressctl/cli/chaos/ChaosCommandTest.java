package io.egressctl.cli.chaos;

import io.egressctl.cli.Env;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The command line of {@code egressctl chaos} and the summary line its callers parse. */
class ChaosCommandTest {

    @Test
    void defaultsRunEveryFaultWithThirtyChanges() {
        ChaosSuite.Options o = ChaosCommand.options(new String[0]);
        assertThat(o.faults()).containsExactly("compiler", "agent", "rule-service", "kafka", "registry", "compiler-pause", "redis");
        assertThat(o.changes()).isEqualTo(30);
        assertThat(o.convergeTimeout().toSeconds()).isEqualTo(180);
        assertThat(o.checks()).isTrue();
    }

    @Test
    void faultsAndChangesAreTaken() {
        ChaosSuite.Options o = ChaosCommand.options(new String[]{"--faults", "redis,compiler", "--changes=5", "--no-checks"});
        assertThat(o.faults()).containsExactly("redis", "compiler");
        assertThat(o.changes()).isEqualTo(5);
        assertThat(o.checks()).isFalse();
    }

    @Test
    void badArgumentsAreRefusedWithTheReason() {
        assertThatThrownBy(() -> ChaosCommand.options(new String[]{"--faults", "compiler,disk"}))
                .hasMessageContaining("unknown fault 'disk'");
        assertThatThrownBy(() -> ChaosCommand.options(new String[]{"--changes", "0"}))
                .hasMessageContaining("--changes must be a whole number from 1 to 10000, not '0'");
        assertThatThrownBy(() -> ChaosCommand.options(new String[]{"--changes"})).hasMessageContaining("--changes needs a value");
        assertThatThrownBy(() -> ChaosCommand.options(new String[]{"--fast"})).hasMessageContaining("unknown argument '--fast'");
    }

    @Test
    void aBadCommandLineExitsTwoWithUsage() {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        Env env = Env.from(java.util.Map.of("EGRESS_API_KEY", "k", "EGRESS_OPERATOR_KEY", "o"));
        int code = ChaosCommand.run(env, new String[]{"--faults", "nope"}, new PrintStream(new ByteArrayOutputStream()),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertThat(code).isEqualTo(2);
        assertThat(err.toString(StandardCharsets.UTF_8)).contains("unknown fault 'nope'").contains("usage: egressctl chaos");
    }

    @Test
    void helpPrintsUsageAndExitsZero() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int code = ChaosCommand.run(Env.from(java.util.Map.of()), new String[]{"--help"}, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(new ByteArrayOutputStream()));
        assertThat(code).isZero();
        assertThat(out.toString(StandardCharsets.UTF_8)).contains("--faults").contains("compiler-pause");
    }

    @Test
    void theSummaryLineAndExitCodeFollowTheRows() {
        ChaosSuite.Row ok = new ChaosSuite.Row("compiler", 30, 0, 0, 0, 4.2, true, "ok", "ok", null);
        ChaosSuite.Row lost = new ChaosSuite.Row("redis", 28, 2, 3, 0, 180, false, "FAIL(1)", "ok", null);
        ChaosSuite.Result good = new ChaosSuite.Result(List.of(ok), 0, 0, 0, 0, 4.2);
        assertThat(good.summary()).isEqualTo("summary: faults=1 lost=0 duplicated=0 max_converge_s=4.2");
        assertThat(good.exitCode()).isZero();
        ChaosSuite.Result bad = new ChaosSuite.Result(List.of(ok, lost), 3, 0, 3, 0, 180);
        assertThat(bad.summary()).isEqualTo("summary: faults=2 lost=3 duplicated=0 max_converge_s=180.0");
        assertThat(bad.exitCode()).isEqualTo(1);
        assertThat(ChaosSuite.line(lost)).contains("redis").contains(">180").contains("FAIL(1)");
        // A check that failed alone fails the run.
        ChaosSuite.Row replayFailed = new ChaosSuite.Row("kafka", 30, 0, 0, 0, 3, true, "ok", "FAIL(1)", null);
        assertThat(new ChaosSuite.Result(List.of(replayFailed), 0, 0, 0, 0, 3).exitCode()).isEqualTo(1);
    }
}
