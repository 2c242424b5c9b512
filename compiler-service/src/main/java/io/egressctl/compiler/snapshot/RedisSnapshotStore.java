package io.egressctl.compiler.snapshot;

import io.egressctl.schemas.view.RedisKeys;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.stereotype.Component;
import redis.clients.jedis.AbstractPipeline;
import redis.clients.jedis.JedisCluster;
import redis.clients.jedis.util.JedisClusterCRC16;
import redis.clients.jedis.Response;
import redis.clients.jedis.UnifiedJedis;
import redis.clients.jedis.exceptions.JedisDataException;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * {@link SnapshotStore} on Redis. A batch goes out as one pipeline. Guarded writes (compare-and-set
 * on version) are Lua scripts, so each is atomic; they are sent in chunks, many writes per script
 * call, because a script call costs Redis far more than the few hash commands it runs (measured:
 * about 26 µs per call against 2 µs per command), and a batch of a large cloud touches a distinct
 * network and host for almost every change. Every key carries a hash tag ({@link RedisKeys}), and
 * a chunk only ever holds keys of one hash slot when the client is a cluster client; with a
 * standalone server one chunk takes any keys. Thread-safe.
 */
@Component
public class RedisSnapshotStore implements SnapshotStore {

    private static final Logger log = LoggerFactory.getLogger(RedisSnapshotStore.class);

    /** Guarded writes per script call: bounds how long one call holds the (single-threaded) server. */
    static final int CHUNK = 200;

    /**
     * Fragment writes. KEYS: versions, fragments, for each write. ARGV: networkId, version, payload,
     * for each write. Returns one code per write: 2 written, 1 same version held, 0 newer held.
     */
    static final String CAS_FRAGMENTS = EpochFence.PRELUDE + """
            local out = {}
            for i = 1, nk, 2 do
              local j = (i - 1) / 2 * 3
              local code = 2
              local cur = redis.call('HGET', KEYS[i], ARGV[j + 1])
              if cur then
                local c = tonumber(cur)
                local v = tonumber(ARGV[j + 2])
                if c > v then code = 0 elseif c == v then code = 1 end
              end
              if code == 2 then
                redis.call('HSET', KEYS[i], ARGV[j + 1], ARGV[j + 2])
                redis.call('HSET', KEYS[i + 1], ARGV[j + 1], ARGV[j + 3])
              end
              out[#out + 1] = code
            end
            return out
            """;

    /**
     * Network view writes. KEYS: one network hash per write. ARGV, for each write: version, json,
     * full (1/0), n fields to set, m fields to delete, then the n (field, value) pairs, then the m
     * fields. Returns one code per write: 1 written, 0 when the hash holds this version or a newer one.
     */
    static final String CAS_VIEWS = EpochFence.PRELUDE + """
            local out = {}
            local a = 1
            for k = 1, nk do
              local n = tonumber(ARGV[a + 3])
              local m = tonumber(ARGV[a + 4])
              local cur = redis.call('HGET', KEYS[k], 'version')
              if cur and tonumber(cur) >= tonumber(ARGV[a]) then
                out[k] = 0
              else
                if ARGV[a + 2] == '1' then redis.call('DEL', KEYS[k]) end
                redis.call('HSET', KEYS[k], 'version', ARGV[a], 'json', ARGV[a + 1])
                local f = a + 5
                for i = 1, n do
                  redis.call('HSET', KEYS[k], ARGV[f], ARGV[f + 1])
                  f = f + 2
                end
                for i = 1, m do
                  redis.call('HDEL', KEYS[k], ARGV[f])
                  f = f + 1
                end
                out[k] = 1
              end
              a = a + 5 + 2 * n + m
            end
            return out
            """;

    /**
     * An ACK's applied state. KEYS: the host's applied hash. ARGV: the prefix of the replaced fields,
     * the host id, then (field, value) pairs. Removes the fields with the prefix that the pairs do not
     * set, sets the pairs, and announces the host on {@link RedisKeys#appliedChannel()} in the same
     * step, so a waiter on a change pending on this host re-reads its status at once.
     */
    static final String REPLACE_APPLIED = """
            local key = KEYS[1]
            local prefix = ARGV[1]
            local keep = {}
            for i = 3, #ARGV, 2 do keep[ARGV[i]] = true end
            for _, f in ipairs(redis.call('HKEYS', key)) do
              if string.sub(f, 1, #prefix) == prefix and not keep[f] then redis.call('HDEL', key, f) end
            end
            for i = 3, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
            redis.call('PUBLISH', '$CHANNEL', ARGV[2])
            return 1
            """.replace("$CHANNEL", RedisKeys.appliedChannel());

    /**
     * A NACK's applied state (fields set, others kept). KEYS: the host's applied hash. ARGV: the host
     * id, then (field, value) pairs. Announces the host like {@link #REPLACE_APPLIED}.
     */
    static final String WRITE_APPLIED = """
            for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
            redis.call('PUBLISH', '$CHANNEL', ARGV[1])
            return 1
            """.replace("$CHANNEL", RedisKeys.appliedChannel());

    /**
     * Host interface index writes. KEYS: one host's interface hash per write. ARGV, for each write:
     * {@code c} (claim) or {@code r} (release), the interface name, the holder ({@code networkId/vmId}).
     * A claim sets the field unless a VM of another network holds it; a release deletes it only while
     * it names the holder. Returns one code per write: 1 done, 0 left as it was.
     */
    static final String CAS_INTERFACES = EpochFence.PRELUDE + """
            local out = {}
            for i = 1, nk do
              local j = (i - 1) * 3
              local field = ARGV[j + 2]
              local holder = ARGV[j + 3]
              local cur = redis.call('HGET', KEYS[i], field)
              local code = 0
              if ARGV[j + 1] == 'r' then
                if cur == holder then
                  redis.call('HDEL', KEYS[i], field)
                  code = 1
                end
              else
                local network = string.sub(holder, 1, string.find(holder, '/', 1, true))
                if not cur or cur == holder or string.sub(cur, 1, #network) == network then
                  redis.call('HSET', KEYS[i], field, holder)
                  code = 1
                end
              end
              out[i] = code
            end
            return out
            """;

    /**
     * Change status writes. KEYS: one change key per write. ARGV: the expiry in seconds, then one
     * value per write. Each write is announced on {@link RedisKeys#changesChannel()} (message: the
     * change id, the key without its prefix) in the same step, which is what completes the rule-service's
     * {@code ?wait=} waiters without polling. Returns the number written.
     */
    static final String SET_CHANGES = EpochFence.PRELUDE + """
            for i = 1, nk do
              redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ARGV[1])
              redis.call('PUBLISH', '$CHANNEL', string.sub(KEYS[i], $ID_FROM))
            end
            return nk
            """.replace("$CHANNEL", RedisKeys.changesChannel()).replace("$ID_FROM", Integer.toString(RedisKeys.change("").length() + 1));

    /** A checkpoint write. KEYS: the checkpoint key. ARGV: the checkpoint. */
    static final String SET_CHECKPOINT = EpochFence.PRELUDE + """
            redis.call('SET', KEYS[1], ARGV[1])
            return 1
            """;

    private static final Duration CHANGE_TTL = Duration.ofDays(7);
    private static final byte[] CAS_FRAGMENTS_BYTES = CAS_FRAGMENTS.getBytes(StandardCharsets.UTF_8);
    private static final byte[] CAS_VIEWS_BYTES = CAS_VIEWS.getBytes(StandardCharsets.UTF_8);
    private static final byte[] CAS_INTERFACES_BYTES = CAS_INTERFACES.getBytes(StandardCharsets.UTF_8);
    private static final byte[] SET_CHANGES_BYTES = SET_CHANGES.getBytes(StandardCharsets.UTF_8);

    private static final tools.jackson.databind.json.JsonMapper JSON = tools.jackson.databind.json.JsonMapper.builder().build();

    private final UnifiedJedis redis;
    private final boolean cluster;
    /** Replicas that must hold a write before it counts (WAIT); 0: the primary's reply is enough. */
    private final int ackReplicas;
    private final long ackTimeoutMs;

    /** A store whose writes count once the server that took them answered (a standalone Redis). */
    public RedisSnapshotStore(UnifiedJedis redis) {
        this(redis, 0, 1);
    }

    /**
     * A store whose writes count once {@code ackReplicas} replicas hold them too ({@code WAIT} on the
     * connection that wrote them). Replication is asynchronous: a primary that dies may take writes it
     * already confirmed with it, and Sentinel then promotes a replica without them. A batch is done (its
     * offsets committed, its host updates published) only when its writes are on a replica that a
     * fail-over would promote, so none of the views, snapshots or statuses it wrote can be lost with
     * the primary. Fewer acknowledgements within {@code ackTimeoutMs} fail the write, and the batch is
     * retried as for any Redis error.
     */
    @org.springframework.beans.factory.annotation.Autowired
    public RedisSnapshotStore(UnifiedJedis redis, io.egressctl.schemas.redis.RedisTarget target) {
        this(redis, target.ackReplicas(), target.ackTimeoutMs());
    }

    RedisSnapshotStore(UnifiedJedis redis, int ackReplicas, long ackTimeoutMs) {
        this.redis = redis;
        this.cluster = redis instanceof JedisCluster;
        this.ackReplicas = ackReplicas;
        this.ackTimeoutMs = ackTimeoutMs;
    }

    /** Queues a WAIT behind the pipeline's writes; {@link #checkAcked} reads its answer after sync. */
    private Response<Long> ack(AbstractPipeline p, String sampleKey) {
        return ackReplicas > 0 ? p.waitReplicas(sampleKey, ackReplicas, ackTimeoutMs) : null;
    }

    private void checkAcked(Response<Long> acked, String what) {
        if (acked != null && acked.get() < ackReplicas) {
            throw new IllegalStateException("Redis: " + what + " is on " + acked.get() + " replica(s) after " + ackTimeoutMs
                    + " ms, " + ackReplicas + " wanted (ack-replicas in REDIS_URL); retried, since a fail-over now could lose it");
        }
    }

    /** One script call, acknowledged by the replicas when so configured (same connection as the write). */
    private Object evalAcked(String script, List<String> keys, List<String> args, String what) {
        if (ackReplicas == 0) {
            return redis.eval(script, keys, args);
        }
        try (AbstractPipeline p = redis.pipelined()) {
            Response<Object> r = p.eval(script, keys, args);
            Response<Long> acked = ack(p, keys.get(0));
            p.sync();
            Object out = r.get();
            checkAcked(acked, what);
            return out;
        }
    }

    @Override
    public BatchResult write(Batch batch) {
        List<Chunk> fragmentChunks = chunks(batch.fragments(), w -> RedisKeys.hostVersions(w.update().hostId()));
        List<Chunk> viewChunks = chunks(batch.views(), v -> RedisKeys.network(v.networkId()));
        List<Response<Object>> fragmentResponses = new ArrayList<>(fragmentChunks.size());
        List<Response<Object>> viewResponses = new ArrayList<>(viewChunks.size());
        List<Chunk> interfaceChunks = chunks(batch.interfaces(), w -> RedisKeys.hostInterfaces(w.hostId()));
        List<Response<Object>> interfaceResponses = new ArrayList<>(interfaceChunks.size());
        List<Chunk> changeChunks = chunks(batch.changes(), c -> RedisKeys.change(c.changeId()));
        List<Response<Object>> changeResponses = new ArrayList<>(changeChunks.size());
        Map<Integer, Long> epochs = batch.epochs();
        try (AbstractPipeline p = redis.pipelined()) {
            for (Chunk c : fragmentChunks) {
                List<byte[]> keys = new ArrayList<>(2 * c.indexes().size());
                List<byte[]> args = new ArrayList<>(3 * c.indexes().size());
                for (int i : c.indexes()) {
                    FragmentWrite w = batch.fragments().get(i);
                    keys.add(bytes(RedisKeys.hostVersions(w.update().hostId())));
                    keys.add(bytes(RedisKeys.hostFragments(w.update().hostId())));
                    args.add(bytes(w.update().networkId()));
                    args.add(bytes(Long.toString(w.update().version())));
                    args.add(w.encodedHostUpdate());
                }
                EpochFence.append(keys, args, epochs);
                fragmentResponses.add(p.eval(CAS_FRAGMENTS_BYTES, keys, args));
            }
            for (Chunk c : viewChunks) {
                List<byte[]> keys = new ArrayList<>(c.indexes().size());
                List<byte[]> args = new ArrayList<>(8 * c.indexes().size());
                for (int i : c.indexes()) {
                    ViewWrite v = batch.views().get(i);
                    keys.add(bytes(RedisKeys.network(v.networkId())));
                    args.add(bytes(Long.toString(v.version())));
                    args.add(bytes(v.json()));
                    args.add(bytes(v.full() ? "1" : "0"));
                    args.add(bytes(Integer.toString(v.ruleFields().size())));
                    args.add(bytes(Integer.toString(v.removedFields().size())));
                    v.ruleFields().forEach((field, value) -> {
                        args.add(bytes(field));
                        args.add(bytes(value));
                    });
                    v.removedFields().forEach(field -> args.add(bytes(field)));
                }
                EpochFence.append(keys, args, epochs);
                viewResponses.add(p.eval(CAS_VIEWS_BYTES, keys, args));
            }
            // After the views in the same pipeline: a claim the index shows is already in its network's
            // view, which is what the rule-service confirms a claim against.
            for (Chunk c : interfaceChunks) {
                List<byte[]> keys = new ArrayList<>(c.indexes().size());
                List<byte[]> args = new ArrayList<>(3 * c.indexes().size());
                for (int i : c.indexes()) {
                    InterfaceWrite w = batch.interfaces().get(i);
                    keys.add(bytes(RedisKeys.hostInterfaces(w.hostId())));
                    args.add(bytes(w.claim() ? "c" : "r"));
                    args.add(bytes(w.interfaceName()));
                    args.add(bytes(w.holder()));
                }
                EpochFence.append(keys, args, epochs);
                interfaceResponses.add(p.eval(CAS_INTERFACES_BYTES, keys, args));
            }
            for (Chunk c : changeChunks) {
                // The status of each change as one JSON string with its expiry.
                List<byte[]> keys = new ArrayList<>(c.indexes().size());
                List<byte[]> args = new ArrayList<>(1 + c.indexes().size());
                args.add(bytes(Long.toString(CHANGE_TTL.toSeconds())));
                for (int i : c.indexes()) {
                    ChangeWrite w = batch.changes().get(i);
                    keys.add(bytes(RedisKeys.change(w.changeId())));
                    args.add(bytes(JSON.writeValueAsString(w.fields())));
                }
                EpochFence.append(keys, args, epochs);
                changeResponses.add(p.eval(SET_CHANGES_BYTES, keys, args));
            }
            if (!batch.changes().isEmpty()) {
                // The index of change statuses, bounded as they are: each id scored with its expiry, and
                // what has expired trimmed. Outside the scripts (one key of its own, like egress:hosts) and
                // in this round trip: an id whose write the fence refused costs a rebuild one DEL of nothing.
                long now = System.currentTimeMillis() / 1000;
                Map<String, Double> expiries = new java.util.HashMap<>();
                for (ChangeWrite w : batch.changes()) {
                    expiries.put(w.changeId(), (double) (now + CHANGE_TTL.toSeconds()));
                }
                p.zadd(RedisKeys.changeExpiry(), expiries);
                p.zremrangeByScore(RedisKeys.changeExpiry(), Double.NEGATIVE_INFINITY, (double) now);
            }
            p.sync();
            long[] fragmentCodes;
            long[] viewCodes;
            long[] interfaceCodes;
            try {
                fragmentCodes = codes(fragmentChunks, fragmentResponses, batch.fragments().size());
                viewCodes = codes(viewChunks, viewResponses, batch.views().size());
                interfaceCodes = codes(interfaceChunks, interfaceResponses, batch.interfaces().size());
                changeResponses.forEach(Response::get);
            } catch (JedisDataException e) {
                // Every call carried the same fence, so a refusal refused them all (unless the epoch moved
                // between two calls of the pipeline: then what landed before was written by the owner).
                throw EpochFence.translate(e);
            }
            for (int i = 0; i < interfaceCodes.length; i++) {
                InterfaceWrite w = batch.interfaces().get(i);
                if (w.claim() && interfaceCodes[i] == 0) {
                    // Two networks' VMs on one host interface (the rule-service refuses this, but two
                    // placements can race past it, or a producer can write to the log directly).
                    log.warn("interface {} on host {}: {} claims it, a VM of another network holds it; the host enforces neither",
                            w.interfaceName(), w.hostId(), w.holder());
                }
            }
            // Second round trip, only for what the first one changed: host, view and tenant indexes.
            boolean indexes = false;
            for (int i = 0; i < batch.fragments().size(); i++) {
                if (fragmentCodes[i] == 2) {
                    p.sadd(RedisKeys.hosts(), batch.fragments().get(i).update().hostId());
                    indexes = true;
                }
            }
            for (int i = 0; i < batch.views().size(); i++) {
                ViewWrite v = batch.views().get(i);
                if (viewCodes[i] == 1) {
                    // every view hash written, a deleted network's too: what a rebuild drops
                    p.sadd(RedisKeys.views(), v.networkId());
                    indexes = true;
                }
                if (viewCodes[i] == 1 && v.tenantId() != null) {
                    if (v.json().isEmpty()) {
                        p.srem(RedisKeys.tenantNetworks(v.tenantId()), v.networkId());
                        p.srem(RedisKeys.networks(), v.networkId());
                    } else {
                        p.sadd(RedisKeys.tenantNetworks(v.tenantId()), v.networkId());
                        p.sadd(RedisKeys.networks(), v.networkId());
                    }
                    indexes = true;
                }
            }
            // The replicas' acknowledgement covers both round trips: WAIT answers for every write this
            // connection made before it.
            Response<Long> acked = ack(p, RedisKeys.hosts());
            if (indexes || acked != null) {
                p.sync();
            }
            checkAcked(acked, "a batch of " + batch.fragments().size() + " fragments and " + batch.views().size() + " views");
            List<WriteOutcome> out = new ArrayList<>(fragmentCodes.length);
            for (long code : fragmentCodes) {
                out.add(code == 2 ? WriteOutcome.WRITTEN : code == 1 ? WriteOutcome.SAME : WriteOutcome.STALE);
            }
            List<Boolean> views = new ArrayList<>(viewCodes.length);
            for (long code : viewCodes) {
                views.add(code == 1);
            }
            return new BatchResult(out, views);
        }
    }

    /** Indexes of the writes that go into one script call. */
    record Chunk(List<Integer> indexes) {
    }

    /**
     * Splits writes into chunks of at most {@link #CHUNK}, keeping batch order within each; with a
     * cluster client a chunk holds keys of one hash slot only (scripts may not cross slots).
     */
    <T> List<Chunk> chunks(List<T> writes, java.util.function.Function<T, String> key) {
        Map<Integer, List<Integer>> bySlot = new java.util.LinkedHashMap<>();
        List<Chunk> out = new ArrayList<>();
        for (int i = 0; i < writes.size(); i++) {
            int slot = cluster ? JedisClusterCRC16.getSlot(key.apply(writes.get(i))) : 0;
            List<Integer> open = bySlot.computeIfAbsent(slot, s -> new ArrayList<>());
            open.add(i);
            if (open.size() == CHUNK) {
                out.add(new Chunk(List.copyOf(open)));
                open.clear();
            }
        }
        bySlot.values().stream().filter(l -> !l.isEmpty()).forEach(l -> out.add(new Chunk(List.copyOf(l))));
        return out;
    }

    /** The per-write codes of chunked script replies, back in batch order. */
    private static long[] codes(List<Chunk> chunks, List<Response<Object>> replies, int size) {
        long[] out = new long[size];
        for (int c = 0; c < chunks.size(); c++) {
            List<?> codes = (List<?>) replies.get(c).get();
            List<Integer> indexes = chunks.get(c).indexes();
            if (codes.size() != indexes.size()) {
                throw new IllegalStateException("script returned " + codes.size() + " codes for " + indexes.size() + " writes");
            }
            for (int k = 0; k < indexes.size(); k++) {
                out[indexes.get(k)] = (Long) codes.get(k);
            }
        }
        return out;
    }

    @Override
    public void writeApplied(String hostId, Map<String, String> fields) {
        List<String> args = new ArrayList<>(1 + 2 * fields.size());
        args.add(hostId);
        fields.forEach((k, v) -> {
            args.add(k);
            args.add(v);
        });
        writeAppliedState(WRITE_APPLIED, hostId, args);
    }

    @Override
    public void replaceApplied(String hostId, Map<String, String> fields, String replacedPrefix) {
        List<String> args = new ArrayList<>(2 + 2 * fields.size());
        args.add(replacedPrefix);
        args.add(hostId);
        fields.forEach((k, v) -> {
            args.add(k);
            args.add(v);
        });
        writeAppliedState(REPLACE_APPLIED, hostId, args);
    }

    /**
     * One applied-state script and the host's entry in {@link RedisKeys#appliedHosts()} (a key of its
     * own, so outside the script, which keeps to the host's slot), in one round trip, acknowledged by
     * the replicas when so configured.
     */
    private void writeAppliedState(String script, String hostId, List<String> args) {
        try (AbstractPipeline p = redis.pipelined()) {
            Response<Object> r = p.eval(script, List.of(RedisKeys.hostApplied(hostId)), args);
            p.sadd(RedisKeys.appliedHosts(), hostId);
            Response<Long> acked = ack(p, RedisKeys.hostApplied(hostId));
            p.sync();
            r.get();
            checkAcked(acked, "host " + hostId + "'s applied state");
        }
    }

    @Override
    public Optional<String> readCheckpoint(int partition) {
        return Optional.ofNullable(redis.get(RedisKeys.checkpoint(partition)));
    }

    @Override
    public void writeCheckpoint(int partition, String checkpoint, long epoch) {
        List<String> keys = new ArrayList<>(List.of(RedisKeys.checkpoint(partition)));
        List<String> args = new ArrayList<>(List.of(checkpoint));
        EpochFence.appendStrings(keys, args, epoch > 0 ? Map.of(partition, epoch) : Map.of());
        try {
            evalAcked(SET_CHECKPOINT, keys, args, "the checkpoint of partition " + partition);
        } catch (JedisDataException e) {
            throw EpochFence.translate(e);
        }
    }

    @Override
    public long claim(int partition) {
        return redis.incr(RedisKeys.epoch(partition));
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
