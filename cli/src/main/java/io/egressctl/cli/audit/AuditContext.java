package io.egressctl.cli.audit;

import io.egressctl.cli.Env;
import io.egressctl.schemas.security.KafkaSecurity;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.Topics;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import redis.clients.jedis.UnifiedJedis;

import java.io.IOException;
import java.io.PrintStream;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

/**
 * Everything an audit command needs besides its own options: where Kafka, the schema registry and Redis
 * are (flags, else the environment), the client settings passed through to Kafka (TLS, SASL), the topic
 * names, the output mode and the streams. Clients are made on first use and closed by {@link #close}.
 */
public final class AuditContext implements AutoCloseable {

    /** Options every audit command takes. */
    public static final Set<String> COMMON = Set.of("bootstrap-server", "schema-registry", "redis", "consumer-property",
            "command-config", "topic-prefix", "event-topic", "report-topic", "output", "progress",
            "no-progress", "help");
    /** Common options that take no value. */
    public static final Set<String> FLAGS = Set.of("progress", "no-progress", "help", "all", "decisions", "dry-run", "no-log-check");

    private static final String REGISTRY_PREFIX = "schema.registry.";

    private final String bootstrap;
    private final String registryUrl;
    private final String redisUrl;
    /** Settings from --command-config and --consumer-property, for every Kafka client. */
    private final Map<String, String> clientProperties;
    /** Settings for the registry client (schema.registry.*, basic.auth.*) taken out of the above. */
    private final Map<String, String> registryProperties;
    /** The network events log (network, rule and workload events, one order per network). */
    private final String eventTopic;
    private final String reportTopic;
    private final boolean json;
    private final boolean progress;
    private final PrintStream out;
    private final PrintStream err;
    private final Clock clock;
    private final Instant now;

    private final Signatures signatures;
    private SchemaRegistryClient registry;
    private UnifiedJedis redis;

    /**
     * @param o        the command line (connection, topic and output options are read from it)
     * @param terminal whether the output is a terminal: progress is shown by default when it is
     * @throws UsageException for an option the context cannot use (bad --output, --consumer-property, --command-config)
     */
    public AuditContext(Env env, Options o, PrintStream out, PrintStream err, Clock clock, boolean terminal) {
        this.bootstrap = o.get("bootstrap-server", env.kafkaBootstrap());
        this.registryUrl = o.get("schema-registry", env.schemaRegistryUrl());
        this.redisUrl = o.get("redis", env.redisUrl());
        try {
            this.signatures = new Signatures(io.egressctl.schemas.integrity.UpdateKeys.parse(env.updateKeys(), null));
        } catch (IllegalArgumentException e) {
            throw new UsageException("EGRESS_UPDATE_KEYS: " + e.getMessage());
        }
        Map<String, String> props = new LinkedHashMap<>();
        if (o.has("command-config")) {
            props.putAll(readProperties(Path.of(o.get("command-config"))));
        }
        for (String kv : o.all("consumer-property")) {
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                throw new UsageException("--consumer-property must be key=value, was '" + kv + "'");
            }
            props.put(kv.substring(0, eq).trim(), kv.substring(eq + 1).trim());
        }
        Map<String, String> reg = new LinkedHashMap<>();
        props.entrySet().removeIf(e -> {
            String k = e.getKey();
            if (k.startsWith(REGISTRY_PREFIX) || k.startsWith("basic.auth.")) {
                reg.put(k.startsWith(REGISTRY_PREFIX + "basic.auth.") ? k.substring(REGISTRY_PREFIX.length()) : k, e.getValue());
                return true;
            }
            return false;
        });
        this.clientProperties = Map.copyOf(props);
        this.registryProperties = Map.copyOf(reg);
        String prefix = o.get("topic-prefix");
        this.eventTopic = o.get("event-topic", prefix == null ? Topics.NETWORK_EVENTS : prefix + "network-events");
        this.reportTopic = o.get("report-topic", prefix == null ? Topics.ENFORCEMENT_REPORTS : prefix + "enforcement-reports");
        String output = o.get("output", "table");
        if (!output.equals("table") && !output.equals("json")) {
            throw new UsageException("--output must be table or json, was '" + output + "'");
        }
        this.json = output.equals("json");
        this.progress = o.has("progress") || (terminal && !o.has("no-progress"));
        this.out = out;
        this.err = err;
        this.clock = clock;
        this.now = clock.instant();
    }

    /**
     * Checks report and host-update signatures with the stack's update keys ({@code EGRESS_UPDATE_KEYS});
     * without keys it checks nothing (every record marked {@code -}).
     */
    public Signatures signatures() {
        return signatures;
    }

    /** The Kafka bootstrap servers. */
    public String bootstrap() {
        return bootstrap;
    }

    String registryUrl() {
        return registryUrl;
    }

    String redisUrl() {
        return redisUrl;
    }

    /** Settings from --command-config and --consumer-property for every Kafka client (TLS, SASL, ...). */
    public Map<String, String> clientProperties() {
        return clientProperties;
    }

    Map<String, String> registryProperties() {
        return registryProperties;
    }

    /** The network events log (network, rule and workload events, one order per network). */
    public String eventTopic() {
        return eventTopic;
    }

    /** The enforcement reports topic. */
    public String reportTopic() {
        return reportTopic;
    }

    /** True for {@code --output json}, false for tables. */
    public boolean json() {
        return json;
    }

    /** Whether long reads show progress (on a terminal, or asked for). */
    boolean showsProgress() {
        return progress;
    }

    /** Where the command's result goes. */
    public PrintStream out() {
        return out;
    }

    /** The time relative times are counted from (fixed at start, so every option agrees). */
    public Instant now() {
        return now;
    }

    /** The time given with the option named {@code option} (forms as {@link Times#parse} reads them), or null when absent. */
    public Instant time(Options o, String option) {
        String v = o.get(option);
        return v == null ? null : Times.parse(option, v, now);
    }

    /** A consumer for manual assignment: no group, never commits, raw bytes. */
    public KafkaConsumer<byte[], byte[]> consumer() {
        return new KafkaConsumer<>(consumerProperties());
    }

    /** The consumer's settings: the tool's defaults, then the user's (TLS, SASL, ...), then what the tool relies on. */
    Properties consumerProperties() {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.putAll(KafkaSecurity.fromEnvironment().clientProperties()); // KAFKA_SECURITY_PROTOCOL ...; --command-config overrides
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "egressctl-audit");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "10000");
        p.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, String.valueOf(64 * 1024 * 1024));
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, String.valueOf(8 * 1024 * 1024));
        p.put(ConsumerConfig.RECEIVE_BUFFER_CONFIG, String.valueOf(1024 * 1024));
        p.putAll(clientProperties);
        // what the tool relies on cannot be overridden
        p.remove(ConsumerConfig.GROUP_ID_CONFIG);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        return p;
    }

    /** An admin client with the same connection settings (the benchmark creates and deletes its topic). */
    public Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.putAll(KafkaSecurity.fromEnvironment().clientProperties());
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "egressctl-audit-admin");
        clientProperties.forEach((k, v) -> {
            if (AdminClientConfig.configNames().contains(k) || k.startsWith("ssl.") || k.startsWith("sasl.")) {
                p.put(k, v);
            }
        });
        return Admin.create(p);
    }

    /** A producer of raw bytes with String keys (the benchmark writes its synthetic topic with it). */
    public KafkaProducer<String, byte[]> producer() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.putAll(KafkaSecurity.fromEnvironment().clientProperties());
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "egressctl-audit-bench");
        p.put(ProducerConfig.ACKS_CONFIG, "1");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "20");
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, String.valueOf(512 * 1024));
        p.put(ProducerConfig.BUFFER_MEMORY_CONFIG, String.valueOf(128L * 1024 * 1024));
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
        clientProperties.forEach((k, v) -> {
            if (ProducerConfig.configNames().contains(k) || k.startsWith("ssl.") || k.startsWith("sasl.")) {
                p.put(k, v);
            }
        });
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        return new KafkaProducer<>(p);
    }

    /** The schema registry client, made on first use. */
    public SchemaRegistryClient registry() {
        if (registry == null) {
            Map<String, Object> cfg = new LinkedHashMap<>(registryProperties);
            cfg.put(HttpSchemaRegistryClient.SCHEMA_REGISTRY_URL_CONFIG, registryUrl);
            registry = HttpSchemaRegistryClient.fromConfig(cfg);
        }
        return registry;
    }

    /** The Redis client, made on first use and closed with the context. */
    public UnifiedJedis redis() {
        if (redis == null) {
            redis = io.egressctl.schemas.redis.RedisClients.create(redisUrl);
        }
        return redis;
    }

    /** A progress line on the error stream when progress is on, else {@link Progress#NONE}. */
    public Progress progress(String label, long total) {
        return Progress.of(progress, err, label, total);
    }

    static Map<String, String> readProperties(Path file) {
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            p.load(r);
        } catch (IOException e) {
            throw new UsageException("--command-config " + file + ": " + e.getMessage());
        }
        Map<String, String> out = new LinkedHashMap<>();
        p.stringPropertyNames().stream().sorted().forEach(k -> out.put(k, p.getProperty(k)));
        return out;
    }

    @Override
    public void close() {
        if (redis != null) {
            redis.close();
        }
    }
}
