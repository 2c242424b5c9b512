package io.egressctl.cli.audit.log;

import io.egressctl.cli.audit.Events;
import io.egressctl.events.RuleEvent;
import io.egressctl.schemas.registry.InMemorySchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryException;
import io.egressctl.schemas.serde.AvroSerializer;
import org.apache.kafka.common.errors.SerializationException;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class EventDecoderTest {

    @Test
    void decodesTheWireFormatWithOneReaderPerSchemaId() {
        InMemorySchemaRegistryClient registry = new InMemorySchemaRegistryClient();
        byte[] bytes = new AvroSerializer<RuleEvent>(registry).serialize("t", Events.created("net-1", 1));
        int[] lookups = {0};
        SchemaRegistryClient counting = (SchemaRegistryClient) Proxy.newProxyInstance(getClass().getClassLoader(),
                new Class<?>[] {SchemaRegistryClient.class}, (p, m, a) -> {
                    if (m.getName().equals("schemaById")) {
                        lookups[0]++;
                    }
                    return m.invoke(registry, a);
                });
        EventDecoder<RuleEvent> d = new EventDecoder<>(counting, RuleEvent.class);
        for (int i = 0; i < 100; i++) {
            assertThat(d.decode("t", bytes).getNetworkId()).isEqualTo("net-1");
        }
        assertThat(lookups[0]).isEqualTo(1);
        assertThat(d.decode("t", null)).isNull();
    }

    @Test
    void theNetworkEventsDecoderReadsEachTypeOfTheOneLogAsItsOwnClassAndRefusesOthers() {
        InMemorySchemaRegistryClient registry = new InMemorySchemaRegistryClient();
        AvroSerializer<org.apache.avro.specific.SpecificRecord> ser = new AvroSerializer<>(registry);
        RuleEvent created = Events.created("net-1", 1);
        io.egressctl.events.WorkloadEvent placed = io.egressctl.events.WorkloadEvent.newBuilder().setEventId("w1")
                .setOperation(io.egressctl.events.WorkloadOperation.VM_PLACED).setNetworkId("net-1").setVmId("vm-1").setHostId("h1")
                .setSource(created.getSource()).build();
        EventDecoder<org.apache.avro.specific.SpecificRecord> d = EventDecoder.networkEvents(registry);

        assertThat(d.decode("egress.network-events", ser.serialize("egress.network-events", created))).isEqualTo(created);
        assertThat(d.decode("egress.network-events", ser.serialize("egress.network-events", placed))).isEqualTo(placed);
        byte[] other = ser.serialize("egress.network-events", io.egressctl.events.HostUpdate.newBuilder().setHostId("h1")
                .setNetworkId("net-1").setVersion(1).setTombstone(true).setFragment(null).setFragmentHash("")
                .setChangeIds(java.util.List.of()).setCompiledAt(java.time.Instant.EPOCH).build());
        assertThatThrownBy(() -> d.decode("egress.network-events", other)).isInstanceOf(SerializationException.class)
                .hasMessageContaining("is a io.egressctl.events.HostUpdate, not one of the record types of topic egress.network-events");
    }

    @Test
    void aBadRecordIsASerializationExceptionButAnUnreachableRegistryStopsTheAudit() {
        EventDecoder<RuleEvent> d = new EventDecoder<>(new InMemorySchemaRegistryClient(), RuleEvent.class);
        assertThatThrownBy(() -> d.decode("t", new byte[] {1, 0, 0, 0, 1, 2})).isInstanceOf(SerializationException.class)
                .hasMessageContaining("magic byte");
        assertThatThrownBy(() -> d.decode("t", new byte[] {0, 0, 0, 0, 99, 2})).isInstanceOf(SerializationException.class)
                .hasMessageContaining("unknown schema id 99");

        SchemaRegistryClient down = (SchemaRegistryClient) Proxy.newProxyInstance(getClass().getClassLoader(),
                new Class<?>[] {SchemaRegistryClient.class}, (p, m, a) -> {
                    throw new SchemaRegistryException("connection refused");
                });
        EventDecoder<RuleEvent> offline = new EventDecoder<>(down, RuleEvent.class);
        assertThatThrownBy(() -> offline.decode("t", new byte[] {0, 0, 0, 0, 1, 2})).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("cannot fetch the writer schema id 1");
    }
}
