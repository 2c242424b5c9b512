package io.egressctl.e2e.api;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.e2e.support.ControlPlane;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import tools.jackson.databind.JsonNode;

import java.io.ByteArrayInputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static io.egressctl.e2e.api.Published.assertProblem;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The bad-input table of issue 3, each case through the real running rule-service: the answer is
 * 400/401/403/404/409/412/413/422 as RFC 9457 problem+json naming the field and the reason, and
 * nothing was published: the network's view, ETag and rule list are unchanged after a settle, and no
 * event keyed by the network was appended to its log partitions.
 */
class BadInputIT {

    static ControlPlane cp;
    static ApiClient api;
    static Published published;
    static String host;
    static String net;
    static String otherNet;
    static String baselineRuleId;

    @BeforeAll
    static void networkWithAVmAndARule() {
        cp = ControlPlane.shared();
        api = cp.api();
        published = new Published(cp);
        host = cp.unique("bad-h");
        cp.startAgent(host);
        net = cp.unique("bad");
        created(api.post("/api/v1/networks?wait=compiled&timeout=30s", cp.tenantKey(), Map.of("networkId", net, "guestCidr", "10.40.0.0/24")));
        ApiClient.Response placed = api.put("/api/v1/networks/" + net + "/placements/vm-1?wait=applied&timeout=30s", cp.operatorKey(),
                ControlPlane.placement(host, "tap-vm-1", "10.40.0.11"));
        assertThat(placed.status()).as("%s", placed.body()).isEqualTo(200);
        baselineRuleId = created(api.post(rules(net) + "?wait=applied&timeout=30s", cp.tenantKey(),
                Map.of("protocol", "tcp", "startPort", 22, "sourceCidrs", List.of("10.40.0.11/32", "10.40.0.12/32")))).text("ruleId");
        otherNet = cp.unique("globex");
        created(api.post("/api/v1/networks?wait=compiled&timeout=30s", cp.otherTenantKey(),
                Map.of("networkId", otherNet, "guestCidr", "10.41.0.0/24")));
        created(api.post(rules(otherNet) + "?wait=compiled&timeout=30s", cp.otherTenantKey(), Map.of("protocol", "icmp")));
    }

    @AfterAll
    static void stop() {
        if (published != null) {
            published.close();
        }
        if (host != null) {
            cp.stopAgent(host, false);
        }
    }

    static ApiClient.Response created(ApiClient.Response r) {
        assertThat(r.status()).as("%s", r.body()).isEqualTo(201);
        return r;
    }

    static String rules(String network) {
        return "/api/v1/networks/" + network + "/egress-rules";
    }

    /** One row of the table: a rule body (raw JSON text) and the answer it must get. */
    record Case(String body, int status, String code, String field, String reason) {
    }

    static Named<Case> row(String name, String body, int status, String code, String field, String reason) {
        return Named.of(name, new Case(body, status, code, field, reason));
    }

    static Named<Case> invalid(String name, String body, String field, String reason) {
        return row(name, body, 422, "INVALID", field, reason);
    }

    static String repeat(String element, int n) {
        return "[" + String.join(",", Collections.nCopies(n, element)) + "]";
    }

    static Stream<Named<Case>> ruleBodies() {
        return Stream.of(
                // 400: the body is not a readable rule at all
                row("malformed JSON: truncated object", "{\"protocol\":\"tcp\",", 400, "MALFORMED_JSON", "body", "is not valid JSON at line 1"),
                row("malformed JSON: unquoted string", "{\"protocol\": tcp}", 400, "MALFORMED_JSON", "body", "Unrecognized token 'tcp'"),
                row("malformed JSON: trailing garbage", "{\"protocol\":\"tcp\"} }", 400, "MALFORMED_JSON", "body", "is not valid JSON"),
                row("malformed JSON: a field given twice", "{\"protocol\":\"tcp\",\"protocol\":\"all\"}", 400, "MALFORMED_JSON", "body", "Duplicate Object property \"protocol\""),
                row("empty body", "", 400, "MISSING_BODY", "body", "is required"),
                row("a JSON array instead of an object", "[{\"protocol\":\"tcp\"}]", 400, "BAD_VALUE", "body", "must be a JSON object"),
                row("unknown field", "{\"protocol\":\"tcp\",\"dport\":80}", 400, "UNKNOWN_FIELD", "dport", "is not a known field; known fields: action,"),
                row("number overflow 99999999999", "{\"protocol\":\"tcp\",\"startPort\":99999999999}", 400, "BAD_VALUE", "startPort", "is out of range"),
                row("decimal port 80.5", "{\"protocol\":\"tcp\",\"startPort\":80.5}", 400, "BAD_VALUE", "startPort", "must be a whole number"),
                row("a string where a list belongs", "{\"protocol\":\"tcp\",\"sourceCidrs\":\"10.40.0.0/24\"}", 400, "BAD_VALUE", "sourceCidrs", "must be a JSON array"),
                row("an object inside a list", "{\"protocol\":\"tcp\",\"destinationCidrs\":[\"192.0.2.0/24\",{}]}", 400, "BAD_VALUE", "destinationCidrs[1]", "must be a string"),
                row("a string where a number belongs", "{\"protocol\":\"tcp\",\"startPort\":\"http\"}", 400, "BAD_VALUE", "startPort", "must be an integer"),
                row("a numeric string where a number belongs (\"startPort\":\"80\")", "{\"protocol\":\"tcp\",\"startPort\":\"80\"}", 400, "BAD_VALUE", "startPort",
                        "must be an integer, not a string"),
                row("a numeric string as endPort", "{\"protocol\":\"tcp\",\"startPort\":80,\"endPort\":\"90\"}", 400, "BAD_VALUE", "endPort",
                        "must be an integer"),
                row("a numeric string as icmpType", "{\"protocol\":\"icmp\",\"icmpType\":\"8\"}", 400, "BAD_VALUE", "icmpType", "must be an integer"),
                row("a boolean where a number belongs", "{\"protocol\":\"tcp\",\"startPort\":true}", 400, "BAD_VALUE", "startPort", "must be an integer"),
                row("a number where a string belongs", "{\"protocol\":6}", 400, "BAD_VALUE", "protocol", "must be a string"),
                // 422: readable, but not a valid rule
                invalid("missing protocol", "{\"startPort\":80}", "protocol", "is required"),
                invalid("null protocol", "{\"protocol\":null}", "protocol", "is required"),
                invalid("unknown protocol", "{\"protocol\":\"gre\"}", "protocol", "unknown protocol 'gre'"),
                invalid("ports on all", "{\"protocol\":\"all\",\"startPort\":80}", "startPort", "only valid for tcp and udp, not all"),
                invalid("ports on icmp", "{\"protocol\":\"icmp\",\"startPort\":1,\"endPort\":2}", "startPort", "only valid for tcp and udp, not icmp"),
                invalid("port 0", "{\"protocol\":\"tcp\",\"startPort\":0}", "startPort", "0 is outside 1..65535"),
                invalid("port 65536", "{\"protocol\":\"udp\",\"startPort\":65536}", "startPort", "65536 is outside 1..65535"),
                invalid("end port 65536", "{\"protocol\":\"tcp\",\"startPort\":1000,\"endPort\":65536}", "endPort", "65536 is outside 1..65535"),
                invalid("negative port", "{\"protocol\":\"tcp\",\"startPort\":-80}", "startPort", "-80 is outside 1..65535"),
                invalid("start port greater than end port", "{\"protocol\":\"tcp\",\"startPort\":9000,\"endPort\":8000}", "endPort", "start port 9000 is greater than end port 8000"),
                invalid("end port without start port", "{\"protocol\":\"tcp\",\"endPort\":8000}", "startPort", "is required when endPort is given"),
                invalid("icmp type 256", "{\"protocol\":\"icmp\",\"icmpType\":256}", "icmpType", "256 is outside -1..255"),
                invalid("icmp type -2", "{\"protocol\":\"icmp\",\"icmpType\":-2}", "icmpType", "-2 is outside -1..255"),
                invalid("icmp code 256", "{\"protocol\":\"icmp\",\"icmpType\":3,\"icmpCode\":256}", "icmpCode", "256 is outside -1..255"),
                invalid("icmp code without a type", "{\"protocol\":\"icmp\",\"icmpCode\":0}", "icmpCode", "needs an icmp type"),
                invalid("icmp type without protocol icmp", "{\"protocol\":\"tcp\",\"icmpType\":8}", "icmpType", "need protocol icmp or icmpv6, not tcp"),
                invalid("icmp code on udp", "{\"protocol\":\"udp\",\"icmpCode\":0}", "icmpCode", "need protocol icmp or icmpv6, not udp"),
                invalid("malformed CIDR: three octets", "{\"protocol\":\"tcp\",\"destinationCidrs\":[\"10.0.0/24\"]}", "destinationCidrs", "malformed CIDR '10.0.0/24'"),
                invalid("malformed CIDR: a word", "{\"protocol\":\"tcp\",\"destinationCidrs\":[\"example.com\"]}", "destinationCidrs", "malformed CIDR 'example.com'"),
                invalid("malformed CIDR: prefix /33", "{\"protocol\":\"tcp\",\"destinationCidrs\":[\"192.0.2.0/33\"]}", "destinationCidrs", "prefix length 33 exceeds 32"),
                invalid("malformed CIDR: octet 256", "{\"protocol\":\"tcp\",\"destinationCidrs\":[\"192.0.256.0/24\"]}", "destinationCidrs", "octet 256 exceeds 255"),
                invalid("malformed CIDR: octal-looking octet", "{\"protocol\":\"tcp\",\"destinationCidrs\":[\"010.0.0.0/8\"]}", "destinationCidrs", "leading zero"),
                invalid("CIDR with host bits set (destination)", "{\"protocol\":\"tcp\",\"destinationCidrs\":[\"203.0.113.7/24\"]}", "destinationCidrs",
                        "has host bits set; did you mean 203.0.113.0/24?"),
                invalid("CIDR with host bits set (source)", "{\"protocol\":\"tcp\",\"sourceCidrs\":[\"10.40.0.5/24\"]}", "sourceCidrs",
                        "has host bits set; did you mean 10.40.0.0/24?"),
                invalid("source CIDR outside the guest CIDR", "{\"protocol\":\"tcp\",\"sourceCidrs\":[\"10.99.0.0/24\"]}", "sourceCidrs",
                        "10.99.0.0/24 is outside the guest CIDR 10.40.0.0/24"),
                invalid("source CIDR wider than the guest CIDR", "{\"protocol\":\"tcp\",\"sourceCidrs\":[\"10.0.0.0/8\"]}", "sourceCidrs",
                        "is outside the guest CIDR"),
                invalid("IPv6 destination on an IPv4-only network", "{\"protocol\":\"tcp\",\"destinationCidrs\":[\"2001:db8::/32\"]}", "destinationCidrs",
                        "is IPv6 but network"),
                invalid("IPv6 source on an IPv4-only network", "{\"protocol\":\"tcp\",\"sourceCidrs\":[\"fd00::/64\"]}", "sourceCidrs", "has no IPv6 prefix"),
                invalid("icmpv6 on an IPv4-only network", "{\"protocol\":\"icmpv6\"}", "protocol", "icmpv6 needs a network with an IPv6 prefix"),
                invalid("empty sourceCidrs", "{\"protocol\":\"tcp\",\"sourceCidrs\":[]}", "sourceCidrs", "is empty"),
                invalid("empty sourceVmIds", "{\"protocol\":\"tcp\",\"sourceVmIds\":[]}", "sourceVmIds", "is empty"),
                invalid("empty destinationCidrs", "{\"protocol\":\"tcp\",\"destinationCidrs\":[]}", "destinationCidrs", "is empty"),
                invalid("empty destinationExceptCidrs", "{\"protocol\":\"tcp\",\"destinationExceptCidrs\":[]}", "destinationExceptCidrs", "is empty"),
                invalid("10,000-entry VM id list", "{\"protocol\":\"tcp\",\"sourceVmIds\":" + repeat("\"v\"", 10_000) + "}", "sourceVmIds",
                        "has 10000 entries; at most 256 are allowed"),
                invalid("257-entry destination list", "{\"protocol\":\"tcp\",\"destinationCidrs\":" + repeat("\"192.0.2.1\"", 257) + "}", "destinationCidrs",
                        "at most 256"),
                invalid("both sourceCidrs and sourceVmIds", "{\"protocol\":\"tcp\",\"sourceCidrs\":[\"10.40.0.0/25\"],\"sourceVmIds\":[\"vm-1\"]}",
                        "sourceVmIds", "not both"),
                invalid("a VM id with nft syntax", "{\"protocol\":\"tcp\",\"sourceVmIds\":[\"vm-1; flush ruleset\"]}", "sourceVmIds", "is not a valid VM id"),
                invalid("exception outside every destination", "{\"protocol\":\"tcp\",\"destinationCidrs\":[\"192.0.2.0/24\"],"
                        + "\"destinationExceptCidrs\":[\"198.51.100.0/24\"]}", "destinationExceptCidrs", "lies in none of the destination CIDRs"),
                invalid("control character (BEL) in a description", "{\"protocol\":\"tcp\",\"description\":\"web\\u0007 rule\"}", "description",
                        "contains control characters"),
                invalid("newline in a description", "{\"protocol\":\"tcp\",\"description\":\"line1\\nflush ruleset\"}", "description",
                        "contains control characters"),
                invalid("description of 256 characters", "{\"protocol\":\"tcp\",\"description\":\"" + "d".repeat(256) + "\"}", "description",
                        "is longer than 255 characters"),
                invalid("action on a CloudStack-mode network", "{\"protocol\":\"tcp\",\"action\":\"allow\"}", "action", "explicit actions need an advanced network"),
                invalid("priority on a CloudStack-mode network", "{\"protocol\":\"tcp\",\"priority\":10}", "priority", "priorities need an advanced network"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("ruleBodies")
    @DisplayName("a bad rule body is refused, naming the field, and nothing is published")
    void aBadRuleBodyIsRefusedAndNothingIsPublished(Case c) {
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        ApiClient.Response r = api.post(rules(net) + "?wait=compiled&timeout=5s", cp.tenantKey(), c.body());
        assertProblem(r, c.status(), c.code(), c.field(), c.reason());
        published.assertNothingSince(before);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("ruleBodies")
    @DisplayName("the same bad body replacing an existing rule is refused the same way")
    void aBadRuleBodyOnUpdateIsRefusedTheSameWay(Case c) {
        if (c.code().equals("MISSING_BODY")) {
            return; // covered by create; a PUT without a body is the same check
        }
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        ApiClient.Response r = api.put(rules(net) + "/" + baselineRuleId, cp.tenantKey(), c.body());
        assertProblem(r, c.status(), c.code(), c.field(), c.reason());
        published.assertNothingSince(before);
    }

    @Test
    void aTenThousandEntryCidrListIsRefusedAsTooLargeABody() {
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        List<String> cidrs = new ArrayList<>();
        for (int i = 0; i < 10_000; i++) {
            cidrs.add("198.18." + (i / 256) % 256 + "." + i % 256 + "/32");
        }
        ApiClient.Response r = api.post(rules(net), cp.tenantKey(), Map.of("protocol", "tcp", "destinationCidrs", cidrs));
        assertProblem(r, 413, "BODY_TOO_LARGE", null, "request body exceeds 65536 bytes");
        published.assertNothingSince(before);
    }

    @Test
    void anOversizedBodyIsRefusedBeforeItIsRead() {
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        String body = "{\"protocol\":\"tcp\",\"description\":\"" + "x".repeat(70_000) + "\"}";
        ApiClient.Response r = api.post(rules(net), cp.tenantKey(), body);
        assertProblem(r, 413, "BODY_TOO_LARGE", null, "exceeds 65536 bytes");
        published.assertNothingSince(before);
    }

    @Test
    void anOversizedChunkedBodyIsCutOffWhileReading() throws Exception {
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        byte[] body = ("{\"protocol\":\"tcp\",\"description\":\"" + "x".repeat(70_000) + "\"}").getBytes(StandardCharsets.UTF_8);
        // A stream publisher has no known length: the JDK client sends it chunked, without Content-Length.
        HttpRequest req = HttpRequest.newBuilder(URI.create(cp.apiUrl() + rules(net)))
                .header("X-API-Key", cp.tenantKey()).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(body))).build();
        HttpResponse<String> resp = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()
                .send(req, HttpResponse.BodyHandlers.ofString());
        assertThat(resp.statusCode()).as(resp.body()).isEqualTo(413);
        assertThat(resp.headers().firstValue("Content-Type").orElse("")).startsWith("application/problem+json");
        assertThat(resp.body()).contains("BODY_TOO_LARGE");
        published.assertNothingSince(before);
    }

    @Test
    void aNonExistentNetworkAnswers404() {
        String missing = cp.unique("missing");
        assertProblem(api.post(rules(missing), cp.tenantKey(), Map.of("protocol", "tcp")), 404, "NOT_FOUND", null, "network " + missing + " does not exist");
        assertProblem(api.get("/api/v1/networks/" + missing, cp.tenantKey()), 404, "NOT_FOUND", null, "does not exist");
        assertProblem(api.get(rules(missing), cp.tenantKey()), 404, "NOT_FOUND", null, "does not exist");
        assertProblem(api.post(rules(missing) + ":preview", cp.tenantKey(), Map.of("protocol", "tcp")), 404, "NOT_FOUND", null, "does not exist");
        assertProblem(api.delete("/api/v1/networks/" + missing, cp.tenantKey()), 404, "NOT_FOUND", null, "does not exist");
        ControlPlane.sleep(Published.SETTLE.toMillis());
        assertProblem(api.get("/api/v1/networks/" + missing, cp.tenantKey()), 404, "NOT_FOUND", null, "does not exist");
    }

    @Test
    void aNonExistentRuleAnswers404() {
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        String path = rules(net) + "/no-such-rule";
        assertProblem(api.get(path, cp.tenantKey()), 404, "NOT_FOUND", null, "rule no-such-rule does not exist");
        assertProblem(api.put(path, cp.tenantKey(), Map.of("protocol", "tcp")), 404, "NOT_FOUND", null, "rule no-such-rule does not exist");
        assertProblem(api.delete(path, cp.tenantKey()), 404, "NOT_FOUND", null, "rule no-such-rule does not exist");
        assertProblem(api.get("/api/v1/changes/no-such-change", cp.tenantKey()), 404, "NOT_FOUND", null, "does not exist");
        published.assertNothingSince(before);
    }

    @Test
    void anotherTenantsNetworkAnswers404AsIfItDidNotExist() {
        Published.Snapshot before = published.snapshot(otherNet, cp.otherTenantKey());
        String ruleId = api.get(rules(otherNet), cp.otherTenantKey()).body().get(0).get("ruleId").asString();
        String detail = "network " + otherNet + " does not exist";
        assertProblem(api.get("/api/v1/networks/" + otherNet, cp.tenantKey()), 404, "NOT_FOUND", null, detail);
        assertProblem(api.get(rules(otherNet), cp.tenantKey()), 404, "NOT_FOUND", null, detail);
        assertProblem(api.get(rules(otherNet) + "/" + ruleId, cp.tenantKey()), 404, "NOT_FOUND", null, detail);
        assertProblem(api.post(rules(otherNet), cp.tenantKey(), Map.of("protocol", "tcp", "startPort", 25)), 404, "NOT_FOUND", null, detail);
        assertProblem(api.post(rules(otherNet) + ":preview", cp.tenantKey(), Map.of("protocol", "tcp")), 404, "NOT_FOUND", null, detail);
        assertProblem(api.put(rules(otherNet) + "/" + ruleId, cp.tenantKey(), Map.of("protocol", "udp")), 404, "NOT_FOUND", null, detail);
        assertProblem(api.delete(rules(otherNet) + "/" + ruleId, cp.tenantKey()), 404, "NOT_FOUND", null, detail);
        assertProblem(api.send("PATCH", "/api/v1/networks/" + otherNet, cp.tenantKey(), Map.of("defaultPolicy", "deny"), Map.of()),
                404, "NOT_FOUND", null, detail);
        assertProblem(api.delete("/api/v1/networks/" + otherNet, cp.tenantKey()), 404, "NOT_FOUND", null, detail);
        assertThat(api.get("/api/v1/networks", cp.tenantKey()).body().toString()).doesNotContain(otherNet);
        // Network ids are scoped by tenant: creating one with the other tenant's id creates the caller's own
        // network (no 409 telling that the other exists) and leaves the other tenant's untouched.
        ApiClient.Response own = api.post("/api/v1/networks", cp.tenantKey(), Map.of("networkId", otherNet, "guestCidr", "10.42.0.0/24"));
        assertThat(own.status()).as("%s", own.body()).isEqualTo(202);
        assertThat(own.text("networkId")).isEqualTo(otherNet);
        published.assertNothingSince(before);
    }

    @Test
    void aMissingOrUnknownApiKeyAnswers401() {
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        Map<String, Object> rule = Map.of("protocol", "tcp", "startPort", 26);
        assertProblem(api.post(rules(net), null, rule), 401, "UNAUTHENTICATED", null, "send your API key");
        assertProblem(api.post(rules(net), "tk-not-a-key", rule), 401, "UNAUTHENTICATED", null, "unknown API key");
        assertProblem(api.send("POST", rules(net), null, rule, Map.of("Authorization", "Bearer tk-not-a-key")), 401, "UNAUTHENTICATED", null,
                "unknown API key");
        assertProblem(api.get("/api/v1/networks/" + net, null), 401, "UNAUTHENTICATED", null, null);
        published.assertNothingSince(before);
    }

    @Test
    void aTenantPlacingAVmAnswers403() {
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        String path = "/api/v1/networks/" + net + "/placements/vm-9";
        assertProblem(api.put(path, cp.tenantKey(), ControlPlane.placement(host, "tap-vm-9", "10.40.0.19")), 403, "FORBIDDEN", null,
                "placements are managed by the operator role");
        assertProblem(api.delete("/api/v1/networks/" + net + "/placements/vm-1", cp.tenantKey()), 403, "FORBIDDEN", null, "operator role");
        published.assertNothingSince(before);
    }

    /** A placement body for vm-9 on the class's host, with raw JSON for its interface and MAC fields. */
    static String placementBody(String interfaceFields) {
        return "{\"hostId\":\"HOST\",\"ipv4\":\"10.40.0.19\"" + (interfaceFields.isEmpty() ? "" : "," + interfaceFields) + "}";
    }

    static Stream<Named<Case>> placementBodies() {
        return Stream.of(
                invalid("missing interfaceName", placementBody(""), "interfaceName", "is required"),
                invalid("null interfaceName", placementBody("\"interfaceName\":null"), "interfaceName", "is required"),
                invalid("empty interfaceName", placementBody("\"interfaceName\":\"\""), "interfaceName", "is required"),
                invalid("interfaceName of 16 characters", placementBody("\"interfaceName\":\"tap-0123456789ab\""), "interfaceName",
                        "'tap-0123456789ab' is 16 characters long; Linux interface names have at most 15"),
                invalid("interfaceName with '/'", placementBody("\"interfaceName\":\"tap/1\""), "interfaceName", "contains '/'"),
                invalid("interfaceName with a space", placementBody("\"interfaceName\":\"tap 1\""), "interfaceName", "contains a space"),
                invalid("interfaceName '.'", placementBody("\"interfaceName\":\".\""), "interfaceName", "'.' is not a valid interface name"),
                invalid("interfaceName '..'", placementBody("\"interfaceName\":\"..\""), "interfaceName", "'..' is not a valid interface name"),
                invalid("interfaceName with a quote", placementBody("\"interfaceName\":\"tap\\\"1\""), "interfaceName", "contains '\"'"),
                invalid("multicast MAC", placementBody("\"interfaceName\":\"tap-vm-9\",\"mac\":\"01:00:5e:00:00:fb\""), "mac",
                        "is a multicast address"),
                invalid("broadcast MAC", placementBody("\"interfaceName\":\"tap-vm-9\",\"mac\":\"ff:ff:ff:ff:ff:ff\""), "mac",
                        "is a multicast address"),
                invalid("MAC of five octets", placementBody("\"interfaceName\":\"tap-vm-9\",\"mac\":\"52:54:00:12:34\""), "mac",
                        "is not a MAC address"),
                invalid("MAC of seven octets", placementBody("\"interfaceName\":\"tap-vm-9\",\"mac\":\"52:54:00:12:34:56:78\""), "mac",
                        "is not a MAC address"),
                invalid("MAC with non-hex digits", placementBody("\"interfaceName\":\"tap-vm-9\",\"mac\":\"52:54:00:zz:34:56\""), "mac",
                        "is not a MAC address"),
                invalid("all-zero MAC", placementBody("\"interfaceName\":\"tap-vm-9\",\"mac\":\"00:00:00:00:00:00\""), "mac", "all-zero"),
                row("interfaceName as a list", placementBody("\"interfaceName\":[\"tap-vm-9\"]"), 400, "BAD_VALUE", "interfaceName",
                        "must be a string"),
                row("an unknown field (iface)", placementBody("\"iface\":\"tap-vm-9\""), 400, "UNKNOWN_FIELD", "iface",
                        "known fields: hostId, interfaceName, ipv4, ipv6, mac"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("placementBodies")
    @DisplayName("a bad placement body is refused, naming the field, and nothing is published")
    void aBadPlacementIsRefusedAndNothingIsPublished(Case c) {
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        ApiClient.Response r = api.put("/api/v1/networks/" + net + "/placements/vm-9?wait=compiled&timeout=5s", cp.operatorKey(),
                c.body().replace("HOST", host));
        assertProblem(r, c.status(), c.code(), c.field(), c.reason());
        published.assertNothingSince(before);
    }

    @Test
    void keepEstablishedOfTheWrongTypeAnswers400() {
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        for (String value : List.of("\"yes\"", "\"true\"", "1", "{}")) {
            String id = cp.unique("keep");
            assertProblem(api.post("/api/v1/networks", cp.tenantKey(), "{\"networkId\":\"" + id + "\",\"guestCidr\":\"10.46.0.0/24\","
                    + "\"keepEstablished\":" + value + "}"), 400, "BAD_VALUE", "keepEstablished", "must be true or false");
            assertProblem(api.send("PATCH", "/api/v1/networks/" + net, cp.tenantKey(), "{\"keepEstablished\":" + value + "}", Map.of()),
                    400, "BAD_VALUE", "keepEstablished", "must be true or false");
        }
        assertProblem(api.send("PATCH", "/api/v1/networks/" + net, cp.tenantKey(), "{}", Map.of()), 422, "INVALID", "defaultPolicy",
                "is required");
        published.assertNothingSince(before);
    }

    @Test
    void aStaleIfMatchAnswers412WithTheCurrentVersion() {
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        long current = Long.parseLong(before.etag().replace("\"", ""));
        Map<String, String> stale = Map.of("If-Match", "\"" + (current - 1) + "\"");
        String staleText = "the network is at version " + current + ", the request expected " + (current - 1);
        ApiClient.Response r = api.send("POST", rules(net) + "?wait=compiled", cp.tenantKey(), Map.of("protocol", "tcp", "startPort", 27), stale);
        assertProblem(r, 412, "STALE_VERSION", null, staleText);
        assertThat(r.body().get("currentVersion").asLong()).isEqualTo(current);
        assertProblem(api.send("PUT", rules(net) + "/" + baselineRuleId, cp.tenantKey(), Map.of("protocol", "tcp", "startPort", 23), stale),
                412, "STALE_VERSION", null, staleText);
        assertProblem(api.send("DELETE", rules(net) + "/" + baselineRuleId, cp.tenantKey(), null, stale), 412, "STALE_VERSION", null, staleText);
        assertProblem(api.send("PATCH", "/api/v1/networks/" + net, cp.tenantKey(), Map.of("defaultPolicy", "deny"), stale),
                412, "STALE_VERSION", null, staleText);
        assertProblem(api.send("POST", rules(net), cp.tenantKey(), Map.of("protocol", "tcp", "startPort", 27), Map.of("If-Match", "yesterday")),
                400, "BAD_IF_MATCH", null, "If-Match must be the network's ETag");
        published.assertNothingSince(before);
    }

    @Test
    void aDuplicateRuleAnswers409WithTheExistingRuleId() {
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        // The same match written differently (list order, endPort spelled out) is the same rule.
        ApiClient.Response r = api.post(rules(net) + "?wait=compiled", cp.tenantKey(),
                Map.of("protocol", "tcp", "startPort", 22, "endPort", 22, "sourceCidrs", List.of("10.40.0.12/32", "10.40.0.11/32"),
                        "description", "a different description does not make a different rule"));
        assertProblem(r, 409, "DUPLICATE_RULE", null, "an identical rule exists: " + baselineRuleId);
        assertThat(r.body().get("existingRuleId").asString()).isEqualTo(baselineRuleId);
        published.assertNothingSince(before);
    }

    @Test
    void theRuleQuotaAnswers409QuotaExceeded() {
        String small = cp.unique("quota");
        created(api.post("/api/v1/networks?wait=compiled&timeout=30s", cp.tenantKey(),
                Map.of("networkId", small, "guestCidr", "10.43.0.0/24", "ruleQuota", 2)));
        created(api.post(rules(small) + "?wait=compiled&timeout=30s", cp.tenantKey(), Map.of("protocol", "tcp", "startPort", 80)));
        created(api.post(rules(small) + "?wait=compiled&timeout=30s", cp.tenantKey(), Map.of("protocol", "tcp", "startPort", 443)));
        Published.Snapshot before = published.snapshot(small, cp.tenantKey());
        ApiClient.Response third = api.post(rules(small) + "?wait=compiled", cp.tenantKey(), Map.of("protocol", "udp", "startPort", 53));
        assertProblem(third, 409, "QUOTA_EXCEEDED", null, "already has its quota of 2 rules");
        published.assertNothingSince(before);
        assertThat(api.get(rules(small), cp.tenantKey()).body().size()).isEqualTo(2);
    }

    @Test
    void badWaitOrTimeoutParametersAnswer400BeforeAnythingIsPublished() {
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        assertProblem(api.post(rules(net) + "?wait=enforced", cp.tenantKey(), Map.of("protocol", "tcp", "startPort", 28)), 400, "BAD_PARAMETER", "wait",
                "must be compiled or applied");
        assertProblem(api.post(rules(net) + "?wait=applied&timeout=soon", cp.tenantKey(), Map.of("protocol", "tcp", "startPort", 29)),
                400, "BAD_PARAMETER", null, "timeout must look like 500ms, 5s or PT5S");
        assertProblem(api.send("DELETE", rules(net) + "/" + baselineRuleId + "?wait=now", cp.tenantKey(), null, Map.of()),
                400, "BAD_PARAMETER", "wait", null);
        published.assertNothingSince(before);
    }

    @ParameterizedTest(name = "timeout={0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"-5s", "-1ms", "0s", "0ms", "PT-5S", "-PT5S", "PT0S"})
    void aNegativeOrZeroTimeoutAnswers400BeforeAnythingIsPublished(String timeout) {
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        assertProblem(api.post(rules(net) + "?wait=applied&timeout=" + timeout, cp.tenantKey(), Map.of("protocol", "tcp", "startPort", 32)),
                400, "BAD_PARAMETER", "timeout", "must be positive");
        assertProblem(api.put("/api/v1/networks/" + net + "/placements/vm-9?wait=applied&timeout=" + timeout, cp.operatorKey(),
                ControlPlane.placement(host, "tap-vm-9", "10.40.0.19")), 400, "BAD_PARAMETER", "timeout", "must be positive");
        assertProblem(api.get("/api/v1/changes/no-such-change?wait=applied&timeout=" + timeout, cp.tenantKey()),
                400, "BAD_PARAMETER", "timeout", "must be positive");
        published.assertNothingSince(before);
    }

    @Test
    void aHugeTimeoutIsCappedNotRefused() {
        // Capped at 60 s: a compiled change answers as soon as it is compiled, whatever the timeout asked.
        long start = System.nanoTime();
        ApiClient.Response r = created(api.post(rules(net) + "?wait=compiled&timeout=99999999999s", cp.tenantKey(),
                Map.of("protocol", "tcp", "startPort", 33)));
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(30));
        assertThat(api.delete(rules(net) + "/" + r.text("ruleId") + "?wait=compiled&timeout=30s", cp.tenantKey()).status()).isEqualTo(200);
    }

    @Test
    void aBadIdempotencyKeyAnswers400() {
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        assertProblem(api.send("POST", rules(net), cp.tenantKey(), Map.of("protocol", "tcp", "startPort", 30), Map.of("Idempotency-Key", "k".repeat(129))),
                400, "BAD_IDEMPOTENCY_KEY", "Idempotency-Key", "is 129 characters long; at most 128 are allowed");
        // 10 KB: under the server's header limit (16 KiB), so our own check answers, as problem+json.
        assertProblem(api.send("POST", rules(net), cp.tenantKey(), Map.of("protocol", "tcp", "startPort", 30),
                Map.of("Idempotency-Key", "k".repeat(10 * 1024))), 400, "BAD_IDEMPOTENCY_KEY", "Idempotency-Key", "is 10240 characters long");
        // A bad key is found before the body: even with an invalid body the answer is about the key.
        assertProblem(api.send("POST", rules(net), cp.tenantKey(), Map.of("protocol", "gre"), Map.of("Idempotency-Key", "k".repeat(200))),
                400, "BAD_IDEMPOTENCY_KEY", "Idempotency-Key", null);
        assertProblem(api.send("POST", "/api/v1/networks", cp.tenantKey(), Map.of("networkId", cp.unique("k"), "guestCidr", "10.47.0.0/24"),
                Map.of("Idempotency-Key", "k".repeat(10 * 1024))), 400, "BAD_IDEMPOTENCY_KEY", "Idempotency-Key", null);
        published.assertNothingSince(before);
    }

    @Test
    void headersOverTheServersLimitAnswerProblemJsonFromTheContainer() {
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        ApiClient.Response r = api.send("POST", rules(net), cp.tenantKey(), Map.of("protocol", "tcp", "startPort", 30),
                Map.of("Idempotency-Key", "k".repeat(20 * 1024)));
        assertProblem(r, 400, "BAD_REQUEST", null, "larger than the server accepts");
        published.assertNothingSince(before);
    }

    static Stream<Named<Map<String, Object>>> networkBodies() {
        Map<String, Named<Map<String, Object>>> rows = new LinkedHashMap<>();
        rows.put("guest CIDR with host bits", Named.of("guest CIDR with host bits set",
                Map.of("guestCidr", "10.44.0.1/24", "field", "guestCidr", "reason", "did you mean 10.44.0.0/24?")));
        rows.put("IPv6 guest CIDR", Named.of("IPv6 prefix given as guestCidr",
                Map.of("guestCidr", "fd00::/64", "field", "guestCidr", "reason", "must be IPv4")));
        rows.put("quota 0", Named.of("rule quota 0", Map.of("guestCidr", "10.44.0.0/24", "ruleQuota", 0, "field", "ruleQuota", "reason", "0 is outside 1..")));
        rows.put("policy", Named.of("unknown default policy",
                Map.of("guestCidr", "10.44.0.0/24", "defaultPolicy", "reject", "field", "defaultPolicy", "reason", "use allow or deny")));
        rows.put("kind", Named.of("unknown kind", Map.of("guestCidr", "10.44.0.0/24", "kind", "vlan", "field", "kind", "reason", "use basic or vpc_tier")));
        rows.put("everything", Named.of("guest CIDR 0.0.0.0/0",
                Map.of("guestCidr", "0.0.0.0/0", "field", "guestCidr", "reason", "0.0.0.0/0 is too wide for a guest network: the prefix must be /8 or longer")));
        rows.put("wide", Named.of("guest CIDR 10.0.0.0/7",
                Map.of("guestCidr", "10.0.0.0/7", "field", "guestCidr", "reason", "the prefix must be /8 or longer")));
        rows.put("everything6", Named.of("guestCidr6 ::/0",
                Map.of("guestCidr", "10.44.0.0/24", "guestCidr6", "::/0", "field", "guestCidr6", "reason", "the prefix must be /48 or longer")));
        rows.put("wide6", Named.of("guestCidr6 fd00::/32",
                Map.of("guestCidr", "10.44.0.0/24", "guestCidr6", "fd00::/32", "field", "guestCidr6", "reason", "the prefix must be /48 or longer")));
        rows.put("quota over limit", Named.of("rule quota above the operator's limit (10000)", Map.of("guestCidr", "10.44.0.0/24",
                "ruleQuota", 10_001, "field", "ruleQuota", "reason", "10001 is above the operator's limit of 10000 rules per network")));
        rows.put("guest6", Named.of("IPv4 prefix given as guestCidr6",
                Map.of("guestCidr", "10.44.0.0/24", "guestCidr6", "10.45.0.0/24", "field", "guestCidr6", "reason", "must be an IPv6 prefix")));
        return rows.values().stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("networkBodies")
    void aBadNetworkIsRefusedAndNotCreated(Map<String, Object> row) {
        String id = cp.unique("badnet");
        Map<String, Object> body = new HashMap<>(row);
        body.remove("field");
        body.remove("reason");
        body.put("networkId", id);
        ApiClient.Response r = api.post("/api/v1/networks?wait=compiled&timeout=5s", cp.tenantKey(), body);
        assertProblem(r, 422, "INVALID", (String) row.get("field"), (String) row.get("reason"));
        ControlPlane.sleep(Published.SETTLE.toMillis());
        assertThat(api.get("/api/v1/networks/" + id, cp.tenantKey()).status()).isEqualTo(404);
    }

    @Test
    void nftSyntaxInADescriptionIsStoredAsTextAndNeverReachesTheRuleset() {
        String description = "\"; flush ruleset; add table ip pwned { chain c { type filter hook output priority 0; drop; } } # } comment \"x";
        ApiClient.Response r = created(api.post(rules(net) + "?wait=applied&timeout=30s", cp.tenantKey(),
                Map.of("protocol", "tcp", "startPort", 31337, "sourceCidrs", List.of("10.40.0.11/32"), "description", description)));
        assertThat(r.body().get("status").get("status").asString()).isEqualTo("APPLIED");
        String ruleId = r.text("ruleId");
        JsonNode stored = api.get(rules(net) + "/" + ruleId, cp.tenantKey()).body();
        assertThat(stored.get("description").asString()).isEqualTo(description);
        String ruleset = cp.ruleset(host);
        assertThat(ruleset).as("the rule reached its host").contains("r=" + ruleId + " ").containsPattern("0x45[0-9a-f]{6} \\. tcp \\. 31337-31337 comment");
        assertThat(ruleset).doesNotContain("flush ruleset").doesNotContain("pwned").doesNotContain("hook output").doesNotContain(description);
        // Every comment in the ruleset is one the renderer wrote, never tenant text.
        List<String> comments = ruleset.lines().filter(l -> l.contains("comment \""))
                .map(l -> l.substring(l.indexOf("comment \"") + 9)).collect(Collectors.toList());
        assertThat(comments).isNotEmpty().allSatisfy(c -> assertThat(c).matches("(r=[A-Za-z0-9._:-]+ h=[0-9a-f]+\",?"
                + "|net [A-Za-z0-9._:-]+ vm [A-Za-z0-9._:-]+\"( : (accept|drop))?,?"
                + "|(interface claimed by several VMs|dhcp( from no address| to broadcast)?|dhcpv6 from link-local"
                + "|neighbour discovery( from link-local)?|spoofed ipv[46] source)\""
                + "|layer [0-9]+ (deny|allow) (all|proto|port|type|code) ipv[46]( by destination)?( bucket [0-9]+)?\")"));
    }
}
