package io.egressctl.rules.config;

import io.egressctl.testinfra.OwnRedis;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.UnifiedJedis;
import redis.clients.jedis.params.SetParams;

import java.net.URI;
import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * rule-service's claims against real Redis servers of this test's own: a primary and a replica of it
 * (redis-server processes, wired with REPLICAOF). A claim counts once the wanted replicas hold it;
 * with fewer (the replica gone, or more wanted than there are) the claim that was made is refused as
 * not replicated, and a claim of a key someone holds is answered as before.
 */
class ReplicatedClaimsIT {

    private OwnRedis primary;
    private OwnRedis replica;

    @AfterEach
    void stop() {
        if (replica != null) {
            replica.close();
        }
        if (primary != null) {
            primary.close();
        }
    }

    @Test
    void aClaimCountsOnceTheReplicasHoldItAndIsRefusedWhenTheyDoNot() throws Exception {
        primary = OwnRedis.localProcess();
        replica = OwnRedis.localProcess();
        // The service's own client (its socket outwaits a WAIT's timeout).
        try (UnifiedJedis p = InfraConfig.redisClient(primary.url());
             redis.clients.jedis.Jedis r = new redis.clients.jedis.Jedis(URI.create(replica.url()))) {
            r.replicaof("127.0.0.1", URI.create(primary.url()).getPort());
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (!r.info("replication").contains("master_link_status:up") && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertThat(r.info("replication")).contains("master_link_status:up");
            SetParams nx = SetParams.setParams().nx();

            ReplicatedClaims one = new ReplicatedClaims(p, 1, 2_000);
            assertThat(one.setIfAbsent("egress:name:{n1}", "acme", nx)).as("claimed, and held by the replica").isTrue();
            assertThat(r.get("egress:name:{n1}")).isEqualTo("acme");
            assertThat(one.setIfAbsent("egress:name:{n1}", "globex", nx)).as("held already: not ours, no error").isFalse();
            assertThat(p.get("egress:name:{n1}")).isEqualTo("acme");

            ReplicatedClaims two = new ReplicatedClaims(p, 2, 200);
            assertThatThrownBy(() -> two.setIfAbsent("egress:name:{n2}", "acme", nx))
                    .isInstanceOf(ReplicatedClaims.NotReplicatedException.class)
                    .hasMessageContaining("on 1 replica(s) within 200 ms, 2 wanted");
            assertThat(two.setIfAbsent("egress:name:{n1}", "globex", nx)).as("a key held already is no claim of ours to refuse").isFalse();

            replica.kill();
            assertThatThrownBy(() -> one.setIfAbsent("egress:name:{n3}", "acme", nx))
                    .as("the replica is gone: a claim the primary alone holds does not count")
                    .isInstanceOf(ReplicatedClaims.NotReplicatedException.class).hasMessageContaining("on 0 replica(s)");

            ReplicatedClaims none = new ReplicatedClaims(p, 0, 2_000);
            assertThat(none.setIfAbsent("egress:name:{n4}", "acme", nx)).as("ack-replicas 0 (standalone): a plain SET NX").isTrue();
            assertThat(none.setIfAbsent("egress:name:{n4}", "acme", nx)).isFalse();
        }
    }

    @Test
    void anIdempotentWriteWhoseClaimIsNotReplicatedPublishesNothingAndFreesItsKey() {
        primary = OwnRedis.localProcess();
        try (UnifiedJedis p = InfraConfig.redisClient(primary.url())) {
            io.egressctl.rules.api.ChangeWriterAccess writer = new io.egressctl.rules.api.ChangeWriterAccess(p, new ReplicatedClaims(p, 1, 100));
            boolean[] published = {false};
            assertThatThrownBy(() -> writer.once("acme", "key-1", "fingerprint", () -> published[0] = true))
                    .isInstanceOf(ReplicatedClaims.NotReplicatedException.class);
            assertThat(published[0]).as("nothing published").isFalse();
            assertThat(p.keys("*idem*")).as("the key was given back").isEmpty();

            io.egressctl.rules.api.ChangeWriterAccess standalone = new io.egressctl.rules.api.ChangeWriterAccess(p, new ReplicatedClaims(p, 0, 100));
            standalone.once("acme", "key-1", "fingerprint", () -> published[0] = true);
            assertThat(published[0]).as("published once the claim counts").isTrue();
        }
    }
}
