package io.egressctl.rules.publish;

import io.egressctl.core.event.Audit;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.NetworkKind;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.schemas.registry.InMemorySchemaRegistryClient;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.SubjectNameStrategy;
import io.egressctl.schemas.serde.Topics;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

import java.time.Instant;

import static org.assertj.core.api.Assertions.assertThat;

/** Invariant 2 at the source: every event that decides a network's state goes to its one log, keyed by the network. */
class EventPublisherTest {

    static final Audit AUDIT = new Audit("alice", "acme", "req", Instant.parse("2026-01-01T00:00:00Z"), "test", "0");

    final InMemorySchemaRegistryClient registry = new InMemorySchemaRegistryClient();
    final AvroSerializer<SpecificRecord> serializer = new AvroSerializer<>(registry, true, SubjectNameStrategy.TOPIC_RECORD_NAME);
    final MockProducer<String, SpecificRecord> producer = new MockProducer<>(true, null, new StringSerializer(), serializer);
    final EventPublisher publisher = new EventPublisher(producer);

    @Test
    void networkRuleAndPlacementEventsShareTheNetworksLogAndKeyEachTypeUnderItsOwnSubject() {
        Network network = new Network("net-1", "acme", NetworkKind.BASIC, Cidr.parse("10.0.0.0/24"), null, DefaultPolicy.ALLOW, false, 10);

        publisher.publish(new RuleChange("c1", RuleChange.Operation.NETWORK_CREATED, "net-1", null, null, network, null, null, AUDIT));
        publisher.publish(new WorkloadChange("w1", WorkloadChange.Operation.VM_PLACED, "net-1", "vm-1", "h1", null, "tap1", null,
                "10.0.0.5", null, AUDIT));

        assertThat(producer.history()).extracting(r -> r.topic() + " " + r.key())
                .containsExactly("egress.network-events net-1", "egress.network-events net-1");
        assertThat(producer.history().get(0).value()).isInstanceOf(RuleEvent.class);
        assertThat(producer.history().get(1).value()).isInstanceOf(WorkloadEvent.class);
        assertThat(registry.subjects()).containsExactlyInAnyOrder("egress.network-events-io.egressctl.events.RuleEvent",
                "egress.network-events-io.egressctl.events.WorkloadEvent");
        AvroDeserializer<SpecificRecord> reader = AvroDeserializer.ofTypes(registry, RuleEvent.class, WorkloadEvent.class);
        assertThat(reader.deserialize(Topics.NETWORK_EVENTS, serializer.serialize(Topics.NETWORK_EVENTS, producer.history().get(1).value())))
                .isEqualTo(producer.history().get(1).value());
    }
}
