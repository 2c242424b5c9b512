package io.egressctl.compiler.snapshot;

import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.schemas.view.RedisKeys;
import org.springframework.stereotype.Component;
import redis.clients.jedis.UnifiedJedis;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * {@link SnapshotStore} on Redis. Guarded writes run as Lua scripts whose keys share one hash tag,
 * so they are atomic and Redis Cluster compatible. Thread-safe (Jedis pools connections).
 */
@Component
class RedisSnapshotStore implements SnapshotStore {

    /** KEYS: versions, fragments. ARGV: networkId, version, payload. Returns 2 written, 1 same, 0 stale. */
    static final String CAS_FRAGMENT = """
            local cur = redis.call('HGET', KEYS[1], ARGV[1])
            if cur then
              local c = tonumber(cur)
              local v = tonumber(ARGV[2])
              if c > v then return 0 end
              if c == v then return 1 end
            end
            redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
            redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
            return 2
            """;

    /** KEYS: network hash. ARGV: version, json. */
    static final String CAS_VIEW = """
            local cur = redis.call('HGET', KEYS[1], 'version')
            if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
            redis.call('HSET', KEYS[1], 'version', ARGV[1], 'json', ARGV[2])
            return 1
            """;

    private static final Duration CHANGE_TTL = Duration.ofDays(7);

    private final UnifiedJedis redis;

    RedisSnapshotStore(UnifiedJedis redis) {
        this.redis = redis;
    }

    @Override
    public WriteOutcome writeFragment(FragmentUpdate u, byte[] encodedHostUpdate) {
        Object r = redis.eval(CAS_FRAGMENT.getBytes(StandardCharsets.UTF_8),
                List.of(bytes(RedisKeys.hostVersions(u.hostId())), bytes(RedisKeys.hostFragments(u.hostId()))),
                List.of(bytes(u.networkId()), bytes(Long.toString(u.version())), encodedHostUpdate));
        long code = (Long) r;
        if (code == 2) {
            redis.sadd(RedisKeys.hosts(), u.hostId());
            return WriteOutcome.WRITTEN;
        }
        return code == 1 ? WriteOutcome.SAME : WriteOutcome.STALE;
    }

    @Override
    public void writeNetworkView(String networkId, String tenantId, long version, String json) {
        Object r = redis.eval(CAS_VIEW, List.of(RedisKeys.network(networkId)), List.of(Long.toString(version), json));
        if (((Long) r) == 1 && tenantId != null) {
            if (json.isEmpty()) {
                redis.srem(RedisKeys.tenantNetworks(tenantId), networkId);
            } else {
                redis.sadd(RedisKeys.tenantNetworks(tenantId), networkId);
            }
        }
    }

    @Override
    public void writeChange(String changeId, Map<String, String> fields) {
        String key = RedisKeys.change(changeId);
        redis.hset(key, fields);
        redis.expire(key, CHANGE_TTL.toSeconds());
    }

    @Override
    public void writeApplied(String hostId, Map<String, String> fields) {
        redis.hset(RedisKeys.hostApplied(hostId), fields);
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
