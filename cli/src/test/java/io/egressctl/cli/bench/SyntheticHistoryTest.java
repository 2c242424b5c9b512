package io.egressctl.cli.bench;

import io.egressctl.cli.audit.replay.Replay;
import io.egressctl.core.state.NetworkState;
import io.egressctl.events.RuleEvent;
import io.egressctl.schemas.registry.InMemorySchemaRegistryClient;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

class SyntheticHistoryTest {

    @Test
    void theSyntheticHistoryReplaysToTheStateItPredicts() {
        SyntheticHistory h = new SyntheticHistory("t-", 7, 5, Instant.parse("2024-01-01T00:00:00Z"), 10);
        Replay replay = new Replay(new InMemorySchemaRegistryClient());
        for (int i = 0; i < 2_000; i++) {
            assertThat(h.time(h.index())).isEqualTo(Instant.parse("2024-01-01T00:00:00Z").plusMillis(10L * i));
            RuleEvent e = h.next();
            assertThat(replay.rule(e, e.getNetworkId(), i).accepted()).as("event %d %s", i, e.getOperation()).isTrue();
        }
        Map<String, Map<String, Integer>> expected = h.expected();
        assertThat(expected).hasSize(7);
        expected.forEach((net, rules) -> {
            NetworkState s = replay.state(net);
            assertThat(s.rules().keySet()).isEqualTo(rules.keySet());
            assertThat(rules.size()).isBetween(1, 5);
            s.rules().values().forEach(r -> assertThat(r.ports().start()).isEqualTo(rules.get(r.ruleId())));
        });
    }
}
