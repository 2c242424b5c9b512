package io.egressctl.e2e.api;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.e2e.support.ControlPlane;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.egressctl.e2e.api.Published.assertProblem;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code POST /api/v1/networks/{id}/egress-rules:preview} on the real stack: it names the VMs and
 * hosts a rule would reach and the nft statements it would add, publishes nothing, and its
 * statements are the ones the agents render once the same rule is really created.
 */
class PreviewIT {

    static ControlPlane cp;
    static ApiClient api;
    static Published published;
    static String h1;
    static String h2;
    static String net;

    @BeforeAll
    static void networkOnTwoHosts() {
        cp = ControlPlane.shared();
        api = cp.api();
        published = new Published(cp);
        h1 = cp.unique("pv-h1");
        h2 = cp.unique("pv-h2");
        cp.startAgent(h1);
        cp.startAgent(h2);
        net = cp.unique("preview");
        ApiClient.Response r = api.post("/api/v1/networks?wait=compiled&timeout=30s", cp.tenantKey(),
                Map.of("networkId", net, "guestCidr", "10.50.0.0/24"));
        assertThat(r.status()).as("%s", r.body()).isEqualTo(201);
        place("vm-a", "10.50.0.11", h1);
        place("vm-b", "10.50.0.12", h2);
        place("vm-c", "10.50.0.13", h2);
    }

    @AfterAll
    static void stop() {
        published.close();
        cp.stopAgent(h1, false);
        cp.stopAgent(h2, false);
    }

    static void place(String vm, String ip, String host) {
        ApiClient.Response r = api.put("/api/v1/networks/" + net + "/placements/" + vm + "?wait=applied&timeout=30s", cp.operatorKey(),
                ControlPlane.placement(host, "tap-" + vm, ip));
        assertThat(r.status()).as("place %s: %s", vm, r.body()).isEqualTo(200);
    }

    static String preview() {
        return "/api/v1/networks/" + net + "/egress-rules:preview";
    }

    static List<String> texts(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.isObject() ? n.path("vmId").asString() : n.asString()));
        return out;
    }

    /**
     * The key of a set element, from a ruleset line ({@code <key> comment "r=<id> h=<hash>",}) or a
     * previewed {@code add element inet egressctl <set> { <key> comment "..." }}: without the comment,
     * which carries the rule id and a hash of it.
     */
    static String elementKey(String line) {
        String l = line.strip();
        if (l.startsWith("add element ")) {
            l = l.substring(l.indexOf("{ ") + 2);
        }
        int c = l.indexOf(" comment \"");
        return (c < 0 ? l : l.substring(0, c)).strip();
    }

    @Test
    void aPreviewNamesTheVmsHostsAndNftLinesAndPublishesNothing() {
        Map<String, Object> rule = Map.of("protocol", "tcp", "startPort", 8080, "endPort", 8090, "sourceCidrs", List.of("10.50.0.12/31"));
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        ApiClient.Response r = api.post(preview(), cp.tenantKey(), rule);
        assertThat(r.status()).as("%s", r.body()).isEqualTo(200);
        JsonNode p = r.body();
        assertThat(texts(p.get("affectedVms"))).containsExactly("vm-b", "vm-c");
        assertThat(texts(p.get("affectedHosts"))).containsExactly(h2);
        assertThat(texts(p.get("nftLines"))).filteredOn(l -> l.startsWith("add element")).extracting(PreviewIT::elementKey)
                .hasSize(2).allMatch(k -> k.matches("0x45[0-9a-f]{6} \\. tcp \\. 8080-8090"));
        assertThat(p.get("nftLines").get(0).asString()).startsWith("add element inet egressctl l0_port4 { 0x45").contains(" . tcp . 8080-8090 comment \"r=preview ");
        assertThat(p.get("published").asBoolean()).isFalse();
        assertThat(p.get("rule").get("action").asString()).isEqualTo("deny");
        assertThat(Published.header(r, "ETag")).isEqualTo(before.etag());
        published.assertNothingSince(before);
        assertThat(cp.ruleset(h2)).doesNotContain("8080-8090");
    }

    @Test
    void thePreviewedLinesAreWhatTheHostsRenderOnceTheRuleIsCreated() {
        Map<String, Object> rule = Map.of("protocol", "udp", "startPort", 5353, "sourceVmIds", List.of("vm-a", "vm-c"),
                "destinationCidrs", List.of("192.0.2.0/24", "198.51.100.0/24"));
        JsonNode p = api.post(preview(), cp.tenantKey(), rule).body();
        assertThat(texts(p.get("affectedHosts"))).containsExactly(h1, h2);
        ApiClient.Response created = api.post("/api/v1/networks/" + net + "/egress-rules?wait=applied&timeout=30s", cp.tenantKey(), rule);
        assertThat(created.status()).as("%s", created.body()).isEqualTo(201);
        String ruleId = created.text("ruleId");
        for (JsonNode host : p.get("hosts")) {
            String ruleset = cp.ruleset(host.get("hostId").asString());
            List<String> rendered = ruleset.lines().filter(l -> l.contains("r=" + ruleId + " ")).map(PreviewIT::elementKey).toList();
            List<String> previewed = texts(host.get("nftLines")).stream().filter(l -> l.contains("r=preview "))
                    .map(PreviewIT::elementKey).toList();
            assertThat(rendered).as("rendered on %s", host.get("hostId")).isNotEmpty().isEqualTo(previewed);
            // One element per VM and destination, in the set whose lookup the preview shows too.
            assertThat(previewed).allMatch(k -> k.contains(" . 192.0.2.0 . udp . 5353") || k.contains(" . 198.51.100.0 . udp . 5353"));
            String lookup = texts(host.get("nftLines")).stream().filter(l -> !l.startsWith("add element")).findFirst().orElseThrow();
            assertThat(lookup).contains("ip daddr & 255.255.255.0 . meta l4proto . th dport @l0_port4_dst24 drop");
            assertThat(ruleset).contains("    " + lookup + "\n").contains("  set l0_port4_dst24 {");
        }
    }

    @Test
    void aPercentEncodedColonReachesThePreviewToo() {
        ApiClient.Response r = api.post("/api/v1/networks/" + net + "/egress-rules%3Apreview", cp.tenantKey(), Map.of("protocol", "icmp"));
        assertThat(r.status()).as("%s", r.body()).isEqualTo(200);
        assertThat(texts(r.body().get("affectedVms"))).containsExactly("vm-a", "vm-b", "vm-c");
        assertThat(texts(r.body().get("nftLines"))).filteredOn(l -> l.startsWith("add element")).hasSize(3)
                .allSatisfy(l -> assertThat(l).startsWith("add element inet egressctl l0_proto4 { 0x45").contains(" . icmp comment \"r=preview h="));
    }

    @Test
    void aPreviewOfADuplicateSaysSoWithoutFailing() {
        Map<String, Object> rule = Map.of("protocol", "icmp", "icmpType", 8, "sourceVmIds", List.of("vm-b"));
        ApiClient.Response created = api.post("/api/v1/networks/" + net + "/egress-rules?wait=compiled&timeout=30s", cp.tenantKey(), rule);
        assertThat(created.status()).isEqualTo(201);
        JsonNode p = api.post(preview(), cp.tenantKey(), rule).body();
        assertThat(p.get("conflict").get("code").asString()).isEqualTo("DUPLICATE_RULE");
        assertThat(p.get("conflict").get("existingRuleId").asString()).isEqualTo(created.text("ruleId"));
    }

    @Test
    void aPreviewOfABadRuleIsRefusedLikeACreate() {
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        assertProblem(api.post(preview(), cp.tenantKey(), Map.of("protocol", "icmp", "startPort", 1)), 422, "INVALID", "startPort", "only valid for tcp and udp");
        assertProblem(api.post(preview(), cp.tenantKey(), "{\"protocol\":\"tcp\",\"port\":1}"), 400, "UNKNOWN_FIELD", "port", "is not a known field");
        assertProblem(api.post(preview(), cp.otherTenantKey(), Map.of("protocol", "tcp")), 404, "NOT_FOUND", null, "does not exist");
        published.assertNothingSince(before);
    }

    @Test
    void aRuleCoveringNoPlacedVmAffectsNothing() {
        JsonNode p = api.post(preview(), cp.tenantKey(), Map.of("protocol", "all", "sourceCidrs", List.of("10.50.0.128/25"))).body();
        assertThat(p.get("affectedVms").size()).isZero();
        assertThat(p.get("affectedHosts").size()).isZero();
        assertThat(p.get("nftLines").size()).isZero();
    }
}
