package io.egressctl.cli.rebuild;

import io.egressctl.cli.Env;
import io.egressctl.core.hash.CanonicalHash;
import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.serde.Topics;
import io.egressctl.schemas.view.RedisKeys;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import redis.clients.jedis.UnifiedJedis;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * {@code egressctl rebuild}: drop what the log determines from Redis and let the compiler recompute it.
 * Three steps, so that the script around it can stop and start the compiler between them:
 * <ol>
 *   <li>{@code snapshot FILE}: record every host's fragments (sha256 of the stored bytes) and host hash,
 *       for information (Redis may have lost them already: the log is the reference, not this);</li>
 *   <li>{@code drop}: with every compiler instance stopped, delete the keys the compiler derives from
 *       the log ({@link #derivedFromLog}: fragments and their versions, interface indexes, the host and
 *       tenant indexes, network views, change statuses, checkpoints), found from the indexes the compiler
 *       writes ({@link #derivedKeys}, no SCAN of the keyspace), and the compiler group's committed
 *       offsets. What the log cannot give back is kept ({@link #kept}): idempotency claims
 *       ({@code egress:idem:}), the CloudStack endpoint's job records, replay fingerprints, custom ids
 *       ({@code egress:cs:}), hosts' applied state (folded from the agents' reports) and the generation
 *       marker;</li>
 *   <li>{@code wait FILE}: show progress while the compiler group replays the log, then compare what
 *       Redis holds with what the log determines (every network folded from the log and compiled: each
 *       host's live fragments by content hash, and its host hash), and, for information, with the
 *       recorded snapshot, byte for byte. Exit 0 only when Redis agrees with the log.</li>
 * </ol>
 */
public final class Rebuild {

    private final Env env;
    private final PrintStream out;

    public Rebuild(Env env, PrintStream out) {
        this.env = env;
        this.out = out;
    }

    public int run(String[] args) throws Exception {
        if (args.length == 0) {
            out.println("usage: rebuild snapshot FILE | drop | wait FILE [--group G] [--timeout-s N]");
            return 2;
        }
        return switch (args[0]) {
            case "snapshot" -> snapshot(Path.of(args[1]));
            case "drop" -> drop(option(args, "--group", "egress-compiler"));
            case "wait" -> waitAndCompare(Path.of(args[1]), option(args, "--group", "egress-compiler"),
                    Integer.parseInt(option(args, "--timeout-s", "600")));
            default -> 2;
        };
    }

    /**
     * host/network -> sha256 of the stored HostUpdate bytes, and host -> host hash (invariant 6: over
     * the live fragments' content hashes, tombstones excluded).
     */
    Map<String, String> state() {
        Map<String, String> out = new TreeMap<>();
        try (UnifiedJedis redis = io.egressctl.schemas.redis.RedisClients.create(env.redisUrl())) {
            for (String host : redis.smembers(RedisKeys.hosts())) {
                Map<byte[], byte[]> fragments = redis.hgetAll(RedisKeys.hostFragments(host).getBytes(StandardCharsets.UTF_8));
                TreeMap<String, String> fragmentHashes = new TreeMap<>();
                fragments.forEach((k, v) -> {
                    String network = new String(k, StandardCharsets.UTF_8);
                    out.put("fragment " + host + "/" + network, sha256(v));
                    try {
                        HostUpdate u = HostUpdate.fromByteBuffer(java.nio.ByteBuffer.wrap(v));
                        if (!u.getTombstone()) {
                            fragmentHashes.put(network, u.getFragmentHash());
                        }
                    } catch (IOException e) {
                        out.put("fragment " + host + "/" + network, "undecodable");
                    }
                });
                out.put("host " + host, CanonicalHash.host(fragmentHashes));
            }
        }
        return out;
    }

    int snapshot(Path file) throws IOException {
        Map<String, String> s = state();
        List<String> lines = new ArrayList<>();
        s.forEach((k, v) -> lines.add(k + " " + v));
        Files.write(file, lines);
        out.printf("recorded %d entries (%d hosts) in %s%n", s.size(), s.keySet().stream().filter(k -> k.startsWith("host ")).count(), file);
        return 0;
    }

    int drop(String group) throws Exception {
        // The group's committed offsets go too (the compiler is stopped, so the group is empty):
        // the restarted compiler starts from the beginning and progress is measured from zero.
        try (Admin admin = Admin.create(io.egressctl.schemas.serde.KafkaDefaults.client(env.kafkaBootstrap()))) {
            try {
                admin.deleteConsumerGroups(List.of(group)).all().get();
                out.printf("deleted the committed offsets of consumer group %s%n", group);
            } catch (java.util.concurrent.ExecutionException e) {
                if (e.getCause() instanceof org.apache.kafka.common.errors.GroupNotEmptyException) {
                    out.println("consumer group " + group + " still has members: stop every compiler-service instance first");
                    return 1;
                }
                if (!(e.getCause() instanceof org.apache.kafka.common.errors.GroupIdNotFoundException)) {
                    throw e;
                }
            }
        }
        int partitions;
        try (Admin admin = Admin.create(io.egressctl.schemas.serde.KafkaDefaults.client(env.kafkaBootstrap()))) {
            partitions = admin.describeTopics(List.of(Topics.NETWORK_EVENTS)).allTopicNames().get()
                    .get(Topics.NETWORK_EVENTS).partitions().size();
        }
        try (UnifiedJedis redis = io.egressctl.schemas.redis.RedisClients.create(env.redisUrl())) {
            // First the index that a Redis written by an earlier version lacks, from the host index that
            // is about to go: every host with a fragment and an applied state.
            long indexed = indexAppliedHosts(redis);
            Derived derived = derivedKeys(redis, partitions);
            long deleted = delete(redis, derived.keys());
            long epochs = 0;
            for (int p = 0; p < partitions; p++) {
                epochs += redis.exists(RedisKeys.epoch(p)) ? 1 : 0;
            }
            out.printf("dropped %d keys the log determines (found from the indexes: %d hosts, %d networks, %d tenants, %d change"
                            + " statuses, %d partitions' checkpoints); kept hosts' applied state (%d hosts indexed, %d added now),"
                            + " %d partitions' fencing epochs and every key the log cannot give back (idempotency claims,"
                            + " CloudStack records, name claims, markers); the log is untouched%n",
                    deleted, derived.hosts(), derived.networks(), derived.tenants(), derived.changes(), partitions,
                    redis.scard(RedisKeys.appliedHosts()), indexed, epochs);
        }
        return 0;
    }

    /** The keys to drop, found from the indexes, and how many of each kind they cover. */
    record Derived(List<String> keys, int hosts, int networks, int tenants, long changes) {
    }

    /**
     * Every key the compiler derives from the log, found from the indexes it writes, never by a SCAN
     * of the keyspace (which walks every key a server holds and, on a cluster, only one node's): each
     * indexed host's fragments, versions and interfaces (hosts with a fragment or an applied state), each
     * indexed network's view (live and deleted ones), the tenant sets of the live views' tenants, each
     * change status whose expiry index still holds it, each partition's checkpoint (0 to the network
     * events topic's partition count), and the indexes themselves.
     */
    static Derived derivedKeys(UnifiedJedis redis, int partitions) {
        List<String> keys = new ArrayList<>();
        Set<String> hosts = new java.util.TreeSet<>(redis.smembers(RedisKeys.hosts()));
        hosts.addAll(redis.smembers(RedisKeys.appliedHosts()));
        for (String h : hosts) {
            keys.add(RedisKeys.hostFragments(h));
            keys.add(RedisKeys.hostVersions(h));
            keys.add(RedisKeys.hostInterfaces(h));
        }
        Set<String> networks = new java.util.TreeSet<>(redis.smembers(RedisKeys.networks()));
        networks.addAll(redis.smembers(RedisKeys.views()));
        Set<String> tenants = new java.util.TreeSet<>();
        for (String n : networks) {
            keys.add(RedisKeys.network(n));
            List<String> vj = redis.hmget(RedisKeys.network(n), "version", "json");
            if (vj.get(1) != null && !vj.get(1).isEmpty()) {
                try {
                    io.egressctl.schemas.view.NetworkView view = io.egressctl.schemas.view.NetworkView.fromHash(
                            vj.get(0) == null ? Map.of("json", vj.get(1)) : Map.of("version", vj.get(0), "json", vj.get(1)));
                    if (view != null && view.tenantId() != null) {
                        tenants.add(view.tenantId());
                    }
                } catch (RuntimeException unreadable) {
                    // dropped all the same; its tenant's set, if any, is found through its other networks
                }
            }
        }
        tenants.forEach(t -> keys.add(RedisKeys.tenantNetworks(t)));
        long changes = 0;
        final int page = 10_000;
        for (long from = 0; ; from += page) {
            List<String> ids = redis.zrange(RedisKeys.changeExpiry(), from, from + page - 1);
            ids.forEach(c -> keys.add(RedisKeys.change(c)));
            changes += ids.size();
            if (ids.size() < page) {
                break;
            }
        }
        for (int p = 0; p < partitions; p++) {
            keys.add(RedisKeys.checkpoint(p));
        }
        keys.addAll(List.of(RedisKeys.hosts(), RedisKeys.networks(), RedisKeys.views(), RedisKeys.changeExpiry()));
        for (String key : keys) {
            if (!derivedFromLog(key)) {
                throw new IllegalStateException("not a key the log determines, refusing to drop it: " + key);
            }
        }
        return new Derived(keys, hosts.size(), networks.size(), tenants.size(), changes);
    }

    /**
     * Adds to {@link RedisKeys#appliedHosts()} every host of {@link RedisKeys#hosts()} with an applied
     * state (a Redis written before that index existed); returns how many were not in it. A host that
     * reported without ever having a fragment is added by its next report.
     */
    static long indexAppliedHosts(UnifiedJedis redis) {
        List<String> hosts = new ArrayList<>(redis.smembers(RedisKeys.hosts()));
        List<redis.clients.jedis.Response<Boolean>> exists = new ArrayList<>(hosts.size());
        try (redis.clients.jedis.AbstractPipeline p = redis.pipelined()) {
            hosts.forEach(h -> exists.add(p.exists(RedisKeys.hostApplied(h))));
            p.sync();
        }
        List<String> reporting = new ArrayList<>();
        for (int i = 0; i < hosts.size(); i++) {
            if (exists.get(i).get()) {
                reporting.add(hosts.get(i));
            }
        }
        return reporting.isEmpty() ? 0 : redis.sadd(RedisKeys.appliedHosts(), reporting.toArray(String[]::new));
    }

    /** Deletes the keys, one DEL each (keys of many slots), pipelined in pages; returns how many existed. */
    private static long delete(UnifiedJedis redis, List<String> keys) {
        long deleted = 0;
        final int page = 1_000;
        for (int from = 0; from < keys.size(); from += page) {
            List<redis.clients.jedis.Response<Long>> replies = new ArrayList<>(page);
            try (redis.clients.jedis.AbstractPipeline p = redis.pipelined()) {
                keys.subList(from, Math.min(keys.size(), from + page)).forEach(k -> replies.add(p.del(k)));
                p.sync();
            }
            for (redis.clients.jedis.Response<Long> r : replies) {
                deleted += r.get();
            }
        }
        return deleted;
    }

    /**
     * Whether the compiler writes {@code key} from the log alone (so a replay writes it again): fragments
     * and their versions, interface indexes, the host index, network views, tenant indexes, change
     * statuses, checkpoints. Everything else under {@code egress:} is {@link #kept}.
     */
    static boolean derivedFromLog(String key) {
        if (kept(key)) {
            return false;
        }
        return key.startsWith("egress:host:{") && (key.endsWith("}:fragments") || key.endsWith("}:versions") || key.endsWith("}:interfaces"))
                || key.equals(RedisKeys.hosts())
                || key.equals(RedisKeys.networks())
                || key.equals(RedisKeys.views())
                || key.equals(RedisKeys.changeExpiry())
                || key.startsWith("egress:network:{")
                || key.startsWith("egress:tenant:")
                || key.startsWith("egress:change:")
                || key.startsWith("egress:checkpoint:");
    }

    /**
     * What the log cannot give back, never deleted: idempotency claims and first results, network name
     * claims (which tenant holds a bare network id), the CloudStack
     * endpoint's async job records, request fingerprints (replay protection) and custom ids, hosts' applied
     * state and its index (folded from the agents' reports, not from the network events log), the
     * partitions' fencing epochs, the generation marker and the rebuild markers (the compiler's own).
     */
    static boolean kept(String key) {
        return key.startsWith("egress:idem:") || key.startsWith("egress:cs:") || key.startsWith("egress:name:{")
                || key.startsWith("egress:host:{") && key.endsWith("}:applied") || key.equals(RedisKeys.appliedHosts())
                || key.startsWith("egress:{control}:")
                // fencing epochs only ever grow: one dropped would let a stale compiler's writes through
                || key.startsWith("egress:epoch:");
    }

    int waitAndCompare(Path file, String group, int timeoutSeconds) throws Exception {
        Map<String, String> before = new TreeMap<>();
        for (String line : Files.readAllLines(file)) {
            int i = line.lastIndexOf(' ');
            before.put(line.substring(0, i), line.substring(i + 1));
        }
        long started = System.nanoTime();
        try (Admin admin = Admin.create(io.egressctl.schemas.serde.KafkaDefaults.client(env.kafkaBootstrap()))) {
            long total = -1;
            while (true) {
                long lag = lag(admin, group);
                long end = endTotal(admin);
                if (total < 0) {
                    total = end;
                }
                double s = (System.nanoTime() - started) / 1e9;
                out.printf("\rreplaying: %,d of %,d events, lag %,d (%.1f s)   ", end - lag, end, lag, s);
                if (lag == 0 && rebuildingPartitions().isEmpty()) {
                    break;
                }
                if (s > timeoutSeconds) {
                    out.println();
                    out.println("timed out waiting for the compiler group " + group);
                    return 1;
                }
                Thread.sleep(500);
            }
            out.println();
        }
        // The last batch's writes land before its offsets are committed; give the group a moment.
        Map<String, String> fromLog = expectedFromLog();
        Map<String, String> rebuilt = contentState();
        for (int i = 0; i < 40 && !rebuilt.equals(fromLog); i++) {
            Thread.sleep(250);
            rebuilt = contentState();
        }
        List<String> differ = differences(fromLog, rebuilt);
        long hostsDiffer = differ.stream().filter(k -> k.startsWith("host ")).count();
        long fragmentsDiffer = differ.size() - hostsDiffer;
        long hosts = fromLog.keySet().stream().filter(k -> k.startsWith("host ")).count();
        out.printf("rebuilt in %.1f s: %d hosts with VMs in the log; against the log: host hashes %s, fragments %s%n",
                (System.nanoTime() - started) / 1e9, hosts,
                hostsDiffer == 0 ? "identical" : "DIFFER (" + hostsDiffer + ")", fragmentsDiffer == 0 ? "identical" : "DIFFER (" + fragmentsDiffer + ")");
        Map<String, String> held = rebuilt;
        differ.stream().limit(20).forEach(k -> out.println("  differs from the log: " + k + " (log " + fromLog.get(k) + ", redis "
                + held.get(k) + ")"));
        // For information: the snapshot recorded before the drop (Redis may have lost state before it was taken).
        Map<String, String> after = state();
        List<String> sinceSnapshot = differences(before, after);
        long beforeHosts = before.keySet().stream().filter(k -> k.startsWith("host ")).count();
        out.printf("against the snapshot taken before the drop (%d hosts): %s%n", beforeHosts,
                sinceSnapshot.isEmpty() ? "byte-identical"
                        : sinceSnapshot.size() + " entries differ" + (beforeHosts == 0 ? " (Redis held nothing before the drop)" : ""));
        return differ.isEmpty() ? 0 : 1;
    }

    /** Partitions the compiler still marks as rebuilding ({@code egress:{control}:rebuilding}). */
    private Set<String> rebuildingPartitions() {
        try (UnifiedJedis redis = io.egressctl.schemas.redis.RedisClients.create(env.redisUrl())) {
            return redis.hkeys(RedisKeys.rebuilding());
        }
    }

    private static List<String> differences(Map<String, String> a, Map<String, String> b) {
        List<String> differ = new ArrayList<>();
        Set<String> keys = new java.util.TreeSet<>(a.keySet());
        keys.addAll(b.keySet());
        for (String k : keys) {
            if (!java.util.Objects.equals(a.get(k), b.get(k))) {
                differ.add(k);
            }
        }
        return differ;
    }

    /**
     * What the log determines: every network folded from the network events log (to its end offsets
     * now) and compiled; "fragment H/N" to the fragment's content hash and "host H" to the host hash, for
     * hosts with at least one live fragment.
     */
    Map<String, String> expectedFromLog() {
        io.egressctl.cli.audit.replay.Replay replay = new io.egressctl.cli.audit.replay.Replay(
                new io.egressctl.schemas.registry.HttpSchemaRegistryClient(env.schemaRegistryUrl()));
        java.util.Properties props = new java.util.Properties();
        props.putAll(io.egressctl.schemas.serde.KafkaDefaults.client(env.kafkaBootstrap()));
        props.put(org.apache.kafka.clients.consumer.ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        try (var consumer = new org.apache.kafka.clients.consumer.KafkaConsumer<>(props,
                new org.apache.kafka.common.serialization.ByteArrayDeserializer(), new org.apache.kafka.common.serialization.ByteArrayDeserializer())) {
            List<TopicPartition> tps = consumer.partitionsFor(Topics.NETWORK_EVENTS).stream()
                    .map(i -> new TopicPartition(Topics.NETWORK_EVENTS, i.partition())).toList();
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> end = consumer.endOffsets(tps);
            while (tps.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp))) {
                for (var r : consumer.poll(java.time.Duration.ofMillis(200))) {
                    if (r.offset() < end.get(new TopicPartition(r.topic(), r.partition()))) {
                        replay.event(r.topic(), r.key(), r.value(), r.offset());
                    }
                }
            }
        }
        Map<String, TreeMap<String, io.egressctl.core.compile.Fragment>> byHost = new TreeMap<>();
        io.egressctl.core.compile.FragmentCompiler compiler = new io.egressctl.core.compile.FragmentCompiler();
        for (io.egressctl.core.state.NetworkState s : replay.states().values()) {
            if (s.network() != null) {
                compiler.compile(s).forEach((host, f) -> byHost.computeIfAbsent(host, h -> new TreeMap<>()).put(s.networkId(), f));
            }
        }
        return contentHashes(byHost);
    }

    /** What Redis holds, in the form of {@link #expectedFromLog}: live fragments only. */
    Map<String, String> contentState() {
        Map<String, TreeMap<String, io.egressctl.core.compile.Fragment>> byHost = new TreeMap<>();
        try (UnifiedJedis redis = io.egressctl.schemas.redis.RedisClients.create(env.redisUrl())) {
            for (String host : redis.smembers(RedisKeys.hosts())) {
                redis.hgetAll(RedisKeys.hostFragments(host).getBytes(StandardCharsets.UTF_8)).forEach((k, v) -> {
                    String network = new String(k, StandardCharsets.UTF_8);
                    try {
                        HostUpdate u = HostUpdate.fromByteBuffer(java.nio.ByteBuffer.wrap(v));
                        if (!u.getTombstone() && u.getFragment() != null) {
                            byHost.computeIfAbsent(host, h -> new TreeMap<>())
                                    .put(network, io.egressctl.schemas.mapping.EventMapper.fromAvro(network, u.getFragment()));
                        }
                    } catch (IOException e) {
                        byHost.computeIfAbsent(host, h -> new TreeMap<>());
                    }
                });
            }
        }
        byHost.values().removeIf(Map::isEmpty);
        return contentHashes(byHost);
    }

    private static Map<String, String> contentHashes(Map<String, TreeMap<String, io.egressctl.core.compile.Fragment>> byHost) {
        Map<String, String> out = new TreeMap<>();
        byHost.forEach((host, fragments) -> {
            fragments.forEach((n, f) -> out.put("fragment " + host + "/" + n, f.hash()));
            out.put("host " + host, io.egressctl.core.host.HostState.hashOf(fragments));
        });
        return out;
    }

    private static long lag(Admin admin, String group) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        Map<TopicPartition, Long> ends = ends(admin);
        long lag = 0;
        for (Map.Entry<TopicPartition, Long> e : ends.entrySet()) {
            OffsetAndMetadata c = committed.get(e.getKey());
            lag += e.getValue() - (c == null ? 0 : c.offset());
        }
        return lag;
    }

    private static long endTotal(Admin admin) throws Exception {
        return ends(admin).values().stream().mapToLong(Long::longValue).sum();
    }

    private static Map<TopicPartition, Long> ends(Admin admin) throws Exception {
        Map<TopicPartition, OffsetSpec> request = new TreeMap<>(java.util.Comparator.comparing(TopicPartition::toString));
        for (String topic : List.of(Topics.NETWORK_EVENTS)) {
            int partitions = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size();
            for (int p = 0; p < partitions; p++) {
                request.put(new TopicPartition(topic, p), OffsetSpec.latest());
            }
        }
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> r = admin.listOffsets(request).all().get();
        Map<TopicPartition, Long> out = new java.util.HashMap<>();
        r.forEach((tp, info) -> out.put(tp, info.offset()));
        return out;
    }

    private static String option(String[] args, String name, String fallback) {
        for (int i = 0; i < args.length - 1; i++) {
            if (args[i].equals(name)) {
                return args[i + 1];
            }
        }
        return fallback;
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
