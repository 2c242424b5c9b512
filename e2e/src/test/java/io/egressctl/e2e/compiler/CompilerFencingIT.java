package io.egressctl.e2e.compiler;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.e2e.support.ControlPlane;
import io.egressctl.schemas.serde.Topics;
import io.egressctl.schemas.view.RedisKeys;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.UnifiedJedis;
import tools.jackson.databind.json.JsonMapper;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Fencing (invariant 2: a compiler that lost ownership writes nothing that lands), with real
 * processes and a real SIGSTOP. Compiler A of a consumer group of this test compiles the log into a
 * Redis database of its own and is frozen with SIGSTOP while it holds state it has not checkpointed
 * (its checkpoint interval is ten minutes). Past A's session timeout the group gives every partition
 * to compiler B, which claims them (a new epoch each), replays, compiles new changes and checkpoints
 * them. Then A is continued: its consumer learns it lost its partitions and, on that revocation, tries
 * to write its checkpoints (at older offsets than B's). Those writes must be refused: no checkpoint
 * offset ever goes back, B's change statuses are not rewritten, the snapshots equal what the
 * fixture's own compiler wrote from the same log, and A counts the refusal
 * ({@code egress_compiler_fenced_total}).
 */
class CompilerFencingIT {

    static final int DB = 3;
    static ControlPlane cp;
    static String group;
    static final List<String> networks = new ArrayList<>();
    static final List<String> hosts = new ArrayList<>();
    static final List<String> changes = new ArrayList<>();

    static Map<String, String> env(String name, String checkpointIntervalMs) {
        return Map.of("REDIS_URL", cp.env("REDIS_URL") + "/" + DB,
                "EGRESS_COMPILER_GROUP", group,
                "EGRESS_COMPILER_STATUS_GROUP", group + "-status-" + name,
                "EGRESS_CHECKPOINT_INTERVAL_MS", checkpointIntervalMs,
                "EGRESS_SESSION_TIMEOUT_MS", "6000",
                "EGRESS_HEARTBEAT_INTERVAL_MS", "1000");
    }

    @AfterAll
    static void stop() {
        if (cp == null) {
            return;
        }
        try {
            cp.signal("compiler-fa", "CONT");
        } catch (IllegalStateException ignored) {
            // not started or already gone
        }
        cp.stopProcess("compiler-fa", false);
        cp.stopProcess("compiler-fb", false);
    }

    @Test
    void aCompilerContinuedAfterItsPartitionsMovedWritesNothingThatLands() throws Exception {
        cp = ControlPlane.shared();
        group = cp.unique("fencing");
        try (UnifiedJedis db = new UnifiedJedis(URI.create(cp.env("REDIS_URL") + "/" + DB))) {
            db.flushDB();
        }
        cp.startCompiler("compiler-fa", env("a", "600000"));
        ApiClient api = cp.api();
        for (int i = 0; i < 3; i++) {
            hosts.add(cp.unique("zh" + i));
        }
        for (int n = 0; n < 6; n++) {
            String net = cp.unique("znet" + n);
            networks.add(net);
            assertThat(api.post("/api/v1/networks", cp.tenantKey(), Map.of("networkId", net, "guestCidr", "10.40." + n + ".0/24")).status())
                    .isEqualTo(202);
            for (int v = 0; v < 2; v++) {
                ApiClient.Response r = api.put("/api/v1/networks/" + net + "/placements/vm" + v, cp.operatorKey(),
                        ControlPlane.placement(hosts.get((n + v) % hosts.size()), "tap-z" + n + "-" + v, "10.40." + n + "." + (10 + v)));
                assertThat(r.status()).as("%s", r.body()).isEqualTo(202);
            }
        }
        try (UnifiedJedis db0 = new UnifiedJedis(URI.create(cp.env("REDIS_URL")));
             UnifiedJedis db = new UnifiedJedis(URI.create(cp.env("REDIS_URL") + "/" + DB))) {
            // The rule-service checks a rule against its network's view, which the fixture's compiler writes.
            assertThat(ControlPlane.eventually(Duration.ofSeconds(60), () -> !versions(db0).containsValue(null))).isTrue();
            postRules(api, 0, 12);
            assertThat(ControlPlane.eventually(Duration.ofSeconds(90), () -> versions(db).equals(versions(db0)) && !versions(db).containsValue(null)))
                    .as("compiler A compiled everything").isTrue();

            // A freezes (no heartbeats) holding state it has not checkpointed; B takes every partition over.
            cp.signal("compiler-fa", "STOP");
            cp.startCompiler("compiler-fb", env("b", "0")); // a checkpoint after every batch
            postRules(api, 12, 24);
            Map<Integer, Long> ends = endOffsets();
            assertThat(ControlPlane.eventually(Duration.ofSeconds(90), () -> versions(db).equals(versions(db0))
                    && ends.entrySet().stream().allMatch(e -> checkpointOffset(db, e.getKey()) >= e.getValue())))
                    .as("B compiled the new changes and checkpointed every partition at the end of the log").isTrue();
            Map<Integer, Long> bCheckpoints = new TreeMap<>();
            ends.keySet().forEach(p -> bCheckpoints.put(p, checkpointOffset(db, p)));
            Map<String, String> statuses = statuses(db);

            // A goes on: it finds its partitions lost and tries to checkpoint them on revocation.
            Map<Integer, Long> lowest = new ConcurrentHashMap<>(bCheckpoints);
            AtomicBoolean watching = new AtomicBoolean(true);
            Thread watcher = new Thread(() -> {
                try (UnifiedJedis w = new UnifiedJedis(URI.create(cp.env("REDIS_URL") + "/" + DB))) {
                    while (watching.get()) {
                        bCheckpoints.keySet().forEach(p -> lowest.merge(p, checkpointOffset(w, p), Math::min));
                        ControlPlane.sleep(5);
                    }
                }
            });
            watcher.start();
            cp.signal("compiler-fa", "CONT");
            boolean refused = ControlPlane.eventually(Duration.ofSeconds(60), () -> fencedCount(cp.port("compiler-fa")) >= 1);
            ControlPlane.sleep(8000); // the group settles: A joins again, the partitions are split between A and B
            watching.set(false);
            watcher.join();

            assertThat(lowest).as("no checkpoint went back to an offset before B's").isEqualTo(bCheckpoints);
            assertThat(statuses(db)).as("no change status rewritten by A").isEqualTo(statuses);
            assertThat(refused).as("A tried to write after it lost its partitions and was refused (egress_compiler_fenced_total)").isTrue();
            assertThat(versions(db)).isEqualTo(versions(db0));
            assertThat(CompilerFailoverIT.differences(fragments(db0), fragments(db))).as("snapshots that differ from the log's").isEmpty();

            // A, a member again, compiles what the group gives it: a change after all this lands everywhere.
            postRules(api, 24, 30);
            assertThat(ControlPlane.eventually(Duration.ofSeconds(60), () -> versions(db).equals(versions(db0)))).isTrue();
        }
    }

    static void postRules(ApiClient api, int from, int to) {
        for (int i = from; i < to; i++) {
            String net = networks.get(i % networks.size());
            ApiClient.Response r = api.post("/api/v1/networks/" + net + "/egress-rules", cp.tenantKey(),
                    Map.of("protocol", "tcp", "startPort", 2000 + i, "sourceCidrs", List.of("10.40." + (i % networks.size()) + ".10/32")));
            assertThat(r.status()).as("%s", r.body()).isEqualTo(202);
            changes.add(r.text("changeId"));
        }
    }

    static Map<String, String> versions(UnifiedJedis redis) {
        Map<String, String> out = new TreeMap<>();
        networks.forEach(n -> out.put(n, redis.hget(RedisKeys.network(n), "version")));
        return out;
    }

    static Map<String, String> statuses(UnifiedJedis redis) {
        Map<String, String> out = new TreeMap<>();
        changes.forEach(c -> out.put(c, redis.get(RedisKeys.change(c))));
        return out;
    }

    /** Every host's stored fragments (hex) and versions. */
    static Map<String, String> fragments(UnifiedJedis redis) {
        Map<String, String> out = new TreeMap<>();
        for (String h : hosts) {
            redis.hgetAll(RedisKeys.hostFragments(h).getBytes(java.nio.charset.StandardCharsets.UTF_8))
                    .forEach((k, v) -> out.put(h + "/" + new String(k, java.nio.charset.StandardCharsets.UTF_8), java.util.HexFormat.of().formatHex(v)));
            redis.hgetAll(RedisKeys.hostVersions(h)).forEach((k, v) -> out.put(h + "/v/" + k, v));
        }
        return out;
    }

    static long checkpointOffset(UnifiedJedis redis, int partition) {
        String json = redis.get(RedisKeys.checkpoint(partition));
        return json == null ? -1 : JsonMapper.builder().build().readTree(json).get("offset").asLong();
    }

    static Map<Integer, Long> endOffsets() {
        try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, cp.env("KAFKA_BOOTSTRAP_SERVERS")),
                new StringDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> tps = c.partitionsFor(Topics.NETWORK_EVENTS).stream()
                    .map(p -> new TopicPartition(Topics.NETWORK_EVENTS, p.partition())).toList();
            Map<Integer, Long> out = new TreeMap<>();
            c.endOffsets(tps).forEach((tp, o) -> out.put(tp.partition(), o));
            return out;
        }
    }

    /** A's egress_compiler_fenced_total (0 when absent or unreachable). */
    static double fencedCount(int port) {
        try {
            HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/actuator/prometheus"))
                    .timeout(Duration.ofSeconds(2)).build(), HttpResponse.BodyHandlers.ofString());
            return r.body().lines().filter(l -> l.startsWith("egress_compiler_fenced_total")).mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
                    .sum();
        } catch (Exception e) {
            return 0;
        }
    }
}
