package io.egressctl.e2e.audit;

import io.egressctl.cli.Env;
import io.egressctl.cli.audit.AuditCommand;
import io.egressctl.testinfra.Infrastructure;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * What the audit ITs share: the endpoints of Kafka, the registry and Redis ({@link Infrastructure}: the
 * local stack, or Testcontainers), fresh topics of their own, a producer that writes records with
 * given timestamps, and the audit tool run in-process with its output captured.
 */
final class AuditSupport implements AutoCloseable {

    /** A record as written: where it landed and its timestamp. */
    record Written(String topic, int partition, long offset, long timestamp, String key) {
    }

    /** A finished audit command: exit code, standard output, standard error. */
    record Run(int code, String out, String err) {
    }

    final String bootstrap = env("KAFKA_BOOTSTRAP_SERVERS");
    final String registryUrl = env("SCHEMA_REGISTRY_URL");
    final String redisUrl = env("REDIS_URL");
    final SchemaRegistryClient registry = new HttpSchemaRegistryClient(registryUrl);
    final String run = HexFormat.of().formatHex(new byte[] {(byte) ThreadLocalRandom.current().nextInt(),
            (byte) ThreadLocalRandom.current().nextInt(), (byte) ThreadLocalRandom.current().nextInt()});
    private final Admin admin;
    private final KafkaProducer<String, byte[]> producer;
    private final AvroSerializer<SpecificRecord> serializer = new AvroSerializer<>(registry);
    private final List<String> topics = new ArrayList<>();

    AuditSupport() {
        Properties a = new Properties();
        a.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        admin = Admin.create(a);
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, String.valueOf(256 * 1024));
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        producer = new KafkaProducer<>(p);
    }

    static String env(String name) {
        return Infrastructure.get().env(name);
    }

    /**
     * Creates a topic of this run (deleted by {@link #close}), kept forever like the audit log: the scripted
     * history is stamped in the past, and a time-based retention would delete it as soon as it is written.
     */
    void createTopic(String name, int partitions) throws Exception {
        admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1).configs(Map.of("retention.ms", "-1"))))
                .all().get(30, TimeUnit.SECONDS);
        topics.add(name);
    }

    /** Writes one Avro record with its key and timestamp and waits for it to be stored. */
    Written write(String topic, String key, Instant timestamp, SpecificRecord value) throws Exception {
        byte[] bytes = serializer.serialize(topic, value);
        RecordMetadata m = producer.send(new ProducerRecord<>(topic, null, timestamp.toEpochMilli(), key, bytes)).get(30, TimeUnit.SECONDS);
        return new Written(topic, m.partition(), m.offset(), timestamp.toEpochMilli(), key);
    }

    /** Writes without waiting (bulk); {@link #flush} before reading. */
    java.util.concurrent.Future<RecordMetadata> send(String topic, String key, long timestamp, byte[] value) {
        return producer.send(new ProducerRecord<>(topic, null, timestamp, key, value));
    }

    byte[] serialize(String topic, SpecificRecord value) {
        return serializer.serialize(topic, value);
    }

    void flush() {
        producer.flush();
    }

    /** The update keys of the scripted history: the agents' reports in it are signed with them (one is forged). */
    static final String UPDATE_KEYS = "audit-1:" + java.util.Base64.getEncoder().encodeToString(
            "audit-key-audit-key-audit-key-32".getBytes(java.nio.charset.StandardCharsets.UTF_8));

    Env env() {
        return Env.from(Map.of("KAFKA_BOOTSTRAP_SERVERS", bootstrap, "SCHEMA_REGISTRY_URL", registryUrl, "REDIS_URL", redisUrl,
                "EGRESS_UPDATE_KEYS", UPDATE_KEYS));
    }

    /** Runs {@code egressctl audit <args>} in-process, "now" being {@code now}, output not on a terminal. */
    Run audit(Instant now, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            code = AuditCommand.run(env(), args, o, e, Clock.fixed(now, ZoneOffset.UTC), false);
        }
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Override
    public void close() throws Exception {
        producer.close();
        if (!topics.isEmpty()) {
            admin.deleteTopics(topics).all().get(30, TimeUnit.SECONDS);
        }
        admin.close();
    }
}
