package io.egressctl.rules.cloudstack;

import io.egressctl.core.event.RuleChange;
import io.egressctl.core.model.EgressRule;
import io.egressctl.schemas.view.NetworkView;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** The endpoint from signed parameters to CloudStack-shaped JSON, on an in-memory backend. */
class CloudStackApiTest {

    static final String KEY = "acme-key";
    static final String SECRET = "acme-secret";
    static final String OTHER_KEY = "globex-key";
    static final String OPS_KEY = "ops-key";

    final MutableClock clock = new MutableClock(Instant.parse("2030-05-01T12:00:00Z"));
    final InMemoryCloudStackStore store = new InMemoryCloudStackStore(clock);
    final FakeBackend backend = new FakeBackend();
    final JsonMapper json = JsonMapper.builder().build();
    CloudStackApi api;

    @BeforeEach
    void setUp() {
        CloudStackKeys keys = new CloudStackKeys(KEY + ":" + SECRET + "=acme:tenant:alice," + OTHER_KEY + ":" + SECRET
                + "=globex:tenant:mallory," + OPS_KEY + ":" + SECRET + "=ops:operator:compute");
        api = new CloudStackApi(backend, store, new RequestVerifier(keys, store, clock), clock, "test");
        backend.addNetwork("net-a", "acme", "10.20.0.0/24", Map.of(
                "vm-a", new NetworkView.VmView("h1", "10.20.0.11", null),
                "vm-b", new NetworkView.VmView("h2", "10.20.0.12", null)));
        backend.addNetwork("net-g", "globex", "10.30.0.0/24", Map.of());
    }

    /** Sends a signed request as {@code apiKey}; a fresh expires each call (one second later). */
    Answer call(String apiKey, String command, String... kv) {
        Map<String, String> p = new LinkedHashMap<>();
        p.put("command", command);
        for (int i = 0; i < kv.length; i += 2) {
            p.put(kv[i], kv[i + 1]);
        }
        clock.advance(Duration.ofSeconds(1));
        return answer(api.handle(SignedRequests.signed(apiKey, SECRET, p, clock.instant().plusSeconds(600)), "req-1"));
    }

    Answer answer(CloudStackApi.Reply r) {
        JsonNode body = r.contentType().startsWith("application/json") ? json.readTree(r.body()) : null;
        return new Answer(r, body);
    }

    record Answer(CloudStackApi.Reply reply, JsonNode body) {
        int status() {
            return reply.status();
        }

        /** The single top-level object, asserting its name. */
        JsonNode in(String responseName) {
            assertThat(body.propertyNames()).containsExactly(responseName);
            return body.get(responseName);
        }
    }

    String createTcp80() {
        Answer a = call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "TCP", "cidrlist", "10.20.0.11/32",
                "startport", "80");
        assertThat(a.status()).as(a.reply().body()).isEqualTo(200);
        return a.in("createegressfirewallruleresponse").get("id").asString();
    }

    @Test
    void createAnswersTheRuleIdAndAJobIdAndPublishesTheRule() {
        Answer a = call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "TCP", "cidrlist", "10.20.0.11/32,10.20.0.12/32",
                "destcidrlist", "203.0.113.0/24", "startport", "8000", "endport", "8100");

        assertThat(a.status()).isEqualTo(200);
        assertThat(a.reply().contentType()).isEqualTo("application/json; charset=UTF-8");
        JsonNode r = a.in("createegressfirewallruleresponse");
        assertThat(r.propertyNames()).containsExactly("id", "jobid");
        RuleChange c = backend.last();
        assertThat(c.operation()).isEqualTo(RuleChange.Operation.RULE_CREATED);
        assertThat(c.eventId()).as("jobid is the change id").isEqualTo(r.get("jobid").asString());
        assertThat(c.networkId()).isEqualTo("net-a");
        EgressRule rule = c.ruleAfter();
        assertThat(rule.ruleId()).isEqualTo(r.get("id").asString());
        assertThat(rule.protocol().apiName()).isEqualTo("tcp");
        assertThat(rule.sourceCidrs()).extracting(Object::toString).containsExactly("10.20.0.11/32", "10.20.0.12/32");
        assertThat(rule.destinationCidrs()).extracting(Object::toString).containsExactly("203.0.113.0/24");
        assertThat(rule.ports().start()).isEqualTo(8000);
        assertThat(rule.ports().end()).isEqualTo(8100);
        assertThat(rule.action()).as("CloudStack semantics: the network's default policy decides").isNull();
        assertThat(c.audit().actor()).isEqualTo("alice");
        assertThat(c.audit().tenantId()).isEqualTo("acme");
        assertThat(c.audit().requestId()).isEqualTo("req-1");
    }

    @Test
    void cidrlistDefaultsToTheWholeNetworkAndTheGuestCidrMeansTheSame() {
        call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "all");
        assertThat(backend.last().ruleAfter().coversWholeNetwork()).isTrue();
        call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "udp", "cidrlist", "10.20.0.0/24");
        assertThat(backend.last().ruleAfter().coversWholeNetwork()).isTrue();
        call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "icmp", "cidrlist", "0.0.0.0/0");
        assertThat(backend.last().ruleAfter().coversWholeNetwork()).isTrue();
    }

    @Test
    void queryAsyncJobResultIsPendingUntilAppliedThenAnswersTheFirewallRule() {
        Answer created = call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "icmp", "cidrlist", "10.20.0.11/32");
        String jobId = created.in("createegressfirewallruleresponse").get("jobid").asString();
        String ruleId = created.in("createegressfirewallruleresponse").get("id").asString();

        JsonNode pending = call(KEY, "queryAsyncJobResult", "jobid", jobId).in("queryasyncjobresultresponse");
        assertThat(pending.get("jobstatus").asInt()).isZero();
        assertThat(pending.get("jobresultcode").asInt()).isZero();
        assertThat(pending.has("jobresult")).isFalse();
        assertThat(pending.get("jobid").asString()).isEqualTo(jobId);
        assertThat(pending.get("jobinstancetype").asString()).isEqualTo("FirewallRule");
        assertThat(pending.get("jobinstanceid").asString()).isEqualTo(ruleId);
        assertThat(pending.get("cmd").asString()).isEqualTo("org.apache.cloudstack.api.command.user.firewall.CreateEgressFirewallRuleCmd");
        assertThat(pending.get("created").asString()).matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\+0000");

        backend.compile(jobId);
        JsonNode done = call(KEY, "queryAsyncJobResult", "jobid", jobId).in("queryasyncjobresultresponse");
        assertThat(done.get("jobstatus").asInt()).isEqualTo(1);
        assertThat(done.get("jobresultcode").asInt()).isZero();
        assertThat(done.get("jobresulttype").asString()).isEqualTo("object");
        assertThat(done.has("completed")).isTrue();
        JsonNode rule = done.get("jobresult").get("firewallrule");
        assertThat(rule.get("id").asString()).isEqualTo(ruleId);
        assertThat(rule.get("protocol").asString()).isEqualTo("icmp");
        assertThat(rule.get("networkid").asString()).isEqualTo("net-a");
        assertThat(rule.get("cidrlist").asString()).isEqualTo("10.20.0.11/32");
        assertThat(rule.get("destcidrlist").asString()).isEmpty();
        assertThat(rule.get("icmptype").asInt()).as("icmp without a type: any (-1)").isEqualTo(-1);
        assertThat(rule.get("icmpcode").asInt()).isEqualTo(-1);
        assertThat(rule.get("state").asString()).isEqualTo("Active");
        assertThat(rule.get("traffictype").asString()).isEqualTo("Egress");
        assertThat(rule.get("tags").isArray()).isTrue();
        assertThat(rule.has("startport")).isFalse();
        assertThat(rule.has("fordisplay")).as("admin-only field").isFalse();
    }

    @Test
    void aRejectedChangeFailsItsJobWithTheReason() {
        Answer created = call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "tcp", "startport", "443");
        String jobId = created.in("createegressfirewallruleresponse").get("jobid").asString();
        backend.reject(jobId, "DUPLICATE_RULE", "an identical rule exists: r-1");

        JsonNode failed = call(KEY, "queryAsyncJobResult", "jobid", jobId).in("queryasyncjobresultresponse");
        assertThat(failed.get("jobstatus").asInt()).isEqualTo(2);
        assertThat(failed.get("jobresultcode").asInt()).isEqualTo(530);
        assertThat(failed.get("jobresult").get("errorcode").asInt()).isEqualTo(537);
        assertThat(failed.get("jobresult").get("errortext").asString()).contains("DUPLICATE_RULE", "r-1");
    }

    @Test
    void listAnswersCountAndFirewallRulesAndAnEmptyListIsAnEmptyObject() {
        Answer empty = call(KEY, "listEgressFirewallRules", "networkid", "net-a");
        assertThat(empty.in("listegressfirewallrulesresponse").isEmpty()).isTrue();

        String r1 = createTcp80();
        backend.compile(backend.last().eventId());
        call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "all", "cidrlist", "10.20.0.12/32");
        backend.compile(backend.last().eventId());

        JsonNode all = call(KEY, "listEgressFirewallRules", "networkid", "net-a").in("listegressfirewallrulesresponse");
        assertThat(all.get("count").asInt()).isEqualTo(2);
        assertThat(all.get("firewallrule")).hasSize(2);
        JsonNode one = call(KEY, "listEgressFirewallRules", "id", r1).in("listegressfirewallrulesresponse");
        assertThat(one.get("count").asInt()).isEqualTo(1);
        JsonNode rule = one.get("firewallrule").get(0);
        assertThat(rule.propertyNames()).containsExactly("id", "protocol", "startport", "endport", "networkid", "state", "cidrlist",
                "tags", "destcidrlist", "traffictype");
        assertThat(rule.get("startport").asInt()).isEqualTo(80);
        assertThat(rule.get("endport").asInt()).as("endport defaults to startport").isEqualTo(80);

        JsonNode page2 = call(KEY, "listEgressFirewallRules", "page", "2", "pagesize", "1").in("listegressfirewallrulesresponse");
        assertThat(page2.get("count").asInt()).as("count is the total").isEqualTo(2);
        assertThat(page2.get("firewallrule")).hasSize(1);
    }

    @Test
    void aRuleByVmIdsShowsItsVmsAddressesAsCidrlist() {
        backend.publish(new RuleChange("c-vm", RuleChange.Operation.RULE_CREATED, "net-a", null, null, null, null,
                new EgressRule("r-vm", io.egressctl.core.model.Protocol.ALL, null, EgressRule.DEFAULT_PRIORITY, List.of(),
                        List.of("vm-a", "vm-b"), List.of(), List.of(), null, null, null), null));
        backend.compile("c-vm");
        JsonNode rule = call(KEY, "listEgressFirewallRules", "id", "r-vm").in("listegressfirewallrulesresponse").get("firewallrule").get(0);
        assertThat(rule.get("cidrlist").asString()).isEqualTo("10.20.0.11/32,10.20.0.12/32");
    }

    @Test
    void deletePublishesTheDeletionAndItsJobAnswersSuccess() {
        String ruleId = createTcp80();
        backend.compile(backend.last().eventId());

        Answer a = call(KEY, "deleteEgressFirewallRule", "id", ruleId);
        JsonNode r = a.in("deleteegressfirewallruleresponse");
        assertThat(r.propertyNames()).containsExactly("jobid");
        RuleChange c = backend.last();
        assertThat(c.operation()).isEqualTo(RuleChange.Operation.RULE_DELETED);
        assertThat(c.ruleBefore().ruleId()).isEqualTo(ruleId);
        assertThat(c.eventId()).isEqualTo(r.get("jobid").asString());

        backend.compile(c.eventId());
        JsonNode done = call(KEY, "queryAsyncJobResult", "jobid", c.eventId()).in("queryasyncjobresultresponse");
        assertThat(done.get("jobstatus").asInt()).isEqualTo(1);
        assertThat(done.get("jobresult").toString()).isEqualTo("{\"success\":true}");
        assertThat(call(KEY, "deleteEgressFirewallRule", "id", ruleId).status()).as("gone").isEqualTo(431);
    }

    @Test
    void updateSetsACustomIdThatBecomesTheRulesIdAndOperatorsMaySetFordisplay() {
        String ruleId = createTcp80();
        backend.compile(backend.last().eventId());

        Answer u = call(KEY, "updateEgressFirewallRule", "id", ruleId, "customid", "web-block");
        String jobId = u.in("updateegressfirewallruleresponse").get("jobid").asString();
        JsonNode job = call(KEY, "queryAsyncJobResult", "jobid", jobId).in("queryasyncjobresultresponse");
        assertThat(job.get("jobstatus").asInt()).isEqualTo(1);
        assertThat(job.get("jobresult").get("firewallrule").get("id").asString()).isEqualTo("web-block");
        assertThat(backend.published).as("presentation only: nothing published").hasSize(1);

        JsonNode listed = call(KEY, "listEgressFirewallRules", "id", "web-block").in("listegressfirewallrulesresponse");
        assertThat(listed.get("firewallrule").get(0).get("id").asString()).isEqualTo("web-block");

        // fordisplay is admin-only: ignored for a tenant, honoured for an operator (and then hidden from the tenant).
        call(KEY, "updateEgressFirewallRule", "id", "web-block", "fordisplay", "false");
        assertThat(call(KEY, "listEgressFirewallRules", "networkid", "net-a").in("listegressfirewallrulesresponse").get("count").asInt())
                .isEqualTo(1);
        call(OPS_KEY, "updateEgressFirewallRule", "id", "web-block", "fordisplay", "false");
        assertThat(call(KEY, "listEgressFirewallRules", "networkid", "net-a").in("listegressfirewallrulesresponse").isEmpty()).isTrue();
        JsonNode asOps = call(OPS_KEY, "listEgressFirewallRules", "networkid", "net-a").in("listegressfirewallrulesresponse");
        assertThat(asOps.get("firewallrule").get(0).get("fordisplay").asBoolean()).isFalse();

        // Deleting by the customid works and frees it.
        call(KEY, "deleteEgressFirewallRule", "id", "web-block");
        assertThat(backend.last().ruleBefore().ruleId()).isEqualTo(ruleId);
        assertThat(store.alias("web-block")).isEmpty();
    }

    @Test
    void aCustomIdInUseIsRefused() {
        String r1 = createTcp80();
        backend.compile(backend.last().eventId());
        call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "udp", "startport", "53");
        String r2 = backend.last().ruleAfter().ruleId();
        backend.compile(backend.last().eventId());
        call(KEY, "updateEgressFirewallRule", "id", r1, "customid", "dns");
        Answer clash = call(KEY, "updateEgressFirewallRule", "id", r2, "customid", "dns");
        assertThat(clash.status()).isEqualTo(431);
        assertThat(clash.in("updateegressfirewallruleresponse").get("errortext").asString()).contains("already in use");
        assertThat(call(KEY, "updateEgressFirewallRule", "id", r2, "customid", r1).status()).as("another rule's id").isEqualTo(431);
    }

    @Test
    void listNetworksAnswersTheCallersNetworksOnlyUnlessAnOperatorAsksForAll() {
        JsonNode mine = call(KEY, "listNetworks").in("listnetworksresponse");
        assertThat(mine.get("count").asInt()).isEqualTo(1);
        JsonNode n = mine.get("network").get(0);
        assertThat(n.get("id").asString()).isEqualTo("net-a");
        assertThat(n.get("cidr").asString()).isEqualTo("10.20.0.0/24");
        assertThat(n.get("traffictype").asString()).isEqualTo("Guest");
        assertThat(n.get("egressdefaultpolicy").asBoolean()).isTrue();
        assertThat(call(KEY, "listNetworks", "listall", "true").in("listnetworksresponse").get("count").asInt()).isEqualTo(1);
        assertThat(call(OPS_KEY, "listNetworks", "listall", "true").in("listnetworksresponse").get("count").asInt()).isEqualTo(2);
        assertThat(call(KEY, "listNetworks", "id", "net-g").status()).as("another tenant's network").isEqualTo(431);
    }

    @Test
    void anotherTenantsNetworkIsAnsweredAsMissing() {
        Answer a = call(OTHER_KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "tcp");
        assertThat(a.status()).isEqualTo(431);
        JsonNode e = a.in("createegressfirewallruleresponse");
        assertThat(e.get("errortext").asString()).contains("Invalid parameter networkid value=net-a");
        Answer missing = call(KEY, "createEgressFirewallRule", "networkid", "net-nope", "protocol", "tcp");
        assertThat(missing.reply().body().replace("net-nope", "net-a")).isEqualTo(a.reply().body());
        assertThat(backend.published).isEmpty();
    }

    @Test
    void errorsHaveCloudStacksShapeAndHttpStatus() {
        Answer missing = call(KEY, "createEgressFirewallRule", "networkid", "net-a");
        assertThat(missing.status()).isEqualTo(431);
        assertThat(missing.body().toString()).isEqualTo("{\"createegressfirewallruleresponse\":{\"uuidList\":[],\"errorcode\":431,"
                + "\"cserrorcode\":4350,\"errortext\":\"Unable to execute API command createegressfirewallrule due to missing parameter protocol\"}}");

        Answer badPort = call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "tcp", "startport", "eighty");
        assertThat(badPort.status()).isEqualTo(431);
        assertThat(badPort.in("createegressfirewallruleresponse").get("errortext").asString()).contains("Invalid parameter startport value=eighty");

        Answer outside = call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "tcp", "cidrlist", "10.99.0.0/24");
        assertThat(outside.status()).isEqualTo(431);
        assertThat(outside.in("createegressfirewallruleresponse").get("errortext").asString())
                .contains("cidrlist: 10.99.0.0/24 is outside the guest CIDR 10.20.0.0/24");

        Answer portsOnIcmp = call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "icmp", "startport", "80");
        assertThat(portsOnIcmp.in("createegressfirewallruleresponse").get("errortext").asString()).contains("startport:");

        Answer unknown = call(KEY, "deployVirtualMachine", "zoneid", "z1");
        assertThat(unknown.status()).isEqualTo(432);
        assertThat(unknown.body().has("errorresponse")).isTrue();
        assertThat(backend.published).isEmpty();
    }

    @Test
    void theBadInputEdgesOfTheRestApiAreRefusedHereTooAndNothingIsPublished() {
        for (String port : java.util.List.of("80.5", "-5", "99999999999", "0x50", "80 443")) {
            Answer bad = call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "tcp", "startport", port);
            assertThat(bad.status()).as(port).isEqualTo(431);
            assertThat(bad.in("createegressfirewallruleresponse").get("errortext").asString()).as(port).contains("startport");
        }
        // A source wider than the guest network (other than CloudStack's 0.0.0.0/0, "every VM") is refused.
        Answer wide = call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "tcp", "cidrlist", "0.0.0.0/1");
        assertThat(wide.status()).isEqualTo(431);
        assertThat(wide.in("createegressfirewallruleresponse").get("errortext").asString()).contains("is outside the guest CIDR");
        Answer badPage = call(KEY, "listEgressFirewallRules", "networkid", "net-a", "page", "-1");
        assertThat(badPage.status()).isEqualTo(431);
        assertThat(backend.published).isEmpty();
    }

    @Test
    void theOperatorsLimitOfRulesPerNetworkCapsTheQuota() {
        api = new CloudStackApi(backend, store, new RequestVerifier(new CloudStackKeys(KEY + ":" + SECRET + "=acme:tenant:alice"), store,
                clock), clock, "test", new io.egressctl.core.state.Limits(1, 10, 100_000));
        String first = call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "tcp", "startport", "80")
                .in("createegressfirewallruleresponse").get("jobid").asString();
        backend.compile(first);
        Answer second = call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "tcp", "startport", "81");
        assertThat(second.status()).isEqualTo(532);
        assertThat(second.in("createegressfirewallruleresponse").get("errortext").asString())
                .contains("Maximum number of egress rules (1) for network net-a has been exceeded");
        assertThat(backend.published).hasSize(1);
    }

    @Test
    void aDuplicateRuleIsAConflict() {
        createTcp80();
        backend.compile(backend.last().eventId());
        Answer dup = call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "tcp", "cidrlist", "10.20.0.11/32",
                "startport", "80", "endport", "80");
        assertThat(dup.status()).isEqualTo(537);
        assertThat(dup.in("createegressfirewallruleresponse").get("cserrorcode").asInt()).isEqualTo(4360);
    }

    @Test
    void aBadSignatureIs401InCloudStackShapeWithoutCsErrorCode() {
        Map<String, String> p = new LinkedHashMap<>(Map.of("command", "listNetworks", "response", "json", "apiKey", KEY,
                "signatureVersion", "3", "expires", SignedRequests.EXPIRES.format(clock.instant().plusSeconds(60))));
        p.put("signature", SignedRequests.signature(p, "wrong"));
        Answer a = answer(api.handle(SignedRequests.raw(p), null));
        assertThat(a.status()).isEqualTo(401);
        JsonNode e = a.in("listnetworksresponse");
        assertThat(e.get("errorcode").asInt()).isEqualTo(401);
        assertThat(e.has("cserrorcode")).isFalse();
        assertThat(e.get("errortext").asString()).startsWith("unable to verify user credentials and/or request signature");
    }

    @Test
    void aReplayedCreateIsRefusedAndPublishesNothingTheSecondTime() {
        Map<String, String[]> req = SignedRequests.signed(KEY, SECRET, Map.of("command", "createEgressFirewallRule", "networkid", "net-a",
                "protocol", "tcp", "startport", "22"), clock.instant().plusSeconds(300));
        assertThat(api.handle(req, null).status()).isEqualTo(200);
        clock.advance(Duration.ofSeconds(2));
        CloudStackApi.Reply replay = api.handle(req, null);
        assertThat(replay.status()).isEqualTo(401);
        assertThat(replay.body()).contains("replayed");
        assertThat(backend.published).hasSize(1);
    }

    @Test
    void anExpiredRequestIsRefused() {
        Map<String, String[]> req = SignedRequests.signed(KEY, SECRET, Map.of("command", "listNetworks"), clock.instant().plusSeconds(5));
        clock.advance(Duration.ofSeconds(6));
        CloudStackApi.Reply r = api.handle(req, null);
        assertThat(r.status()).isEqualTo(401);
        assertThat(r.body()).contains("expired");
    }

    @Test
    void xmlIsRefusedWithAnXmlError() {
        Map<String, String[]> req = SignedRequests.signed(KEY, SECRET, Map.of("command", "listNetworks", "response", "xml"),
                clock.instant().plusSeconds(60));
        CloudStackApi.Reply r = api.handle(req, null);
        assertThat(r.status()).isEqualTo(431);
        assertThat(r.contentType()).startsWith("text/xml");
        assertThat(r.body()).contains("<listnetworksresponse", "<errorcode>431</errorcode>", "response=json");
    }

    @Test
    void anotherTenantCannotQueryAJob() {
        String jobId = call(KEY, "createEgressFirewallRule", "networkid", "net-a", "protocol", "tcp", "startport", "25")
                .in("createegressfirewallruleresponse").get("jobid").asString();
        assertThat(call(OTHER_KEY, "queryAsyncJobResult", "jobid", jobId).status()).isEqualTo(431);
        assertThat(call(OPS_KEY, "queryAsyncJobResult", "jobid", jobId).status()).isEqualTo(200);
    }
}
