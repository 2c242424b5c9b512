package io.egressctl.schemas.serde;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificDatumWriter;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.junit.jupiter.api.Test;

import io.egressctl.events.EnforcementReport;
import io.egressctl.events.HostUpdate;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.schemas.Fixtures;
import io.egressctl.schemas.registry.InMemorySchemaRegistryClient;

class AvroSerdeTest {

    private final InMemorySchemaRegistryClient registry = new InMemorySchemaRegistryClient();

    @Test
    void everyContractTypeRoundTrips() {
        assertRoundTrip(Topics.NETWORK_EVENTS, Fixtures.ruleCreated("chg-1", "net-1"), RuleEvent.class);
        assertRoundTrip(Topics.NETWORK_EVENTS, Fixtures.vmPlaced(), WorkloadEvent.class);
        assertRoundTrip(Topics.HOST_UPDATES, Fixtures.hostUpdate(), HostUpdate.class);
        assertRoundTrip(Topics.HOST_UPDATES, Fixtures.hostTombstone(), HostUpdate.class);
        assertRoundTrip(Topics.ENFORCEMENT_REPORTS, Fixtures.nack(), EnforcementReport.class);
        assertThat(registry.subjects()).containsExactlyInAnyOrder("egress.network-events-io.egressctl.events.RuleEvent",
                "egress.network-events-io.egressctl.events.WorkloadEvent", "egress.host-updates-value",
                "egress.enforcement-reports-value");
    }

    @Test
    void theNetworkEventsTopicCarriesBothEventTypesEachUnderItsOwnSubjectAndReadsBackAsItsOwnClass() {
        AvroSerializer<SpecificRecord> serializer = new AvroSerializer<>(registry);
        AvroDeserializer<SpecificRecord> deserializer = AvroDeserializer.ofTypes(registry, RuleEvent.class, WorkloadEvent.class);
        RuleEvent rule = Fixtures.ruleCreated("chg-1", "net-1");
        WorkloadEvent placed = Fixtures.vmPlaced();

        byte[] ruleBytes = serializer.serialize(Topics.NETWORK_EVENTS, rule);
        byte[] placedBytes = serializer.serialize(Topics.NETWORK_EVENTS, placed);

        assertThat(deserializer.deserialize(Topics.NETWORK_EVENTS, ruleBytes)).isInstanceOf(RuleEvent.class).isEqualTo(rule);
        assertThat(deserializer.deserialize(Topics.NETWORK_EVENTS, placedBytes)).isInstanceOf(WorkloadEvent.class).isEqualTo(placed);
        assertThat(registry.subjects()).containsExactlyInAnyOrder("egress.network-events-io.egressctl.events.RuleEvent",
                "egress.network-events-io.egressctl.events.WorkloadEvent");
        assertThat(WireFormat.schemaId("t", ruleBytes)).isNotEqualTo(WireFormat.schemaId("t", placedBytes));
        assertThat(registry.latest("egress.network-events-io.egressctl.events.RuleEvent")).contains(RuleEvent.getClassSchema());
    }

    @Test
    void aRecordOfAnotherTypeOnTheNetworkEventsTopicIsRefusedAsUndecodable() {
        byte[] bytes = new AvroSerializer<HostUpdate>(registry).serialize(Topics.NETWORK_EVENTS, Fixtures.hostUpdate());
        AvroDeserializer<SpecificRecord> deserializer = AvroDeserializer.ofTypes(registry, RuleEvent.class, WorkloadEvent.class);

        assertThatThrownBy(() -> deserializer.deserialize(Topics.NETWORK_EVENTS, bytes))
                .isInstanceOf(SerializationException.class)
                .hasMessage("schema id 1 is a io.egressctl.events.HostUpdate, not one of the record types of topic"
                        + " egress.network-events (io.egressctl.events.RuleEvent, io.egressctl.events.WorkloadEvent)");
    }

    @Test
    void theSubjectNameStrategyIsConfiguredByConfluentsNamesAndDefaultsPerTopic() {
        AvroSerializer<HostUpdate> topicRecord = new AvroSerializer<>(registry);
        topicRecord.configure(Map.of(SubjectNameStrategy.VALUE_CONFIG, "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy"), false);
        AvroSerializer<HostUpdate> recordName = new AvroSerializer<>(registry, true, SubjectNameStrategy.RECORD_NAME);
        AvroSerializer<HostUpdate> topicName = new AvroSerializer<>(registry);
        topicName.configure(Map.of(SubjectNameStrategy.VALUE_CONFIG, "TopicNameStrategy"), false);

        topicRecord.serialize("t1", Fixtures.hostUpdate());
        recordName.serialize("t2", Fixtures.hostUpdate());
        topicName.serialize("x.network-events", Fixtures.hostUpdate());

        assertThat(registry.subjects()).containsExactlyInAnyOrder("t1-io.egressctl.events.HostUpdate",
                "io.egressctl.events.HostUpdate", "x.network-events-value");
        assertThat(SubjectNameStrategy.forTopic(Topics.NETWORK_EVENTS, false)).isEqualTo(SubjectNameStrategy.TOPIC_RECORD_NAME);
        assertThat(SubjectNameStrategy.forTopic(Topics.NETWORK_EVENTS, true)).isEqualTo(SubjectNameStrategy.TOPIC_NAME);
        assertThat(SubjectNameStrategy.forTopic(Topics.HOST_UPDATES, false)).isEqualTo(SubjectNameStrategy.TOPIC_NAME);
        assertThatThrownBy(() -> SubjectNameStrategy.parse("RandomStrategy")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("TopicRecordNameStrategy");
    }

    @Test
    void logicalTypesAndNestedRecordsSurvive() {
        RuleEvent event = Fixtures.ruleCreated("chg-2", "net-9");
        RuleEvent back = new AvroDeserializer<>(registry, RuleEvent.class)
                .deserialize(Topics.NETWORK_EVENTS, new AvroSerializer<RuleEvent>(registry).serialize(Topics.NETWORK_EVENTS, event));
        assertThat(back.getSource().getEventTime()).isEqualTo(Fixtures.T0);
        assertThat(back.getRuleAfter().getDescription()).isEqualTo("no plain http, héllo ✓");
        assertThat(back.getRuleBefore()).isNull();
        assertThat(back.getNetwork().getGuestCidr6()).isEqualTo("fd00::/64");
    }

    @Test
    void wireLayoutIsMagicByteThenBigEndianIdThenPlainAvroBinary() throws IOException {
        InMemorySchemaRegistryClient bigIds = new InMemorySchemaRegistryClient(true, 0x01020304);
        HostUpdate update = Fixtures.hostUpdate();

        byte[] bytes = new AvroSerializer<HostUpdate>(bigIds).serialize(Topics.HOST_UPDATES, update);

        assertThat(bytes[0]).isEqualTo((byte) 0);
        assertThat(Arrays.copyOfRange(bytes, 1, 5)).containsExactly(1, 2, 3, 4);
        assertThat(ByteBuffer.wrap(bytes, 1, 4).getInt()).isEqualTo(0x01020304);
        assertThat(WireFormat.schemaId("t", bytes)).isEqualTo(0x01020304);
        assertThat(Arrays.copyOfRange(bytes, 5, bytes.length)).isEqualTo(plainAvro(update));
    }

    @Test
    void subjectIsTopicNameStrategyForValuesAndKeys() {
        AvroSerializer<HostUpdate> keySerializer = new AvroSerializer<>(registry);
        keySerializer.configure(Map.of(), true);

        new AvroSerializer<HostUpdate>(registry).serialize("some.topic", Fixtures.hostUpdate());
        keySerializer.serialize("some.topic", Fixtures.hostUpdate());

        assertThat(registry.subjects()).containsExactlyInAnyOrder("some.topic-value", "some.topic-key");
    }

    @Test
    void schemaIdsAreCachedPerTopic() {
        AvroSerializer<HostUpdate> serializer = new AvroSerializer<>(registry);
        AvroDeserializer<HostUpdate> deserializer = new AvroDeserializer<>(registry, HostUpdate.class);

        for (int i = 0; i < 100; i++) {
            deserializer.deserialize(Topics.HOST_UPDATES, serializer.serialize(Topics.HOST_UPDATES, Fixtures.hostUpdate()));
        }
        assertThat(registry.registerCalls()).isEqualTo(1);
        assertThat(registry.schemaByIdCalls()).isEqualTo(1);

        serializer.serialize("another.topic", Fixtures.hostUpdate());
        assertThat(registry.registerCalls()).isEqualTo(2);
    }

    @Test
    void sameSchemaGetsTheSameIdOnEveryTopic() {
        AvroSerializer<HostUpdate> serializer = new AvroSerializer<>(registry);
        byte[] a = serializer.serialize("a", Fixtures.hostUpdate());
        byte[] b = serializer.serialize("b", Fixtures.hostUpdate());
        assertThat(Arrays.copyOfRange(a, 0, 5)).isEqualTo(Arrays.copyOfRange(b, 0, 5));
    }

    @Test
    void nullIsATombstoneBothWays() {
        assertThat(new AvroSerializer<HostUpdate>(registry).serialize(Topics.HOST_UPDATES, null)).isNull();
        assertThat(new AvroDeserializer<>(registry, HostUpdate.class).deserialize(Topics.HOST_UPDATES, (byte[]) null)).isNull();
        assertThat(registry.registerCalls()).isZero();
    }

    @Test
    void withoutAutoRegisterTheSchemaMustBeRegisteredAlready() {
        AvroSerializer<HostUpdate> strict = new AvroSerializer<>(registry, false);

        assertThatThrownBy(() -> strict.serialize(Topics.HOST_UPDATES, Fixtures.hostUpdate()))
                .isInstanceOf(SerializationException.class)
                .hasMessageContaining("io.egressctl.events.HostUpdate is not registered under subject egress.host-updates-value")
                .hasMessageContaining("auto.register.schemas is false");

        int id = registry.register("egress.host-updates-value", HostUpdate.getClassSchema());
        byte[] bytes = strict.serialize(Topics.HOST_UPDATES, Fixtures.hostUpdate());
        assertThat(WireFormat.schemaId("t", bytes)).isEqualTo(id);
        assertThat(registry.registerCalls()).isEqualTo(1); // only the explicit one
    }

    @Test
    void autoRegisterCanBeTurnedOffByConfig() {
        AvroSerializer<HostUpdate> serializer = new AvroSerializer<>(registry);
        serializer.configure(Map.of(AvroSerdeConfig.AUTO_REGISTER_SCHEMAS, "false"), false);
        assertThatThrownBy(() -> serializer.serialize(Topics.HOST_UPDATES, Fixtures.hostUpdate()))
                .isInstanceOf(SerializationException.class).hasMessageContaining("not registered");
    }

    @Test
    void aRegistryThatRejectsTheSchemaFailsTheSend() {
        // the subject already holds a schema that the new one cannot read: HTTP 409 from a real registry
        registry.register("egress.host-updates-value", Schema.createRecord("io.egressctl.events.HostUpdate", null, null,
                false, List.of(new Schema.Field("legacy", Schema.create(Schema.Type.STRING)))));

        assertThatThrownBy(() -> new AvroSerializer<HostUpdate>(registry).serialize(Topics.HOST_UPDATES, Fixtures.hostUpdate()))
                .isInstanceOf(SerializationException.class)
                .hasMessageContaining("cannot get a schema id for io.egressctl.events.HostUpdate under subject egress.host-updates-value")
                .hasMessageContaining("registry rejected schema for subject egress.host-updates-value")
                .hasMessageContaining("HTTP 409");
    }

    @Test
    void aRecordWithoutARequiredValueFailsWithTheFieldsName() {
        HostUpdate incomplete = Fixtures.hostUpdate();
        incomplete.setFragmentHash(null);

        assertThatThrownBy(() -> new AvroSerializer<HostUpdate>(registry).serialize(Topics.HOST_UPDATES, incomplete))
                .isInstanceOf(SerializationException.class)
                .hasMessageContaining("cannot encode io.egressctl.events.HostUpdate for topic egress.host-updates")
                .hasMessageContaining("fragmentHash");
    }

    @Test
    void anUnreachableRegistryFailsWithTheReason() {
        registry.setUnreachable(true);
        assertThatThrownBy(() -> new AvroSerializer<HostUpdate>(registry).serialize(Topics.HOST_UPDATES, Fixtures.hostUpdate()))
                .isInstanceOf(SerializationException.class).hasMessageContaining("is unreachable");
    }

    // --- deserializer errors ------------------------------------------------------------------------------

    @Test
    void badMagicByteIsRejected() {
        byte[] bytes = new AvroSerializer<HostUpdate>(registry).serialize(Topics.HOST_UPDATES, Fixtures.hostUpdate());
        bytes[0] = 1;

        assertThatThrownBy(() -> new AvroDeserializer<>(registry, HostUpdate.class).deserialize(Topics.HOST_UPDATES, bytes))
                .isInstanceOf(SerializationException.class)
                .hasMessageContaining("unknown magic byte 0x01")
                .hasMessageContaining("egress.host-updates")
                .hasMessageContaining("expected 0x00");
    }

    @Test
    void plainJsonIsRejectedAsBadMagicByte() {
        assertThatThrownBy(() -> new AvroDeserializer<>(registry, HostUpdate.class)
                .deserialize(Topics.HOST_UPDATES, "{\"hostId\":\"h1\"}".getBytes()))
                .isInstanceOf(SerializationException.class).hasMessageContaining("unknown magic byte 0x7b");
    }

    @Test
    void shortPayloadsAreRejected() {
        AvroDeserializer<HostUpdate> deserializer = new AvroDeserializer<>(registry, HostUpdate.class);
        for (int length = 0; length < 5; length++) {
            byte[] bytes = new byte[length];
            assertThatThrownBy(() -> deserializer.deserialize(Topics.HOST_UPDATES, bytes))
                    .isInstanceOf(SerializationException.class)
                    .hasMessageContaining("payload of " + length + " byte(s) from topic egress.host-updates is too short")
                    .hasMessageContaining("at least 5 bytes");
        }
    }

    @Test
    void unknownSchemaIdIsRejectedAndRetriedLater() {
        byte[] bytes = new byte[] {0, 0, 0, 0x30, 0x39, 2, 'h'}; // id 12345
        AvroDeserializer<HostUpdate> deserializer = new AvroDeserializer<>(registry, HostUpdate.class);

        assertThatThrownBy(() -> deserializer.deserialize(Topics.HOST_UPDATES, bytes))
                .isInstanceOf(SerializationException.class)
                .hasMessageContaining("unknown schema id 12345 of a record from topic egress.host-updates")
                .hasMessageContaining("HTTP 404");
        assertThatThrownBy(() -> deserializer.deserialize(Topics.HOST_UPDATES, bytes)).isInstanceOf(SerializationException.class);
        assertThat(registry.schemaByIdCalls()).as("a failed lookup is not cached").isEqualTo(2);
    }

    @Test
    void truncatedBodyIsRejected() {
        byte[] bytes = new AvroSerializer<HostUpdate>(registry).serialize(Topics.HOST_UPDATES, Fixtures.hostUpdate());
        byte[] truncated = Arrays.copyOf(bytes, bytes.length - 10);

        assertThatThrownBy(() -> new AvroDeserializer<>(registry, HostUpdate.class).deserialize(Topics.HOST_UPDATES, truncated))
                .isInstanceOf(SerializationException.class)
                .hasMessageContaining("cannot decode the Avro body")
                .hasMessageContaining("as io.egressctl.events.HostUpdate");
    }

    @Test
    void aRecordOfAnotherTypeIsRejectedWithBothNames() {
        byte[] report = new AvroSerializer<EnforcementReport>(registry).serialize(Topics.HOST_UPDATES, Fixtures.nack());

        assertThatThrownBy(() -> new AvroDeserializer<>(registry, HostUpdate.class).deserialize(Topics.HOST_UPDATES, report))
                .isInstanceOf(SerializationException.class)
                .hasMessageContaining("(io.egressctl.events.EnforcementReport) of a record from topic egress.host-updates cannot be"
                        + " read as io.egressctl.events.HostUpdate")
                .hasMessageContaining("NAME_MISMATCH");
    }

    // --- schema evolution ---------------------------------------------------------------------------------

    @Test
    void recordsWrittenWithAnOlderSchemaAreReadWithDefaults() throws IOException {
        // an older WorkloadEvent: no ipv6 and no previousHostId yet
        Schema current = WorkloadEvent.getClassSchema();
        List<Schema.Field> oldFields = new ArrayList<>();
        for (Schema.Field f : current.getFields()) {
            if (!f.name().equals("ipv6") && !f.name().equals("previousHostId")) {
                oldFields.add(new Schema.Field(f, f.schema()));
            }
        }
        Schema old = Schema.createRecord(current.getName(), null, current.getNamespace(), false, oldFields);
        int oldId = registry.register(Topics.subject(Topics.NETWORK_EVENTS, old.getFullName()), old);

        WorkloadEvent sample = Fixtures.vmPlaced();
        Schema sourceSchema = old.getField("source").schema();
        GenericRecord source = new GenericData.Record(sourceSchema);
        for (Schema.Field f : sourceSchema.getFields()) {
            source.put(f.name(), sample.getSource().get(f.name()));
        }
        source.put("eventTime", Fixtures.T0.toEpochMilli()); // timestamp-millis is a long on the wire
        GenericRecord record = new GenericData.Record(old);
        for (Schema.Field f : old.getFields()) {
            record.put(f.name(), sample.get(f.name()));
        }
        record.put("operation", new GenericData.EnumSymbol(old.getField("operation").schema(), "VM_MOVED"));
        record.put("source", source);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(new byte[] {0, 0, 0, 0, (byte) oldId});
        BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, null);
        new GenericDatumWriter<GenericRecord>(old).write(record, encoder);
        encoder.flush();
        assertThat(oldId).isLessThan(128);

        WorkloadEvent back = new AvroDeserializer<>(registry, WorkloadEvent.class)
                .deserialize(Topics.NETWORK_EVENTS, out.toByteArray());

        assertThat(back.getVmId()).isEqualTo("vm-1");
        assertThat(back.getIpv4()).isEqualTo("10.1.1.10");
        assertThat(back.getIpv6()).isNull();
        assertThat(back.getPreviousHostId()).isNull();
        assertThat(back.getSource().getEventTime()).isEqualTo(Fixtures.T0);
    }

    @Test
    void withoutAConfiguredTypeTheWritersGeneratedClassIsUsed() {
        byte[] bytes = new AvroSerializer<EnforcementReport>(registry).serialize(Topics.ENFORCEMENT_REPORTS, Fixtures.nack());
        AvroDeserializer<SpecificRecord> any = new AvroDeserializer<>(registry);
        assertThat(any.deserialize(Topics.ENFORCEMENT_REPORTS, bytes)).isEqualTo(Fixtures.nack());
    }

    @Test
    void readerTypeComesFromConfigByName() {
        byte[] bytes = new AvroSerializer<RuleEvent>(registry).serialize(Topics.NETWORK_EVENTS, Fixtures.ruleCreated("c", "n"));
        AvroDeserializer<RuleEvent> deserializer = new AvroDeserializer<>();
        // a registry URL is required when no client was given; the reader class comes from the config
        deserializer.configure(Map.of(AvroSerdeConfig.SCHEMA_REGISTRY_URL, "http://127.0.0.1:9/apis/ccompat/v7",
                AvroSerdeConfig.SPECIFIC_AVRO_VALUE_TYPE, RuleEvent.class.getName()), false);
        assertThatThrownBy(() -> deserializer.deserialize(Topics.NETWORK_EVENTS, bytes))
                .isInstanceOf(SerializationException.class)
                .hasMessageContaining("cannot fetch the writer schema id 1 of a record from topic egress.network-events")
                .hasMessageContaining("schema registry at http://127.0.0.1:9/apis/ccompat/v7 is unreachable");
    }

    @Test
    void misconfigurationIsReportedUpFront() {
        assertThatThrownBy(() -> new AvroSerializer<RuleEvent>().configure(Map.of(), false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("schema.registry.url");
        assertThatThrownBy(() -> new AvroDeserializer<RuleEvent>().configure(Map.of(AvroSerdeConfig.SCHEMA_REGISTRY_URL,
                "http://127.0.0.1:9", AvroSerdeConfig.SPECIFIC_AVRO_VALUE_TYPE, "io.egressctl.events.Nope"), false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("io.egressctl.events.Nope");
        assertThatThrownBy(() -> new AvroDeserializer<RuleEvent>().configure(Map.of(AvroSerdeConfig.SCHEMA_REGISTRY_URL,
                "http://127.0.0.1:9", AvroSerdeConfig.SPECIFIC_AVRO_VALUE_TYPE, String.class), false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not a generated Avro SpecificRecord");
        assertThatThrownBy(() -> new AvroSerializer<RuleEvent>(registry).configure(
                Map.of(AvroSerdeConfig.AUTO_REGISTER_SCHEMAS, "yes"), false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("auto.register.schemas");
    }

    @Test
    void serializerAndDeserializerAreThreadSafe() throws Exception {
        AvroSerializer<RuleEvent> serializer = new AvroSerializer<>(registry);
        AvroDeserializer<RuleEvent> deserializer = new AvroDeserializer<>(registry, RuleEvent.class);
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Callable<Boolean>> tasks = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                int thread = t;
                tasks.add(() -> {
                    for (int i = 0; i < 500; i++) {
                        RuleEvent event = Fixtures.ruleCreated("chg-" + thread + "-" + i, "net-" + (i % 7));
                        String topic = "topic-" + (i % 3);
                        if (!event.equals(deserializer.deserialize(topic, serializer.serialize(topic, event)))) {
                            return false;
                        }
                    }
                    return true;
                });
            }
            for (Future<Boolean> f : pool.invokeAll(tasks)) {
                assertThat(f.get()).isTrue();
            }
        } finally {
            pool.shutdownNow();
        }
        assertThat(registry.subjects()).hasSize(3);
    }

    // ---------------------------------------------------------------------------------------------------

    private <T extends SpecificRecord> void assertRoundTrip(String topic, T event, Class<T> type) {
        byte[] bytes = new AvroSerializer<T>(registry).serialize(topic, event);
        T back = new AvroDeserializer<>(registry, type).deserialize(topic, bytes);
        assertThat(back).isEqualTo(event).isNotSameAs(event);
    }

    private static byte[] plainAvro(HostUpdate update) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, null);
        new SpecificDatumWriter<>(HostUpdate.class).write(update, encoder);
        encoder.flush();
        return out.toByteArray();
    }
}
