package io.egressctl.e2e.audit;

import io.egressctl.cli.audit.Table;
import io.egressctl.cli.audit.Times;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.host.HostState;
import io.egressctl.core.state.NetworkState;
import io.egressctl.events.AppliedFragment;
import io.egressctl.events.CompiledRule;
import io.egressctl.events.DefaultPolicy;
import io.egressctl.events.EnforcementReport;
import io.egressctl.events.EnforcementStatus;
import io.egressctl.events.EnforcementTrigger;
import io.egressctl.events.HostUpdate;
import io.egressctl.events.NetworkKind;
import io.egressctl.events.NetworkSpec;
import io.egressctl.events.Protocol;
import io.egressctl.events.RuleAction;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.RuleOperation;
import io.egressctl.events.RuleSpec;
import io.egressctl.events.Source;
import io.egressctl.events.VmAddress;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.events.WorkloadOperation;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.view.NetworkView;
import io.egressctl.schemas.view.RedisKeys;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import redis.clients.jedis.UnifiedJedis;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code egressctl audit} against the real broker, registry and Redis: a scripted history with known
 * timestamps (simulated time, May 2024) is written to topics of this run ({@code --topic-prefix}: the
 * network events log, rule and placement events of a network in one order, and reports), then every
 * command's output is asserted exactly. Offsets and partitions come from what the broker stored.
 */
class AuditScriptedHistoryIT {

    static final Instant T0 = Instant.parse("2024-05-01T10:00:00Z");
    static final Instant NOW = Instant.parse("2024-06-01T12:00:00Z");
    static final JsonMapper JSON = JsonMapper.builder().build();

    static AuditSupport s;
    static UnifiedJedis redis;
    static String prefix;
    static String eventTopic;
    static String reportTopic;
    static String netA;
    static String netB;
    static String h1;
    static String h2;
    static final Map<String, AuditSupport.Written> w = new LinkedHashMap<>();
    static final Map<String, RuleEvent> ruleEvents = new LinkedHashMap<>();
    static final Map<String, WorkloadEvent> workloadEvents = new LinkedHashMap<>();
    static final List<String> redisKeys = new ArrayList<>();

    static Instant t(int seconds) {
        return T0.plusSeconds(seconds);
    }

    static Source source(String actor, String tenant, String request, Instant at) {
        return Source.newBuilder().setActor(actor).setTenantId(tenant).setRequestId(request).setEventTime(at)
                .setService("rule-service").setServiceVersion("0.1.0").build();
    }

    static NetworkSpec network(String id, String tenant, String cidr, DefaultPolicy policy) {
        return NetworkSpec.newBuilder().setNetworkId(id).setTenantId(tenant).setKind(NetworkKind.BASIC).setGuestCidr(cidr)
                .setGuestCidr6(null).setDefaultPolicy(policy).setAdvanced(false).setRuleQuota(1000).build();
    }

    static RuleSpec rule(String id, Protocol p, Integer port, Integer icmpType, List<String> cidrs, List<String> vms, List<String> dst) {
        return RuleSpec.newBuilder().setRuleId(id).setProtocol(p).setAction(null).setPriority(1000).setSourceCidrs(cidrs)
                .setSourceVmIds(vms).setDestinationCidrs(dst).setDestinationExceptCidrs(List.of()).setStartPort(port).setEndPort(port)
                .setIcmpType(icmpType).setIcmpCode(null).setDescription(null).build();
    }

    static RuleSpec icmp(String id) {
        return rule(id, Protocol.ICMP, null, 8, List.of("10.20.0.11/32"), List.of(), List.of());
    }

    static RuleSpec web(int port) {
        return rule("r-web", Protocol.TCP, port, null, List.of(), List.of("vm-b"), List.of());
    }

    static long pos(String name) {
        return w.get(name).offset() + 1;
    }

    static void rule(String name, int at, String actor, String tenant, RuleOperation op, String net, NetworkSpec n, RuleSpec before,
                     RuleSpec after, Long expected) throws Exception {
        RuleEvent e = RuleEvent.newBuilder().setEventId("ev-" + name + "-" + s.run).setOperation(op).setNetworkId(net)
                .setExpectedVersion(expected).setNetwork(n).setRuleBefore(before).setRuleAfter(after)
                .setSource(source(actor, tenant, "req-" + name, t(at))).build();
        ruleEvents.put(name, e);
        w.put(name, s.write(eventTopic, net, t(at), e));
    }

    static void workload(String name, int at, WorkloadOperation op, String vm, String host, String previous, String iface, String ip)
            throws Exception {
        WorkloadEvent e = WorkloadEvent.newBuilder().setEventId("ev-" + name + "-" + s.run).setOperation(op).setNetworkId(netA)
                .setVmId(vm).setHostId(host).setPreviousHostId(previous).setInterfaceName(iface).setIpv4(ip).setIpv6(null)
                .setSource(source("compute", "acme", "req-" + name, t(at))).build();
        workloadEvents.put(name, e);
        w.put(name, s.write(eventTopic, netA, t(at), e));
    }

    static void report(String name, int at, String host, EnforcementStatus status, long version, char hash, List<String> changes,
                       String error) throws Exception {
        EnforcementReport r = EnforcementReport.newBuilder().setHostId(host).setStatus(status).setTrigger(EnforcementTrigger.UPDATE)
                .setFragments(List.of(AppliedFragment.newBuilder().setNetworkId(netA).setVersion(version).build()))
                .setAppliedHash(String.valueOf(hash).repeat(64)).setChangeIds(changes).setError(error).setApplyMicros(1200)
                .setEnforcer("dry-run").setDriftRepairs(0).setReportedAt(t(at)).build();
        w.put(name, s.write(reportTopic, host, t(at), name.startsWith("forged") ? r : AGENTS.sign(r)));
    }

    /** How the scripted hosts' agents sign their reports (a report named forged* is written unsigned, by something else). */
    static final io.egressctl.schemas.integrity.ReportMac AGENTS = new io.egressctl.schemas.integrity.ReportMac(
            io.egressctl.schemas.integrity.UpdateKeys.parse(AuditSupport.UPDATE_KEYS, null));

    @BeforeAll
    static void writeTheHistory() throws Exception {
        s = new AuditSupport();
        redis = new UnifiedJedis(URI.create(s.redisUrl));
        prefix = "it-audit-" + s.run + ".";
        eventTopic = prefix + "network-events";
        reportTopic = prefix + "enforcement-reports";
        s.createTopic(eventTopic, 3);
        s.createTopic(reportTopic, 3);
        netA = "a-" + s.run;
        netB = "b-" + s.run;
        h1 = "h1-" + s.run;
        h2 = "h2-" + s.run;

        rule("a1", 0, "alice", "acme", RuleOperation.NETWORK_CREATED, netA, network(netA, "acme", "10.20.0.0/24", DefaultPolicy.ALLOW), null, null, null);
        rule("b1", 5, "mallory", "globex", RuleOperation.NETWORK_CREATED, netB, network(netB, "globex", "10.30.0.0/24", DefaultPolicy.ALLOW), null, null, null);
        rule("a2", 10, "alice", "acme", RuleOperation.RULE_CREATED, netA, null, null, icmp("r-icmp"), null);
        workload("w1", 11, WorkloadOperation.VM_PLACED, "vm-a", h1, null, "tap-a", "10.20.0.11");
        workload("w2", 12, WorkloadOperation.VM_PLACED, "vm-b", h1, null, "tap-b", "10.20.0.12");
        rule("b2", 15, "mallory", "globex", RuleOperation.RULE_CREATED, netB, null, null,
                rule("r-dns", Protocol.UDP, 53, null, List.of(), List.of(), List.of("8.8.8.8/32")), null);
        rule("a3", 20, "alice", "acme", RuleOperation.RULE_CREATED, netA, null, null, web(80), null);
        report("r1", 21, h1, EnforcementStatus.ACK, 3, 'a', List.of("c1"), null);
        rule("a4", 30, "bob", "acme", RuleOperation.RULE_UPDATED, netA, null, web(80), web(8080), pos("a3"));
        report("r2", 31, h1, EnforcementStatus.ACK, 4, 'b', List.of("c2"), null);
        report("x1", 33, h2, EnforcementStatus.ACK, 4, 'c', List.of("c2"), null);
        rule("a5", 40, "carol", "acme", RuleOperation.RULE_CREATED, netA, null, null, icmp("r-dup"), null);
        workload("w3", 45, WorkloadOperation.VM_MOVED, "vm-b", h2, h1, "tap-b", "10.20.0.12");
        rule("a6", 50, "bob", "acme", RuleOperation.RULE_DELETED, netA, null, icmp("r-icmp"), null, null);
        rule("a7", 60, "carol", "acme", RuleOperation.NETWORK_UPDATED, netA, network(netA, "acme", "10.20.0.0/24", DefaultPolicy.DENY), null, null, null);
        report("r3", 61, h1, EnforcementStatus.NACK, 4, 'b', List.of(), "nft: Error: syntax error");
        report("forged1", 62, h1, EnforcementStatus.ACK, 9, 'f', List.of("c9"), null);
        rule("a8", 70, "dave", "acme", RuleOperation.RULE_UPDATED, netA, null, web(8080), web(9090), 1L);
    }

    @AfterAll
    static void cleanUp() throws Exception {
        if (redis != null) {
            redisKeys.forEach(redis::del);
            redis.close();
        }
        if (s != null) {
            s.close();
        }
    }

    static AuditSupport.Run audit(String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.add("--topic-prefix");
        all.add(prefix);
        AuditSupport.Run r = s.audit(NOW, all.toArray(String[]::new));
        assertThat(r.err()).as("stderr of %s", all).isEmpty();
        return r;
    }

    static String position(String name) {
        AuditSupport.Written x = w.get(name);
        return "p" + x.partition() + "@" + x.offset();
    }

    static final String HISTORY_HEADERS = "time position network operation rule actor tenant request before after";
    static final String NET_A_ALLOW = "basic 10.20.0.0/24 policy allow tenant acme";
    static final String NET_A_DENY = "basic 10.20.0.0/24 policy deny tenant acme";
    static final String ICMP = "icmp type 8 from 10.20.0.11/32 to any";

    static Object[] row(String name, String op, String rule, String actor, String tenant, String before, String after) {
        return new Object[] {Times.format(t(second(name))), position(name), w.get(name).key().startsWith("b-") ? netB : netA, op,
                rule, actor, tenant, "req-" + name, before, after};
    }

    static int second(String name) {
        return (int) ((w.get(name).timestamp() - T0.toEpochMilli()) / 1000);
    }

    @Test
    void historyOfANetworkListsEveryChangeWithItsAuditBlock() {
        AuditSupport.Run r = audit("history", "--network", netA);
        Table t = new Table(HISTORY_HEADERS.split(" "));
        t.row(row("a1", "NETWORK_CREATED", null, "alice", "acme", null, NET_A_ALLOW));
        t.row(row("a2", "RULE_CREATED", "r-icmp", "alice", "acme", null, ICMP));
        t.row(row("a3", "RULE_CREATED", "r-web", "alice", "acme", null, "tcp port 80 from vm-b to any"));
        t.row(row("a4", "RULE_UPDATED", "r-web", "bob", "acme", "tcp port 80 from vm-b to any", "tcp port 8080 from vm-b to any"));
        t.row(row("a5", "RULE_CREATED", "r-dup", "carol", "acme", null, ICMP));
        t.row(row("a6", "RULE_DELETED", "r-icmp", "bob", "acme", ICMP, null));
        t.row(row("a7", "NETWORK_UPDATED", null, "carol", "acme", null, NET_A_DENY));
        t.row(row("a8", "RULE_UPDATED", "r-web", "dave", "acme", "tcp port 8080 from vm-b to any", "tcp port 9090 from vm-b to any"));
        assertThat(r.code()).isZero();
        assertThat(r.out()).isEqualTo(t.render() + "8 events\n");
    }

    @Test
    void historyBetweenTwoTimesWithTheLogsDecisions() {
        AuditSupport.Run r = audit("history", "--network", netA, "--from", "2024-05-01T10:00:15Z", "--to", "2024-05-01T10:00:50Z",
                "--decisions");
        Table t = new Table((HISTORY_HEADERS + " outcome").split(" "));
        t.row(append(row("a3", "RULE_CREATED", "r-web", "alice", "acme", null, "tcp port 80 from vm-b to any"), "accepted"));
        t.row(append(row("a4", "RULE_UPDATED", "r-web", "bob", "acme", "tcp port 80 from vm-b to any", "tcp port 8080 from vm-b to any"),
                "accepted"));
        t.row(append(row("a5", "RULE_CREATED", "r-dup", "carol", "acme", null, ICMP), "rejected DUPLICATE_RULE"));
        t.row(append(row("a6", "RULE_DELETED", "r-icmp", "bob", "acme", ICMP, null), "accepted"));
        assertThat(r.out()).isEqualTo(t.render() + "4 events\n");

        AuditSupport.Run late = audit("history", "--network", netA, "--from", "2024-05-01T10:00:55Z", "--decisions");
        Table t2 = new Table((HISTORY_HEADERS + " outcome").split(" "));
        t2.row(append(row("a7", "NETWORK_UPDATED", null, "carol", "acme", NET_A_ALLOW, NET_A_DENY), "accepted"));
        t2.row(append(row("a8", "RULE_UPDATED", "r-web", "dave", "acme", "tcp port 8080 from vm-b to any", "tcp port 9090 from vm-b to any"),
                "rejected STALE_VERSION"));
        assertThat(late.out()).isEqualTo(t2.render() + "2 events\n");
    }

    static Object[] append(Object[] row, Object cell) {
        Object[] out = java.util.Arrays.copyOf(row, row.length + 1);
        out[row.length] = cell;
        return out;
    }

    @Test
    void historyOfATenantAsJson() {
        AuditSupport.Run r = audit("history", "--tenant", "globex", "--output", "json");
        JsonNode doc = JSON.readTree(r.out());
        assertThat(doc.get("count").asInt()).isEqualTo(2);
        JsonNode first = doc.get("events").get(0);
        assertThat(first.get("time").asString()).isEqualTo("2024-05-01T10:00:05.000Z");
        assertThat(first.get("logTime").asString()).isEqualTo("2024-05-01T10:00:05.000Z");
        assertThat(first.get("topic").asString()).isEqualTo(eventTopic);
        assertThat(first.get("partition").asInt()).isEqualTo(w.get("b1").partition());
        assertThat(first.get("offset").asLong()).isEqualTo(w.get("b1").offset());
        assertThat(first.get("operation").asString()).isEqualTo("NETWORK_CREATED");
        assertThat(first.get("actor").asString()).isEqualTo("mallory");
        assertThat(first.get("requestId").asString()).isEqualTo("req-b1");
        assertThat(first.get("eventId").asString()).isEqualTo("ev-b1-" + s.run);
        assertThat(first.get("network").get("guestCidr").asString()).isEqualTo("10.30.0.0/24");
        JsonNode second = doc.get("events").get(1);
        assertThat(second.get("ruleBefore").isNull()).isTrue();
        assertThat(second.get("ruleAfter").get("ruleId").asString()).isEqualTo("r-dns");
        assertThat(second.get("ruleAfter").get("destinationCidrs").get(0).asString()).isEqualTo("8.8.8.8/32");
        assertThat(second.get("ruleAfter").get("protocol").asString()).isEqualTo("UDP");
    }

    @Test
    void historyOfARule() {
        AuditSupport.Run r = audit("history", "--rule", "r-web");
        Table t = new Table(HISTORY_HEADERS.split(" "));
        t.row(row("a3", "RULE_CREATED", "r-web", "alice", "acme", null, "tcp port 80 from vm-b to any"));
        t.row(row("a4", "RULE_UPDATED", "r-web", "bob", "acme", "tcp port 80 from vm-b to any", "tcp port 8080 from vm-b to any"));
        t.row(row("a8", "RULE_UPDATED", "r-web", "dave", "acme", "tcp port 8080 from vm-b to any", "tcp port 9090 from vm-b to any"));
        assertThat(r.out()).isEqualTo(t.render() + "3 events\n");
    }

    @Test
    void historyOfAVmShowsItsPlacementsAndTheChangesThatCoverIt() {
        AuditSupport.Run r = audit("history", "--vm", "vm-b");
        Table t = new Table(HISTORY_HEADERS.split(" "));
        t.row(row("a1", "NETWORK_CREATED", null, "alice", "acme", null, NET_A_ALLOW));
        t.row(row("w2", "VM_PLACED vm-b", null, "compute", "acme", null, h1 + "/tap-b 10.20.0.12"));
        t.row(row("a3", "RULE_CREATED", "r-web", "alice", "acme", null, "tcp port 80 from vm-b to any"));
        t.row(row("a4", "RULE_UPDATED", "r-web", "bob", "acme", "tcp port 80 from vm-b to any", "tcp port 8080 from vm-b to any"));
        t.row(row("w3", "VM_MOVED vm-b", null, "compute", "acme", h1, h2 + "/tap-b 10.20.0.12"));
        t.row(row("a7", "NETWORK_UPDATED", null, "carol", "acme", null, NET_A_DENY));
        t.row(row("a8", "RULE_UPDATED", "r-web", "dave", "acme", "tcp port 8080 from vm-b to any", "tcp port 9090 from vm-b to any"));
        assertThat(r.out()).isEqualTo(t.render() + "7 events\n");

        // vm-a (10.20.0.11) is covered by the ICMP rules through their source CIDR
        AuditSupport.Run a = audit("history", "--vm", "vm-a", "--from", "2024-05-01T10:00:01Z", "--to", "2024-05-01T10:00:50Z");
        List<String> lines = a.out().lines().toList();
        assertThat(lines.subList(0, lines.size() - 1).stream().map(l -> l.split("\\s+")[3]).toList())
                .containsExactly("OPERATION", "RULE_CREATED", "VM_PLACED", "RULE_CREATED", "RULE_DELETED");
        assertThat(lines.get(lines.size() - 1)).isEqualTo("4 events");
    }

    /** The first offset of the partition stamped after {@code second}, else the partition's end. */
    static long boundAfter(String topic, int partition, int second) {
        long end = 0;
        long bound = Long.MAX_VALUE;
        for (AuditSupport.Written x : w.values()) {
            if (x.topic().equals(topic) && x.partition() == partition) {
                end = Math.max(end, x.offset() + 1);
                if (x.timestamp() > t(second).toEpochMilli()) {
                    bound = Math.min(bound, x.offset());
                }
            }
        }
        return Math.min(bound, end);
    }

    @Test
    void stateAtATimeIsRebuiltFromTheLog() {
        int p = w.get("a1").partition();
        AuditSupport.Run r = audit("state", "--network", netA, "--at", "2024-05-01T10:00:35Z");
        String rules = new Table("rule", "action", "match", "description")
                .row("r-icmp", "deny", ICMP, null)
                .row("r-web", "deny", "tcp port 8080 from vm-b to any", null).render();
        assertThat(r.out()).isEqualTo("network: " + netA + "\n"
                + "at: 2024-05-01T10:00:35.000Z\n"
                + "definition: " + NET_A_ALLOW + "\n"
                + "config version: " + pos("a4") + "\n"
                + "replayed: 6 events of " + eventTopic + " partition " + p + " offsets 0.." + boundAfter(eventTopic, p, 35)
                + " (0 rejected, 0 skipped)\n"
                + "rules: 2\n" + rules);

        AuditSupport.Run now = audit("state", "--network", netA);
        assertThat(now.out()).isEqualTo("network: " + netA + "\n"
                + "at: 2024-06-01T12:00:00.000Z\n"
                + "definition: " + NET_A_DENY + "\n"
                + "config version: " + pos("a7") + "\n"
                + "replayed: 11 events of " + eventTopic + " partition " + p + " offsets 0.." + boundAfter(eventTopic, p, 3600)
                + " (2 rejected, 0 skipped)\n"
                + "rules: 1\n"
                + new Table("rule", "action", "match", "description").row("r-web", "allow", "tcp port 8080 from vm-b to any", null).render());

        AuditSupport.Run before = audit("state", "--network", netA, "--at", "2024-05-01T09:00:00Z", "--output", "json");
        JsonNode doc = JSON.readTree(before.out());
        assertThat(doc.get("exists").asBoolean()).isFalse();
        assertThat(doc.get("rules").size()).isZero();
        assertThat(doc.get("replayed").get("events").asInt()).isZero();

        AuditSupport.Run both = audit("state", "--network", netA, "--network", netB, "--at", "2024-05-01T10:00:16Z", "--output", "json");
        JsonNode docs = JSON.readTree(both.out());
        assertThat(docs.size()).isEqualTo(2);
        assertThat(docs.get(0).get("rules").get(0).get("ruleId").asString()).isEqualTo("r-icmp");
        assertThat(docs.get(1).get("rules").get(0).get("ruleId").asString()).isEqualTo("r-dns");
        assertThat(docs.get(1).get("configVersion").asLong()).isEqualTo(pos("b2"));
    }

    @Test
    void diffBetweenTwoTimes() {
        AuditSupport.Run r = audit("diff", "--network", netA, "--from", "2024-05-01T10:00:25Z", "--to", "2024-05-01T10:01:05Z");
        String table = new Table("change", "rule", "fields", "before", "after")
                .row("network changed", null, "defaultPolicy", NET_A_ALLOW, NET_A_DENY)
                .row("removed", "r-icmp", "", ICMP, null)
                .row("changed", "r-web", "ports", "tcp port 80 from vm-b to any", "tcp port 8080 from vm-b to any").render();
        assertThat(r.out()).isEqualTo("network: " + netA + "\n"
                + "from: 2024-05-01T10:00:25.000Z (config version " + pos("a3") + ")\n"
                + "to: 2024-05-01T10:01:05.000Z (config version " + pos("a7") + ")\n"
                + table + "3 changes\n");

        AuditSupport.Run none = audit("diff", "--network", netA, "--from", "2024-05-01T10:00:21Z", "--to", "2024-05-01T10:00:29Z");
        assertThat(none.out()).endsWith("0 changes\n");
    }

    @Test
    void enforcementOfAHostOverTime() {
        String bbb = "b".repeat(64);
        Table t = new Table("reported", "position", "status", "trigger", "versions", "hash", "changes", "error", "signed")
                .row("2024-05-01T10:00:21.000Z", position("r1"), "ACK", "UPDATE", netA + "=3", "a".repeat(16), 1, null, "yes")
                .row("2024-05-01T10:00:31.000Z", position("r2"), "ACK", "UPDATE", netA + "=4", "b".repeat(16), 1, null, "yes");
        Table all = new Table("reported", "position", "status", "trigger", "versions", "hash", "changes", "error", "signed")
                .row("2024-05-01T10:00:21.000Z", position("r1"), "ACK", "UPDATE", netA + "=3", "a".repeat(16), 1, null, "yes")
                .row("2024-05-01T10:00:31.000Z", position("r2"), "ACK", "UPDATE", netA + "=4", "b".repeat(16), 1, null, "yes")
                .row("2024-05-01T10:01:01.000Z", position("r3"), "NACK", "UPDATE", netA + "=4", "b".repeat(16), 0,
                        "nft: Error: syntax error", "yes")
                .row("2024-05-01T10:01:02.000Z", position("forged1"), "ACK", "UPDATE", netA + "=9", "f".repeat(16), 1, null, "no");
        AuditSupport.Run r = audit("enforcement", "--host", h1);
        // The forged ACK is listed, marked, and not taken for what the host holds (as the compiler does not).
        assertThat(r.out()).isEqualTo("host: " + h1 + "\n" + all.render() + "4 reports; 1 not signed with the update keys: listed, not counted\n"
                + "latest: NACK reported 2024-05-01T10:01:01.000Z (nft: Error: syntax error); holds " + netA + "=4; applied hash "
                + bbb + "; last ACK 2024-05-01T10:00:31.000Z\n");

        AuditSupport.Run at = audit("enforcement", "--host", h1, "--at", "2024-05-01T10:00:35Z");
        assertThat(at.out()).isEqualTo("host: " + h1 + "\nat: 2024-05-01T10:00:35.000Z\n" + t.render() + "2 reports\n"
                + "at 2024-05-01T10:00:35.000Z: ACK reported 2024-05-01T10:00:31.000Z; holds " + netA + "=4; applied hash " + bbb + "\n");

        AuditSupport.Run json = audit("enforcement", "--host", h1, "--output", "json");
        assertThat(json.out()).contains("\"notCounted\" : 1").contains("\"signed\" : \"no\"").contains("\"appliedHash\" : \"" + bbb + "\"");
    }

    @Test
    void anExportOfReportsSaysWhichAreSignedWithTheStacksKeys(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("reports.jsonl");
        audit("export", "--topic", reportTopic, "--from", "2024-05-01T10:01:00Z", "--to", "2024-05-01T10:01:05Z", "--file", file.toString());
        Map<String, String> signedByHash = new TreeMap<>();
        for (String line : Files.readString(file).lines().toList()) {
            JsonNode n = JSON.readTree(line);
            signedByHash.put(n.get("value").get("appliedHash").asString().substring(0, 1), n.get("signed").asString());
        }
        // r3 (hash b...) as its agent signed it; forged1 (hash f...) written by something else.
        assertThat(signedByHash).containsExactly(Map.entry("b", "yes"), Map.entry("f", "no"));
    }

    @Test
    void exportWritesJsonLinesAndTheirChecksum(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("siem/audit.jsonl");
        AuditSupport.Run r = audit("export", "--from", "2024-05-01T10:00:10Z", "--to", "2024-05-01T10:00:30Z", "--file", file.toString());
        byte[] bytes = Files.readAllBytes(file);
        String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        TreeMap<Integer, List<AuditSupport.Written>> byPartition = new TreeMap<>();
        for (String name : List.of("a2", "w1", "w2", "b2", "a3", "a4")) {
            byPartition.computeIfAbsent(w.get(name).partition(), k -> new ArrayList<>()).add(w.get(name));
        }
        Table spans = new Table("partition", "first offset", "last offset", "events");
        List<String> expectedOrder = new ArrayList<>();
        byPartition.forEach((p, list) -> {
            list.sort(java.util.Comparator.comparingLong(AuditSupport.Written::offset));
            spans.row(p, list.get(0).offset(), list.get(list.size() - 1).offset(), list.size());
            list.forEach(x -> expectedOrder.add(x.partition() + "@" + x.offset()));
        });
        assertThat(r.out()).isEqualTo("exported 6 events of " + eventTopic + " to " + file + "\n"
                + "range: 2024-05-01T10:00:10.000Z .. 2024-05-01T10:00:30.000Z\n"
                + spans.render()
                + "sha256: " + sha + " (" + file + ".sha256)\n");
        assertThat(Files.readString(Path.of(file + ".sha256"))).isEqualTo(sha + "  audit.jsonl\n");
        List<String> lines = new String(bytes, StandardCharsets.UTF_8).lines().toList();
        assertThat(lines).hasSize(6);
        List<String> order = new ArrayList<>();
        for (String line : lines) {
            JsonNode n = JSON.readTree(line);
            order.add(n.get("partition").asInt() + "@" + n.get("offset").asLong());
            assertThat(n.get("topic").asString()).isEqualTo(eventTopic);
            assertThat(n.get("value").get("eventId").asString()).startsWith("ev-").endsWith(s.run);
            assertThat(n.get("value").get("source").get("eventTime").asString()).isEqualTo(n.get("timestamp").asString());
            assertThat(n.get("key").asString()).isEqualTo(n.get("value").get("networkId").asString());
        }
        assertThat(order).containsExactlyElementsOf(expectedOrder);
    }

    // ---- verify: hosts' applied hashes against their fragments in Redis ----

    static byte[] hostUpdate(String host, String net, long version, boolean tombstone, int port) throws Exception {
        io.egressctl.events.Fragment f = tombstone ? null : io.egressctl.events.Fragment.newBuilder()
                .setDefaultPolicy(DefaultPolicy.ALLOW)
                .setVms(List.of(VmAddress.newBuilder().setVmId("vm-a").setInterfaceName("tap-a").setIpv4("10.20.0.11").setIpv6(null).build()))
                .setRules(List.of(CompiledRule.newBuilder().setRuleId("r-web").setAction(RuleAction.DENY).setPriority(1000)
                        .setProtocol(Protocol.TCP).setVmIds(List.of("vm-a")).setDestinationCidrs(List.of())
                        .setDestinationExceptCidrs(List.of()).setStartPort(port).setEndPort(port).setIcmpType(null).setIcmpCode(null)
                        .build()))
                .build();
        String hash = f == null ? "" : EventMapper.fromAvro(net, f).hash();
        return HostUpdate.newBuilder().setHostId(host).setNetworkId(net).setVersion(version).setTombstone(tombstone).setFragment(f)
                .setFragmentHash(hash).setChangeIds(List.of()).setCompiledAt(T0).build().toByteBuffer().array();
    }

    static String expectedHash(Map<String, byte[]> fragments) throws Exception {
        TreeMap<String, Fragment> live = new TreeMap<>();
        for (Map.Entry<String, byte[]> e : fragments.entrySet()) {
            HostUpdate u = HostUpdate.fromByteBuffer(java.nio.ByteBuffer.wrap(e.getValue()));
            if (!u.getTombstone()) {
                live.put(e.getKey(), EventMapper.fromAvro(e.getKey(), u.getFragment()));
            }
        }
        return HostState.hashOf(live);
    }

    static String host(String name, Map<String, byte[]> fragments, Map<String, String> applied) {
        String h = name + "-" + s.run;
        String fk = RedisKeys.hostFragments(h);
        fragments.forEach((net, bytes) -> redis.hset(fk.getBytes(StandardCharsets.UTF_8), net.getBytes(StandardCharsets.UTF_8), bytes));
        redisKeys.add(fk);
        if (!applied.isEmpty()) {
            redis.hset(RedisKeys.hostApplied(h), applied);
            redisKeys.add(RedisKeys.hostApplied(h));
        }
        return h;
    }

    static Map<String, String> applied(String hash, Map<String, Long> versions) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("hash", hash);
        m.put("status", "ACK");
        m.put("at", "2024-06-01T11:59:00Z");
        versions.forEach((n, v) -> m.put("v:" + n, Long.toString(v)));
        return m;
    }

    @Test
    void verifyListsHostsThatLagDriftOrStaySilent() throws Exception {
        Map<String, byte[]> v4 = Map.of(netA, hostUpdate("x", netA, 4, false, 80));
        Map<String, byte[]> v5 = Map.of(netA, hostUpdate("x", netA, 5, false, 8080));
        Map<String, byte[]> tomb = new TreeMap<>(Map.of(netA, hostUpdate("x", netA, 6, true, 0), netB, hostUpdate("x", netB, 2, false, 53)));
        String e4 = expectedHash(v4);
        String e5 = expectedHash(v5);
        String eTomb = expectedHash(Map.of(netB, tomb.get(netB)));
        String ok = host("hv-ok", v4, applied(e4, Map.of(netA, 4L)));
        String lag = host("hv-lag", v5, applied(e4, Map.of(netA, 4L)));
        String drift = host("hv-drift", v4, applied("f".repeat(64), Map.of(netA, 4L)));
        String silent = host("hv-silent", v4, Map.of());
        String tombstoned = host("hv-tomb", tomb, applied(eTomb, Map.of(netA, 5L, netB, 2L)));

        String[] args = {"verify", "--host", ok, "--host", lag, "--host", drift, "--host", silent, "--host", tombstoned, "--all"};
        AuditSupport.Run r = s.audit(NOW, args);
        String at = "2024-06-01T11:59:00Z";
        Table t = new Table("host", "state", "expected", "applied", "last report", "detail")
                .row(drift, "drifted", e4.substring(0, 16), "f".repeat(16), at, "same versions, different content")
                .row(lag, "lagging", e5.substring(0, 16), e4.substring(0, 16), at, netA + " 4<5")
                .row(ok, "ok", e4.substring(0, 16), e4.substring(0, 16), at, null)
                .row(silent, "silent", e4.substring(0, 16), null, null, "never reported")
                .row(tombstoned, "ok", eTomb.substring(0, 16), eTomb.substring(0, 16), at, null);
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.out()).isEqualTo(t.render() + "5 hosts: 2 ok, 1 lagging, 1 drifted, 1 silent\n");

        AuditSupport.Run onlyBad = s.audit(NOW, java.util.Arrays.copyOf(args, args.length - 1));
        assertThat(onlyBad.out().lines().skip(1).limit(3).map(l -> l.split("\\s+")[1]).toList())
                .containsExactly("drifted", "lagging", "silent");
        assertThat(onlyBad.out()).endsWith("\n5 hosts: 2 ok, 1 lagging, 1 drifted, 1 silent\n");
        AuditSupport.Run good = s.audit(NOW, "verify", "--host", ok, "--host", tombstoned);
        assertThat(good.code()).isZero();
        assertThat(good.out()).isEqualTo("2 hosts: 2 ok, 0 lagging, 0 drifted, 0 silent\n");
    }

    // ---- replay-check: the log against views written to Redis ----

    /** The view the compiler writes after folding the given rule and workload events. */
    static NetworkState fold(String net, List<String> names) {
        NetworkState st = new NetworkState(net);
        for (String n : names) {
            if (ruleEvents.containsKey(n)) {
                if (ruleEvents.get(n).getNetworkId().equals(net)) {
                    st.applyRule(EventMapper.fromAvro(ruleEvents.get(n)), pos(n));
                }
            } else if (workloadEvents.get(n).getNetworkId().equals(net)) {
                st.applyWorkload(EventMapper.fromAvro(workloadEvents.get(n)), pos(n));
            }
        }
        return st;
    }

    static void writeView(String net, NetworkState st, String json) {
        redis.hset(RedisKeys.network(net), Map.of("version", Long.toString(st.version()), "json", json));
        redisKeys.add(RedisKeys.network(net));
    }

    static String viewJson(NetworkState st) {
        return JSON.writeValueAsString(NetworkView.of(st));
    }

    static final List<String> ALL = List.of("a1", "b1", "a2", "w1", "w2", "b2", "a3", "a4", "a5", "w3", "a6", "a7", "a8");

    static String parted(String name) {
        AuditSupport.Written x = w.get(name);
        RuleEvent e = ruleEvents.get(name);
        return "p" + x.partition() + "@" + x.offset() + " " + e.getOperation() + " " + Times.format(t(second(name))) + " "
                + e.getSource().getActor() + " req-" + name;
    }

    @Test
    void replayCheckFindsViewsEditedByHandOrLeftBehind() {
        NetworkState a = fold(netA, ALL);
        NetworkState b = fold(netB, ALL);
        writeView(netA, a, viewJson(a));
        writeView(netB, b, viewJson(b));
        String summary = "against Redis: %s; replayed 10 rule events and 3 workload events (0 skipped as undecodable or invalid)\n";
        AuditSupport.Run same = audit("replay-check", "--network", netA, "--network", netB);
        assertThat(same.code()).isZero();
        assertThat(same.out()).isEqualTo("checked 2 networks " + summary.formatted("2 match, 0 differ"));

        // an edit by hand: the log never held port 8081, the rule has been apart since it was created
        ObjectNode edited = (ObjectNode) JSON.readTree(viewJson(a));
        ((ObjectNode) edited.get("rules").get("r-web")).put("startPort", 8081).put("endPort", 8081);
        writeView(netA, a, JSON.writeValueAsString(edited));
        AuditSupport.Run hand = audit("replay-check", "--network", netA, "--network", netB);
        assertThat(hand.code()).isEqualTo(1);
        assertThat(hand.out()).isEqualTo(new Table("network", "item", "log", "redis", "parted at")
                .row(netA, "rule r-web", "tcp port 8080 from vm-b to any allow", "tcp port 8081 from vm-b to any allow", parted("a3"))
                .render() + "checked 2 networks " + summary.formatted("1 match, 1 differ"));

        // a view left behind after a3: every item parts at the first event that changed it afterwards
        NetworkState old = fold(netA, List.of("a1", "a2", "w1", "w2", "a3", "w3"));
        writeView(netA, old, viewJson(old));
        AuditSupport.Run behind = audit("replay-check", "--network", netA);
        assertThat(behind.out()).isEqualTo(new Table("network", "item", "log", "redis", "parted at")
                .row(netA, "network", NET_A_DENY, NET_A_ALLOW, parted("a7"))
                .row(netA, "config version", pos("a7"), pos("a3"), parted("a4"))
                .row(netA, "rule r-icmp", "(absent)", ICMP + " deny", parted("a6"))
                .row(netA, "rule r-web", "tcp port 8080 from vm-b to any allow", "tcp port 80 from vm-b to any deny", parted("a4"))
                .row(netA, "version", a.version(), old.version(), null)
                .render()
                + "checked 1 network against Redis: 0 match, 1 differ; replayed 8 rule events and 3 workload events"
                + " (0 skipped as undecodable or invalid)\n");
    }
}
