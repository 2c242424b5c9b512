package io.egressctl.schemas.serde;

import io.egressctl.schemas.security.KafkaSecurity;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.config.TopicConfig;

import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/** The Kafka settings every service shares, in one place. Stateless. */
public final class KafkaDefaults {

    private KafkaDefaults() {
    }

    /**
     * How many copies of every partition a topic keeps, and how many of them must have a record before
     * an acks=all write counts as done. Every topic the services create gets these, plus
     * {@code unclean.leader.election.enable=false}: a replica that missed records never becomes leader,
     * so an acknowledged record is never lost by a leader change.
     *
     * <p>{@link #SINGLE_BROKER} (1/1) is the only choice a one-broker cluster can satisfy; with three
     * brokers or more use {@link #THREE_BROKERS} (3/2): one broker may be down and every write is still
     * on two brokers before it is acknowledged.
     *
     * @param replicationFactor  copies of each partition (at least 1, at most the number of brokers)
     * @param minInsyncReplicas  copies that must hold a record before an acks=all write succeeds
     *                           (1..replicationFactor)
     */
    public record Durability(int replicationFactor, int minInsyncReplicas) {

        /** One broker: one copy. */
        public static final Durability SINGLE_BROKER = new Durability(1, 1);
        /** Three brokers or more: three copies, two of them in sync for every acknowledged write. */
        public static final Durability THREE_BROKERS = new Durability(3, 2);

        public Durability {
            if (replicationFactor < 1 || replicationFactor > Short.MAX_VALUE) {
                throw new IllegalArgumentException("topic replication factor must be at least 1, was " + replicationFactor
                        + " (egress.topics.replication-factor / EGRESS_TOPIC_REPLICATION_FACTOR)");
            }
            if (minInsyncReplicas < 1 || minInsyncReplicas > replicationFactor) {
                throw new IllegalArgumentException("min.insync.replicas must be between 1 and the replication factor ("
                        + replicationFactor + "), was " + minInsyncReplicas
                        + " (egress.topics.min-insync-replicas / EGRESS_TOPIC_MIN_INSYNC_REPLICAS)");
            }
        }

        /** The topic configs that carry this durability. */
        public Map<String, String> topicConfigs() {
            Map<String, String> c = new LinkedHashMap<>();
            c.put(TopicConfig.MIN_IN_SYNC_REPLICAS_CONFIG, String.valueOf(minInsyncReplicas));
            c.put(TopicConfig.UNCLEAN_LEADER_ELECTION_ENABLE_CONFIG, "false");
            return c;
        }
    }

    /**
     * The start of every hand-made client's settings (producer, consumer or admin client): the bootstrap
     * servers and how to connect to them, TLS and SASL from {@link KafkaSecurity#fromEnvironment()} (the
     * same settings the services' Spring Boot clients get). Mutable: the caller adds its own.
     */
    public static Map<String, Object> client(String bootstrapServers) {
        Map<String, Object> p = new HashMap<>();
        p.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        return KafkaSecurity.fromEnvironment().applyTo(p);
    }

    /** {@link #client(String)} and then {@code keyValues} (name, value, name, value ...). */
    public static Map<String, Object> client(String bootstrapServers, Object... keyValues) {
        if (keyValues.length % 2 != 0) {
            throw new IllegalArgumentException("client settings come in name/value pairs, got " + keyValues.length + " items");
        }
        Map<String, Object> p = client(bootstrapServers);
        for (int i = 0; i < keyValues.length; i += 2) {
            p.put((String) keyValues[i], keyValues[i + 1]);
        }
        return p;
    }

    /**
     * Producer settings for events whose order matters: acks=all and idempotence, so a retried send
     * never duplicates or reorders a key's records; no linger, latency first. Connects as
     * {@link #client(String)} does. The map is mutable so a caller may add its own timeouts.
     */
    public static Map<String, Object> orderedProducer(String bootstrapServers, String clientId) {
        Map<String, Object> p = client(bootstrapServers);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 0);
        return p;
    }

    /**
     * A topic kept forever (delete policy, no time or size limit): the audit log (invariant 1), and
     * dead-letter topics.
     */
    public static NewTopic keptForever(String name, int partitions, Durability durability) {
        Map<String, String> c = new LinkedHashMap<>();
        c.put(TopicConfig.CLEANUP_POLICY_CONFIG, TopicConfig.CLEANUP_POLICY_DELETE);
        c.put(TopicConfig.RETENTION_MS_CONFIG, "-1");
        c.put(TopicConfig.RETENTION_BYTES_CONFIG, "-1");
        return topic(name, partitions, durability, c);
    }

    /** A topic whose records are deleted after {@code retention} (delete policy, no size limit). */
    public static NewTopic retainedFor(String name, int partitions, Duration retention, Durability durability) {
        if (retention == null || retention.isNegative() || retention.isZero()) {
            throw new IllegalArgumentException("retention of " + name + " must be positive, was " + retention);
        }
        Map<String, String> c = new LinkedHashMap<>();
        c.put(TopicConfig.CLEANUP_POLICY_CONFIG, TopicConfig.CLEANUP_POLICY_DELETE);
        c.put(TopicConfig.RETENTION_MS_CONFIG, String.valueOf(retention.toMillis()));
        return topic(name, partitions, durability, c);
    }

    private static NewTopic topic(String name, int partitions, Durability durability, Map<String, String> configs) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(durability, "durability");
        if (partitions < 1) {
            throw new IllegalArgumentException("partitions of " + name + " must be at least 1, was " + partitions);
        }
        Map<String, String> all = new LinkedHashMap<>(configs);
        all.putAll(durability.topicConfigs());
        return new NewTopic(name, partitions, (short) durability.replicationFactor()).configs(all);
    }
}
