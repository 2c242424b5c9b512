package io.egressctl.agent.enforce;

import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.model.Action;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.IcmpMatch;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.core.nft.NftChain;
import io.egressctl.core.nft.NftRuleset;
import io.egressctl.core.nft.NftScript;
import io.egressctl.core.nft.NftTable;
import io.egressctl.core.render.HostMode;
import io.egressctl.core.render.NftRenderer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import tools.jackson.databind.json.JsonMapper;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class NftablesEnforcerTest {

    private static final NftRenderer ROUTED = new NftRenderer(false, HostMode.ROUTED);
    private static final NftRenderer BRIDGED = new NftRenderer(false, HostMode.BRIDGED);
    private static final VmAddress VM1 = new VmAddress("vm1", "tap-a1", null, "10.250.1.11", "fd00:250:1::11");
    private static final VmAddress VM2 = new VmAddress("vm2", "tap-a2", null, "10.250.1.12", null);
    private static final VmAddress VM3 = new VmAddress("vm3", "tap-a3", null, "10.250.1.13", null);

    private final FakeNftRunner nft = new FakeNftRunner();
    private final NftablesEnforcer enforcer = new NftablesEnforcer(nft);

    static CompiledRule deny(String id, Protocol p, PortRange ports, List<String> vms, String... dst) {
        return new CompiledRule(id, Action.DENY, 1000, p, vms, cidrs(dst), List.of(), ports, p == Protocol.ICMP ? IcmpMatch.ANY : null);
    }

    static List<Cidr> cidrs(String... c) {
        return java.util.Arrays.stream(c).map(Cidr::parse).toList();
    }

    static NftRuleset script(DefaultPolicy policy, List<VmAddress> vms, CompiledRule... rules) {
        return script(HostMode.ROUTED, policy, vms, rules);
    }

    static NftRuleset script(HostMode mode, DefaultPolicy policy, List<VmAddress> vms, CompiledRule... rules) {
        TreeMap<String, Fragment> f = new TreeMap<>();
        f.put("net-a", new Fragment("net-a", policy, vms, List.of(rules)));
        return (mode == HostMode.ROUTED ? ROUTED : BRIDGED).ruleset("host-1", f);
    }

    /** The set holding the (first) element of {@code ruleId} in a rendered script. */
    static String setOf(NftRuleset ruleset, String ruleId) {
        String script = NftScript.script(ruleset);
        String set = null;
        for (String line : script.split("\n")) {
            if (line.startsWith("  set ")) {
                set = line.substring(6, line.length() - 2);
            } else if (line.startsWith("  map ") || line.startsWith("  chain ")) {
                set = null;
            } else if (set != null && line.contains("comment \"r=" + ruleId + " ")) {
                return set;
            }
        }
        throw new AssertionError("no element of " + ruleId + " in\n" + script);
    }

    /** The mark of an interface, as the script writes it ({@code 0x45......}), read from its ports map. */
    static String markOf(NftRuleset ruleset, String iface) {
        String script = NftScript.script(ruleset);
        Matcher m = Pattern.compile("\"" + Pattern.quote(iface) + "\" : (0x[0-9a-f]{8})").matcher(script);
        if (!m.find()) {
            throw new AssertionError("no port " + iface + " in\n" + script);
        }
        return m.group(1);
    }

    private NftRuleset base(HostMode mode) {
        return script(mode, DefaultPolicy.ALLOW, List.of(VM1, VM2, VM3),
                deny("r-icmp", Protocol.ICMP, null, List.of("vm1")),
                deny("r-80", Protocol.TCP, PortRange.single(80), List.of("vm1", "vm2")),
                deny("r-range", Protocol.TCP, new PortRange(8000, 8010), List.of("vm2"), "198.18.0.0/24", "203.0.113.0/24"));
    }

    private final NftRuleset base = base(HostMode.ROUTED);

    private NftRuleset withPort(HostMode mode, int port) {
        return script(mode, DefaultPolicy.ALLOW, List.of(VM1, VM2, VM3),
                deny("r-icmp", Protocol.ICMP, null, List.of("vm1")),
                deny("r-80", Protocol.TCP, PortRange.single(port), List.of("vm1", "vm2")),
                deny("r-range", Protocol.TCP, new PortRange(8000, 8010), List.of("vm2"), "198.18.0.0/24", "203.0.113.0/24"));
    }

    private NftRuleset withPort(int port) {
        return withPort(HostMode.ROUTED, port);
    }

    @Test
    void applySendsTheWholeScriptAsOneTransactionOnStdin() throws Exception {
        enforcer.apply(base);

        assertThat(nft.applies()).hasSize(1);
        assertThat(nft.lastApply().stdin()).as("the script from its first statement: header notes are not nft's")
                .isEqualTo(NftScript.kernelInput(base));
        assertThat(NftScript.script(base)).startsWith("# egressctl host ");
        assertThat(nft.lastApply().args()).containsExactly("-f", "-");
        assertThat(enforcer.inSync(base)).isTrue();
        assertThat(enforcer.name()).isEqualTo("nftables");
        assertThat(nft.sets()).contains("l0_port4", "l0_port6", "l0_port4_dst", "l0_proto4", "ports", "vms", "own", "addr4", "addr6", "def");
        assertThat(nft.hasTable(FakeNftRunner.BRIDGE)).isFalse();
    }

    @Test
    void aBridgedHostsScriptAppliesBothTablesInOneTransactionAndChecksBoth() throws Exception {
        NftRuleset bridged = base(HostMode.BRIDGED);

        enforcer.apply(bridged);

        assertThat(nft.applies()).hasSize(1);
        assertThat(nft.lastApply().stdin()).isEqualTo(NftScript.kernelInput(bridged))
                .contains("delete table inet egressctl").contains("delete table bridge egressctl");
        assertThat(nft.sets(FakeNftRunner.INET)).doesNotContain("ports").contains("vms", "def");
        assertThat(nft.sets(FakeNftRunner.BRIDGE)).containsExactly("ports", "towards");
        assertThat(nft.elements(FakeNftRunner.BRIDGE, "ports")).containsExactlyInAnyOrder("\"tap-a1\"", "\"tap-a2\"", "\"tap-a3\"");
        assertThat(enforcer.inSync(bridged)).isTrue();
        assertThat(nft.calls().stream().filter(FakeNftRunner.Call::isListing).map(c -> c.args().get(3)))
                .as("both tables read back").containsExactly("inet", "bridge");
        assertThat(enforcer.inSync(bridged)).as("the cheap path, both listings unchanged").isTrue();
    }

    @Test
    void failedApplySurfacesNftsStderrAndKeepsThePreviousRuleset() throws Exception {
        enforcer.apply(base);
        NftRuleset broken = Rulesets.replacingRule(base, "ct state new ct mark set meta mark", "junk accept");
        nft.failNext(1, "/dev/stdin:25:5-8: Error: syntax error, unexpected junk\n    junk accept\n    ^^^^\n");

        assertThatThrownBy(() -> enforcer.apply(broken))
                .isInstanceOf(EnforcementException.class)
                .hasMessageContaining("exit 1")
                .hasMessageContaining("Error: syntax error, unexpected junk");
        assertThat(enforcer.inSync(base)).isTrue();
    }

    @Test
    void aRefusedScriptChangesNothingInTheFakeKernelEither() throws Exception {
        enforcer.apply(base);
        NftRuleset broken = Rulesets.replacingRule(base, "ct state new ct mark set meta mark", "junk accept");

        assertThatThrownBy(() -> enforcer.apply(broken)).hasMessageContaining("unexpected junk");
        assertThat(enforcer.inSync(base)).isTrue();
    }

    @Test
    void runnerFailureIsAnEnforcementExceptionAndTheNextApplyIsFull() throws Exception {
        enforcer.apply(base);
        nft.throwNext(new EnforcementException("nft -f - did not finish within PT30S and was killed"));
        NftRuleset next = withPort(81);

        assertThatThrownBy(() -> enforcer.apply(next)).hasMessageContaining("did not finish");
        enforcer.apply(next);
        assertThat(nft.lastApply().isFullApply()).isTrue();
    }

    @Test
    void notInSyncWhenTheTableIsMissing() throws Exception {
        assertThat(enforcer.inSync(base)).isFalse();
        assertThat(enforcer.lastDriftReason()).contains("table inet egressctl does not exist");

        enforcer.apply(base);
        nft.dropTable();
        assertThat(enforcer.inSync(base)).isFalse();
    }

    @Test
    void notInSyncWhenTheBridgeTableWasDeletedAndTheNextApplyRestoresIt() throws Exception {
        NftRuleset bridged = base(HostMode.BRIDGED);
        enforcer.apply(bridged);
        assertThat(enforcer.inSync(bridged)).isTrue();
        nft.dropTable(FakeNftRunner.BRIDGE);

        assertThat(enforcer.inSync(bridged)).isFalse();
        assertThat(enforcer.lastDriftReason()).isEqualTo("table bridge egressctl does not exist");

        enforcer.apply(bridged);
        assertThat(nft.lastApply().isFullApply()).isTrue();
        assertThat(nft.hasTable(FakeNftRunner.BRIDGE)).isTrue();
        assertThat(enforcer.inSync(bridged)).isTrue();
    }

    @Test
    void notInSyncWhenAnElementWasDeletedAndTheNextApplyRepairsIt() throws Exception {
        enforcer.apply(base);
        String set = setOf(base, "r-80");
        nft.deleteElement(set, "r=r-80");

        assertThat(enforcer.inSync(base)).isFalse();
        assertThat(enforcer.lastDriftReason()).contains("table inet egressctl: set " + set).contains("missing [r=r-80");

        enforcer.apply(base);
        assertThat(nft.lastApply().isFullApply()).as("a repair re-applies the whole table").isTrue();
        assertThat(enforcer.inSync(base)).isTrue();
    }

    @Test
    void notInSyncWhenALookupRuleWasDeleted() throws Exception {
        enforcer.apply(base);
        nft.deleteRule("vm", "layer 0 deny port ipv4");

        assertThat(enforcer.inSync(base)).isFalse();
        assertThat(enforcer.lastDriftReason()).contains("chain vm").contains("missing [layer 0 deny port ipv4");
    }

    @Test
    void rulesWithoutCommentsCountByPosition() throws Exception {
        enforcer.apply(base);
        nft.deleteRuleAt(FakeNftRunner.INET, "forward", 1); // meta mark @vms jump vm (after the marking of packets towards a VM)

        assertThat(enforcer.inSync(base)).isFalse();
        assertThat(enforcer.lastDriftReason()).contains("chain forward has 3 rules, expected 4");

        NftRuleset bridged = base(HostMode.BRIDGED);
        enforcer.apply(bridged);
        assertThat(enforcer.inSync(bridged)).isTrue();
        nft.deleteRuleAt(FakeNftRunner.BRIDGE, "prerouting", 0); // meta mark set iifname map @ports
        assertThat(new NftablesEnforcer(nft).inSync(bridged)).isFalse();
    }

    @Test
    void notInSyncWhenAPortHasNoDefault() throws Exception {
        enforcer.apply(base);
        String mark = markOf(base, "tap-a2");
        nft.deleteMapElement("def", mark);

        assertThat(enforcer.inSync(base)).isFalse();
        assertThat(enforcer.lastDriftReason()).contains("map def").contains(Long.toString(Long.parseLong(mark.substring(2), 16)));
    }

    @Test
    void notInSyncWhenABridgePortIsUnmappedOrRemarked() throws Exception {
        NftRuleset bridged = base(HostMode.BRIDGED);
        enforcer.apply(bridged);
        nft.deleteMapElement(FakeNftRunner.BRIDGE, "ports", "\"tap-a2\"");

        assertThat(enforcer.inSync(bridged)).isFalse();
        assertThat(enforcer.lastDriftReason()).startsWith("table bridge egressctl: map ports: tap-a2 is 'null'");

        enforcer.apply(bridged);
        nft.deleteMapElement(FakeNftRunner.BRIDGE, "ports", "\"tap-a2\"");
        nft.addElement(FakeNftRunner.BRIDGE, "ports", "\"tap-a2\"", null, markOf(bridged, "tap-a1"));
        // A restarted agent, with nothing captured: the structure alone sees the other mark.
        NftablesEnforcer restarted = new NftablesEnforcer(nft);
        assertThat(restarted.inSync(bridged)).isFalse();
        assertThat(restarted.lastDriftReason()).contains("map ports: tap-a2 is '" + Long.parseLong(markOf(bridged, "tap-a1").substring(2), 16));
    }

    @Test
    void aSourceAddressChangedKeepingItsCommentIsCaughtByTheStructureAlone() throws Exception {
        enforcer.apply(base);
        String mark = markOf(base, "tap-a2");
        nft.deleteMapElement(FakeNftRunner.INET, "addr4", mark + " . 10.250.1.12");
        nft.addElement(FakeNftRunner.INET, "addr4", mark + " . 10.250.1.99", "net net-a vm vm2", null);

        NftablesEnforcer restarted = new NftablesEnforcer(nft);
        assertThat(restarted.inSync(base)).isFalse();
        assertThat(restarted.lastDriftReason()).contains("set addr4").contains("missing [").contains(" . 10.250.1.12 comment net net-a vm vm2")
                .contains(" . 10.250.1.99 comment net net-a vm vm2");
    }

    @Test
    void aPortMissingFromTheVmsSetIsDrift() throws Exception {
        enforcer.apply(base);
        nft.deleteMapElement(FakeNftRunner.INET, "vms", markOf(base, "tap-a3"));

        assertThat(enforcer.inSync(base)).isFalse();
        assertThat(enforcer.lastDriftReason()).contains("set vms has 2 elements, expected 3");
    }

    @Test
    void anElementEditedInPlaceKeepingItsCommentIsCaughtAgainstTheCapturedListing() throws Exception {
        enforcer.apply(base);
        assertThat(enforcer.inSync(base)).isTrue(); // captures the kernel's listing
        nft.editElement(setOf(base, "r-80"), "r=r-80", markOf(base, "tap-a1") + " . tcp . 81");

        assertThat(enforcer.inSync(base)).isFalse();
        assertThat(enforcer.lastDriftReason()).contains("edited in place");
        enforcer.apply(base);
        assertThat(enforcer.inSync(base)).isTrue();
    }

    @Test
    void aLookupEditedInPlaceKeepingItsCommentIsCaughtToo() throws Exception {
        enforcer.apply(base);
        assertThat(enforcer.inSync(base)).isTrue();
        nft.editRule("vm", "layer 0 deny port ipv4",
                "meta nfproto ipv4 meta mark . meta l4proto . th dport @l0_port4 accept comment \"layer 0 deny port ipv4\"");

        assertThat(enforcer.inSync(base)).isFalse();
        assertThat(enforcer.lastDriftReason()).contains("edited in place");
    }

    @Test
    void theCheapPathIgnoresCounterValuesOnly() {
        String a = "{\"nftables\": [{\"rule\": {\"handle\": 4, \"expr\": [{\"counter\": {\"packets\": 0, \"bytes\": 0}}, {\"drop\": null}]}},"
                + " {\"set\": {\"name\": \"l0_port4\", \"elem\": [{\"elem\": {\"val\": \"10.0.0.1\", \"comment\": \"r=a h=1\","
                + " \"counter\": {\"packets\": 0, \"bytes\": 0}}}]}}]}";
        String b = a.replace("\"packets\": 0, \"bytes\": 0", "\"packets\": 17, \"bytes\": 1290");
        assertThat(NftablesEnforcer.rawHash(a)).isEqualTo(NftablesEnforcer.rawHash(b));
        assertThat(NftablesEnforcer.rawHash(a)).isNotEqualTo(NftablesEnforcer.rawHash(a.replace("drop", "accept")));
        assertThat(NftablesEnforcer.rawHash(a)).isNotEqualTo(NftablesEnforcer.rawHash(a.replace("10.0.0.1", "10.0.0.2")));
        JsonMapper json = JsonMapper.builder().build();
        assertThat(NftablesEnforcer.canonical(json.readTree(a))).isEqualTo(NftablesEnforcer.canonical(json.readTree(b)))
                .doesNotContain("packets").contains("r=a h=1");
    }

    @Test
    void repeatedChecksOfAnUnchangedKernelStayInSync() throws Exception {
        enforcer.apply(base);
        for (int i = 0; i < 3; i++) {
            assertThat(enforcer.inSync(base)).isTrue();
        }
        nft.deleteElement(setOf(base, "r-range"), "r=r-range");
        assertThat(enforcer.inSync(base)).isFalse();
    }

    @ParameterizedTest
    @EnumSource(HostMode.class)
    void afterARestartTheStructureCheckAloneRecognisesARightKernel(HostMode mode) throws Exception {
        NftRuleset s = base(mode);
        enforcer.apply(s);
        NftablesEnforcer restarted = new NftablesEnforcer(nft);

        assertThat(restarted.inSync(s)).isTrue();
        NftRuleset other = script(mode, DefaultPolicy.ALLOW, List.of(VM1, VM2, VM3), deny("r-80", Protocol.TCP, PortRange.single(80), List.of("vm1")));
        assertThat(restarted.inSync(other)).isFalse();
        NftRuleset otherPort = script(mode, DefaultPolicy.ALLOW, List.of(VM1, VM2, new VmAddress("vm3", "tap-a9", null, "10.250.1.13", null)),
                deny("r-icmp", Protocol.ICMP, null, List.of("vm1")),
                deny("r-80", Protocol.TCP, PortRange.single(80), List.of("vm1", "vm2")),
                deny("r-range", Protocol.TCP, new PortRange(8000, 8010), List.of("vm2"), "198.18.0.0/24", "203.0.113.0/24"));
        assertThat(new NftablesEnforcer(nft).inSync(otherPort)).as("vm3 on another interface").isFalse();
    }

    @Test
    void listingErrorsOtherThanAMissingTableAreReported() {
        NftRunner denied = (stdin, args) -> new NftRunner.Result(1, "", "Error: Operation not permitted\n");
        assertThatThrownBy(() -> new NftablesEnforcer(denied).inSync(base))
                .isInstanceOf(EnforcementException.class).hasMessageContaining("Operation not permitted");
    }

    @Test
    void oneChangedRuleIsAnIncrementalTransactionOfItsElementsOnly() throws Exception {
        enforcer.apply(base);
        NftRuleset changed = withPort(443);
        String m1 = markOf(base, "tap-a1");
        String m2 = markOf(base, "tap-a2");

        enforcer.apply(changed);

        String delta = nft.lastApply().stdin();
        assertThat(enforcer.lastApplyIncremental()).isTrue();
        assertThat(delta).doesNotContain("delete table").doesNotContain("flush chain").doesNotContain("add rule")
                .contains("delete element inet egressctl l0_port4 { " + m1 + " . tcp . 80-80, " + m2 + " . tcp . 80-80 }")
                .contains("add element inet egressctl l0_port4 { " + m1 + " . tcp . 443-443 comment \"r=r-80 h=")
                .contains("delete element inet egressctl l0_port6 { " + m1 + " . tcp . 80-80 }");
        assertThat(delta.lines()).hasSize(4);
        assertThat(enforcer.inSync(changed)).isTrue();
        assertThat(canonicalOf(nft)).isEqualTo(canonicalOf(fullyApplied(changed)));
    }

    @Test
    void oneChangedRuleOnABridgedHostLeavesTheBridgeTableAlone() throws Exception {
        NftRuleset bridged = base(HostMode.BRIDGED);
        enforcer.apply(bridged);
        NftRuleset changed = withPort(HostMode.BRIDGED, 443);

        enforcer.apply(changed);

        assertThat(enforcer.lastApplyIncremental()).isTrue();
        assertThat(nft.lastApply().stdin()).doesNotContain("bridge").contains("add element inet egressctl l0_port4 {");
        assertThat(enforcer.inSync(changed)).isTrue();
        assertThat(canonicalOf(nft)).isEqualTo(canonicalOf(fullyApplied(changed)));
    }

    @ParameterizedTest
    @EnumSource(HostMode.class)
    void portsSetsAndLookupsComeAndGoIncrementally(HostMode mode) throws Exception {
        NftRuleset before = base(mode);
        enforcer.apply(before);
        VmAddress vm4 = new VmAddress("vm4", "tap-a4", null, "10.250.1.14", null);
        NftRuleset next = script(mode, DefaultPolicy.ALLOW, List.of(VM1, VM3, vm4),
                deny("r-80", Protocol.TCP, PortRange.single(80), List.of("vm1", "vm4"), "192.0.2.0/24", "198.51.100.0/24"),
                new CompiledRule("r-ok", Action.ALLOW, 1000, Protocol.ALL, List.of("vm1"), cidrs("192.0.2.0/25"), List.of(), null, null));
        String m1 = markOf(next, "tap-a1");
        String m2 = markOf(before, "tap-a2");
        String m4 = markOf(next, "tap-a4");
        String portsTable = mode == HostMode.BRIDGED ? "bridge" : "inet";

        enforcer.apply(next);

        String delta = nft.lastApply().stdin();
        assertThat(enforcer.lastApplyIncremental()).isTrue();
        assertThat(delta).doesNotContain("delete table")
                .contains("delete element " + portsTable + " egressctl ports { \"tap-a2\" }")
                .contains("add element " + portsTable + " egressctl ports { \"tap-a4\" : " + m4 + " }")
                .contains("delete element inet egressctl vms { " + m2 + " }")
                .contains("add element inet egressctl vms { " + m4 + " }")
                .contains("add element inet egressctl own { " + m4 + " . " + m4 + ", " + m4 + " . 0x44" + m4.substring(4) + " }")
                .contains("add element " + portsTable + " egressctl towards { \"tap-a4\" : 0x44" + m4.substring(4) + " }")
                .contains("delete element inet egressctl addr4 { " + m2 + " . 10.250.1.12 }")
                .contains("add element inet egressctl addr4 { " + m4 + " . 10.250.1.14 comment \"net net-a vm vm4\" }")
                .contains("delete element inet egressctl def { " + m2 + " }")
                .contains("add element inet egressctl def { " + m4 + " comment \"net net-a vm vm4\" : accept }")
                .contains("delete set inet egressctl l0_port4_dst\n") // vm2's port range was its only element
                .contains("  set l1_all4_dst25 {")
                .contains("delete set inet egressctl l0_port4\n")
                .contains("delete set inet egressctl l0_proto4")
                .contains("flush chain inet egressctl vm")
                .contains("add rule inet egressctl vm meta mark . ip daddr & 255.255.255.128 @l1_all4_dst25 accept "
                        + "comment \"layer 1 allow all ipv4 by destination /25\"")
                .doesNotContain("flush chain inet egressctl forward").doesNotContain("prerouting");
        assertThat(delta).as("vm1 keeps its elements").doesNotContain("delete element inet egressctl vms { " + m1);
        assertThat(delta.indexOf("flush chain")).as("lookups change after the new sets exist, before old ones go")
                .isGreaterThan(delta.indexOf("  set l1_all4_dst25 {")).isLessThan(delta.indexOf("delete set"));
        assertThat(enforcer.inSync(next)).isTrue();
        assertThat(canonicalOf(nft)).isEqualTo(canonicalOf(fullyApplied(next)));
    }

    @Test
    void aModeChangeIsAFullApplyAndRoutedRemovesTheBridgeTable() throws Exception {
        NftRuleset routed = base(HostMode.ROUTED);
        NftRuleset bridged = base(HostMode.BRIDGED);
        enforcer.apply(routed);

        enforcer.apply(bridged);
        assertThat(enforcer.lastApplyIncremental()).isFalse();
        assertThat(nft.hasTable(FakeNftRunner.BRIDGE)).isTrue();
        assertThat(enforcer.inSync(bridged)).isTrue();

        enforcer.apply(routed);
        assertThat(enforcer.lastApplyIncremental()).isFalse();
        assertThat(nft.lastApply().stdin()).startsWith("table bridge egressctl\ndelete table bridge egressctl\ntable inet egressctl\n");
        assertThat(nft.hasTable(FakeNftRunner.BRIDGE)).isFalse();
        assertThat(enforcer.inSync(routed)).isTrue();
        assertThat(canonicalOf(nft)).isEqualTo(canonicalOf(fullyApplied(routed)));
    }

    @Test
    void aBridgeTableLeftOnARoutedHostIsDriftAndTheNextApplyRemovesIt() throws Exception {
        nft.addTable(NftScript.kernelInput(base(HostMode.BRIDGED))); // what a bridged agent left before a restart
        NftRuleset routed = base(HostMode.ROUTED);

        assertThat(enforcer.inSync(routed)).isFalse();
        assertThat(enforcer.lastDriftReason()).isEqualTo("table bridge egressctl is in the kernel but not in the desired ruleset");

        enforcer.apply(routed);
        assertThat(nft.hasTable(FakeNftRunner.BRIDGE)).isFalse();
        assertThat(enforcer.inSync(routed)).isTrue();
        enforcer.apply(routed);
        assertThat(nft.lastApply().stdin()).as("removed once: not sent again").doesNotContain("bridge");
    }

    @Test
    void aRoutedHostWithoutTheBridgeFamilyNeverNamesABridgeTable() throws Exception {
        FakeNftRunner noBridge = new FakeNftRunner().without("bridge");
        NftablesEnforcer e = new NftablesEnforcer(noBridge);

        e.apply(base);
        assertThat(noBridge.lastApply().stdin()).doesNotContain("bridge");
        assertThat(e.inSync(base)).as("a bridge table nft cannot list is not there").isTrue();
        e.apply(withPort(81));
        assertThat(e.inSync(withPort(81))).isTrue();
    }

    @Test
    void anIncrementalTransactionTheKernelRefusesFallsBackToTheFullScript() throws Exception {
        enforcer.apply(base);
        nft.failWhen(s -> !s.contains("delete table"), "Error: Could not process rule: No such file or directory\n");
        NftRuleset next = withPort(81);

        enforcer.apply(next);

        List<FakeNftRunner.Call> applies = nft.applies();
        assertThat(applies).hasSize(3);
        assertThat(applies.get(1).isFullApply()).isFalse();
        assertThat(applies.get(2).stdin()).isEqualTo(NftScript.kernelInput(next));
        assertThat(enforcer.incrementalFallbacks()).isEqualTo(1);
        assertThat(enforcer.inSync(next)).isTrue();
    }

    @Test
    void anElementDeletedByHandMakesTheNextDeltaFailAndTheFullScriptRepairsIt() throws Exception {
        enforcer.apply(base);
        nft.deleteElement(setOf(base, "r-80"), "r=r-80");

        enforcer.apply(withPort(82)); // its delta deletes the element that is gone: refused, then full

        assertThat(enforcer.incrementalFallbacks()).isEqualTo(1);
        assertThat(nft.lastApply().isFullApply()).isTrue();
        assertThat(enforcer.inSync(withPort(82))).isTrue();
    }

    @Test
    void reApplyingTheSameScriptIsAlwaysFull() throws Exception {
        enforcer.apply(base);
        enforcer.apply(base);
        assertThat(nft.applies()).allMatch(FakeNftRunner.Call::isFullApply);
        assertThat(enforcer.fullApplies()).isEqualTo(2);
    }

    @Test
    void theExpectedStructureOfARulesetsTablesKeysWhatTheListingCanReproduce() {
        NftRuleset rs = base(HostMode.BRIDGED);

        assertThat(rs.tables()).extracting(NftTable::key).containsExactly("inet egressctl", "bridge egressctl");
        NftTable inet = rs.table("inet egressctl");
        assertThat(inet.set("l0_port4").header()).containsExactly("type mark . inet_proto . inet_service", "flags interval");
        assertThat(inet.set("l0_port4").elements()).hasSize(2).allMatch(e -> e.comment().startsWith("r=r-80 h="));
        String m1 = Long.toString(Long.parseLong(markOf(base, "tap-a1").substring(2), 16));
        NftablesEnforcer.Structure structure = NftablesEnforcer.Structure.of(inet);
        assertThat(structure.maps().get("def")).containsEntry(m1, "accept").hasSize(3);
        assertThat(inet.chain("forward").base()).startsWith("type filter hook forward");
        assertThat(inet.chain("vm").rules()).first().isEqualTo("meta mark @blocked drop comment \"interface claimed by several VMs\"");
        assertThat(structure.sets().get("l0_port4")).hasSize(2).allMatch(c -> c.comment().startsWith("r=r-80 h=") && c.key().isEmpty());
        assertThat(structure.keyed()).containsEntry("addr4", true).containsEntry("vms", true).containsEntry("own", true)
                .containsEntry("l0_port4", false).containsEntry("l0_proto4", false);
        NftablesEnforcer.Structure bridge = NftablesEnforcer.Structure.of(rs.table("bridge egressctl"));
        assertThat(bridge.maps().get("ports")).containsEntry("tap-a1", m1).hasSize(3);
        assertThat(bridge.bases()).containsEntry("prerouting", "filter hook prerouting policy accept");
    }

    @Test
    void keysReadFromTheScriptAndFromNftsJsonAgree() {
        JsonMapper json = JsonMapper.builder().build();
        assertThat(NftablesEnforcer.Keys.normalised("0x45000001 . 10.0.0.1"))
                .isEqualTo(NftablesEnforcer.Keys.of(json.readTree("{\"concat\": [1157627905, \"10.0.0.1\"]}")))
                .isEqualTo("1157627905 . 10.0.0.1");
        assertThat(NftablesEnforcer.Keys.normalised("0x45000001 . 2001:db8:0:0::1"))
                .isEqualTo(NftablesEnforcer.Keys.of(json.readTree("{\"elem\": {\"val\": {\"concat\": [1157627905, \"2001:db8::1\"]}, \"comment\": \"x\"}}")));
        assertThat(NftablesEnforcer.Keys.normalised("\"tap-a1\"")).isEqualTo(NftablesEnforcer.Keys.of(json.readTree("\"tap-a1\"")));
        // Interface names that look like addresses or numbers read the same from both sides.
        for (String name : List.of("eth0.100", "01.2.3.4", "1.2.3.4", "0x45", "vnet7", "a")) {
            assertThat(NftablesEnforcer.Keys.normalised("\"" + name + "\"")).as(name)
                    .isEqualTo(NftablesEnforcer.Keys.of(json.readTree("\"" + name + "\"")));
        }
        assertThat(NftablesEnforcer.Keys.normalised("0x45000001 . 198.18.0.0/24"))
                .isEqualTo(NftablesEnforcer.Keys.of(json.readTree("{\"concat\": [1157627905, {\"prefix\": {\"addr\": \"198.18.0.0\", \"len\": 24}}]}")));
        assertThat(NftablesEnforcer.Keys.of(json.readTree("{\"jump\": {\"target\": \"vm\"}}"))).isEqualTo("jump vm");
        assertThat(NftablesEnforcer.Keys.of(json.readTree("{\"drop\": null}"))).isEqualTo("drop");
        assertThat(NftablesEnforcer.Keys.comparable("0x45000001 . 0x45000001")).isTrue();
        assertThat(NftablesEnforcer.Keys.comparable("0x45000001 . 10.0.0.0-10.0.0.9")).isFalse();
        assertThat(NftablesEnforcer.Keys.comparable("0x45000001 . icmp . 8")).isFalse();
        assertThat(NftablesEnforcer.Keys.comparable("0x45000001 . tcp . 80")).isFalse();
    }

    @ParameterizedTest
    @EnumSource(HostMode.class)
    void randomSequencesOfHostStatesConvergeIncrementallyToWhatAFullApplyBuilds(HostMode mode) throws Exception {
        Random rnd = new Random(7);
        for (int step = 0; step < 60; step++) {
            NftRuleset s = randomScript(rnd, mode);
            enforcer.apply(s);
            assertThat(enforcer.inSync(s)).as("step %d: %s", step, enforcer.lastDriftReason()).isTrue();
            assertThat(canonicalOf(nft)).as("step %d", step).isEqualTo(canonicalOf(fullyApplied(s)));
            assertThat(new NftablesEnforcer(nft).inSync(s)).as("step %d, a restarted agent's check", step).isTrue();
        }
        assertThat(enforcer.incrementalApplies()).isGreaterThan(45);
        assertThat(enforcer.incrementalFallbacks()).isZero();
    }

    @Test
    void randomSequencesWithModeChangesConvergeToo() throws Exception {
        Random rnd = new Random(11);
        for (int step = 0; step < 40; step++) {
            HostMode mode = rnd.nextInt(5) == 0 ? HostMode.BRIDGED : HostMode.ROUTED;
            NftRuleset s = randomScript(rnd, mode);
            enforcer.apply(s);
            assertThat(enforcer.inSync(s)).as("step %d: %s", step, enforcer.lastDriftReason()).isTrue();
            assertThat(nft.hasTable(FakeNftRunner.BRIDGE)).isEqualTo(mode == HostMode.BRIDGED);
            assertThat(canonicalOf(nft)).as("step %d", step).isEqualTo(canonicalOf(fullyApplied(s)));
        }
        assertThat(enforcer.incrementalFallbacks()).isZero();
    }

    /**
     * Two networks on one host, VMs coming and going, on interfaces drawn from a small pool (so an
     * interface is now and then claimed by two VMs: rendered fail-closed), with random rules.
     */
    static NftRuleset randomScript(Random rnd, HostMode mode) {
        TreeMap<String, Fragment> f = new TreeMap<>();
        String[] ifaces = {"tap-a1", "tap-a2", "tap-a3", "tap-b1", "tap-b2", "vnet7", "vnet8"};
        for (String net : List.of("net-a", "net-b")) {
            List<VmAddress> vms = new ArrayList<>();
            for (int v = 0; v < 4; v++) {
                if (rnd.nextInt(4) > 0) {
                    String iface = rnd.nextInt(8) == 0 ? null : ifaces[rnd.nextInt(ifaces.length)];
                    String id = net + "-vm" + v;
                    if (vms.stream().noneMatch(x -> x.interfaceName() != null && x.interfaceName().equals(iface))) {
                        vms.add(new VmAddress(id, iface, null, "10.250.1." + (10 + v), rnd.nextBoolean() ? "fd00::" + (10 + v) : null));
                    }
                }
            }
            List<String> ids = vms.stream().map(VmAddress::vmId).toList();
            List<CompiledRule> rules = new ArrayList<>();
            String[][] lists = {{}, {"198.18.0.0/24"}, {"198.18.0.0/24", "203.0.113.0/24"}, {"192.0.2.0/24", "198.51.100.0/24"},
                    {"198.18.0.0/16", "2001:db8::/32"}};
            for (int r = 0; r < 6 && !ids.isEmpty(); r++) {
                if (rnd.nextBoolean()) {
                    List<String> covered = ids.stream().filter(x -> rnd.nextBoolean()).toList();
                    if (!covered.isEmpty()) {
                        Protocol p = List.of(Protocol.TCP, Protocol.UDP, Protocol.ICMP, Protocol.ALL).get(rnd.nextInt(4));
                        int port = 80 + rnd.nextInt(3);
                        PortRange ports = p.hasPorts() ? (rnd.nextBoolean() ? PortRange.single(port) : new PortRange(port, 90)) : null;
                        List<Cidr> except = rnd.nextInt(4) == 0 ? cidrs("198.18.0.128/25") : List.of();
                        rules.add(new CompiledRule(net + "-r" + r, rnd.nextInt(3) == 0 ? Action.ALLOW : Action.DENY, 1000, p, covered,
                                cidrs(lists[rnd.nextInt(lists.length)]), except, ports, p == Protocol.ICMP ? IcmpMatch.ANY : null));
                    }
                }
            }
            f.put(net, new Fragment(net, rnd.nextBoolean() ? DefaultPolicy.ALLOW : DefaultPolicy.DENY, vms, rules));
        }
        return new NftRenderer(false, mode).ruleset("host-1", f);
    }

    private static FakeNftRunner fullyApplied(NftRuleset ruleset) throws EnforcementException {
        FakeNftRunner fresh = new FakeNftRunner();
        assertThat(fresh.run(NftScript.script(ruleset), List.of("-f", "-")).ok()).isTrue();
        return fresh;
    }

    /** The canonical listings of the product's tables in a fake kernel (absent ones as such). */
    private static String canonicalOf(FakeNftRunner kernel) throws EnforcementException {
        StringBuilder out = new StringBuilder();
        for (String t : NftablesEnforcer.TABLES) {
            NftRunner.Result r = kernel.run("", NftablesEnforcer.listArgs(t));
            out.append("=== ").append(t).append('\n')
                    .append(r.ok() ? NftablesEnforcer.canonical(JsonMapper.builder().build().readTree(r.stdout())) : "absent\n");
        }
        return out.toString();
    }
}
