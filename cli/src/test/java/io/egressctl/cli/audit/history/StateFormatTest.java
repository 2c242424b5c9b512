package io.egressctl.cli.audit.history;

import io.egressctl.cli.audit.Events;
import io.egressctl.cli.audit.Json;
import io.egressctl.cli.audit.replay.Replay;
import io.egressctl.core.state.NetworkState;
import io.egressctl.events.RuleEvent;
import io.egressctl.schemas.registry.InMemorySchemaRegistryClient;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** The table and JSON forms of {@code audit state}. */
class StateFormatTest {

    static NetworkState state(RuleEvent... events) {
        Replay replay = new Replay(new InMemorySchemaRegistryClient());
        long offset = 0;
        for (RuleEvent e : events) {
            replay.rule(e, e.getNetworkId(), offset++);
        }
        return replay.state("net-1");
    }

    static final StateCommand.Replayed REPLAYED = new StateCommand.Replayed("egress.network-events", 3, 0, 12, 3, 0, 0);

    @Test
    void table() {
        NetworkState s = state(Events.created("net-1", 1), Events.ruleCreated("net-1", 2, Events.tcp("r-b", 80, "10.20.0.11/32")),
                Events.ruleCreated("net-1", 3, Events.tcp("r-a", 22, null)));
        assertThat(StateCommand.table("net-1", Events.T0.plusSeconds(5), s, REPLAYED)).isEqualTo("""
                network: net-1
                at: 2024-05-01T10:00:05.000Z
                definition: basic 10.20.0.0/24 policy allow tenant acme
                config version: 3
                replayed: 3 events of egress.network-events partition 3 offsets 0..12 (0 rejected, 0 skipped)
                rules: 2
                RULE  ACTION  MATCH                                  DESCRIPTION
                r-a   deny    tcp port 22 from all-vms to any        -
                r-b   deny    tcp port 80 from 10.20.0.11/32 to any  -
                """);
    }

    @Test
    void aNetworkThatDoesNotExistYet() {
        assertThat(StateCommand.table("net-1", Events.T0, new NetworkState("net-1"),
                new StateCommand.Replayed("egress.network-events", 3, 0, 0, 0, 0, 0)))
                .contains("definition: (none: the network does not exist at this time)\n")
                .endsWith("rules: 0\n");
    }

    @Test
    void json() {
        NetworkState s = state(Events.created("net-1", 1), Events.ruleCreated("net-1", 2, Events.tcp("r-b", 80, "10.20.0.11/32")));
        String json = StateCommand.json("net-1", Events.T0.plusSeconds(5), s, REPLAYED);
        assertThat(json).contains("\"networkId\" : \"net-1\"", "\"at\" : \"2024-05-01T10:00:05.000Z\"", "\"exists\" : true",
                "\"configVersion\" : 2", "\"ruleId\" : \"r-b\"", "\"action\" : \"deny\"", "\"startPort\" : 80",
                "\"defaultPolicy\" : \"ALLOW\"", "\"partition\" : 3");
        assertThat(Json.PRETTY.readTree(json).get("rules").size()).isEqualTo(1);
        assertThat(List.of(json.split("\n")).get(0)).isEqualTo("{");
    }
}
