package io.egressctl.compiler.compile;

import io.egressctl.compiler.heal.LogRefold;
import io.egressctl.compiler.snapshot.RedisSnapshotStore;
import io.egressctl.compiler.snapshot.SnapshotStore;
import io.egressctl.compiler.status.EnforcementReportListener;
import io.egressctl.events.AppliedFragment;
import io.egressctl.events.EnforcementReport;
import io.egressctl.events.EnforcementStatus;
import io.egressctl.events.EnforcementTrigger;
import io.egressctl.events.UnenforcedVm;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.KafkaDefaults;
import io.egressctl.schemas.view.RedisKeys;
import io.egressctl.testinfra.Infrastructure;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.UnifiedJedis;
import redis.clients.jedis.params.ScanParams;
import redis.clients.jedis.resps.ScanResult;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Redis loss heals itself (invariant 1), against the real seams: a generated log of network, rule and
 * workload events (with rejections and poison records) on a topic, a real KafkaConsumer, Redis
 * ({@link RedisSnapshotStore}'s Lua guards) in a database of its own. A reference instance reads the
 * whole log into an intact Redis. Another reads half of it, its Redis is emptied (FLUSHDB), it goes on
 * for a few batches (writing only what they touch, into the empty Redis: partial views), then
 * {@link LogRefold} re-folds its partitions up to where it is, and it reads the rest. Every key the
 * compiler derives from the log (fragments byte for byte, versions, views, interface and host
 * indexes, tenant sets, change statuses apart from their wall-clock compile time) must then be the
 * reference's, and hosts' applied state must be folded again from the enforcement reports, without
 * overwriting a report folded after the loss.
 */
class RedisLossHealIT {

    private static final String RUN = UUID.randomUUID().toString().substring(0, 8);
    private static final String TOPIC = "it-" + RUN + ".network-events";
    private static final String REPORTS = "it-" + RUN + ".enforcement-reports";
    private static final int REFERENCE_DB = 9;
    private static final int HEALED_DB = 10;

    private static String bootstrap;
    private static String redisUrl;
    private static SchemaRegistryClient registry;
    private static Admin admin;
    private static GeneratedLog generated;
    private static int total;

    @BeforeAll
    static void writeTheLogs() throws Exception {
        // The local stack's, or containers with EGRESS_TEST_INFRA=testcontainers.
        bootstrap = Infrastructure.get().env("KAFKA_BOOTSTRAP_SERVERS");
        redisUrl = Infrastructure.get().env("REDIS_URL");
        String registryUrl = Infrastructure.get().env("SCHEMA_REGISTRY_URL");
        registry = new HttpSchemaRegistryClient(registryUrl);
        admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap));
        // Kept forever, as the log is: the generated records are stamped in the past (GeneratedLog.T0), and a
        // time-based retention would delete them at the broker's next retention check, in the middle of the test.
        admin.createTopics(List.of(new NewTopic(TOPIC, GeneratedLog.PARTITIONS, (short) 1).configs(GeneratedLog.KEPT_FOREVER),
                new NewTopic(REPORTS, 2, (short) 1).configs(GeneratedLog.KEPT_FOREVER))).all().get();
        generated = new GeneratedLog(registry, TOPIC).generate(11, 300);
        try (Producer<String, byte[]> producer = new KafkaProducer<>(KafkaDefaults.orderedProducer(bootstrap, "it-" + RUN),
                new StringSerializer(), new ByteArraySerializer())) {
            for (List<ConsumerRecord<String, byte[]>> partition : generated.log) {
                for (ConsumerRecord<String, byte[]> r : partition) {
                    producer.send(new ProducerRecord<>(TOPIC, r.partition(), r.timestamp(), r.key(), r.value())).get();
                    total++;
                }
            }
        }
        try (Producer<String, SpecificRecord> producer = new KafkaProducer<>(KafkaDefaults.orderedProducer(bootstrap, "it-r-" + RUN),
                new StringSerializer(), new AvroSerializer<>(registry))) {
            // host-a: an ACK of two networks, then one of only the first (the second leaves), then a NACK.
            producer.send(new ProducerRecord<>(REPORTS, "host-a", report("host-a", EnforcementStatus.ACK, "h1", Map.of("net-1", 3L, "net-2", 5L)))).get();
            producer.send(new ProducerRecord<>(REPORTS, "host-a", report("host-a", EnforcementStatus.ACK, "h2", Map.of("net-1", 4L)))).get();
            producer.send(new ProducerRecord<>(REPORTS, "host-a", report("host-a", EnforcementStatus.NACK, "h2", Map.of("net-1", 4L)))).get();
            producer.send(new ProducerRecord<>(REPORTS, "host-b", report("host-b", EnforcementStatus.ACK, "h9", Map.of("net-3", 7L)))).get();
        }
    }

    @AfterAll
    static void cleanUp() throws Exception {
        if (admin != null) {
            admin.deleteTopics(List.of(TOPIC, REPORTS)).all().get();
            admin.close();
        }
        for (int db : List.of(REFERENCE_DB, HEALED_DB)) {
            try (UnifiedJedis redis = redis(db)) {
                redis.flushDB();
            }
        }
    }

    static EnforcementReport report(String host, EnforcementStatus status, String hash, Map<String, Long> versions) {
        return EnforcementReport.newBuilder().setHostId(host).setStatus(status).setTrigger(EnforcementTrigger.UPDATE)
                .setFragments(versions.entrySet().stream()
                        .map(e -> AppliedFragment.newBuilder().setNetworkId(e.getKey()).setVersion(e.getValue()).build()).toList())
                .setAppliedHash(hash).setChangeIds(List.of()).setError(status == EnforcementStatus.NACK ? "nft said no" : null)
                .setApplyMicros(10).setEnforcer("nftables").setDriftRepairs(0).setReportedAt(Instant.parse("2026-03-01T12:00:00Z"))
                .setUnenforced(List.<UnenforcedVm>of()).build();
    }

    private static UnifiedJedis redis(int db) {
        return new UnifiedJedis(URI.create(redisUrl.replaceAll("/\\d+$", "") + "/" + db));
    }

    private static Consumer<String, byte[]> consumer(int maxPoll) {
        return new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap, ConsumerConfig.MAX_POLL_RECORDS_CONFIG, maxPoll,
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false), new StringDeserializer(), new ByteArrayDeserializer());
    }

    /** A live compiler instance on all partitions of the test topic. */
    private static final class Live implements AutoCloseable {
        final CompilerPipeline pipeline;
        final Consumer<String, byte[]> consumer = consumer(9);
        int read;

        Live(SnapshotStore store) {
            pipeline = new CompilerPipeline(store, new MockProducer<>(true, null, new StringSerializer(), (t, v) -> new byte[0]),
                    new MockProducer<>(true, null, new StringSerializer(), new ByteArraySerializer()),
                    CompilerPipeline.eventDeserializer(registry), new CompilerPipeline.TopicNames(TOPIC, "unused"), Long.MAX_VALUE,
                    new SimpleMeterRegistry());
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < GeneratedLog.PARTITIONS; p++) {
                tps.add(new TopicPartition(TOPIC, p));
            }
            consumer.assign(tps);
            pipeline.assign(tps);
            consumer.seekToBeginning(tps);
        }

        /** Reads and processes batches until {@code until} records were read in all. */
        void readUntil(int until) {
            long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
            while (read < until) {
                assertThat(System.nanoTime()).as("read %d records within a minute", until).isLessThan(deadline);
                List<ConsumerRecord<String, byte[]>> batch = new ArrayList<>();
                consumer.poll(Duration.ofMillis(200)).forEach(batch::add);
                if (!batch.isEmpty()) {
                    pipeline.process(batch);
                    read += batch.size();
                }
            }
        }

        @Override
        public void close() {
            consumer.close();
        }
    }

    /** Everything the compiler derives from the log, as it is in Redis (change statuses without their compile time). */
    static Map<String, String> derived(UnifiedJedis redis) {
        Map<String, String> out = new TreeMap<>();
        String cursor = ScanParams.SCAN_POINTER_START;
        ScanParams params = new ScanParams().match("egress:*").count(1000);
        List<String> keys = new ArrayList<>();
        do {
            ScanResult<String> page = redis.scan(cursor, params);
            keys.addAll(page.getResult());
            cursor = page.getCursor();
        } while (!cursor.equals(ScanParams.SCAN_POINTER_START));
        for (String key : keys) {
            if (key.startsWith("egress:checkpoint:") || key.endsWith("}:applied")) {
                continue;
            }
            switch (redis.type(key)) {
                case "hash" -> redis.hgetAll(key.getBytes(StandardCharsets.UTF_8)).forEach((f, v) -> {
                    String field = new String(f, StandardCharsets.UTF_8);
                    if (key.startsWith("egress:network:{") && field.equals("json")) {
                        // The JSON's own "version" is the network's version when the writer last rendered it, which
                        // depends on batching (a rule change reuses it); readers take the hash's version field
                        // instead (NetworkView.fromHash), so it is not part of what a view says.
                        v = new String(v, StandardCharsets.UTF_8).replaceFirst(",\"version\":\\d+,", ",")
                                .getBytes(StandardCharsets.UTF_8);
                    }
                    out.put(key + " " + field, HexFormat.of().formatHex(v));
                });
                case "set" -> out.put(key, new java.util.TreeSet<>(redis.smembers(key)).toString());
                case "string" -> out.put(key, key.startsWith("egress:change:")
                        ? redis.get(key).replaceAll("\"compiledAt\":\"[^\"]*\"", "") : redis.get(key));
                default -> out.put(key, "type " + redis.type(key));
            }
        }
        return out;
    }

    private static String hexText(String hex) {
        try {
            return hex == null ? "none" : new String(HexFormat.of().parseHex(hex), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            return hex;
        }
    }

    private static void foldReports(SnapshotStore store) {
        io.micrometer.core.instrument.simple.SimpleMeterRegistry meters = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        EnforcementReportListener fold = new EnforcementReportListener(store, registry, new io.egressctl.compiler.compile.PipelineHealth(meters),
                new io.egressctl.schemas.integrity.ReportMac(io.egressctl.schemas.integrity.UpdateKeys.NONE), false, meters);
        try (Consumer<String, byte[]> c = consumer(500)) {
            List<TopicPartition> tps = List.of(new TopicPartition(REPORTS, 0), new TopicPartition(REPORTS, 1));
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps);
            while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
                List<ConsumerRecord<String, byte[]>> batch = new ArrayList<>();
                c.poll(Duration.ofMillis(200)).forEach(batch::add);
                fold.onReports(batch);
            }
        }
    }

    @Test
    void aRedisEmptiedMidStreamIsWrittenAgainFromTheLogAsIfNothingHadHappened() {
        Map<String, String> reference;
        Map<String, String> referenceApplied;
        try (UnifiedJedis redis = redis(REFERENCE_DB); Live live = new Live(new RedisSnapshotStore(redis))) {
            redis.flushDB();
            live.readUntil(total);
            foldReports(new RedisSnapshotStore(redis));
            reference = derived(redis);
            referenceApplied = redis.hgetAll(RedisKeys.hostApplied("host-a"));
        }
        assertThat(reference.keySet().stream().filter(k -> k.contains("}:fragments ")).count()).as("fragments written").isGreaterThan(10);
        assertThat(reference.keySet().stream().filter(k -> k.startsWith("egress:network:{")).count()).as("view fields").isGreaterThan(10);
        assertThat(reference.keySet().stream().filter(k -> k.startsWith("egress:change:")).count()).as("change statuses").isGreaterThan(50);
        assertThat(referenceApplied).containsEntry("status", "NACK").containsEntry("v:net-1", "4").doesNotContainKey("v:net-2");

        try (UnifiedJedis redis = redis(HEALED_DB); Live live = new Live(new RedisSnapshotStore(redis))) {
            redis.flushDB();
            live.readUntil(total / 2);
            redis.flushDB();
            // Batches after the loss write only what they touch: views with only their changed rules.
            live.readUntil(total / 2 + 30);
            // A report folded after the loss (host-b's newest) stays: the re-fold fills only hosts with none.
            redis.hset(RedisKeys.hostApplied("host-b"), Map.of("hash", "newer", "status", "ACK", "v:net-3", "8"));
            Map<String, String> partial = derived(redis);
            assertThat(partial).as("the loss is visible before the heal").isNotEqualTo(reference);

            LogRefold refold = new LogRefold(redis, new RedisSnapshotStore(redis), () -> consumer(50), registry,
                    new CompilerPipeline.TopicNames(TOPIC, "unused"), REPORTS, Duration.ofMinutes(1));
            LogRefold.Result r = refold.refold(live.pipeline.ownedPositions(), live.pipeline.ownedNetworks(), live.pipeline.ownedEpochs());
            assertThat(r.events()).isEqualTo(live.read);
            assertThat(r.reports()).isEqualTo(4);
            assertThat(r.hostsRestored()).as("host-a restored, host-b kept").isEqualTo(1);
            assertThat(redis.get(RedisKeys.checkpoint(0))).as("the re-fold's checkpoint, at the live position").isNotNull();
            assertThat(redis.hgetAll(RedisKeys.hostApplied("host-a"))).isEqualTo(referenceApplied);
            assertThat(redis.hgetAll(RedisKeys.hostApplied("host-b"))).containsEntry("hash", "newer");
            assertThat(redis.smembers(RedisKeys.appliedHosts())).as("the index audit verify --all reads, filled again")
                    .contains("host-a", "host-b");

            live.readUntil(total);
            Map<String, String> healed = derived(redis);
            List<String> differ = new ArrayList<>();
            java.util.Set<String> keys = new java.util.TreeSet<>(reference.keySet());
            keys.addAll(healed.keySet());
            keys.stream().filter(k -> !java.util.Objects.equals(reference.get(k), healed.get(k))).forEach(differ::add);
            assertThat(differ).as("keys that differ from the reference after the heal: %s", differ.stream()
                    .map(k -> k + "\n  reference " + hexText(reference.get(k)) + "\n  healed    " + hexText(healed.get(k))).toList()).isEmpty();
            System.out.printf("Redis loss heal: %d records on %d partitions, Redis emptied after %d, %d more records written into the empty"
                            + " Redis, re-fold of %d events and %d reports in %d ms; %d derived entries identical to the reference%n",
                    total, GeneratedLog.PARTITIONS, total / 2, 30, r.events(), r.reports(), r.millis(), reference.size());
        }
    }
}
