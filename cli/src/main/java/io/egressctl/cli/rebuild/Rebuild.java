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
import redis.clients.jedis.params.ScanParams;
import redis.clients.jedis.resps.ScanResult;

import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
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
 * {@code egressctl rebuild}: drop the Redis cache and let the compiler recompute every snapshot from
 * the log. Three steps, so that the script around it can stop and start the compiler between them:
 * <ol>
 *   <li>{@code snapshot FILE}: record every host's fragments (sha256 of the stored bytes) and host hash;</li>
 *   <li>{@code drop}: with every compiler instance stopped, delete every {@code egress:} key the
 *       compiler writes (idempotency claims stay) and the compiler group's committed offsets;</li>
 *   <li>{@code wait FILE}: show progress while the compiler group replays the input topics, then
 *       compare the rebuilt snapshots with the recorded ones, byte for byte and by host hash.</li>
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
        try (UnifiedJedis redis = new UnifiedJedis(URI.create(env.redisUrl()))) {
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
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, env.kafkaBootstrap()))) {
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
        long deleted = 0;
        try (UnifiedJedis redis = new UnifiedJedis(URI.create(env.redisUrl()))) {
            String cursor = ScanParams.SCAN_POINTER_START;
            ScanParams params = new ScanParams().match(RedisKeys.PREFIX + "*").count(1000);
            do {
                ScanResult<String> page = redis.scan(cursor, params);
                for (String key : page.getResult()) {
                    if (!key.startsWith(RedisKeys.PREFIX + "idem:")) {
                        deleted += redis.del(key);
                    }
                }
                cursor = page.getCursor();
            } while (!cursor.equals(ScanParams.SCAN_POINTER_START));
        }
        out.printf("dropped %d cache keys; the log is untouched%n", deleted);
        return 0;
    }

    int waitAndCompare(Path file, String group, int timeoutSeconds) throws Exception {
        Map<String, String> before = new TreeMap<>();
        for (String line : Files.readAllLines(file)) {
            int i = line.lastIndexOf(' ');
            before.put(line.substring(0, i), line.substring(i + 1));
        }
        long started = System.nanoTime();
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, env.kafkaBootstrap()))) {
            long total = -1;
            while (true) {
                long lag = lag(admin, group);
                long end = endTotal(admin);
                if (total < 0) {
                    total = end;
                }
                double s = (System.nanoTime() - started) / 1e9;
                out.printf("\rreplaying: %,d of %,d events, lag %,d (%.1f s)   ", end - lag, end, lag, s);
                if (lag == 0) {
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
        Map<String, String> after = state();
        for (int i = 0; i < 20 && !after.equals(before); i++) {
            Thread.sleep(250);
            after = state();
        }
        List<String> differ = new ArrayList<>();
        Set<String> keys = new java.util.TreeSet<>(before.keySet());
        keys.addAll(after.keySet());
        for (String k : keys) {
            if (!java.util.Objects.equals(before.get(k), after.get(k))) {
                differ.add(k);
            }
        }
        long hostsDiffer = differ.stream().filter(k -> k.startsWith("host ")).count();
        long fragmentsDiffer = differ.size() - hostsDiffer;
        out.printf("rebuilt in %.1f s: %d hosts, host hashes identical: %s, fragments byte-identical: %s%n",
                (System.nanoTime() - started) / 1e9, after.keySet().stream().filter(k -> k.startsWith("host ")).count(),
                hostsDiffer == 0 ? "yes" : "NO (" + hostsDiffer + " differ)", fragmentsDiffer == 0 ? "yes" : "NO (" + fragmentsDiffer + " differ)");
        differ.stream().limit(20).forEach(k -> out.println("  differs: " + k));
        return differ.isEmpty() ? 0 : 1;
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
