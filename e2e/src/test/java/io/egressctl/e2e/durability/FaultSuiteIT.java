package io.egressctl.e2e.durability;

import io.egressctl.cli.Env;
import io.egressctl.cli.api.ApiClient;
import io.egressctl.cli.audit.AuditCommand;
import io.egressctl.cli.chaos.ChaosSuite;
import io.egressctl.cli.chaos.FaultInjector;
import io.egressctl.e2e.support.ControlPlane;
import io.egressctl.testinfra.Infrastructure;
import io.egressctl.schemas.view.RedisKeys;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import redis.clients.jedis.UnifiedJedis;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The fault suite of {@code ./egressctl chaos} (item "a fault suite that prints figures"), shorter: the
 * suite's own Java part ({@link ChaosSuite}) with few changes and the faults this fixture's processes
 * allow (compiler, agent and rule-service killed with SIGKILL and started again), checked per fault by
 * {@code audit verify} and {@code audit replay-check} narrowed to its hosts and networks; nothing
 * accepted may be lost or applied twice. Then the whole stack restarted over its kept history, twice:
 * every service and agent stopped, {@code scripts/stack.sh down} and {@code up} (Kafka, registry and
 * Redis on their data), everything started again; the network's view, every host's snapshot and applied
 * hash must be what they were, and a change made afterwards must be applied.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(900)
class FaultSuiteIT {

    static ControlPlane cp;
    static final List<String> hosts = new ArrayList<>();

    @BeforeAll
    static void agents() {
        Infrastructure.assumeStack("it kills and restarts the local stack's processes (scripts/stack.sh)");
        cp = ControlPlane.shared();
        for (int i = 0; i < 3; i++) {
            String h = cp.unique("ch" + i);
            cp.startAgent(h);
            hosts.add(h);
        }
    }

    @AfterAll
    static void stopAgents() {
        hosts.forEach(h -> cp.stopAgent(h, false));
    }

    private static Env env() {
        return new Env(cp.apiUrl(), cp.tenantKey(), cp.operatorKey(), cp.env("KAFKA_BOOTSTRAP_SERVERS"), cp.env("SCHEMA_REGISTRY_URL"),
                cp.env("REDIS_URL"), null, hosts);
    }

    /** Faults done to this fixture's processes. */
    static final class FixtureFaults implements FaultInjector {
        @Override
        public void inject(String fault) {
            switch (fault) {
                case "compiler" -> cp.restartProcess("compiler-service", true);
                case "rule-service" -> cp.restartProcess("rule-service", true);
                case "agent" -> cp.restartProcess("agent-" + agentHost(hosts), true);
                default -> throw new IllegalArgumentException("fault " + fault + " is not done by this test");
            }
        }
    }

    @Test
    @Order(1)
    void killingTheCompilerAnAgentAndRuleServiceDuringBurstsLosesAndDuplicatesNothing() {
        ByteArrayOutputStream table = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(table, true, StandardCharsets.UTF_8);
        ChaosSuite.Options o = new ChaosSuite.Options(List.of("compiler", "agent", "rule-service"), 9, Duration.ofSeconds(90),
                Duration.ofSeconds(90), 100, true, true);
        ChaosSuite.Result r = new ChaosSuite(env(), new FixtureFaults(), o, out, System.err).run();
        String text = table.toString(StandardCharsets.UTF_8);
        System.out.print(text);

        assertThat(r.rows()).extracting(ChaosSuite.Row::fault).containsExactly("compiler", "agent", "rule-service");
        for (ChaosSuite.Row row : r.rows()) {
            assertThat(row.error()).as("%s: error", row.fault()).isNull();
            assertThat(row.accepted()).as("%s: accepted changes", row.fault()).isPositive();
            assertThat(row.converged()).as("%s: converged within 90 s", row.fault()).isTrue();
            assertThat(row.lost()).as("%s: accepted changes lost\n%s", row.fault(), text).isZero();
            assertThat(row.duplicated()).as("%s: duplicated effects\n%s", row.fault(), text).isZero();
            assertThat(row.verify()).as("%s: audit verify", row.fault()).isEqualTo("ok");
            assertThat(row.replay()).as("%s: audit replay-check", row.fault()).isEqualTo("ok");
        }
        assertThat(r.finalLost()).as("lost in the final state\n%s", text).isZero();
        assertThat(text).containsPattern("(?m)^summary: faults=3 lost=0 duplicated=0 max_converge_s=\\d+\\.\\d$");
        assertThat(r.exitCode()).isZero();
    }

    @Test
    @Order(2)
    void aWholeStackRestartOverKeptHistoryTwiceBringsBackViewsSnapshotsAndTakesNewChanges() throws Exception {
        ApiClient api = cp.api();
        String net = cp.unique("rnet");
        assertThat(api.post("/api/v1/networks?wait=compiled&timeout=30s", cp.tenantKey(),
                Map.of("networkId", net, "guestCidr", "10.41.0.0/24")).status()).isEqualTo(201);
        for (int v = 0; v < hosts.size(); v++) {
            ApiClient.Response p = api.put("/api/v1/networks/" + net + "/placements/vm" + v + "?wait=applied&timeout=30s", cp.operatorKey(),
                    ControlPlane.placement(hosts.get(v), "tap-r" + v, "10.41.0." + (10 + v)));
            assertThat(p.status()).as("%s", p.body()).isEqualTo(200);
        }
        createRule(api, net, 7001);
        createRule(api, net, 7002);

        for (int restart = 1; restart <= 2; restart++) {
            String view = view(api, net);
            Map<String, String> snapshots = snapshots();
            Map<String, String> applied = appliedHashes();
            assertThat(applied.values()).as("every host applied something before restart %d", restart).doesNotContainNull();

            List<String> names = cp.running();
            for (String n : names) {
                cp.stopProcess(n, false);
            }
            stack("down");
            stack("up");
            // Services first (the compiler, then the API), then the agents, as ./egressctl up does.
            List<String> order = new ArrayList<>(names);
            order.sort(java.util.Comparator.comparingInt(n -> n.startsWith("compiler") ? 0 : n.equals("rule-service") ? 1 : 2));
            for (String n : order) {
                cp.startAgain(n);
            }
            int r = restart;
            assertThat(ControlPlane.eventually(Duration.ofSeconds(90), () -> view(api, net).equals(view)))
                    .as("the network's view after restart %d: %s", r, view(api, net)).isTrue();
            assertThat(ControlPlane.eventually(Duration.ofSeconds(60), () -> snapshots().equals(snapshots)))
                    .as("every host's snapshot, byte for byte, after restart %d", r).isTrue();
            assertThat(ControlPlane.eventually(Duration.ofSeconds(60), () -> appliedHashes().equals(applied)))
                    .as("every host's applied hash after restart %d: %s, was %s", r, appliedHashes(), applied).isTrue();
            assertThat(verify()).as("audit verify of the hosts after restart %d", r).isZero();

            // And the restarted system takes a new change all the way to the agents.
            String ruleId = createRule(api, net, 7100 + restart);
            assertThat(view(api, net)).contains(ruleId);
        }
    }

    private static String createRule(ApiClient api, String net, int port) {
        ApiClient.Response r = api.post("/api/v1/networks/" + net + "/egress-rules?wait=applied&timeout=60s", cp.tenantKey(),
                Map.of("protocol", "tcp", "startPort", port));
        assertThat(r.status()).as("create tcp/%d: %s", port, r.body()).isEqualTo(201);
        assertThat(r.body().path("status").path("status").asString()).isEqualTo("APPLIED");
        return r.text("ruleId");
    }

    /** The network's view (definition, VMs, version) and its rules, as the API answers them. */
    private static String view(ApiClient api, String net) {
        try {
            ApiClient.Response n = api.get("/api/v1/networks/" + net, cp.tenantKey());
            ApiClient.Response rules = api.get("/api/v1/networks/" + net + "/egress-rules", cp.tenantKey());
            return n.status() + " " + n.body() + " " + rules.status() + " " + rules.body();
        } catch (IllegalStateException e) {
            return "no answer: " + e.getMessage();
        }
    }

    /** Every host's fragments (hex of the stored bytes) and versions. */
    private static Map<String, String> snapshots() {
        Map<String, String> out = new TreeMap<>();
        try (UnifiedJedis redis = new UnifiedJedis(URI.create(cp.env("REDIS_URL")))) {
            for (String h : hosts) {
                redis.hgetAll(RedisKeys.hostFragments(h).getBytes(StandardCharsets.UTF_8))
                        .forEach((k, v) -> out.put(h + "/" + new String(k, StandardCharsets.UTF_8), HexFormat.of().formatHex(v)));
                redis.hgetAll(RedisKeys.hostVersions(h)).forEach((k, v) -> out.put(h + "/v/" + k, v));
            }
        } catch (RuntimeException e) {
            out.put("error", e.getMessage());
        }
        return out;
    }

    private static Map<String, String> appliedHashes() {
        Map<String, String> out = new TreeMap<>();
        try (UnifiedJedis redis = new UnifiedJedis(URI.create(cp.env("REDIS_URL")))) {
            for (String h : hosts) {
                out.put(h, redis.hget(RedisKeys.hostApplied(h), "hash"));
            }
        } catch (RuntimeException e) {
            out.put("error", e.getMessage());
        }
        return out;
    }

    private static int verify() {
        List<String> args = new ArrayList<>(List.of("verify", "--all"));
        hosts.forEach(h -> args.addAll(List.of("--host", h)));
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(buf, true, StandardCharsets.UTF_8);
        int code = AuditCommand.run(env(), args.toArray(String[]::new), ps, ps, Clock.systemUTC(), false);
        System.out.print(buf.toString(StandardCharsets.UTF_8));
        return code;
    }

    private static void stack(String command) throws Exception {
        Path root = Path.of("").toAbsolutePath().getParent();
        Path log = Files.createTempFile("stack-", ".log");
        Process p = new ProcessBuilder("bash", root.resolve("scripts/stack.sh").toString(), command).directory(root.toFile())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        assertThat(p.waitFor(6, TimeUnit.MINUTES)).as("stack.sh %s finished in time", command).isTrue();
        String out = Files.readString(log);
        System.out.print(out);
        assertThat(p.exitValue()).as("stack.sh %s: %s", command, out).isZero();
    }
}
