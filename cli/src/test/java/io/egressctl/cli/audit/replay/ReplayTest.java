package io.egressctl.cli.audit.replay;

import io.egressctl.cli.audit.Events;
import io.egressctl.core.state.Decision;
import io.egressctl.core.state.NetworkState;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.RuleSpec;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.events.WorkloadOperation;
import io.egressctl.schemas.registry.InMemorySchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.Topics;
import org.apache.avro.specific.SpecificRecord;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;

class ReplayTest {

    final InMemorySchemaRegistryClient registry = new InMemorySchemaRegistryClient();
    final AvroSerializer<RuleEvent> serializer = new AvroSerializer<>(registry);
    final Replay replay = new Replay(registry);
    long offset;

    Replay.Step feed(String key, RuleEvent e) {
        return replay.event("t", key.getBytes(StandardCharsets.UTF_8), serializer.serialize("t", e), offset++);
    }

    @Test
    void decidesInLogOrderLikeTheCompiler() {
        RuleSpec r80 = Events.tcp("r1", 80, null);
        assertThat(feed("net-1", Events.created("net-1", 1)).accepted()).isTrue();
        assertThat(feed("net-1", Events.ruleCreated("net-1", 2, r80)).accepted()).isTrue();
        Replay.Step dup = feed("net-1", Events.ruleCreated("net-1", 3, Events.tcp("r2", 80, null)));
        assertThat(dup.decision().code()).isEqualTo("DUPLICATE_RULE");
        assertThat(feed("net-1", Events.ruleUpdated("net-1", 4, r80, Events.tcp("r1", 81, null))).accepted()).isTrue();

        NetworkState s = replay.state("net-1");
        assertThat(s.rules().keySet()).containsExactly("r1");
        assertThat(s.rules().get("r1").ports().start()).isEqualTo(81);
        assertThat(s.configVersion()).as("position of the last accepted event").isEqualTo(4);
        assertThat(replay.rejected()).isEqualTo(1);
        assertThat(replay.records()).isEqualTo(4);
    }

    @Test
    void skipsWhatTheCompilerDeadLetters() {
        feed("net-1", Events.created("net-1", 1));
        Replay.Step wrongKey = feed("net-9", Events.ruleCreated("net-1", 2, Events.tcp("r1", 80, null)));
        assertThat(wrongKey.decision()).isNull();
        assertThat(wrongKey.skipped()).startsWith("invalid: record key 'net-9' differs");
        RuleSpec badCidr = RuleSpec.newBuilder(Events.tcp("r2", 80, null)).setDestinationCidrs(java.util.List.of("300.1.1.1/8")).build();
        assertThat(feed("net-1", Events.ruleCreated("net-1", 3, badCidr)).skipped()).startsWith("invalid:");
        Replay.Step garbage = replay.event("t", "net-1".getBytes(StandardCharsets.UTF_8), new byte[] {1, 2, 3, 4, 5, 6}, offset++);
        assertThat(garbage.skipped()).startsWith("undecodable:");
        assertThat(garbage.event()).isNull();
        assertThat(replay.skipped()).isEqualTo(3);
        assertThat(replay.state("net-1").configVersion()).isEqualTo(1);
        assertThat(feed("net-1", Events.ruleCreated("net-1", 5, Events.tcp("r3", 22, null))).decision().outcome())
                .isEqualTo(Decision.Outcome.ACCEPTED);
    }

    @Test
    void foldsRuleAndPlacementEventsOfTheOneLogAtOnePositionPerNetwork() {
        AvroSerializer<SpecificRecord> any = new AvroSerializer<>(registry);
        feed("net-1", Events.created("net-1", 1));
        WorkloadEvent placed = WorkloadEvent.newBuilder().setEventId("w1").setOperation(WorkloadOperation.VM_PLACED)
                .setNetworkId("net-1").setVmId("vm-1").setHostId("h1").setInterfaceName("tap1").setIpv4("10.1.0.5")
                .setSource(Events.created("net-1", 1).getSource()).build();
        Replay.Step step = replay.event(Topics.NETWORK_EVENTS, "net-1".getBytes(StandardCharsets.UTF_8),
                any.serialize(Topics.NETWORK_EVENTS, placed), offset++);
        assertThat(step.accepted()).isTrue();
        assertThat(step.event()).isInstanceOf(WorkloadEvent.class);
        feed("net-1", Events.ruleCreated("net-1", 3, Events.tcp("r1", 80, null)));

        NetworkState s = replay.state("net-1");
        assertThat(s.vms()).containsOnlyKeys("vm-1");
        assertThat(s.version()).as("the position of its last event, whatever the kind").isEqualTo(3);
        assertThat(s.configVersion()).isEqualTo(3);
        Replay.Step again = replay.event(Topics.NETWORK_EVENTS, "net-1".getBytes(StandardCharsets.UTF_8),
                any.serialize(Topics.NETWORK_EVENTS, placed), 1);
        assertThat(again.decision().outcome()).as("one position for both kinds").isEqualTo(Decision.Outcome.ALREADY_APPLIED);
    }

    @Test
    void absorbsTheStatesOfAnotherReplay() {
        feed("net-1", Events.created("net-1", 1));
        Replay other = new Replay(registry);
        other.event("t", "net-2".getBytes(StandardCharsets.UTF_8), serializer.serialize("t", Events.created("net-2", 2)), 0);
        replay.absorb(other);
        assertThat(replay.states().keySet()).containsExactly("net-1", "net-2");
        assertThat(replay.records()).isEqualTo(2);
    }
}
