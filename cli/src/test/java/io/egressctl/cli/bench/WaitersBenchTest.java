package io.egressctl.cli.bench;

import io.egressctl.cli.Env;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The parts of {@code bench waiters} that need no running control plane: options, CPU time, the loopback rule. */
class WaitersBenchTest {

    @Test
    void defaultsAreTenThousandWaitersAndTenIdleSeconds() {
        Map<String, Integer> o = WaitersBench.options(new String[0]);
        assertThat(o).containsEntry("waiters", 10_000).containsEntry("idle-seconds", 10).containsEntry("connect-batch", 500);
        assertThat(WaitersBench.options(new String[] {"--waiters", "200", "--idle-seconds=3"}))
                .containsEntry("waiters", 200).containsEntry("idle-seconds", 3);
    }

    @Test
    void moreWaitersThanLocalPortsOrAnIdleTimeBeyondTheirTimeoutAreRefused() {
        assertThatThrownBy(() -> WaitersBench.options(new String[] {"--waiters", "50000"})).hasMessageContaining("at most 20000");
        assertThatThrownBy(() -> WaitersBench.options(new String[] {"--idle-seconds", "45"})).hasMessageContaining("at most 30");
        assertThatThrownBy(() -> WaitersBench.options(new String[] {"--waiters", "0"})).hasMessageContaining("positive");
        assertThatThrownBy(() -> WaitersBench.options(new String[] {"--bogus", "1"})).hasMessageContaining("unknown option");
    }

    @Test
    void theCpuTimeOfAProcessGrowsWhileItWorks() {
        long pid = ProcessHandle.current().pid();
        double before = WaitersBench.cpuSeconds(pid);
        long end = System.nanoTime() + 300_000_000L;
        long x = 0;
        while (System.nanoTime() < end) {
            x += 1 + (x & 7);
        }
        assertThat(x).isPositive();
        assertThat(WaitersBench.cpuSeconds(pid)).isGreaterThan(before);
    }

    @Test
    void anApiElsewhereThanThisMachineIsRefused() {
        Env env = new Env("http://10.1.2.3:18080", "k", "o", "127.0.0.1:1", "http://127.0.0.1:2", "redis://127.0.0.1:3", null,
                List.of("host-1"));
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = WaitersBench.run(env, new String[0], new PrintStream(new ByteArrayOutputStream()), new PrintStream(err));
        assertThat(code).isEqualTo(2);
        assertThat(err.toString()).contains("must be on this machine");
    }
}
