package io.egressctl.agent.sync;

import io.egressctl.schemas.view.RedisKeys;
import redis.clients.jedis.UnifiedJedis;

import java.nio.charset.StandardCharsets;
import java.util.List;

/** {@link SnapshotSource} on the Redis key {@code egress:host:{H}:fragments}. */
final class RedisSnapshotSource implements SnapshotSource {

    private final UnifiedJedis redis;

    RedisSnapshotSource(UnifiedJedis redis) {
        this.redis = redis;
    }

    @Override
    public List<byte[]> read(String hostId) {
        return List.copyOf(redis.hgetAll(RedisKeys.hostFragments(hostId).getBytes(StandardCharsets.UTF_8)).values());
    }
}
