package io.egressctl.e2e.pipeline;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.e2e.support.ControlPlane;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * One network's refused version stays its own (issue 12, item 9), through the real pipeline: an agent
 * whose operator limits its host to 40 set elements runs two tenants' networks. A rule that would take
 * the host past the limit is refused on that host only: its change names the host and the reason, the
 * ruleset in force keeps the network's last good version, and the other network's next change is
 * applied on the same host at once. Removing the rule ends the refusal.
 */
class HostRefusalIT {

    static ControlPlane cp;
    static ApiClient api;
    static String host;
    static String netA;
    static String netB;

    @BeforeAll
    static void twoNetworksOnALimitedHost() {
        cp = ControlPlane.shared();
        api = cp.api();
        host = cp.unique("limited");
        cp.startAgent(host, Map.of("EGRESS_MAX_ELEMENTS_PER_HOST", "40"));
        netA = cp.unique("refuse-a");
        netB = cp.unique("refuse-b");
        create(netA, "10.51.0.0/24", cp.tenantKey());
        create(netB, "10.52.0.0/24", cp.otherTenantKey());
        place(netA, "vm-a", "tap-ra", "10.51.0.11");
        place(netB, "vm-b", "tap-rb", "10.52.0.11");
    }

    @AfterAll
    static void stopHost() {
        cp.stopAgent(host, false);
    }

    static void create(String net, String cidr, String key) {
        ApiClient.Response r = api.post("/api/v1/networks?wait=compiled&timeout=30s", key, Map.of("networkId", net, "guestCidr", cidr));
        assertThat(r.status()).as("%s", r.body()).isEqualTo(201);
    }

    static void place(String net, String vm, String tap, String ip) {
        ApiClient.Response r = api.put("/api/v1/networks/" + net + "/placements/" + vm + "?wait=applied&timeout=30s", cp.operatorKey(),
                ControlPlane.placement(host, tap, ip));
        assertThat(r.status()).as("place %s: %s", vm, r.body()).isEqualTo(200);
    }

    static JsonNode status(String changeId) {
        return api.get("/api/v1/changes/" + changeId, cp.operatorKey()).body();
    }

    @Test
    void aVersionOverTheHostsLimitIsRefusedThereWhileTheOtherNetworkIsApplied() {
        ApiClient.Response first = api.post("/api/v1/networks/" + netA + "/egress-rules?wait=applied&timeout=30s", cp.tenantKey(),
                Map.of("protocol", "tcp", "startPort", 25));
        assertThat(first.status()).as("%s", first.body()).isEqualTo(201);
        assertThat(first.body().get("status").get("status").asString()).isEqualTo("APPLIED");

        // Tenant B's rule: 30 destinations that do not touch, 30 more elements: past the host's 40.
        List<String> destinations = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            destinations.add("10.60." + i + ".1/32");
        }
        ApiClient.Response big = api.post("/api/v1/networks/" + netB + "/egress-rules?wait=compiled&timeout=30s", cp.otherTenantKey(),
                Map.of("protocol", "tcp", "startPort", 443, "destinationCidrs", destinations));
        assertThat(big.status()).as("%s", big.body()).isEqualTo(201);
        String bigChange = big.text("changeId");
        String bigRule = big.text("ruleId");
        assertThat(ControlPlane.eventually(Duration.ofSeconds(30), () -> status(bigChange).path("failedHosts").size() == 1))
                .as("the change names the host that refused it: %s", status(bigChange)).isTrue();
        JsonNode refused = status(bigChange);
        assertThat(refused.get("status").asString()).isEqualTo("COMPILED");
        assertThat(refused.get("hostsApplied").asInt()).isZero();
        assertThat(refused.get("failedHosts").get(0).get("hostId").asString()).isEqualTo(host);
        assertThat(refused.get("failedHosts").get(0).get("error").asString())
                .contains("refused on this host").contains("over its limit of 40").contains("egress.agent.max-elements");
        assertThat(cp.ruleset(host)).as("nothing of the refused version is in force").doesNotContain(bigRule);

        // Tenant A's next change is applied on the same host, at once.
        ApiClient.Response next = api.post("/api/v1/networks/" + netA + "/egress-rules?wait=applied&timeout=30s", cp.tenantKey(),
                Map.of("protocol", "udp", "startPort", 53));
        assertThat(next.status()).as("%s", next.body()).isEqualTo(201);
        assertThat(next.body().get("status").get("status").asString()).as("%s", next.body()).isEqualTo("APPLIED");
        assertThat(next.body().get("status").get("hostsApplied").asInt()).isEqualTo(1);
        assertThat(cp.ruleset(host)).contains(next.text("ruleId")).doesNotContain(bigRule);

        // Tenant B removes the rule: the new version fits, the refusal ends and the removal is applied.
        ApiClient.Response removed = api.delete("/api/v1/networks/" + netB + "/egress-rules/" + bigRule + "?wait=applied&timeout=30s",
                cp.otherTenantKey());
        assertThat(removed.status()).as("%s", removed.body()).isIn(200, 202);
        String removal = removed.text("changeId");
        assertThat(ControlPlane.eventually(Duration.ofSeconds(30), () -> status(removal).path("status").asString().equals("APPLIED")))
                .as("%s", status(removal)).isTrue();
        assertThat(status(removal).get("failedHosts")).isEmpty();
    }
}
