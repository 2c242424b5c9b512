package io.egressctl.cli.audit.history;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

class MigrateCommandTest {

    static MigrateCommand.Old rule(String net, long offset, long ts) {
        return new MigrateCommand.Old("egress.rule-events", 0, offset, ts, net, new byte[0]);
    }

    static MigrateCommand.Old placement(String net, long offset, long ts) {
        return new MigrateCommand.Old("egress.workload-events", 0, offset, ts, net, new byte[0]);
    }

    @Test
    void eachNetworksEventsAreMergedByLogTimeKeepingEachTopicsOwnOrderRuleEventsFirstOnATie() {
        Map<String, List<MigrateCommand.Old>> rules = Map.of(
                "net-a", List.of(rule("net-a", 0, 100), rule("net-a", 1, 300), rule("net-a", 2, 250)), // a skewed clock
                "net-b", List.of(rule("net-b", 3, 50)));
        Map<String, List<MigrateCommand.Old>> placements = Map.of(
                "net-a", List.of(placement("net-a", 0, 200), placement("net-a", 1, 300)),
                "net-c", List.of(placement("net-c", 2, 10)));

        List<MigrateCommand.Old> merged = MigrateCommand.merge(rules, placements);

        assertThat(merged).extracting(o -> o.key() + (o.topic().contains("rule") ? " r" : " w") + o.offset()).containsExactly(
                "net-a r0", "net-a w0", "net-a r1", "net-a r2", "net-a w1", "net-b r3", "net-c w2");
    }
}
