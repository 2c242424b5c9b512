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
 * @param hostUpdatePartitions partitions egress.host-updates is created with ({@code EGRESS_HOST_UPDATE_PARTITIONS};
 *                           0: {@code egress.partitions}). Hosts share them and each agent fetches every
 *                           record of its partition, so the count sets how much of other hosts' updates each
 *                           agent reads (docs/operations.md, "Sizing egress.host-updates"). An existing topic
 *                           keeps its count: the compiler's producer and the agents follow the topic's own.
 */
@ConfigurationProperties("egress.topics")
public record TopicProperties(@DefaultValue("1") int replicationFactor, @DefaultValue("1") int minInsyncReplicas,
                              @DefaultValue("60s") Duration checkTimeout, @DefaultValue("0") int hostUpdatePartitions) {

    public TopicProperties {
        if (hostUpdatePartitions < 0) {
            throw new IllegalArgumentException("egress.topics.host-update-partitions (EGRESS_HOST_UPDATE_PARTITIONS) must be 0 "
                    + "(egress.partitions) or more, was " + hostUpdatePartitions);
        }
    }

    /** The partitions egress.host-updates is created with: its own setting, else {@code partitions}. */
    public int hostUpdatePartitions(int partitions) {
        return hostUpdatePartitions > 0 ? hostUpdatePartitions : partitions;
    }

    /** The replication every created topic gets; validated here, so a bad setting stops the start. */
    public KafkaDefaults.Durability durability() {
        return new KafkaDefaults.Durability(replicationFactor, minInsyncReplicas);
    }
}
