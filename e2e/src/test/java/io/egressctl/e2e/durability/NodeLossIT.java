package io.egressctl.e2e.durability;

import io.egressctl.cli.Env;
import io.egressctl.cli.api.ApiClient;
import io.egressctl.cli.chaos.ChaosSuite;
import io.egressctl.cli.chaos.FaultInjector;
import io.egressctl.e2e.support.ControlPlane;
import io.egressctl.testinfra.Infrastructure;
import io.egressctl.schemas.redis.RedisClients;
import io.egressctl.schemas.redis.RedisTarget;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartitionInfo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import redis.clients.jedis.HostAndPort;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The loss of a node (issue 15, "Clusters, locally"): a cluster of its own, started with
 * {@code scripts/stack.sh up} and {@code EGRESS_BROKERS=3} (scripts/cluster.sh: three KRaft brokers,
 * replication factor 3, min.insync.replicas 2; a Redis primary, two replicas and three Sentinels) beside
 * the stack's schema registry, with compiler-service, rule-service and three agents on it (two for the
 * suite's VMs, one for the probe's). The fault suite's bounded bursts ({@link ChaosSuite}) run while
 * first the broker that leads most partitions of the network events log and then the Redis primary are
 * killed with SIGKILL (and left down for the rest of the round); nothing accepted may be lost or applied
 * twice, every host must converge, and {@code audit verify --all} (the suite's hosts) and
 * {@code audit replay-check} (the round's network) must pass after each, and both over the whole
 * cluster at the end. A probe change with {@code wait=applied} is made every 300 ms throughout, for the
 * time each loss costs and the end-to-end latency during and after.
 */
@Timeout(420)
class NodeLossIT {

    static final int CHANGES = 16;
    static final java.util.concurrent.atomic.AtomicInteger RUNS = new java.util.concurrent.atomic.AtomicInteger();

    static Path root;
    static Path home;
    static Map<String, String> stackEnv;
    static Map<String, String> endpoints;
    static ControlPlane cp;
    static final List<String> hosts = new ArrayList<>();
    static String probeNet;
    static String probeHost;

    @BeforeAll
    static void cluster() throws Exception {
        Infrastructure.assumeStack("it starts a three-broker cluster of its own with scripts/stack.sh and kills its nodes");
        root = Path.of("").toAbsolutePath().getParent();
        home = root.resolve("e2e/target/node-loss-" + Integer.toHexString(ThreadLocalRandom.current().nextInt(1 << 20)));
        Files.createDirectories(home);
        // The stack's jars (Kafka, the registry's): no second download.
        Path stackHome = Path.of(System.getenv().getOrDefault("EGRESS_HOME", root.resolve("target/egressctl-test").toString()));
        if (Files.isDirectory(stackHome.resolve("lib"))) {
            Files.createSymbolicLink(home.resolve("lib"), stackHome.resolve("lib").toAbsolutePath());
        }
        stackEnv = new LinkedHashMap<>();
        stackEnv.put("EGRESS_HOME", home.toString());
        stackEnv.put("EGRESS_BROKERS", "3");
        stackEnv.put("EGRESS_CLUSTER_REGISTRY_URL", Infrastructure.get().env("SCHEMA_REGISTRY_URL"));
        stackEnv.put("EGRESS_KAFKA_HEAP_OPTS", "-Xms64m -Xmx384m");
        List<String> portKeys = List.of("EGRESS_KAFKA_PORT", "EGRESS_KAFKA_CONTROLLER_PORT", "EGRESS_KAFKA_PORT_2",
                "EGRESS_KAFKA_CONTROLLER_PORT_2", "EGRESS_KAFKA_PORT_3", "EGRESS_KAFKA_CONTROLLER_PORT_3", "EGRESS_REGISTRY_PORT",
                "EGRESS_REGISTRY_MGMT_PORT", "EGRESS_REDIS_PORT", "EGRESS_REDIS_PORT_2", "EGRESS_REDIS_PORT_3", "EGRESS_SENTINEL_PORT_1",
                "EGRESS_SENTINEL_PORT_2", "EGRESS_SENTINEL_PORT_3");
        for (String key : portKeys) {
            stackEnv.put(key, String.valueOf(Infrastructure.freePort())); // never the same port twice in this JVM
        }
        long t0 = System.nanoTime();
        stack(240, "up");
        System.out.printf(Locale.ROOT, "node-loss: cluster (3 brokers, Redis primary + 2 replicas + 3 Sentinels) up in %.1f s%n",
                (System.nanoTime() - t0) / 1e9);
        endpoints = new HashMap<>();
        String out = run(List.of("bash", "-c", "eval \"$(bash scripts/stack.sh env)\" && for k in KAFKA_BOOTSTRAP_SERVERS "
                + "SCHEMA_REGISTRY_URL REDIS_URL EGRESS_UPDATE_KEYS EGRESS_TOPIC_REPLICATION_FACTOR EGRESS_TOPIC_MIN_INSYNC_REPLICAS; "
                + "do printf '%s=%s\\n' \"$k\" \"${!k}\"; done"), 60);
        for (String line : out.split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0 && eq < line.length() - 1) {
                endpoints.put(line.substring(0, eq), line.substring(eq + 1));
            }
        }
        assertThat(endpoints.get("KAFKA_BOOTSTRAP_SERVERS")).as("env: %s", out).contains(",");
        assertThat(endpoints.get("REDIS_URL")).startsWith("redis-sentinel://");
        assertThat(endpoints.get("EGRESS_TOPIC_REPLICATION_FACTOR")).isEqualTo("3");
        cp = ControlPlane.startOn(endpoints);
        // Two hosts for the suite's VMs (each change of a burst reaches one or both), one for the probe:
        // every agent is a JVM, and the test must fit CI's budget on two cores.
        for (int i = 0; i < 2; i++) {
            hosts.add(cp.unique("nl" + i));
        }
        // The probe's VM has a host of its own: the suite's per-round checks (narrowed to its hosts and
        // its round's network) never race the probe's changes; the whole cluster is checked at the end.
        probeHost = cp.unique("nlp");
        List<String> all = new ArrayList<>(hosts);
        all.add(probeHost);
        cp.startAgents(all);
        ApiClient api = cp.api();
        probeNet = cp.unique("probe");
        assertThat(api.post("/api/v1/networks?wait=compiled&timeout=60s", cp.tenantKey(),
                Map.of("networkId", probeNet, "guestCidr", "10.43.0.0/24")).status()).isEqualTo(201);
        ApiClient.Response p = api.put("/api/v1/networks/" + probeNet + "/placements/pvm?wait=applied&timeout=60s", cp.operatorKey(),
                ControlPlane.placement(probeHost, "tap-probe", "10.43.0.10"));
        assertThat(p.status()).as("%s", p.body()).isEqualTo(200);
    }

    @AfterAll
    static void down() throws Exception {
        if (cp != null) {
            cp.stop();
        }
        if (stackEnv != null) {
            // A quorum that loses two of three nodes at once cannot finish a controlled shutdown: the
            // brokers get SIGKILL after this many seconds (their data is thrown away with the test's).
            stackEnv.put("EGRESS_STOP_TIMEOUT", "3");
            stack(120, "down");
        }
    }

    /** One probe: a change with wait=applied, from the API call to every agent's ACK. */
    record Sample(long startNanos, long endNanos, boolean ok) {
        double millis() {
            return (endNanos - startNanos) / 1e6;
        }
    }

    /** Kills nodes of the cluster by their pid files, and starts them again after the round. */
    final class NodeFaults implements FaultInjector {
        final Map<String, String> killed = new HashMap<>();
        final Map<String, Long> killedAt = new HashMap<>();

        @Override
        public void inject(String fault) throws Exception {
            String node = switch (fault) {
                case "broker" -> busiestBroker();
                case "redis-primary" -> redisPrimary();
                default -> throw new IllegalArgumentException("fault " + fault + " is not done by this test");
            };
            killed.put(fault, node);
            kill(node);
            killedAt.put(fault, System.nanoTime());
            System.out.println("node-loss: " + fault + ": killed " + node + " (SIGKILL)");
        }

        final List<Thread> restarts = new ArrayList<>();
        final List<Throwable> restartFailures = Collections.synchronizedList(new ArrayList<>());

        /** Starts the killed node again on its data, beside the next round (joined before the final checks). */
        @Override
        public void after(String fault) {
            String node = killed.get(fault);
            if (node == null) {
                return;
            }
            Thread t = new Thread(() -> {
                try {
                    stack(180, "restart", node);
                    System.out.println("node-loss: " + node + " started again");
                } catch (Throwable e) {
                    restartFailures.add(e);
                }
            }, "restart-" + node);
            t.start();
            restarts.add(t);
        }

        void awaitRestarts() throws InterruptedException {
            for (Thread t : restarts) {
                t.join(200_000);
            }
        }
    }

    @Test
    void killingABrokerAndThenTheRedisPrimaryDuringBurstsLosesNothingAndAuditVerifies() throws Exception {
        List<Sample> samples = Collections.synchronizedList(new ArrayList<>());
        AtomicBoolean probing = new AtomicBoolean(true);
        Thread prober = new Thread(() -> probe(samples, probing), "node-loss-probe");
        prober.setDaemon(true);
        prober.start();

        NodeFaults faults = new NodeFaults();
        ByteArrayOutputStream table = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(table, true, StandardCharsets.UTF_8);
        Env env = new Env(cp.apiUrl(), cp.tenantKey(), cp.operatorKey(), endpoints.get("KAFKA_BOOTSTRAP_SERVERS"),
                endpoints.get("SCHEMA_REGISTRY_URL"), endpoints.get("REDIS_URL"), null, hosts);
        ChaosSuite.Options o = new ChaosSuite.Options(List.of("broker", "redis-primary"), CHANGES, Duration.ofSeconds(90),
                Duration.ofSeconds(60), 150, true, true);
        long suiteStart = System.nanoTime();
        ChaosSuite.Result r = new ChaosSuite(env, faults, o, out, System.err).run();
        faults.awaitRestarts();
        assertThat(faults.restartFailures).as("killed nodes started again").isEmpty();
        long suiteEnd = System.nanoTime();
        Thread.sleep(3000); // a few probes on the whole cluster again
        probing.set(false);
        prober.join(30_000);
        String text = table.toString(StandardCharsets.UTF_8);
        System.out.print(text);

        List<Sample> all;
        synchronized (samples) {
            all = List.copyOf(samples);
        }
        StringBuilder figures = new StringBuilder();
        Map<String, Double> recovery = new TreeMap<>();
        for (String fault : List.of("broker", "redis-primary")) {
            Long at = faults.killedAt.get(fault);
            assertThat(at).as("%s was injected", fault).isNotNull();
            // Recovered: the first probe made after the kill that was applied everywhere.
            Sample first = all.stream().filter(s -> s.ok() && s.startNanos() >= at).findFirst().orElse(null);
            assertThat(first).as("a probe after the %s kill was applied", fault).isNotNull();
            double seconds = (first.endNanos() - at) / 1e9;
            recovery.put(fault, seconds);
            List<Sample> window = all.stream().filter(s -> s.startNanos() >= at && s.startNanos() < at + 20_000_000_000L).toList();
            figures.append(String.format(Locale.ROOT, "node-loss: %s (%s) killed: first change applied after the kill %.1f s later; "
                            + "probes in the 20 s after the kill: %d, refused or timed out %d, applied p50 %.0f ms, max %.0f ms%n",
                    fault, faults.killed.get(fault), seconds, window.size(), window.stream().filter(s -> !s.ok()).count(),
                    percentile(window, 50), percentile(window, 100)));
        }
        List<Sample> after = all.stream().filter(s -> s.startNanos() >= suiteEnd).toList();
        List<Sample> quiet = all.stream().filter(s -> s.endNanos() < faults.killedAt.get("broker")).toList();
        figures.append(String.format(Locale.ROOT, "node-loss: probes before the first kill %d (p50 %.0f ms, max %.0f ms); after both nodes "
                        + "were back %d (p50 %.0f ms, max %.0f ms, failed %d); suite %.1f s, %d changes per burst, accepted %d, lost %d, "
                        + "duplicated %d%n", quiet.size(), percentile(quiet, 50), percentile(quiet, 100), after.size(), percentile(after, 50),
                percentile(after, 100), after.stream().filter(s -> !s.ok()).count(), (suiteEnd - suiteStart) / 1e9, CHANGES,
                r.rows().stream().mapToInt(ChaosSuite.Row::accepted).sum(), r.lost(), r.duplicated()));
        System.out.print(figures);

        // Everything the cluster holds, once nothing writes: audit verify --all and replay-check, unscoped.
        Env whole = new Env(cp.apiUrl(), cp.tenantKey(), cp.operatorKey(), endpoints.get("KAFKA_BOOTSTRAP_SERVERS"),
                endpoints.get("SCHEMA_REGISTRY_URL"), endpoints.get("REDIS_URL"), null, List.of());
        assertThat(audit(whole, "verify", "--all")).as("audit verify --all over the whole cluster").isZero();
        assertThat(audit(whole, "replay-check")).as("audit replay-check over the whole cluster").isZero();

        assertThat(r.rows()).extracting(ChaosSuite.Row::fault).containsExactly("broker", "redis-primary");
        for (ChaosSuite.Row row : r.rows()) {
            assertThat(row.error()).as("%s: error\n%s", row.fault(), text).isNull();
            assertThat(row.accepted()).as("%s: accepted changes", row.fault()).isPositive();
            assertThat(row.converged()).as("%s: converged within 90 s\n%s", row.fault(), text).isTrue();
            assertThat(row.lost()).as("%s: accepted changes lost\n%s", row.fault(), text).isZero();
            assertThat(row.duplicated()).as("%s: duplicated effects\n%s", row.fault(), text).isZero();
            assertThat(row.verify()).as("%s: audit verify --all\n%s", row.fault(), text).isEqualTo("ok");
            assertThat(row.replay()).as("%s: audit replay-check\n%s", row.fault(), text).isEqualTo("ok");
        }
        assertThat(r.finalLost()).as("lost in the final state\n%s", text).isZero();
        assertThat(r.exitCode()).isZero();
        recovery.forEach((fault, s) -> assertThat(s).as("%s: time until a change is applied again", fault).isLessThan(60));
        assertThat(after).as("probes once both nodes were back").isNotEmpty().allMatch(Sample::ok);
    }

    private static int audit(Env env, String... args) {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(buf, true, StandardCharsets.UTF_8);
        int code = io.egressctl.cli.audit.AuditCommand.run(env, args, ps, ps, java.time.Clock.systemUTC(), false);
        String text = buf.toString(StandardCharsets.UTF_8);
        System.out.println("node-loss: audit " + String.join(" ", args) + " exited " + code + ": "
                + text.lines().reduce((a, b) -> b).orElse(""));
        if (code != 0) {
            System.out.print(text);
        }
        return code;
    }

    /** Creates and deletes a rule on the probe network, each with wait=applied, until told to stop. */
    private static void probe(List<Sample> samples, AtomicBoolean probing) {
        ApiClient api = cp.api();
        String ruleId = null;
        int port = 1000;
        while (probing.get()) {
            long t0 = System.nanoTime();
            boolean ok = false;
            try {
                if (ruleId == null) {
                    // 201 once every affected agent applied it; 202 when the timeout passed first.
                    ApiClient.Response c = api.post("/api/v1/networks/" + probeNet + "/egress-rules?wait=applied&timeout=20s", cp.tenantKey(),
                            Map.of("protocol", "tcp", "startPort", port++));
                    ok = c.status() == 201;
                    if (c.status() == 201 || c.status() == 202) {
                        ruleId = c.text("ruleId");
                    }
                } else {
                    ApiClient.Response d = api.delete("/api/v1/networks/" + probeNet + "/egress-rules/" + ruleId + "?wait=applied&timeout=20s",
                            cp.tenantKey());
                    ok = d.status() == 200 || d.status() == 204;
                    if (d.status() < 300 || d.status() == 404) {
                        ruleId = null;
                    }
                }
            } catch (RuntimeException e) {
                ok = false;
            }
            samples.add(new Sample(t0, System.nanoTime(), ok));
            try {
                Thread.sleep(300);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    private static double percentile(List<Sample> samples, int p) {
        List<Double> ok = samples.stream().filter(Sample::ok).map(Sample::millis).sorted().toList();
        if (ok.isEmpty()) {
            return Double.NaN;
        }
        int i = (int) Math.ceil(p / 100.0 * ok.size()) - 1;
        return ok.get(Math.max(0, Math.min(ok.size() - 1, i)));
    }

    /** The broker (kafka, kafka2 or kafka3) that leads most partitions of the network events log. */
    private static String busiestBroker() throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, endpoints.get("KAFKA_BOOTSTRAP_SERVERS")))) {
            TopicDescription d = admin.describeTopics(List.of("egress.network-events")).allTopicNames().get(30, TimeUnit.SECONDS)
                    .get("egress.network-events");
            Map<Integer, Integer> led = new HashMap<>();
            Set<Integer> replicas = new HashSet<>();
            for (TopicPartitionInfo p : d.partitions()) {
                if (p.leader() != null) {
                    led.merge(p.leader().id(), 1, Integer::sum);
                }
                p.replicas().forEach(n -> replicas.add(n.id()));
                assertThat(p.replicas()).as("replicas of partition %d", p.partition()).hasSize(3);
            }
            int id = led.entrySet().stream().max(Map.Entry.comparingByValue()).orElseThrow().getKey();
            return id == 1 ? "kafka" : "kafka" + id;
        }
    }

    /** The Redis server (redis, redis2 or redis3) the Sentinels name as primary now. */
    private static String redisPrimary() {
        HostAndPort primary = RedisClients.primary(RedisTarget.parse(endpoints.get("REDIS_URL")));
        String port = String.valueOf(primary.getPort());
        if (port.equals(stackEnv.get("EGRESS_REDIS_PORT"))) {
            return "redis";
        }
        return port.equals(stackEnv.get("EGRESS_REDIS_PORT_2")) ? "redis2" : "redis3";
    }

    private static void kill(String node) throws Exception {
        String pid = Files.readString(home.resolve("pids").resolve(node + ".pid")).strip();
        int rc = new ProcessBuilder("kill", "-KILL", pid).inheritIO().start().waitFor();
        assertThat(rc).as("kill -KILL %s (%s)", pid, node).isZero();
    }

    private static void stack(int timeoutSeconds, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("bash", "scripts/stack.sh"));
        cmd.addAll(List.of(args));
        run(cmd, timeoutSeconds);
    }

    private static String run(List<String> cmd, int timeoutSeconds) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(root.toFile()).redirectErrorStream(true);
        pb.environment().putAll(stackEnv);
        Path log = home.resolve("run-" + RUNS.incrementAndGet() + ".out");
        pb.redirectOutput(log.toFile());
        Process p = pb.start();
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException(String.join(" ", cmd) + " did not finish within " + timeoutSeconds + " s:\n" + Files.readString(log));
        }
        String out = Files.readString(log);
        if (p.exitValue() != 0) {
            throw new IllegalStateException(String.join(" ", cmd) + " exited with " + p.exitValue() + ":\n" + out);
        }
        return out;
    }
}
