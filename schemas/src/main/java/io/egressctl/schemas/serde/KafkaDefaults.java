package io.egressctl.schemas.serde;

import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.config.TopicConfig;

import java.util.HashMap;
import java.util.Map;

/** The Kafka settings every service shares, in one place. Stateless. */
public final class KafkaDefaults {

    private KafkaDefaults() {
    }

    /**
     * Producer settings for events whose order matters: acks=all and idempotence, so a retried send
     * never duplicates or reorders a key's records; no linger, latency first. The map is mutable so
     * a caller may add its own timeouts.
     */
    public static Map<String, Object> orderedProducer(String bootstrapServers, String clientId) {
        Map<String, Object> p = new HashMap<>();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 0);
        return p;
    }

    /** A topic kept forever (delete policy, no time or size limit): the audit log (invariant 1). */
    public static NewTopic keptForever(String name, int partitions) {
        return new NewTopic(name, partitions, (short) 1).configs(Map.of(
                TopicConfig.CLEANUP_POLICY_CONFIG, TopicConfig.CLEANUP_POLICY_DELETE,
                TopicConfig.RETENTION_MS_CONFIG, "-1",
                TopicConfig.RETENTION_BYTES_CONFIG, "-1"));
    }
}
