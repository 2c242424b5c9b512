package io.egressctl.e2e.durability;

import io.egressctl.cli.Env;
import io.egressctl.cli.api.ApiClient;
import io.egressctl.cli.audit.AuditCommand;
import io.egressctl.e2e.support.ControlPlane;
import io.egressctl.schemas.view.RedisKeys;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import redis.clients.jedis.UnifiedJedis;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Redis loss heals itself (issue 12, item 6), on the real control plane: Redis emptied with
 * {@code FLUSHALL} while everything runs, and again while the compiler is down (as a restart of
 * the whole stack over kept history leaves it: Redis keeps nothing on disk, the topics keep
 * everything). In both the agents keep their tables, the API answers 503 REBUILDING with a
 * Retry-After (never 404 from an empty view) until the compiler has written everything again, and
 * then answers as before; {@code audit verify} fails loudly while expected state is missing and
 * passes afterwards (applied state folded again from the reports).
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class RedisLossIT {

    private static ControlPlane cp;
    private static ApiClient api;
    private static String host;
    private static String network;
    private static String ruleId;

    @BeforeAll
    static void hostNetworkAndRule() {
        cp = ControlPlane.shared();
        api = cp.api();
        host = cp.unique("hv");
        cp.startAgent(host);
        network = cp.unique("net");
        ApiClient.Response r = api.post("/api/v1/networks?wait=compiled&timeout=20s", cp.tenantKey(),
                Map.of("networkId", network, "guestCidr", "10.61.0.0/24"));
        assertThat(r.status()).as("create network: %s", r.body()).isEqualTo(201);
        r = api.put("/api/v1/networks/" + network + "/placements/vm-a?wait=applied&timeout=20s", cp.operatorKey(),
                ControlPlane.placement(host, "tap-rl-a", "10.61.0.11"));
        assertThat(r.status()).as("place: %s", r.body()).isEqualTo(200);
        r = api.post("/api/v1/networks/" + network + "/egress-rules?wait=applied&timeout=20s", cp.tenantKey(),
                Map.of("protocol", "tcp", "startPort", 80, "endPort", 80));
        assertThat(r.status()).as("rule: %s", r.body()).isEqualTo(201);
        ruleId = r.text("ruleId");
        assertThat(cp.ruleset(host)).contains("r=" + ruleId + " ");
    }

    @AfterAll
    static void stopHost() {
        cp.stopAgent(host, false);
    }

    private static UnifiedJedis redis() {
        return new UnifiedJedis(URI.create(cp.env("REDIS_URL")));
    }

    record Run(int code, String out) {
    }

    private static Run audit(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8); PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            code = AuditCommand.run(Env.from(Map.of("KAFKA_BOOTSTRAP_SERVERS", cp.env("KAFKA_BOOTSTRAP_SERVERS"),
                    "SCHEMA_REGISTRY_URL", cp.env("SCHEMA_REGISTRY_URL"), "REDIS_URL", cp.env("REDIS_URL"))), args, o, e, Clock.systemUTC(), false);
        }
        return new Run(code, out.toString(StandardCharsets.UTF_8) + err.toString(StandardCharsets.UTF_8));
    }

    /** GETs the network until it answers 200; every other answer must be 503 REBUILDING with a Retry-After. */
    private static List<Integer> untilServedAgain(Duration timeout) {
        List<Integer> seen = new ArrayList<>();
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            ApiClient.Response r = api.get("/api/v1/networks/" + network, cp.tenantKey());
            if (seen.isEmpty() || seen.get(seen.size() - 1) != r.status()) {
                seen.add(r.status());
            }
            if (r.status() == 200) {
                return seen;
            }
            assertThat(r.status()).as("while Redis is rebuilt the API answers 503, never from an empty view: %s", r.body()).isEqualTo(503);
            assertThat(r.text("code")).isEqualTo("REBUILDING");
            assertThat(r.headers().get("retry-after")).as("Retry-After").isNotNull();
            ControlPlane.sleep(50);
        }
        throw new AssertionError("the API did not answer 200 again within " + timeout + "; answers: " + seen);
    }

    private static void assertServedAsBefore(String rulesBefore) {
        ApiClient.Response rules = api.get("/api/v1/networks/" + network + "/egress-rules", cp.tenantKey());
        assertThat(rules.status()).isEqualTo(200);
        assertThat(rules.body().toString()).isEqualTo(rulesBefore);
        assertThat(ControlPlane.eventually(Duration.ofSeconds(20), () -> audit("verify", "--host", host).code() == 0))
                .as("audit verify of the host passes again: %s", audit("verify", "--host", host, "--all").out()).isTrue();
    }

    @Test
    @Order(1)
    void flushAllWhileRunningHealsWithinSecondsWhileTheAgentKeepsItsTable() {
        String ruleset = cp.ruleset(host);
        String rulesBefore = api.get("/api/v1/networks/" + network + "/egress-rules", cp.tenantKey()).body().toString();
        long start = System.nanoTime();
        try (UnifiedJedis redis = redis()) {
            redis.flushAll();
        }
        // rule-service reads the markers at most every 100 ms
        ControlPlane.sleep(150);
        List<Integer> answers = untilServedAgain(Duration.ofSeconds(60));
        double healed = (System.nanoTime() - start) / 1e9;
        assertThat(answers).as("503 while the compiler rebuilt, then 200").containsExactly(503, 200);
        assertThat(cp.ruleset(host)).as("the agent kept its table").isEqualTo(ruleset);
        try (UnifiedJedis redis = redis()) {
            assertThat(redis.get(RedisKeys.generation())).as("a new generation marker").isNotNull();
        }
        assertServedAsBefore(rulesBefore);
        // and it keeps working: a new rule reaches the host
        ApiClient.Response r = api.post("/api/v1/networks/" + network + "/egress-rules?wait=applied&timeout=20s", cp.tenantKey(),
                Map.of("protocol", "udp", "startPort", 53, "endPort", 53));
        assertThat(r.status()).as("a rule after the heal: %s", r.body()).isEqualTo(201);
        assertThat(r.body().get("status").get("status").asString()).isEqualTo("APPLIED");
        System.out.printf("FLUSHALL while running: API served again after %.1f s (answers %s); agent table unchanged%n", healed, answers);
    }

    @Test
    @Order(2)
    void aRedisEmptiedWhileTheCompilerIsDownFailsVerifyAndTheApiUntilTheRestartedCompilerRebuiltIt() throws Exception {
        String ruleset = cp.ruleset(host);
        String rulesBefore = api.get("/api/v1/networks/" + network + "/egress-rules", cp.tenantKey()).body().toString();
        cp.stopProcess("compiler-service", false);
        try {
            try (UnifiedJedis redis = redis()) {
                redis.flushAll();
            }
            Run verify = audit("verify", "--all");
            assertThat(verify.code()).as("verify with Redis empty: %s", verify.out()).isEqualTo(1);
            assertThat(verify.out()).contains("FAILED: Redis holds no generation marker").contains("missing").doesNotContain(" 0 hosts: 0 ok");
            Run one = audit("verify", "--host", host);
            assertThat(one.code()).as("verify of the host: %s", one.out()).isEqualTo(1);
            assertThat(one.out()).contains("no snapshot of " + network);

            ControlPlane.sleep(150);
            ApiClient.Response get = api.get("/api/v1/networks/" + network, cp.tenantKey());
            assertThat(get.status()).as("GET while nothing is rebuilt: %s", get.body()).isEqualTo(503);
            assertThat(get.text("code")).isEqualTo("REBUILDING");
            ApiClient.Response write = api.post("/api/v1/networks/" + network + "/egress-rules", cp.tenantKey(),
                    Map.of("protocol", "tcp", "startPort", 8443, "endPort", 8443));
            assertThat(write.status()).as("a write is refused rather than checked against an empty view").isEqualTo(503);
            ControlPlane.sleep(1500);
            assertThat(cp.ruleset(host)).as("the agent kept its table while Redis was empty").isEqualTo(ruleset);
            cp.stopAgent(host, false);
        } finally {
            cp.startCompiler("compiler-service", Map.of());
        }
        // The agent starts again while the compiler replays into the empty Redis: its snapshot is empty or
        // partial at first, and it must keep its table (fail closed) rather than apply an empty one.
        List<String> samples = new java.util.concurrent.CopyOnWriteArrayList<>();
        java.util.concurrent.atomic.AtomicBoolean sampling = new java.util.concurrent.atomic.AtomicBoolean(true);
        Thread sampler = new Thread(() -> {
            while (sampling.get()) {
                String now = cp.ruleset(host);
                if (!now.contains("r=" + ruleId + " ")) {
                    samples.add(now);
                }
                ControlPlane.sleep(20);
            }
        });
        sampler.start();
        try {
            cp.startAgent(host);
            untilServedAgain(Duration.ofSeconds(120));
        } finally {
            sampling.set(false);
            sampler.join();
        }
        assertThat(samples).as("rulesets without the rule while the agent bootstrapped on a rebuilding Redis").isEmpty();
        assertThat(cp.ruleset(host)).isEqualTo(ruleset);
        assertServedAsBefore(rulesBefore);
        assertThat(api.get("/api/v1/networks/" + network + "/egress-rules", cp.tenantKey()).body().toString()).doesNotContain("8443");
    }

    @Test
    @Order(3)
    void rebuildKeepsWhatTheLogCannotGiveBackAndChecksItsResultAgainstTheLog() throws Exception {
        String job = "egress:cs:job:" + cp.unique("job");
        String fingerprint = "egress:cs:seen:" + cp.unique("fp");
        String claim = "egress:idem:acme:" + cp.unique("key");
        String view;
        try (UnifiedJedis redis = redis()) {
            redis.hset(job, Map.of("command", "createEgressFirewallRule", "owner", "acme", "network", network));
            redis.setex(fingerprint, 600, "1");
            redis.setex(claim, 600, "{\"status\":201}");
            // A Redis written before the applied-hosts index existed: the drop fills it (no SCAN finds it later).
            assertThat(redis.exists(RedisKeys.hostApplied(host))).as("host %s has an applied state", host).isTrue();
            redis.srem(RedisKeys.appliedHosts(), host);
        }
        view = api.get("/api/v1/networks/" + network, cp.tenantKey()).body().toString();
        String ruleset = cp.ruleset(host);
        Env env = Env.from(Map.of("KAFKA_BOOTSTRAP_SERVERS", cp.env("KAFKA_BOOTSTRAP_SERVERS"),
                "SCHEMA_REGISTRY_URL", cp.env("SCHEMA_REGISTRY_URL"), "REDIS_URL", cp.env("REDIS_URL")));
        java.nio.file.Path before = java.nio.file.Files.createTempFile("rebuild-before", ".txt");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8)) {
            io.egressctl.cli.rebuild.Rebuild rebuild = new io.egressctl.cli.rebuild.Rebuild(env, o);
            assertThat(rebuild.run(new String[] {"snapshot", before.toString()})).isZero();
            cp.stopProcess("compiler-service", false);
            int dropped;
            try {
                dropped = rebuild.run(new String[] {"drop"});
            } finally {
                cp.startCompiler("compiler-service", Map.of());
            }
            assertThat(dropped).as("drop: %s", out).isZero();
            try (UnifiedJedis redis = redis()) {
                assertThat(redis.sismember(RedisKeys.appliedHosts(), host)).as("the drop indexed %s's applied state", host).isTrue();
                assertThat(redis.exists(RedisKeys.hostApplied(host))).as("applied state kept").isTrue();
            }
            int compared = rebuild.run(new String[] {"wait", before.toString(), "--timeout-s", "120"});
            assertThat(compared).as("rebuild wait: %s", out).isZero();
        }
        String report = out.toString(StandardCharsets.UTF_8);
        assertThat(report).contains("against the log: host hashes identical, fragments identical");
        try (UnifiedJedis redis = redis()) {
            assertThat(redis.hgetAll(job)).as("a CloudStack job record survives a rebuild").containsEntry("owner", "acme");
            assertThat(redis.get(fingerprint)).as("a request fingerprint (replay protection) survives").isEqualTo("1");
            assertThat(redis.get(claim)).as("an idempotency claim survives").isNotNull();
            redis.del(job, fingerprint, claim);
        }
        assertThat(cp.ruleset(host)).isEqualTo(ruleset);
        untilServedAgain(Duration.ofSeconds(60));
        assertThat(api.get("/api/v1/networks/" + network, cp.tenantKey()).body().toString()).as("the view, rebuilt from the log")
                .isEqualTo(view);
        System.out.println("rebuild: " + report.replace('\r', '\n').lines().filter(l -> l.startsWith("rebuilt") || l.startsWith("dropped")
                || l.startsWith("against")).toList());
    }
}
