package io.egressctl.cli.bench;

import io.egressctl.core.host.HostState;
import io.egressctl.events.EnforcementReport;
import io.egressctl.events.EnforcementStatus;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The hosts a benchmark invents must end, once the bench deleted its networks, with a last report of an
 * empty ruleset: {@code audit verify} expects of a host with no live fragment the hash of an empty host
 * ({@code HostState.hashOf} of nothing) and calls any other hash drifted, then silent, which failed
 * {@code audit verify} and every {@code chaos} round run after {@code bench waiters} or {@code bench propagation}.
 */
class BenchLeavesNoHostBehindTest {

    private static final String EMPTY = HostState.hashOf(new TreeMap<>());

    @Test
    void theWaitersBenchHostsLastReportIsAnAckOfNothing() {
        EnforcementReport last = WaitersBench.emptyReport("bench-waiters-h-1", Instant.parse("2026-12-04T10:00:00Z"));
        assertThat(last.getHostId()).isEqualTo("bench-waiters-h-1");
        assertThat(last.getStatus()).isEqualTo(EnforcementStatus.ACK);
        assertThat(last.getFragments()).isEmpty();
        assertThat(last.getAppliedHash()).isEqualTo(EMPTY).isNotEqualTo("bench");
    }

    @Test
    void theFleetWaitsForEveryHostThatDidNotReportAnEmptyRuleset() {
        List<String> hosts = List.of("pb-h0", "pb-h1", "pb-h2");
        assertThat(FleetCloud.stillHolding(hosts, Map.of("pb-h0", EMPTY, "pb-h1", "f9cd964e1ea6c2f1"))).containsExactly("pb-h1", "pb-h2");
        assertThat(FleetCloud.stillHolding(hosts, Map.of("pb-h0", EMPTY, "pb-h1", EMPTY, "pb-h2", EMPTY))).isEmpty();
    }
}
