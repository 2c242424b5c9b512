package io.egressctl.schemas.redis;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class RedisTargetTest {

    @Test
    void aPlainUrlIsOneServerWithNoReplicaAcknowledgement() {
        RedisTarget t = RedisTarget.parse("redis://127.0.0.1:16379/2");
        assertThat(t.topology()).isEqualTo(RedisTarget.Topology.STANDALONE);
        assertThat(t.nodes()).containsExactly(new RedisTarget.Node("127.0.0.1", 16379));
        assertThat(t.database()).isEqualTo(2);
        assertThat(t.ackReplicas()).isZero();
        assertThat(t.tls()).isFalse();
        assertThat(t.standaloneUri().toString()).isEqualTo("redis://127.0.0.1:16379/2");
    }

    @Test
    void sentinelUrlNamesEverySentinelTheMasterAndWaitsForOneReplicaByDefault() {
        RedisTarget t = RedisTarget.parse("redis-sentinel://app:s%40cret@h1:26379,h2:26380,h3?master=egress-a");
        assertThat(t.topology()).isEqualTo(RedisTarget.Topology.SENTINEL);
        assertThat(t.nodes()).containsExactly(new RedisTarget.Node("h1", 26379), new RedisTarget.Node("h2", 26380),
                new RedisTarget.Node("h3", 26379));
        assertThat(t.master()).isEqualTo("egress-a");
        assertThat(t.user()).isEqualTo("app");
        assertThat(t.password()).isEqualTo("s@cret");
        assertThat(t.ackReplicas()).isEqualTo(1);
        assertThat(t.ackTimeoutMs()).isEqualTo(2000);
        assertThat(t.toString()).doesNotContain("s@cret");
    }

    @Test
    void acknowledgementCanBeTunedOrSwitchedOff() {
        RedisTarget t = RedisTarget.parse("redis-sentinel://h1:1,h2:2?ack-replicas=0&ack-timeout-ms=500");
        assertThat(t.master()).isEqualTo("egress");
        assertThat(t.ackReplicas()).isZero();
        assertThat(t.ackTimeoutMs()).isEqualTo(500);
    }

    @Test
    void clusterUrlTakesSeedNodesAndTls() {
        RedisTarget t = RedisTarget.parse("rediss-cluster://a:7000,b:7001");
        assertThat(t.topology()).isEqualTo(RedisTarget.Topology.CLUSTER);
        assertThat(t.tls()).isTrue();
        assertThat(t.nodes()).hasSize(2);
    }

    @Test
    void everyBadUrlSaysWhatIsWrong() {
        for (List<String> c : List.of(
                List.of("", "empty"),
                List.of("127.0.0.1:6379", "no scheme"),
                List.of("http://h:1", "not one of"),
                List.of("redis://a:1,b:2", "names one server"),
                List.of("redis://h:x", "no numeric port"),
                List.of("redis://h:1/x", "database number"),
                List.of("redis://h:1?master=m", "redis-sentinel:// only"),
                List.of("redis-sentinel://h:1?mastr=m", "unknown parameter 'mastr'"),
                List.of("redis-sentinel://h:1?ack-replicas=one", "ack-replicas must be a number"),
                List.of("redis-cluster://h:1/3", "database 0 only"),
                List.of("redis://u:pw@h:99999", "is not host:port"))) {
            assertThatThrownBy(() -> RedisTarget.parse(c.get(0))).as(c.get(0))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(c.get(1))
                    .satisfies(e -> assertThat(e.getMessage()).doesNotContain(":pw@"));
        }
    }
}
