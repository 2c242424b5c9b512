package io.egressctl.compiler.compile;

import io.egressctl.compiler.snapshot.RedisSnapshotStore;
import io.egressctl.compiler.snapshot.SnapshotStore;
import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.KafkaDefaults;
import io.egressctl.schemas.view.RedisKeys;
import io.egressctl.testinfra.Infrastructure;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
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

import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link ReplayDeterminismTest} against the real seams: one generated log written to a real topic
 * (3 partitions) through the schema registry, consumed by a real KafkaConsumer with different
 * {@code max.poll.records}, stored by {@link RedisSnapshotStore} (the Lua version guard) in a Redis
 * database of each run's own, published to a HostUpdate topic of each run's own, with crashes (a new
 * pipeline and consumer restoring from the checkpoint in Redis) and a failed store write retried in
 * place. Every HostUpdate each run published is read back from Kafka and compared byte for byte with
 * the reference run's (one record per poll) of the same (host, network, version); the snapshots in
 * Redis must be the reference's, byte for byte.
 */
class ReplayDeterminismIT {

    private static final String RUN = UUID.randomUUID().toString().substring(0, 8);
    private static final String TOPIC = "it-" + RUN + ".network-events";
    /** Redis databases of the runs (the product's keys, isolated per run). */
    private static final int FIRST_DB = 11;

    private static String bootstrap;
    private static String redisUrl;
    private static SchemaRegistryClient registry;
    private static Admin admin;
    private static GeneratedLog generated;
    private static final List<String> topics = new ArrayList<>();
    private static final Set<Integer> dbs = new TreeSet<>();

    @BeforeAll
    static void writeTheLog() throws Exception {
        // The local stack's, or containers with EGRESS_TEST_INFRA=testcontainers.
        bootstrap = Infrastructure.get().env("KAFKA_BOOTSTRAP_SERVERS");
        redisUrl = Infrastructure.get().env("REDIS_URL");
        String registryUrl = Infrastructure.get().env("SCHEMA_REGISTRY_URL");
        registry = new HttpSchemaRegistryClient(registryUrl);
        admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap));
        createTopic(TOPIC);
        generated = new GeneratedLog(registry, TOPIC).generate(7, 300);
        try (Producer<String, byte[]> producer = new KafkaProducer<>(KafkaDefaults.orderedProducer(bootstrap, "it-" + RUN),
                new StringSerializer(), new ByteArraySerializer())) {
            for (List<ConsumerRecord<String, byte[]>> partition : generated.log) {
                for (ConsumerRecord<String, byte[]> r : partition) {
                    var sent = producer.send(new ProducerRecord<>(TOPIC, r.partition(), r.timestamp(), r.key(), r.value())).get();
                    assertThat(sent.offset()).as("the record lands where the generator put it").isEqualTo(r.offset());
                }
            }
        }
    }

    @AfterAll
    static void cleanUp() throws Exception {
        if (admin != null) {
            admin.deleteTopics(topics).all().get();
            admin.close();
        }
        for (int db : dbs) {
            try (UnifiedJedis redis = redis(db)) {
                redis.flushDB();
            }
        }
    }

    private static void createTopic(String name) throws Exception {
        admin.createTopics(List.of(new NewTopic(name, GeneratedLog.PARTITIONS, (short) 1).configs(GeneratedLog.KEPT_FOREVER))).all().get();
        topics.add(name);
    }

    private static UnifiedJedis redis(int db) {
        return new UnifiedJedis(URI.create(redisUrl.replaceAll("/\\d+$", "") + "/" + db));
    }

    /** A store whose next batch writes can fail, as a Redis that went away would; everything else goes to Redis. */
    static final class FlakyStore {
        int failWrites;
        final SnapshotStore store;

        FlakyStore(SnapshotStore redis) {
            this.store = (SnapshotStore) java.lang.reflect.Proxy.newProxyInstance(SnapshotStore.class.getClassLoader(),
                    new Class<?>[] {SnapshotStore.class}, (proxy, method, args) -> {
                        if (method.getName().equals("write") && failWrites > 0) {
                            failWrites--;
                            throw new IllegalStateException("redis down");
                        }
                        try {
                            return method.invoke(redis, args);
                        } catch (java.lang.reflect.InvocationTargetException e) {
                            throw e.getCause();
                        }
                    });
        }
    }

    /** Polls of at most {@code maxPoll}; at poll n: 'c' checkpoint, 'x' crash after the batch, 'f' store fails, retried in place. */
    record Variant(String name, int maxPoll, Map<Integer, Character> faults) {
    }

    /** What a run published (by (host, network, version), the wire bytes) and left in Redis. */
    record Outcome(Map<String, String> published, int publishedCount, Map<String, String> snapshots, int restores) {
    }

    private final class Instance implements AutoCloseable {
        final CompilerPipeline pipeline;
        final KafkaConsumer<String, byte[]> consumer;
        int restored;

        Instance(SnapshotStore store, Producer<String, SpecificRecord> producer, String hostUpdates, int maxPoll) {
            pipeline = new CompilerPipeline(store, producer, new MockProducer<>(true, null, new StringSerializer(), new ByteArraySerializer()),
                    CompilerPipeline.eventDeserializer(registry), new CompilerPipeline.TopicNames(TOPIC, hostUpdates), Long.MAX_VALUE,
                    new SimpleMeterRegistry());
            consumer = new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                    ConsumerConfig.MAX_POLL_RECORDS_CONFIG, maxPoll, ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false),
                    new StringDeserializer(), new ByteArrayDeserializer());
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < GeneratedLog.PARTITIONS; p++) {
                tps.add(new TopicPartition(TOPIC, p));
            }
            consumer.assign(tps);
            Map<TopicPartition, Long> seeks = pipeline.assign(tps);
            restored = seeks.size();
            for (TopicPartition tp : tps) {
                if (seeks.containsKey(tp)) {
                    consumer.seek(tp, seeks.get(tp));
                } else {
                    consumer.seekToBeginning(List.of(tp));
                }
            }
        }

        boolean caughtUp() {
            return generated.log.stream().allMatch(part -> part.isEmpty()
                    || consumer.position(new TopicPartition(TOPIC, part.get(0).partition())) >= part.size());
        }

        @Override
        public void close() {
            consumer.close();
        }
    }

    Outcome run(Variant v, int db) throws Exception {
        dbs.add(db);
        String hostUpdates = "it-" + RUN + "-" + db + ".host-updates";
        createTopic(hostUpdates);
        int restores = 0;
        try (UnifiedJedis redis = redis(db);
             Producer<String, SpecificRecord> producer = new KafkaProducer<>(KafkaDefaults.orderedProducer(bootstrap, "it-" + db),
                     new StringSerializer(), new AvroSerializer<>(registry))) {
            redis.flushDB();
            FlakyStore store = new FlakyStore(new RedisSnapshotStore(redis));
            Instance inst = new Instance(store.store, producer, hostUpdates, v.maxPoll());
            int polls = 0;
            long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
            try {
                while (!inst.caughtUp()) {
                    assertThat(System.nanoTime()).as("%s: caught up within 2 minutes", v.name()).isLessThan(deadline);
                    List<ConsumerRecord<String, byte[]>> batch = new ArrayList<>();
                    inst.consumer.poll(Duration.ofMillis(200)).forEach(batch::add);
                    if (batch.isEmpty()) {
                        continue;
                    }
                    Character fault = v.faults().get(++polls);
                    if (fault != null && fault == 'f') {
                        store.failWrites = 1;
                        try {
                            inst.pipeline.process(batch);
                        } catch (IllegalStateException expected) {
                            // the listener's retry follows
                        }
                    }
                    inst.pipeline.process(batch);
                    if (fault != null && fault == 'c') {
                        inst.pipeline.maybeCheckpoint(true);
                    }
                    if (fault != null && fault == 'x') {
                        inst.close();
                        inst = new Instance(store.store, producer, hostUpdates, v.maxPoll());
                        restores += inst.restored;
                    }
                }
            } finally {
                inst.close();
            }
            Map<String, String> snapshots = new TreeMap<>();
            for (String host : redis.smembers(RedisKeys.hosts())) {
                redis.hgetAll(RedisKeys.hostFragments(host).getBytes()).forEach((n, b) ->
                        snapshots.put(host + "/" + new String(n), HexFormat.of().formatHex(b)));
            }
            Map<String, String> published = new TreeMap<>();
            int count = readBack(hostUpdates, published, v.name());
            return new Outcome(published, count, snapshots, restores);
        }
    }

    /** Reads a HostUpdate topic to its end: wire bytes by (host, network, version), checking a run never published two for one. */
    private int readBack(String topic, Map<String, String> out, String run) {
        AvroDeserializer<HostUpdate> deserializer = new AvroDeserializer<>(registry, HostUpdate.class);
        int count = 0;
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false), new StringDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < GeneratedLog.PARTITIONS; p++) {
                tps.add(new TopicPartition(topic, p));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> end = consumer.endOffsets(tps);
            while (tps.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp))) {
                for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    HostUpdate h = deserializer.deserialize(topic, r.value());
                    String k = h.getHostId() + "/" + h.getNetworkId() + "@" + h.getVersion();
                    String hex = HexFormat.of().formatHex(r.value());
                    String previous = out.putIfAbsent(k, hex);
                    assertThat(previous == null || previous.equals(hex)).as("%s published %s twice with other bytes", run, k).isTrue();
                    count++;
                }
            }
        }
        return count;
    }

    @Test
    void everyHostUpdatePublishedThroughRealKafkaAndRedisIsAFunctionOfTheLog() throws Exception {
        Outcome reference = run(new Variant("reference: one record per poll", 1, Map.of()), FIRST_DB);
        assertThat(reference.published()).hasSizeGreaterThan(50);
        List<Variant> variants = List.of(
                new Variant("max.poll.records 7, checkpoints, two crashes", 7, Map.of(3, 'c', 9, 'x', 14, 'c', 20, 'x')),
                new Variant("max.poll.records 500", 500, Map.of()),
                new Variant("max.poll.records 13, failed store writes retried in place, a crash", 13,
                        Map.of(2, 'f', 4, 'c', 6, 'f', 8, 'x')),
                new Variant("max.poll.records 3, crash before any checkpoint", 3, Map.of(25, 'x', 40, 'c', 60, 'x')));
        int compared = 0;
        int restores = 0;
        for (int i = 0; i < variants.size(); i++) {
            Variant v = variants.get(i);
            Outcome run = run(v, FIRST_DB + 1 + i);
            run.published().forEach((k, hex) -> {
                assertThat(reference.published()).as("%s: %s was published by the reference", v.name(), k).containsKey(k);
                assertThat(hex).as("%s: %s byte for byte", v.name(), k).isEqualTo(reference.published().get(k));
            });
            assertThat(run.snapshots()).as("%s: the snapshots in Redis", v.name()).isEqualTo(reference.snapshots());
            compared += run.publishedCount();
            restores += run.restores();
        }
        System.out.printf("replay determinism through Kafka and Redis: %d records on %d partitions; the reference published %d"
                        + " HostUpdates; %d runs published %d, each byte-identical to the reference's at its (host, network, version);"
                        + " %d partitions restored from checkpoints in Redis; snapshots identical%n",
                generated.log.stream().mapToInt(List::size).sum(), GeneratedLog.PARTITIONS, reference.publishedCount(), variants.size(),
                compared, restores);
        assertThat(restores).isPositive();
    }
}
