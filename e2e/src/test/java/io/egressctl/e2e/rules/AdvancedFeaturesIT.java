package io.egressctl.e2e.rules;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.e2e.support.ControlPlane;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

import java.util.List;
import java.util.Map;

import static io.egressctl.e2e.support.ControlPlane.lineOf;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * What goes beyond the CloudStack anchors, through the real stack to a host's rendered ruleset:
 * explicit actions with priorities (first match wins), IPv6 and icmpv6, destination exceptions,
 * and switching a network's default policy.
 */
class AdvancedFeaturesIT {

    static ControlPlane cp;
    static ApiClient api;
    static String host;

    @BeforeAll
    static void agent() {
        cp = ControlPlane.shared();
        api = cp.api();
        host = cp.unique("adv");
        cp.startAgent(host);
    }

    @AfterAll
    static void stop() {
        cp.stopAgent(host, false);
    }

    static String network(Map<String, Object> body, String vm, String ipv4, String ipv6) {
        String id = cp.unique("advnet");
        Map<String, Object> b = new java.util.HashMap<>(body);
        b.put("networkId", id);
        ApiClient.Response r = api.post("/api/v1/networks?wait=compiled&timeout=20s", cp.tenantKey(), b);
        assertThat(r.status()).as("%s", r.body()).isEqualTo(201);
        // Every test's VM is on the same host: its network's id (unique) names its interface.
        Map<String, Object> placement = ControlPlane.placement(host, "tap-" + id.substring(id.length() - 10), ipv4);
        if (ipv6 != null) {
            placement.put("ipv6", ipv6);
        }
        ApiClient.Response p = api.put("/api/v1/networks/" + id + "/placements/" + vm + "?wait=applied&timeout=20s", cp.operatorKey(), placement);
        assertThat(p.status()).as("%s", p.body()).isEqualTo(200);
        return id;
    }

    static String create(String network, Map<String, Object> rule) {
        ApiClient.Response r = api.post("/api/v1/networks/" + network + "/egress-rules?wait=applied&timeout=20s", cp.tenantKey(), rule);
        assertThat(r.status()).as("%s", r.body()).isEqualTo(201);
        return r.text("ruleId");
    }

    static String line(String ruleId) {
        return lineOf(cp.ruleset(host), ruleId);
    }

    @Test
    void explicitActionsAreEvaluatedByPriorityFirstMatchWins() {
        String net = network(Map.of("guestCidr", "10.70.0.0/24", "advanced", true), "vm-p", "10.70.0.5", null);
        String denyAll = create(net, Map.of("protocol", "all", "action", "deny", "priority", 200, "destinationCidrs", List.of("203.0.113.0/24")));
        String allow443 = create(net, Map.of("protocol", "tcp", "startPort", 443, "action", "allow", "priority", 100,
                "destinationCidrs", List.of("203.0.113.0/24")));
        String ruleset = cp.ruleset(host);
        // The allow comes first; the later deny overlaps it, so it sits in a later layer.
        assertThat(line(allow443)).startsWith("l1_port4_dst24: 10.70.0.5 . 203.0.113.0 . tcp . 443 comment");
        assertThat(line(denyAll)).startsWith("l2_all4_dst24: 10.70.0.5 . 203.0.113.0 comment");
        assertThat(ruleset.indexOf("r=" + allow443 + " ")).as("priority 100 before 200").isLessThan(ruleset.indexOf("r=" + denyAll + " "));
    }

    @Test
    void ipv6RulesAndIcmpv6ReachTheVmsIpv6Address() {
        String net = network(Map.of("guestCidr", "10.71.0.0/24", "guestCidr6", "fd00:71::/64"), "vm-6", "10.71.0.5", "fd00:71::5");
        String ping6 = create(net, Map.of("protocol", "icmpv6", "icmpType", 128, "sourceVmIds", List.of("vm-6")));
        String web6 = create(net, Map.of("protocol", "tcp", "startPort", 80, "destinationCidrs", List.of("2001:db8::/32")));
        String ruleset = cp.ruleset(host);
        assertThat(ruleset).contains("fd00:71::5");
        assertThat(line(ping6)).startsWith("l0_type6: fd00:71::5 . 128 comment");
        assertThat(line(web6)).startsWith("l0_port6_dst32: fd00:71::5 . 2001:db8:: . tcp . 80 comment");
        assertThat(ruleset).contains("meta nfproto ipv6 meta mark . icmpv6 type @l0_type6 drop");
    }

    @Test
    void destinationExceptionsAreCarvedOutOfTheDestination() {
        String net = network(Map.of("guestCidr", "10.72.0.0/24"), "vm-x", "10.72.0.5", null);
        String rule = create(net, Map.of("protocol", "all", "destinationCidrs", List.of("0.0.0.0/0"),
                "destinationExceptCidrs", List.of("10.99.0.0/16")));
        assertThat(line(rule)).startsWith("l0_all4_dst: 10.72.0.5 . 0.0.0.0-10.98.255.255 comment");
        assertThat(cp.ruleset(host)).containsPattern("0x45[0-9a-f]{6} \\. 10\\.100\\.0\\.0-255\\.255\\.255\\.255 comment \"r=" + rule + " ")
                .doesNotContain("10.99.0.0");
    }

    @Test
    void underADenyDefaultRulesOpenWhatTheyMatchAndTheRestIsDropped() {
        String net = network(Map.of("guestCidr", "10.73.0.0/24"), "vm-d", "10.73.0.5", null);
        String rule = create(net, Map.of("protocol", "udp", "startPort", 53, "destinationCidrs", List.of("192.0.2.53/32")));
        assertThat(line(rule)).startsWith("l0_port4_dst32: 10.73.0.5 . 192.0.2.53 . udp . 53 comment");
        ApiClient.Response etag = api.get("/api/v1/networks/" + net, cp.tenantKey());
        String version = etag.headers().get("etag").get(0);
        ApiClient.Response r = api.send("PATCH", "/api/v1/networks/" + net + "?wait=applied&timeout=20s", cp.tenantKey(),
                Map.of("defaultPolicy", "deny"), Map.of("If-Match", version));
        assertThat(r.status()).as("%s", r.body()).isEqualTo(200);
        assertThat(line(rule)).startsWith("l1_port4_dst32: 10.73.0.5 . 192.0.2.53 . udp . 53 comment");
        assertThat(cp.ruleset(host)).containsPattern("0x45[0-9a-f]{6} comment \"net [^\"]+ vm vm-d\" : drop");
    }

    @Test
    void keepEstablishedIsSetOnCreateChangedByPatchAndShownInTheView() {
        String net = network(Map.of("guestCidr", "10.75.0.0/24", "keepEstablished", true), "vm-k", "10.75.0.5", null);
        JsonNode view = api.get("/api/v1/networks/" + net, cp.tenantKey()).body();
        assertThat(view.get("keepEstablished").asBoolean()).isTrue();
        assertThat(view.get("vms").get("vm-k").get("interfaceName").asString()).startsWith("tap-");
        // A patch of one setting leaves the other as it was, and reaches the host (the fragment changes).
        ApiClient.Response r = api.send("PATCH", "/api/v1/networks/" + net + "?wait=applied&timeout=20s", cp.tenantKey(),
                Map.of("keepEstablished", false), Map.of());
        assertThat(r.status()).as("%s", r.body()).isEqualTo(200);
        assertThat(r.body().get("status").get("hostsApplied").asInt()).isEqualTo(1);
        view = api.get("/api/v1/networks/" + net, cp.tenantKey()).body();
        assertThat(view.get("keepEstablished").asBoolean()).isFalse();
        assertThat(view.get("defaultPolicy").asString()).isEqualTo("allow");
        r = api.send("PATCH", "/api/v1/networks/" + net + "?wait=compiled&timeout=20s", cp.tenantKey(), Map.of("defaultPolicy", "deny"), Map.of());
        assertThat(r.status()).as("%s", r.body()).isEqualTo(200);
        view = api.get("/api/v1/networks/" + net, cp.tenantKey()).body();
        assertThat(view.get("keepEstablished").asBoolean()).isFalse();
        assertThat(view.get("defaultPolicy").asString()).isEqualTo("deny");
        // A network created without it does not keep established flows.
        String plain = network(Map.of("guestCidr", "10.76.0.0/24"), "vm-k2", "10.76.0.5", null);
        assertThat(api.get("/api/v1/networks/" + plain, cp.tenantKey()).body().get("keepEstablished").asBoolean()).isFalse();
    }

    @Test
    void aNetworkWithVmsCannotBeDeletedUntilItsVmsAreRemoved() {
        String net = network(Map.of("guestCidr", "10.74.0.0/24"), "vm-del", "10.74.0.5", null);
        String rule = create(net, Map.of("protocol", "icmp"));
        ApiClient.Response refused = api.delete("/api/v1/networks/" + net, cp.tenantKey());
        assertThat(refused.status()).isEqualTo(409);
        assertThat(refused.text("code")).isEqualTo("NETWORK_IN_USE");
        assertThat(line(rule)).as("nothing changed").startsWith("l0_proto4: 10.74.0.5 . icmp comment");
        ApiClient.Response removed = api.delete("/api/v1/networks/" + net + "/placements/vm-del?wait=applied&timeout=20s", cp.operatorKey());
        assertThat(removed.status()).as("%s", removed.body()).isEqualTo(200);
        assertThat(cp.ruleset(host)).doesNotContain("vm vm-del");
        ApiClient.Response deleted = api.delete("/api/v1/networks/" + net + "?wait=applied&timeout=20s", cp.tenantKey());
        assertThat(deleted.status()).as("%s", deleted.body()).isEqualTo(200);
        assertThat(api.get("/api/v1/networks/" + net, cp.tenantKey()).status()).isEqualTo(404);
    }
}
