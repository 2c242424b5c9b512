package io.egressctl.compiler.config;

import io.egressctl.schemas.serde.KafkaDefaults;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

import java.time.Duration;

/**
 * How the topics this service creates are replicated, and how long it waits for Kafka to check them at
 * start ({@code egress.topics.*}). Defaults fit one broker; with three brokers or more use 3 and 2.
 *
 * @param replicationFactor  copies of every partition ({@code EGRESS_TOPIC_REPLICATION_FACTOR}, default 1)
 * @param minInsyncReplicas  copies an acks=all write needs ({@code EGRESS_TOPIC_MIN_INSYNC_REPLICAS}, default 1)
 * @param checkTimeout       how long the start-up topic check waits for Kafka ({@code EGRESS_TOPIC_CHECK_TIMEOUT}, 60s)
 */
@ConfigurationProperties("egress.topics")
public record TopicProperties(@DefaultValue("1") int replicationFactor, @DefaultValue("1") int minInsyncReplicas,
                              @DefaultValue("60s") Duration checkTimeout) {

    /** The replication every created topic gets; validated here, so a bad setting stops the start. */
    public KafkaDefaults.Durability durability() {
        return new KafkaDefaults.Durability(replicationFactor, minInsyncReplicas);
    }
}
