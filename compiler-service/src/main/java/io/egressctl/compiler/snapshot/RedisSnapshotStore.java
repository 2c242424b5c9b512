package io.egressctl.compiler.snapshot;

import io.egressctl.schemas.view.RedisKeys;
import org.springframework.stereotype.Component;
import redis.clients.jedis.AbstractPipeline;
import redis.clients.jedis.Response;
import redis.clients.jedis.UnifiedJedis;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * {@link SnapshotStore} on Redis. A batch goes out as one pipeline; guarded writes are Lua scripts
 * whose keys share one hash tag, so each is atomic and Redis Cluster compatible. Thread-safe.
 */
@Component
public class RedisSnapshotStore implements SnapshotStore {

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

    /**
     * KEYS: network hash. ARGV: version, json, full (1/0), n, then n (field, value) pairs to set, then
     * fields to delete. Returns 1 when written, 0 when the hash holds this version or a newer one.
     */
    static final String CAS_VIEW = """
            local cur = redis.call('HGET', KEYS[1], 'version')
            if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
            if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) end
            redis.call('HSET', KEYS[1], 'version', ARGV[1], 'json', ARGV[2])
            local i = 5
            for k = 1, tonumber(ARGV[4]) do
              redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
              i = i + 2
            end
            while i <= #ARGV do
              redis.call('HDEL', KEYS[1], ARGV[i])
              i = i + 1
            end
            return 1
            """;

    private static final Duration CHANGE_TTL = Duration.ofDays(7);
    private static final byte[] CAS_FRAGMENT_BYTES = CAS_FRAGMENT.getBytes(StandardCharsets.UTF_8);

    private static final tools.jackson.databind.json.JsonMapper JSON = tools.jackson.databind.json.JsonMapper.builder().build();

    private final UnifiedJedis redis;

    public RedisSnapshotStore(UnifiedJedis redis) {
        this.redis = redis;
    }

    @Override
    public BatchResult write(Batch batch) {
        List<Response<Object>> fragmentResponses = new ArrayList<>(batch.fragments().size());
        List<Response<Object>> viewResponses = new ArrayList<>(batch.views().size());
        try (AbstractPipeline p = redis.pipelined()) {
            for (FragmentWrite w : batch.fragments()) {
                fragmentResponses.add(p.eval(CAS_FRAGMENT_BYTES,
                        List.of(bytes(RedisKeys.hostVersions(w.update().hostId())), bytes(RedisKeys.hostFragments(w.update().hostId()))),
                        List.of(bytes(w.update().networkId()), bytes(Long.toString(w.update().version())), w.encodedHostUpdate())));
            }
            for (ViewWrite v : batch.views()) {
                List<String> args = new ArrayList<>(4 + 2 * v.ruleFields().size() + v.removedFields().size());
                args.add(Long.toString(v.version()));
                args.add(v.json());
                args.add(v.full() ? "1" : "0");
                args.add(Integer.toString(v.ruleFields().size()));
                v.ruleFields().forEach((field, value) -> {
                    args.add(field);
                    args.add(value);
                });
                args.addAll(v.removedFields());
                viewResponses.add(p.eval(CAS_VIEW, List.of(RedisKeys.network(v.networkId())), args));
            }
            for (ChangeWrite c : batch.changes()) {
                // One command per change: the status as one JSON string with its expiry.
                p.setex(RedisKeys.change(c.changeId()), CHANGE_TTL.toSeconds(), JSON.writeValueAsString(c.fields()));
            }
            p.sync();
            // Second round trip, only for what the first one changed: host and tenant indexes.
            boolean indexes = false;
            for (int i = 0; i < batch.fragments().size(); i++) {
                if ((Long) fragmentResponses.get(i).get() == 2) {
                    p.sadd(RedisKeys.hosts(), batch.fragments().get(i).update().hostId());
                    indexes = true;
                }
            }
            for (int i = 0; i < batch.views().size(); i++) {
                ViewWrite v = batch.views().get(i);
                if ((Long) viewResponses.get(i).get() == 1 && v.tenantId() != null) {
                    if (v.json().isEmpty()) {
                        p.srem(RedisKeys.tenantNetworks(v.tenantId()), v.networkId());
                    } else {
                        p.sadd(RedisKeys.tenantNetworks(v.tenantId()), v.networkId());
                    }
                    indexes = true;
                }
            }
            if (indexes) {
                p.sync();
            }
        }
        List<WriteOutcome> out = new ArrayList<>(fragmentResponses.size());
        for (Response<Object> r : fragmentResponses) {
            long code = (Long) r.get();
            out.add(code == 2 ? WriteOutcome.WRITTEN : code == 1 ? WriteOutcome.SAME : WriteOutcome.STALE);
        }
        List<Boolean> views = new ArrayList<>(viewResponses.size());
        for (Response<Object> r : viewResponses) {
            views.add((Long) r.get() == 1);
        }
        return new BatchResult(out, views);
    }

    @Override
    public void writeApplied(String hostId, Map<String, String> fields) {
        redis.hset(RedisKeys.hostApplied(hostId), fields);
    }

    @Override
    public Optional<String> readCheckpoint(int partition) {
        return Optional.ofNullable(redis.get(RedisKeys.checkpoint(partition)));
    }

    @Override
    public void writeCheckpoint(int partition, String checkpoint) {
        redis.set(RedisKeys.checkpoint(partition), checkpoint);
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
