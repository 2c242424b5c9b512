package io.egressctl.agent.config;

import io.egressctl.schemas.serde.KafkaDefaults;
import org.apache.kafka.clients.consumer.ConsumerConfig;

import java.util.HashMap;
import java.util.Map;

/**
 * The Kafka client settings of a host agent, in one place: the agent's own wiring uses them, and so
 * does anything that runs the agent's sync loop outside Spring (the fleet of
 * {@code bench propagation}), so that what is measured is what is deployed.
 */
public final class AgentClients {

    private AgentClients() {
    }

    /** The consumer of the host's partition of egress.host-updates (assigned, no group; see HostSync). */
    public static Map<String, Object> consumer(String bootstrapServers, String hostId) {
        // TLS and SASL as every client of the project (KafkaDefaults.client: KAFKA_SECURITY_PROTOCOL ...)
        Map<String, Object> c = KafkaDefaults.client(bootstrapServers);
        c.put(ConsumerConfig.CLIENT_ID_CONFIG, "egress-agent-" + hostId);
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        // How long the broker holds a fetch that finds nothing new (Kafka's default). It answers a held
        // fetch as soon as a record arrives, so this costs no latency; it sets how many empty fetches an
        // idle agent makes: 100 ms made 10 a second per agent (bench propagation: 100 idle agents cost
        // 44 % of a core in their JVM and 15 % in the broker; 19 % and 8 % with 500 ms).
        c.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 500);
        // A position the broker no longer has must not be skipped silently: HostSync bootstraps
        // again from the snapshot when the consumer reports it.
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
        // an agent started before the compiler waits for egress.host-updates; it never makes the
        // broker create it with its own defaults (partition count, retention, replication)
        c.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, false);
        // HostSync looks at the partition count every 30 s; the metadata it reads is this fresh
        c.put(ConsumerConfig.METADATA_MAX_AGE_CONFIG, 30_000);
        return c;
    }

    /** The producer of the host's enforcement reports: ordered (acks=all, idempotent), no linger. */
    public static Map<String, Object> reportProducer(String bootstrapServers, String hostId) {
        return KafkaDefaults.orderedProducer(bootstrapServers, "egress-agent-" + hostId);
    }
}
