package io.egressctl.schemas.serde;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Utils;
import org.junit.jupiter.api.Test;

class TopicsTest {

    @Test
    void topicNamesFollowTheContract() {
        assertThat(Topics.NETWORK_EVENTS).isEqualTo("egress.network-events");
        assertThat(Topics.HOST_UPDATES).isEqualTo("egress.host-updates");
        assertThat(Topics.ENFORCEMENT_REPORTS).isEqualTo("egress.enforcement-reports");
        assertThat(Topics.ALL).containsExactly("egress.network-events", "egress.host-updates", "egress.enforcement-reports");
        assertThat(Topics.dlt(Topics.NETWORK_EVENTS)).isEqualTo("egress.network-events.DLT");
        assertThat(Topics.subject(Topics.HOST_UPDATES, false)).isEqualTo("egress.host-updates-value");
        assertThat(Topics.subject(Topics.HOST_UPDATES, true)).isEqualTo("egress.host-updates-key");
        assertThat(Topics.subject(Topics.NETWORK_EVENTS, "io.egressctl.events.RuleEvent"))
                .isEqualTo("egress.network-events-io.egressctl.events.RuleEvent");
    }

    @Test
    void onlyTheNetworkEventsTopicCarriesSeveralRecordTypes() {
        assertThat(Topics.carriesSeveralRecordTypes(Topics.NETWORK_EVENTS)).isTrue();
        assertThat(Topics.carriesSeveralRecordTypes("bench-7.network-events")).as("prefixed, as tests and benches do").isTrue();
        assertThat(Topics.carriesSeveralRecordTypes(Topics.HOST_UPDATES)).isFalse();
        assertThat(Topics.carriesSeveralRecordTypes(Topics.ENFORCEMENT_REPORTS)).isFalse();
        assertThat(Topics.carriesSeveralRecordTypes(Topics.dlt(Topics.NETWORK_EVENTS))).isFalse();
    }

    @Test
    void murmur2MatchesKafkasOwnForEveryTailLength() {
        Random random = new Random(42);
        for (int length = 0; length <= 64; length++) {
            for (int n = 0; n < 50; n++) {
                byte[] bytes = new byte[length];
                random.nextBytes(bytes);
                assertThat(Topics.murmur2(bytes)).as("murmur2 of %d random bytes", length).isEqualTo(Utils.murmur2(bytes));
            }
        }
    }

    @Test
    void partitionForMatchesKafkasDefaultPartitionerForManyKeys() {
        Random random = new Random(7);
        List<String> keys = new ArrayList<>(List.of("", "host-1", "host-0001", "hypervisor-17.zone-b.example",
                "net-1", "00000000-0000-0000-0000-000000000000", "héllo-wörld", "主机-42", "emoji-\uD83D\uDE00"));
        for (int i = 0; i < 5_000; i++) {
            keys.add("host-" + i);
            keys.add(randomString(random, random.nextInt(40)));
        }
        try (StringSerializer kafkaKeySerializer = new StringSerializer()) {
            for (String key : keys) {
                byte[] serialized = kafkaKeySerializer.serialize(Topics.HOST_UPDATES, key);
                assertThat(serialized).isEqualTo(key.getBytes(StandardCharsets.UTF_8));
                for (int partitions : new int[] {1, 2, 3, 6, 12, 16, 50, 64, 97, 128, 1000}) {
                    int expected = BuiltInPartitioner.partitionForKey(serialized, partitions);
                    assertThat(Topics.partitionFor(key, partitions)).as("partition of key '%s' among %d", key, partitions)
                            .isEqualTo(expected)
                            .isEqualTo(Utils.toPositive(Utils.murmur2(serialized)) % partitions);
                }
            }
        }
    }

    @Test
    void partitionForSpreadsHostsOverAllPartitions() {
        int partitions = 12;
        int[] counts = new int[partitions];
        for (int i = 0; i < 12_000; i++) {
            counts[Topics.partitionFor("host-" + i, partitions)]++;
        }
        for (int count : counts) {
            assertThat(count).isBetween(800, 1200);
        }
    }

    @Test
    void partitionForRejectsBadArguments() {
        assertThatThrownBy(() -> Topics.partitionFor(null, 3)).isInstanceOf(NullPointerException.class);
        assertThatThrownBy(() -> Topics.partitionFor("host-1", 0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("numPartitions");
    }

    private static String randomString(Random random, int length) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < length; i++) {
            int kind = random.nextInt(10);
            if (kind < 7) {
                sb.append((char) ('!' + random.nextInt(94)));
            } else if (kind < 9) {
                sb.append((char) (0xA0 + random.nextInt(0x2000)));
            } else {
                sb.appendCodePoint(0x1F300 + random.nextInt(500));
            }
        }
        return sb.toString();
    }
}
