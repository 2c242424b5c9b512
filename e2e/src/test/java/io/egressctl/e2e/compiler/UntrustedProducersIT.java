package io.egressctl.e2e.compiler;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.core.event.Audit;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.e2e.support.ControlPlane;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.Topics;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Upstream services may publish straight to Kafka; the compiler trusts no producer. Valid events
 * from outside the rule-service are compiled; undecodable, unknown-schema and semantically invalid
 * records go to the dead-letter topic with the reason in headers, and the consumer carries on.
 */
class UntrustedProducersIT {

    static ControlPlane cp;
    static Producer<String, SpecificRecord> avro;
    static Producer<String, byte[]> raw;
    static String network;
    static String host;
    static final Audit AUDIT = new Audit("compute-svc", "acme", "req-1", Instant.now(), "compute", "1.0");

    @BeforeAll
    static void producersAndNetwork() {
        cp = ControlPlane.shared();
        Map<String, Object> p = Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cp.env("KAFKA_BOOTSTRAP_SERVERS"),
                ProducerConfig.ACKS_CONFIG, "all");
        avro = new KafkaProducer<>(p, new StringSerializer(), new AvroSerializer<>(new HttpSchemaRegistryClient(cp.env("SCHEMA_REGISTRY_URL"))));
        raw = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer());
        network = cp.unique("untrusted");
        host = cp.unique("uh");
        ApiClient.Response r = cp.api().post("/api/v1/networks?wait=compiled&timeout=20s", cp.tenantKey(),
                Map.of("networkId", network, "guestCidr", "10.60.0.0/24"));
        assertThat(r.status()).isEqualTo(201);
    }

    @AfterAll
    static void close() {
        avro.close();
        raw.close();
    }

    @Test
    void aPlacementPublishedStraightToKafkaIsCompiled() throws Exception {
        WorkloadChange placed = new WorkloadChange(cp.unique("ev"), WorkloadChange.Operation.VM_PLACED, network, "vm-direct", host, null,
                "tap-direct", "52:54:00:00:60:07", "10.60.0.7", null, AUDIT);
        avro.send(new ProducerRecord<>(Topics.NETWORK_EVENTS, network, EventMapper.toAvro(placed))).get();
        assertThat(ControlPlane.eventually(Duration.ofSeconds(20), () -> {
            ApiClient.Response v = cp.api().get("/api/v1/networks/" + network, cp.tenantKey());
            return v.body().get("vms").has("vm-direct");
        })).isTrue();
        var vm = cp.api().get("/api/v1/networks/" + network, cp.tenantKey()).body().get("vms").get("vm-direct");
        assertThat(vm.get("interfaceName").asString()).isEqualTo("tap-direct");
        assertThat(vm.get("mac").asString()).isEqualTo("52:54:00:00:60:07");
    }

    @Test
    void poisonRecordsGoToTheDeadLetterTopicWithTheirReasonAndTheConsumerCarriesOn() throws Exception {
        List<TopicPartition> dlt = partitions(Topics.dlt(Topics.NETWORK_EVENTS));
        Map<TopicPartition, Long> start;
        try (KafkaConsumer<String, byte[]> c = consumer()) {
            start = c.endOffsets(dlt);
        }
        // 1. Not Avro at all.
        raw.send(new ProducerRecord<>(Topics.NETWORK_EVENTS, network, "{\"not\":\"avro\"}".getBytes(StandardCharsets.UTF_8))).get();
        // 2. Wire format with a schema id no registry knows.
        raw.send(new ProducerRecord<>(Topics.NETWORK_EVENTS, network, new byte[] {0, 0x7f, 0x7f, 0x7f, 0x7f, 1, 2, 3})).get();
        // 3. Decodes, but a rule's source CIDR has host bits set: invalid by the core's rules.
        RuleEvent invalid = EventMapper.toAvro(ruleChange("r-ok", "10.60.0.0/24"));
        invalid.getRuleAfter().setSourceCidrs(List.of("10.60.0.9/24"));
        avro.send(new ProducerRecord<>(Topics.NETWORK_EVENTS, network, invalid)).get();
        // 4. Keyed by another network than it names: would break per-network order.
        avro.send(new ProducerRecord<>(Topics.NETWORK_EVENTS, "some-other-key", EventMapper.toAvro(ruleChange("r-key", "10.60.0.0/24")))).get();
        // 5. A record of a type the log does not carry (a HostUpdate, under its own subject on this topic).
        avro.send(new ProducerRecord<>(Topics.NETWORK_EVENTS, network, io.egressctl.events.HostUpdate.newBuilder().setHostId(host)
                .setNetworkId(network).setVersion(1).setTombstone(true).setFragment(null).setFragmentHash("")
                .setChangeIds(List.of()).setCompiledAt(java.time.Instant.EPOCH).build())).get();
        // 6. A good event after all of them is still compiled.
        RuleChange good = ruleChange("r-good", "10.60.0.0/24");
        avro.send(new ProducerRecord<>(Topics.NETWORK_EVENTS, network, EventMapper.toAvro(good))).get();

        assertThat(ControlPlane.eventually(Duration.ofSeconds(20),
                () -> cp.api().get("/api/v1/networks/" + network + "/egress-rules/r-good", cp.tenantKey()).status() == 200)).isTrue();

        List<ConsumerRecord<String, byte[]>> dead = new ArrayList<>();
        try (KafkaConsumer<String, byte[]> c = consumer()) {
            c.assign(dlt);
            start.forEach(c::seek);
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (dead.size() < 5 && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(dead::add);
            }
        }
        List<String> kinds = dead.stream().map(r -> header(r, "egress.dlt.kind")).toList();
        List<String> reasons = dead.stream().map(r -> header(r, "egress.dlt.reason")).toList();
        assertThat(dead).hasSize(5);
        assertThat(kinds).containsExactlyInAnyOrder("undecodable", "undecodable", "undecodable", "invalid", "invalid");
        assertThat(reasons).anyMatch(r -> r.contains("io.egressctl.events.HostUpdate, not one of the record types of topic"));
        assertThat(reasons).anyMatch(r -> r.contains("host bits"));
        assertThat(reasons).anyMatch(r -> r.contains("differs from networkId"));
        assertThat(dead).allMatch(r -> header(r, "egress.dlt.original").startsWith(Topics.NETWORK_EVENTS));
        assertThat(dead).anyMatch(r -> new String(r.value(), StandardCharsets.UTF_8).equals("{\"not\":\"avro\"}"));
        assertThat(cp.api().get("/api/v1/networks/" + network + "/egress-rules", cp.tenantKey()).body().toString())
                .contains("r-good").doesNotContain("r-ok").doesNotContain("r-key");
    }

    static RuleChange ruleChange(String ruleId, String source) {
        EgressRule rule = new EgressRule(ruleId, Protocol.TCP, null, EgressRule.DEFAULT_PRIORITY, List.of(Cidr.parse(source)), List.of(),
                List.of(), List.of(), PortRange.single(25), null, "from compute");
        return new RuleChange(cp.unique("ev"), RuleChange.Operation.RULE_CREATED, network, null, null, null, null, rule, AUDIT);
    }

    static String header(ConsumerRecord<String, byte[]> r, String name) {
        var h = r.headers().lastHeader(name);
        return h == null ? "" : new String(h.value(), StandardCharsets.UTF_8);
    }

    static KafkaConsumer<String, byte[]> consumer() {
        return new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, cp.env("KAFKA_BOOTSTRAP_SERVERS")),
                new StringDeserializer(), new ByteArrayDeserializer());
    }

    static List<TopicPartition> partitions(String topic) {
        try (KafkaConsumer<String, byte[]> c = consumer()) {
            return c.partitionsFor(topic).stream().map(p -> new TopicPartition(topic, p.partition())).toList();
        }
    }
}
