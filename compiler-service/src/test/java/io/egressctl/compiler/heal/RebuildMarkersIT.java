package io.egressctl.compiler.heal;

import io.egressctl.schemas.view.RedisKeys;
import io.egressctl.testinfra.Infrastructure;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.UnifiedJedis;

import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The generation marker's claim script and the rebuild markers, against a real Redis ({@link Infrastructure}:
 * the stack's or a container; a database of their own): the first claim on an empty Redis sets the marker and marks every partition in one
 * step, later claims keep it; a partition restored from a checkpoint is complete, one replaying from
 * the beginning stays marked until it reaches the log end noted at assignment, a heal marks and
 * clears what it heals but keeps a replay's mark.
 */
class RebuildMarkersIT {

    private static final int DB = 8;
    private static UnifiedJedis redis;

    @BeforeAll
    static void connect() {
        redis = new UnifiedJedis(URI.create(Infrastructure.get().redisUrl(DB)));
        redis.flushDB();
    }

    @AfterAll
    static void cleanUp() {
        if (redis != null) {
            redis.flushDB();
            redis.close();
        }
    }

    private static Object claim(String candidate, int partitions) {
        List<String> args = new ArrayList<>();
        args.add(candidate);
        args.addAll(RebuildMarkers.fields(partitions));
        return redis.eval(RedisLossWatch.CLAIM, List.of(RedisKeys.generation(), RedisKeys.rebuilding()), args);
    }

    @Test
    void theFirstClaimOnAnEmptyRedisMarksEveryPartitionAndLaterClaimsKeepTheMarker() {
        redis.flushDB();
        assertThat(claim("g1 t", 4)).isEqualTo("g1 t");
        assertThat(redis.hkeys(RedisKeys.rebuilding())).containsExactlyInAnyOrder("0", "1", "2", "3");
        assertThat(redis.hget(RedisKeys.rebuilding(), "2")).contains("Redis lost its state");
        redis.del(RedisKeys.rebuilding());
        assertThat(claim("g2 t", 4)).as("a marker in force wins").isEqualTo("g1 t");
        assertThat(redis.exists(RedisKeys.rebuilding())).as("and marks nothing").isFalse();
    }

    @Test
    void markersFollowAssignmentReplayAndHeal() {
        redis.flushDB();
        claim("g t", 4);
        RebuildMarkers markers = new RebuildMarkers(redis);
        markers.assigned(Set.of(0), Map.of(1, 5L, 2, 0L));
        assertThat(redis.hkeys(RedisKeys.rebuilding())).as("3 is nobody's yet; 0 restored, 2 empty").containsExactlyInAnyOrder("1", "3");
        assertThat(redis.hget(RedisKeys.rebuilding(), "1")).contains("at 0 of 5");

        markers.reached(Map.of(1, 3L));
        assertThat(redis.hget(RedisKeys.rebuilding(), "1")).contains("at 3 of 5");
        markers.healing(List.of(0, 1, 2));
        assertThat(redis.hget(RedisKeys.rebuilding(), "0")).contains("healing");
        markers.healed(List.of(0, 1, 2));
        assertThat(redis.hkeys(RedisKeys.rebuilding())).as("the replay of 1 is not done").containsExactlyInAnyOrder("1", "3");
        markers.reached(Map.of(1, 5L));
        assertThat(redis.hkeys(RedisKeys.rebuilding())).containsExactly("3");
        assertThat(markers.replaying()).isEmpty();

        markers.assigned(Set.of(), Map.of(3, 2L));
        markers.revoked(List.of(3));
        assertThat(markers.replaying()).as("a revoked partition is the next owner's").isEmpty();
        assertThat(redis.hkeys(RedisKeys.rebuilding())).as("its mark stays until the next owner sets or clears it").containsExactly("3");
    }

    private static RedisLossWatch watch() {
        return new RedisLossWatch(redis, new io.egressctl.compiler.snapshot.RedisSnapshotStore(redis),
                new io.egressctl.schemas.registry.HttpSchemaRegistryClient(Infrastructure.get().env("SCHEMA_REGISTRY_URL")),
                new io.egressctl.compiler.config.EgressProperties(null, null, 3, null), Infrastructure.get().env("KAFKA_BOOTSTRAP_SERVERS"),
                60_000, 30, io.egressctl.core.state.Limits.defaults(),
                new io.egressctl.schemas.integrity.UpdateMac(io.egressctl.schemas.integrity.UpdateKeys.NONE), false);
    }

    @Test
    void aStartOnARedisWithoutTheMarkerDropsCheckpointsWrittenAfterTheLossAndMarksEveryPartition() {
        redis.flushDB();
        redis.set(RedisKeys.checkpoint(1), "{\"topic\":\"egress.network-events\",\"offset\":42,\"networks\":[]}");
        RedisLossWatch first = watch();
        try {
            first.attach(() -> { });
            assertThat(redis.exists(RedisKeys.checkpoint(1))).as("a checkpoint without a generation marker is not trusted").isFalse();
            assertThat(redis.get(RedisKeys.generation())).isEqualTo(first.generation());
            assertThat(redis.hkeys(RedisKeys.rebuilding())).containsExactlyInAnyOrder("0", "1", "2");
        } finally {
            first.destroy();
        }
        redis.set(RedisKeys.checkpoint(1), "{\"topic\":\"egress.network-events\",\"offset\":42,\"networks\":[]}");
        RedisLossWatch second = watch();
        try {
            second.attach(() -> { });
            assertThat(second.generation()).as("the marker in force").isEqualTo(first.generation());
            assertThat(redis.exists(RedisKeys.checkpoint(1))).as("a checkpoint of the generation in force is kept").isTrue();
        } finally {
            second.destroy();
        }
    }
}
