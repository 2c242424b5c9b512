package io.egressctl.schemas.serde;

import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.config.TopicConfig;
import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Durable topics (issue 12, item 8): every created topic carries the configured replication. */
class KafkaDefaultsTest {

    @Test
    void documentedDefaultsForOneAndThreeBrokers() {
        assertThat(KafkaDefaults.Durability.SINGLE_BROKER).isEqualTo(new KafkaDefaults.Durability(1, 1));
        assertThat(KafkaDefaults.Durability.THREE_BROKERS).isEqualTo(new KafkaDefaults.Durability(3, 2));
    }

    @Test
    void anEventLogIsKeptForeverWithTheConfiguredReplicationAndNoUncleanElection() {
        NewTopic t = KafkaDefaults.keptForever("egress.rule-events", 6, KafkaDefaults.Durability.THREE_BROKERS);

        assertThat(t.numPartitions()).isEqualTo(6);
        assertThat(t.replicationFactor()).isEqualTo((short) 3);
        assertThat(t.configs())
                .containsEntry(TopicConfig.CLEANUP_POLICY_CONFIG, TopicConfig.CLEANUP_POLICY_DELETE)
                .containsEntry(TopicConfig.RETENTION_MS_CONFIG, "-1")
                .containsEntry(TopicConfig.RETENTION_BYTES_CONFIG, "-1")
                .containsEntry(TopicConfig.MIN_IN_SYNC_REPLICAS_CONFIG, "2")
                .containsEntry(TopicConfig.UNCLEAN_LEADER_ELECTION_ENABLE_CONFIG, "false");
    }

    @Test
    void aRetainedTopicGetsItsRetentionAndTheSameDurability() {
        NewTopic t = KafkaDefaults.retainedFor("egress.host-updates", 12, Duration.ofDays(7), KafkaDefaults.Durability.SINGLE_BROKER);

        assertThat(t.numPartitions()).isEqualTo(12);
        assertThat(t.replicationFactor()).isEqualTo((short) 1);
        assertThat(t.configs())
                .containsEntry(TopicConfig.RETENTION_MS_CONFIG, "604800000")
                .containsEntry(TopicConfig.MIN_IN_SYNC_REPLICAS_CONFIG, "1")
                .containsEntry(TopicConfig.UNCLEAN_LEADER_ELECTION_ENABLE_CONFIG, "false");
    }

    @Test
    void impossibleSettingsAreRefusedWithTheSettingToChange() {
        assertThatThrownBy(() -> new KafkaDefaults.Durability(0, 1))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("EGRESS_TOPIC_REPLICATION_FACTOR");
        assertThatThrownBy(() -> new KafkaDefaults.Durability(3, 4))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("between 1 and the replication factor (3), was 4")
                .hasMessageContaining("EGRESS_TOPIC_MIN_INSYNC_REPLICAS");
        assertThatThrownBy(() -> new KafkaDefaults.Durability(3, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> KafkaDefaults.keptForever("t", 0, KafkaDefaults.Durability.SINGLE_BROKER))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> KafkaDefaults.retainedFor("t", 1, Duration.ZERO, KafkaDefaults.Durability.SINGLE_BROKER))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
