package io.egressctl.e2e.audit;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.cli.audit.Table;
import io.egressctl.e2e.support.ControlPlane;
import io.egressctl.schemas.view.RedisKeys;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import redis.clients.jedis.UnifiedJedis;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

import java.net.URI;
import java.time.Instant;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code audit replay-check} on the real topics of the running control plane: a network and rules made
 * through the REST API match what the compiler wrote to Redis; a view edited by hand, and a view put back
 * to an older state, are both found, each difference with the event where log and Redis part.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class AuditReplayCheckIT {

    static final JsonMapper JSON = JsonMapper.builder().build();

    static ControlPlane cp;
    static ApiClient api;
    static AuditSupport s;
    static UnifiedJedis redis;
    static String network;
    static String web;
    static String icmp;
    static Map<String, String> viewWithIcmp;

    @BeforeAll
    static void networkWithRules() {
        cp = ControlPlane.shared();
        api = cp.api();
        s = new AuditSupport();
        redis = new UnifiedJedis(URI.create(s.redisUrl));
        network = cp.unique("audit-net");
        ApiClient.Response n = api.post("/api/v1/networks?wait=compiled&timeout=20s", cp.tenantKey(),
                Map.of("networkId", network, "guestCidr", "10.40.0.0/24"));
        assertThat(n.status()).as("create network: %s", n.body()).isEqualTo(201);
        ApiClient.Response p = api.put("/api/v1/networks/" + network + "/placements/vm-a?wait=compiled&timeout=20s", cp.operatorKey(),
                ControlPlane.placement(cp.unique("audit-host"), "tap-vm-a", "10.40.0.11"));
        assertThat(p.status()).as("place: %s", p.body()).isEqualTo(200);
        web = createRule(Map.of("protocol", "tcp", "startPort", 80, "sourceCidrs", List.of("10.40.0.11/32")));
        icmp = createRule(Map.of("protocol", "icmp"));
        viewWithIcmp = redis.hgetAll(RedisKeys.network(network));
    }

    static String createRule(Map<String, Object> rule) {
        ApiClient.Response r = api.post("/api/v1/networks/" + network + "/egress-rules?wait=compiled&timeout=20s", cp.tenantKey(), rule);
        assertThat(r.status()).as("create rule: %s", r.body()).isEqualTo(201);
        return r.text("ruleId");
    }

    @AfterAll
    static void close() throws Exception {
        if (redis != null) {
            redis.close();
        }
        if (s != null) {
            s.close();
        }
    }

    static AuditSupport.Run replayCheck() {
        AuditSupport.Run r = s.audit(Instant.now(), "replay-check", "--network", network);
        assertThat(r.err()).isEmpty();
        return r;
    }

    /** How {@code replay-check} names the log event of a rule's operation, from {@code audit history}. */
    static String eventOf(String ruleId, String operation) {
        AuditSupport.Run h = s.audit(Instant.now(), "history", "--network", network, "--rule", ruleId, "--output", "json");
        for (JsonNode e : JSON.readTree(h.out()).get("events")) {
            if (e.get("operation").asString().equals(operation)) {
                return "p" + e.get("partition").asInt() + "@" + e.get("offset").asLong() + " " + operation + " "
                        + e.get("time").asString() + " " + e.get("actor").asString() + " " + e.get("requestId").asString();
            }
        }
        throw new AssertionError("no " + operation + " of " + ruleId + " in " + h.out());
    }

    static String summary(int match, int differ, int ruleEvents) {
        return "checked 1 network against Redis: " + match + " match, " + differ + " differ; replayed " + ruleEvents
                + " rule events and 1 workload events (0 skipped as undecodable or invalid)\n";
    }

    @Test
    @Order(1)
    void theCompilersViewMatchesTheLogUntilEditedByHand() {
        AuditSupport.Run same = replayCheck();
        assertThat(same.out()).isEqualTo(summary(1, 0, 3));
        assertThat(same.code()).isZero();

        Map<String, String> original = redis.hgetAll(RedisKeys.network(network));
        // Each rule of the view is a field of its own (r:<ruleId>).
        ObjectNode rule = (ObjectNode) JSON.readTree(original.get("r:" + web));
        rule.put("startPort", 81).put("endPort", 81);
        redis.hset(RedisKeys.network(network), "r:" + web, JSON.writeValueAsString(rule));
        try {
            AuditSupport.Run edited = replayCheck();
            assertThat(edited.code()).isEqualTo(1);
            assertThat(edited.out()).isEqualTo(new Table("network", "item", "log", "redis", "parted at")
                    .row(network, "rule " + web, "tcp port 80 from 10.40.0.11/32 to any deny",
                            "tcp port 81 from 10.40.0.11/32 to any deny", eventOf(web, "RULE_CREATED"))
                    .render() + summary(0, 1, 3));
        } finally {
            redis.hset(RedisKeys.network(network), original);
        }
        assertThat(replayCheck().code()).isZero();
    }

    @Test
    @Order(2)
    void aViewLeftBehindPartsAtTheFirstEventItMissed() {
        ApiClient.Response d = api.delete("/api/v1/networks/" + network + "/egress-rules/" + icmp + "?wait=compiled&timeout=20s",
                cp.tenantKey());
        assertThat(d.status()).as("delete: %s", d.body()).isEqualTo(200);
        Map<String, String> current = redis.hgetAll(RedisKeys.network(network));
        assertThat(replayCheck().out()).isEqualTo(summary(1, 0, 4));

        redis.del(RedisKeys.network(network));
        redis.hset(RedisKeys.network(network), viewWithIcmp);
        try {
            AuditSupport.Run behind = replayCheck();
            assertThat(behind.code()).isEqualTo(1);
            String deleted = eventOf(icmp, "RULE_DELETED");
            long oldConfig = JSON.readTree(viewWithIcmp.get("json")).get("configVersion").asLong();
            long newConfig = JSON.readTree(current.get("json")).get("configVersion").asLong();
            assertThat(behind.out()).isEqualTo(new Table("network", "item", "log", "redis", "parted at")
                    .row(network, "config version", newConfig, oldConfig, deleted)
                    .row(network, "rule " + icmp, "(absent)", "icmp from all-vms to any deny", deleted)
                    .row(network, "version", current.get("version"), viewWithIcmp.get("version"), null)
                    .render() + summary(0, 1, 4));
        } finally {
            redis.del(RedisKeys.network(network));
            redis.hset(RedisKeys.network(network), current);
        }
        assertThat(replayCheck().code()).isZero();
    }
}
