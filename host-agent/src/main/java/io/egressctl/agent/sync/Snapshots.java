package io.egressctl.agent.sync;

import redis.clients.jedis.UnifiedJedis;

/** Factory for {@link SnapshotSource}s. */
public final class Snapshots {

    private Snapshots() {
    }

    /** The production source: the Redis snapshot cache. */
    public static SnapshotSource redis(UnifiedJedis redis) {
        return new RedisSnapshotSource(redis);
    }
}
