package io.egressctl.e2e.pipeline;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.e2e.support.ControlPlane;
import io.egressctl.schemas.view.RedisKeys;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import redis.clients.jedis.UnifiedJedis;

import java.net.URI;
import java.nio.file.Files;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static io.egressctl.e2e.support.ControlPlane.lineOf;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The whole pipeline on real infrastructure: REST call to rule-service, RuleEvent on Kafka,
 * compiler-service, Redis snapshot and HostUpdate, host agents (dry-run enforcer), enforcement
 * report, change status. Every seed example must reach exactly the hosts of the VMs it names.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class SeedExamplesPipelineIT {

    static ControlPlane cp;
    static ApiClient api;
    static String network;
    static String h1;
    static String h2;
    static String h3;
    static final Map<String, String> ruleIds = new LinkedHashMap<>();

    @BeforeAll
    static void startHostsAndNetwork() {
        cp = ControlPlane.shared();
        api = cp.api();
        h1 = cp.unique("h1");
        h2 = cp.unique("h2");
        h3 = cp.unique("h3");
        for (String h : List.of(h1, h2, h3)) {
            cp.startAgent(h);
        }
        network = cp.unique("net");
        ApiClient.Response r = api.post("/api/v1/networks?wait=compiled&timeout=20s", cp.tenantKey(),
                Map.of("networkId", network, "guestCidr", "10.20.0.0/24"));
        assertThat(r.status()).as("create network: %s", r.body()).isEqualTo(201);
        place("vm-a", "10.20.0.11", h1);
        place("vm-b", "10.20.0.12", h2);
        place("vm-c", "10.20.0.13", h3);
        place("vm-d", "10.20.0.14", h3);
    }

    @AfterAll
    static void stopHosts() {
        for (String h : List.of(h1, h2, h3)) {
            cp.stopAgent(h, false);
        }
    }

    static void place(String vm, String ip, String host) {
        ApiClient.Response r = api.put("/api/v1/networks/" + network + "/placements/" + vm + "?wait=applied&timeout=20s",
                cp.operatorKey(), ControlPlane.placement(host, "tap-" + vm, ip));
        assertThat(r.status()).as("place %s: %s", vm, r.body()).isEqualTo(200);
        assertThat(r.body().get("status").get("status").asString()).isEqualTo("APPLIED");
    }

    /** Creates a rule with wait=applied and asserts where it landed. */
    static void createAndAssert(String name, Map<String, Object> rule, Set<String> expectedHosts, String... expectedParts) {
        ApiClient.Response r = api.post("/api/v1/networks/" + network + "/egress-rules?wait=applied&timeout=20s", cp.tenantKey(), rule);
        assertThat(r.status()).as("%s: %s", name, r.body()).isEqualTo(201);
        assertThat(r.body().get("status").get("status").asString()).isEqualTo("APPLIED");
        assertThat(r.body().get("status").get("hostsApplied").asInt()).isEqualTo(expectedHosts.size());
        String ruleId = r.text("ruleId");
        ruleIds.put(name, ruleId);
        for (String host : List.of(h1, h2, h3)) {
            String ruleset = cp.ruleset(host);
            if (expectedHosts.contains(host)) {
                assertThat(ruleset).as("%s on %s", name, host).contains("r=" + ruleId + " ");
                assertThat(lineOf(ruleset, ruleId)).as("%s on %s", name, host).contains(expectedParts);
            } else {
                assertThat(ruleset).as("%s must not reach %s", name, host).doesNotContain(ruleId);
            }
        }
    }

    @Test
    @Order(1)
    void blockIcmpForOneVmReachesOnlyItsHost() {
        createAndAssert("icmp one", Map.of("protocol", "icmp", "sourceCidrs", List.of("10.20.0.11/32")), Set.of(h1), "l0_proto4: 10.20.0.11 . icmp comment");
    }

    @Test
    @Order(2)
    void blockIcmpForASetOfVmsReachesTheirHosts() {
        createAndAssert("icmp set", Map.of("protocol", "icmp", "icmpType", 8, "sourceVmIds", List.of("vm-b", "vm-c")), Set.of(h2, h3),
                "l0_type4: 10.20.0.1", " . 8 comment");
    }

    @Test
    @Order(3)
    void blockPort80ForOneVm() {
        createAndAssert("tcp80 one", Map.of("protocol", "tcp", "startPort", 80, "sourceCidrs", List.of("10.20.0.12/32")), Set.of(h2),
                "l0_port4: 10.20.0.12 . tcp . 80 comment");
    }

    @Test
    @Order(4)
    void blockPort80ForASetOfVms() {
        createAndAssert("tcp80 set", Map.of("protocol", "tcp", "startPort", 80, "sourceCidrs", List.of("10.20.0.11/32", "10.20.0.14/32")),
                Set.of(h1, h3), "l0_port4: 10.20.0.1", " . tcp . 80 comment");
    }

    @Test
    @Order(5)
    void blockAPortRangeForOneVm() {
        createAndAssert("range one", Map.of("protocol", "udp", "startPort", 5000, "endPort", 5100, "sourceCidrs", List.of("10.20.0.11/32")),
                Set.of(h1), "l0_port4: 10.20.0.11 . udp . 5000-5100 comment");
    }

    @Test
    @Order(6)
    void blockAPortRangeForASetOfVms() {
        createAndAssert("range set", Map.of("protocol", "tcp", "startPort", 8000, "endPort", 8100, "sourceCidrs", List.of("10.20.0.12/31")),
                Set.of(h2, h3), "l0_port4: 10.20.0.1", " . tcp . 8000-8100 comment");
    }

    @Test
    @Order(7)
    void blockAllOutgoingForOneVm() {
        createAndAssert("all one", Map.of("protocol", "all", "sourceVmIds", List.of("vm-d")), Set.of(h3), "l0_all4: 10.20.0.14 comment");
    }

    @Test
    @Order(8)
    void blockAllOutgoingForASetOfVmsToADestination() {
        createAndAssert("all set", Map.of("protocol", "all", "sourceVmIds", List.of("vm-a", "vm-b"), "destinationCidrs", List.of("203.0.113.0/24")),
                Set.of(h1, h2), "l0_all4_dst24: 10.20.0.1", " . 203.0.113.0 comment");
    }

    @Test
    @Order(9)
    void deletingARuleRemovesItFromItsHostsOnly() {
        String ruleId = ruleIds.get("tcp80 set");
        ApiClient.Response r = api.delete("/api/v1/networks/" + network + "/egress-rules/" + ruleId + "?wait=applied&timeout=20s", cp.tenantKey());
        assertThat(r.status()).as("%s", r.body()).isEqualTo(200);
        for (String host : List.of(h1, h2, h3)) {
            assertThat(cp.ruleset(host)).doesNotContain(ruleId);
        }
        assertThat(cp.ruleset(h1)).contains("r=" + ruleIds.get("icmp one") + " ");
        ApiClient.Response list = api.get("/api/v1/networks/" + network + "/egress-rules", cp.tenantKey());
        assertThat(list.body().toString()).doesNotContain(ruleId).contains(ruleIds.get("icmp one"));
    }

    @Test
    @Order(10)
    void aKilledAgentResyncsToTheSameHashFromItsSnapshot() throws Exception {
        String before = cp.ruleset(h3);
        String appliedBefore;
        try (UnifiedJedis redis = new UnifiedJedis(URI.create(cp.env("REDIS_URL")))) {
            appliedBefore = redis.hget(RedisKeys.hostApplied(h3), "hash");
            cp.stopAgent(h3, true);
            Files.delete(cp.rulesetFile(h3));
            cp.startAgent(h3);
            assertThat(cp.ruleset(h3)).isEqualTo(before);
            assertThat(ControlPlane.eventually(Duration.ofSeconds(10),
                    () -> "BOOTSTRAP".equals(redis.hget(RedisKeys.hostApplied(h3), "trigger")))).isTrue();
            assertThat(redis.hget(RedisKeys.hostApplied(h3), "hash")).isEqualTo(appliedBefore);
        }
    }

    @Test
    @Order(11)
    void aChangeWhileAnAgentIsDownArrivesWhenItComesBack() {
        cp.stopAgent(h1, false);
        ApiClient.Response r = api.post("/api/v1/networks/" + network + "/egress-rules?wait=compiled&timeout=20s", cp.tenantKey(),
                Map.of("protocol", "tcp", "startPort", 443, "sourceCidrs", List.of("10.20.0.11/32")));
        assertThat(r.status()).isEqualTo(201);
        String ruleId = r.text("ruleId");
        assertThat(r.body().get("status").get("pendingHosts").toString()).contains(h1);
        cp.startAgent(h1);
        assertThat(cp.ruleset(h1)).contains("r=" + ruleId + " ");
        assertThat(ControlPlane.eventually(Duration.ofSeconds(10), () -> "APPLIED".equals(
                api.get("/api/v1/changes/" + r.text("changeId"), cp.tenantKey()).text("status")))).isTrue();
    }
}
