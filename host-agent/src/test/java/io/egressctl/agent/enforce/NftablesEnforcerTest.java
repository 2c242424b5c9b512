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
import io.egressctl.core.render.NftRenderer;
import org.junit.jupiter.api.Test;
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

    private static final NftRenderer RENDERER = new NftRenderer();
    private static final VmAddress VM1 = new VmAddress("vm1", "10.250.1.11", "fd00:250:1::11");
    private static final VmAddress VM2 = new VmAddress("vm2", "10.250.1.12", null);
    private static final VmAddress VM3 = new VmAddress("vm3", "10.250.1.13", null);

    private final FakeNftRunner nft = new FakeNftRunner();
    private final NftablesEnforcer enforcer = new NftablesEnforcer(nft);

    static CompiledRule deny(String id, Protocol p, PortRange ports, List<String> vms, String... dst) {
        return new CompiledRule(id, Action.DENY, 1000, p, vms, cidrs(dst), List.of(), ports, p == Protocol.ICMP ? IcmpMatch.ANY : null);
    }

    static List<Cidr> cidrs(String... c) {
        return java.util.Arrays.stream(c).map(Cidr::parse).toList();
    }

    static String script(DefaultPolicy policy, List<VmAddress> vms, CompiledRule... rules) {
        TreeMap<String, Fragment> f = new TreeMap<>();
        f.put("net-a", new Fragment("net-a", policy, vms, List.of(rules)));
        return RENDERER.render("host-1", f);
    }

    /** The set holding the (first) element of {@code ruleId} in a rendered script. */
    static String setOf(String script, String ruleId) {
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

    private final String base = script(DefaultPolicy.ALLOW, List.of(VM1, VM2, VM3),
            deny("r-icmp", Protocol.ICMP, null, List.of("vm1")),
            deny("r-80", Protocol.TCP, PortRange.single(80), List.of("vm1", "vm2")),
            deny("r-range", Protocol.TCP, new PortRange(8000, 8010), List.of("vm2"), "198.18.0.0/24", "203.0.113.0/24"));

    private String withPort(int port) {
        return script(DefaultPolicy.ALLOW, List.of(VM1, VM2, VM3),
                deny("r-icmp", Protocol.ICMP, null, List.of("vm1")),
                deny("r-80", Protocol.TCP, PortRange.single(port), List.of("vm1", "vm2")),
                deny("r-range", Protocol.TCP, new PortRange(8000, 8010), List.of("vm2"), "198.18.0.0/24", "203.0.113.0/24"));
    }

    @Test
    void applySendsTheWholeScriptAsOneTransactionOnStdin() throws Exception {
        enforcer.apply(base);

        assertThat(nft.applies()).hasSize(1);
        assertThat(nft.lastApply().stdin()).as("the script from its first statement: header notes are not nft's")
                .isEqualTo(base.substring(base.indexOf("\ntable inet egressctl\n") + 1));
        assertThat(base).startsWith("# egressctl host ");
        assertThat(nft.lastApply().args()).containsExactly("-f", "-");
        assertThat(enforcer.inSync(base)).isTrue();
        assertThat(enforcer.name()).isEqualTo("nftables");
        assertThat(nft.sets()).contains("l0_port4", "l0_port6", "l0_port4_dst", "l0_proto4", "def4", "def6");
    }

    @Test
    void failedApplySurfacesNftsStderrAndKeepsThePreviousRuleset() throws Exception {
        enforcer.apply(base);
        String broken = base.replace("ct state established,related accept", "junk accept");
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
        String broken = base.replace("ct state established,related accept", "junk accept");

        assertThatThrownBy(() -> enforcer.apply(broken)).hasMessageContaining("unexpected junk");
        assertThat(enforcer.inSync(base)).isTrue();
    }

    @Test
    void runnerFailureIsAnEnforcementExceptionAndTheNextApplyIsFull() throws Exception {
        enforcer.apply(base);
        nft.throwNext(new EnforcementException("nft -f - did not finish within PT30S and was killed"));
        String next = withPort(81);

        assertThatThrownBy(() -> enforcer.apply(next)).hasMessageContaining("did not finish");
        enforcer.apply(next);
        assertThat(nft.lastApply().isFullApply()).isTrue();
    }

    @Test
    void notInSyncWhenTheTableIsMissing() throws Exception {
        assertThat(enforcer.inSync(base)).isFalse();
        assertThat(enforcer.lastDriftReason()).contains("does not exist");

        enforcer.apply(base);
        nft.dropTable();
        assertThat(enforcer.inSync(base)).isFalse();
    }

    @Test
    void notInSyncWhenAnElementWasDeletedAndTheNextApplyRepairsIt() throws Exception {
        enforcer.apply(base);
        String set = setOf(base, "r-80");
        nft.deleteElement(set, "r=r-80");

        assertThat(enforcer.inSync(base)).isFalse();
        assertThat(enforcer.lastDriftReason()).contains("set " + set).contains("missing [r=r-80");

        enforcer.apply(base);
        assertThat(nft.lastApply().isFullApply()).as("a repair re-applies the whole table").isTrue();
        assertThat(enforcer.inSync(base)).isTrue();
    }

    @Test
    void notInSyncWhenALookupRuleWasDeleted() throws Exception {
        enforcer.apply(base);
        nft.deleteRule("forward", "layer 0 deny port ipv4");

        assertThat(enforcer.inSync(base)).isFalse();
        assertThat(enforcer.lastDriftReason()).contains("chain forward").contains("missing [layer 0 deny port ipv4");
    }

    @Test
    void notInSyncWhenAVmIsUnmapped() throws Exception {
        enforcer.apply(base);
        nft.deleteMapElement("def4", "10.250.1.12");
        assertThat(enforcer.inSync(base)).isFalse();
        assertThat(enforcer.lastDriftReason()).contains("def4").contains("10.250.1.12");
    }

    @Test
    void anElementEditedInPlaceKeepingItsCommentIsCaughtAgainstTheCapturedListing() throws Exception {
        enforcer.apply(base);
        assertThat(enforcer.inSync(base)).isTrue(); // captures the kernel's listing
        nft.editElement(setOf(base, "r-80"), "r=r-80", "10.250.1.11 . tcp . 81");

        assertThat(enforcer.inSync(base)).isFalse();
        assertThat(enforcer.lastDriftReason()).contains("edited in place");
        enforcer.apply(base);
        assertThat(enforcer.inSync(base)).isTrue();
    }

    @Test
    void aLookupEditedInPlaceKeepingItsCommentIsCaughtToo() throws Exception {
        enforcer.apply(base);
        assertThat(enforcer.inSync(base)).isTrue();
        nft.editRule("forward", "layer 0 deny port ipv4", "ip saddr . meta l4proto . th dport @l0_port4 accept comment \"layer 0 deny port ipv4\"");

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

    @Test
    void afterARestartTheStructureCheckAloneRecognisesARightKernel() throws Exception {
        enforcer.apply(base);
        NftablesEnforcer restarted = new NftablesEnforcer(nft);

        assertThat(restarted.inSync(base)).isTrue();
        String other = script(DefaultPolicy.ALLOW, List.of(VM1, VM2, VM3), deny("r-80", Protocol.TCP, PortRange.single(80), List.of("vm1")));
        assertThat(restarted.inSync(other)).isFalse();
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
        String changed = withPort(443);

        enforcer.apply(changed);

        String delta = nft.lastApply().stdin();
        assertThat(enforcer.lastApplyIncremental()).isTrue();
        assertThat(delta).doesNotContain("delete table").doesNotContain("flush chain").doesNotContain("add rule")
                .contains("delete element inet egressctl l0_port4 { 10.250.1.11 . tcp . 80, 10.250.1.12 . tcp . 80 }")
                .contains("add element inet egressctl l0_port4 { 10.250.1.11 . tcp . 443 comment \"r=r-80 h=")
                .contains("delete element inet egressctl l0_port6 { fd00:250:1::11 . tcp . 80 }");
        assertThat(delta.lines()).hasSize(4);
        assertThat(enforcer.inSync(changed)).isTrue();
        assertThat(canonicalOf(nft)).isEqualTo(canonicalOf(fullyApplied(changed)));
    }

    @Test
    void vmsSetsAndLookupsComeAndGoIncrementally() throws Exception {
        enforcer.apply(base);
        VmAddress vm4 = new VmAddress("vm4", "10.250.1.14", null);
        String next = script(DefaultPolicy.ALLOW, List.of(VM1, VM3, vm4),
                deny("r-80", Protocol.TCP, PortRange.single(80), List.of("vm1", "vm4"), "192.0.2.0/24", "198.51.100.0/24"),
                new CompiledRule("r-ok", Action.ALLOW, 1000, Protocol.ALL, List.of("vm1"), cidrs("192.0.2.0/25"), List.of(), null, null));

        enforcer.apply(next);

        String delta = nft.lastApply().stdin();
        assertThat(enforcer.lastApplyIncremental()).isTrue();
        assertThat(delta).contains("delete element inet egressctl def4 { 10.250.1.12 }")
                .contains("add element inet egressctl def4 { 10.250.1.14 comment \"net net-a vm vm4\" : accept }")
                .contains("delete set inet egressctl l0_port4_dst\n") // vm2's port range was its only element
                .contains("  set l1_all4_dst25 {")
                .contains("delete set inet egressctl l0_port4\n")
                .contains("delete set inet egressctl l0_proto4")
                .contains("flush chain inet egressctl forward")
                .contains("add rule inet egressctl forward ip saddr . ip daddr & 255.255.255.128 @l1_all4_dst25 accept "
                        + "comment \"layer 1 allow all ipv4 by destination /25\"");
        assertThat(delta.indexOf("flush chain")).as("lookups change after the new sets exist, before old ones go")
                .isGreaterThan(delta.indexOf("  set l1_all4_dst25 {")).isLessThan(delta.indexOf("delete set"));
        assertThat(enforcer.inSync(next)).isTrue();
        assertThat(canonicalOf(nft)).isEqualTo(canonicalOf(fullyApplied(next)));
    }

    @Test
    void anIncrementalTransactionTheKernelRefusesFallsBackToTheFullScript() throws Exception {
        enforcer.apply(base);
        nft.failWhen(s -> !s.contains("delete table"), "Error: Could not process rule: No such file or directory\n");
        String next = withPort(81);

        enforcer.apply(next);

        List<FakeNftRunner.Call> applies = nft.applies();
        assertThat(applies).hasSize(3);
        assertThat(applies.get(1).isFullApply()).isFalse();
        assertThat(applies.get(2).stdin()).isEqualTo(NftRenderer.kernelInput(next));
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
    void aScriptThatIsNotTheRenderersFormatIsAppliedWhole() throws Exception {
        enforcer.apply(base);
        String custom = "table inet egressctl\ndelete table inet egressctl\n";
        enforcer.apply(custom);
        assertThat(nft.lastApply().stdin()).isEqualTo(custom);
        assertThat(nft.hasTable()).isFalse();
    }

    @Test
    void theParserReadsTheRenderersSetsMapsAndChain() {
        NftablesEnforcer.Ruleset rs = NftablesEnforcer.Ruleset.parse(base);

        assertThat(rs.sets.get("l0_port4").header()).containsExactly("type ipv4_addr . inet_proto . inet_service", "flags interval");
        assertThat(rs.sets.get("l0_port4").elements()).hasSize(2).allMatch(e -> e.contains(" comment \"r=r-80 h="));
        assertThat(NftablesEnforcer.Ruleset.mapElements(rs.sets.get("def4")))
                .containsEntry("10.250.1.11", "accept").containsEntry("10.250.1.13", "accept").hasSize(3);
        assertThat(rs.chains.get("forward").base()).startsWith("type filter hook forward");
        assertThat(rs.structure().sets().get("l0_port4")).hasSize(2).allMatch(c -> c.startsWith("r=r-80 h="));
    }

    @Test
    void randomSequencesOfHostStatesConvergeIncrementallyToWhatAFullApplyBuilds() throws Exception {
        Random rnd = new Random(7);
        for (int step = 0; step < 60; step++) {
            String s = randomScript(rnd);
            enforcer.apply(s);
            assertThat(enforcer.inSync(s)).as("step %d", step).isTrue();
            assertThat(canonicalOf(nft)).as("step %d", step).isEqualTo(canonicalOf(fullyApplied(s)));
        }
        assertThat(enforcer.incrementalApplies()).isGreaterThan(45);
        assertThat(enforcer.incrementalFallbacks()).isZero();
    }

    static String randomScript(Random rnd) {
        List<VmAddress> vms = new ArrayList<>();
        for (int v = 0; v < 6; v++) {
            if (rnd.nextInt(4) > 0) {
                vms.add(new VmAddress("vm" + v, "10.250.1." + (10 + v), rnd.nextBoolean() ? "fd00::" + (10 + v) : null));
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
                    rules.add(new CompiledRule("r" + r, rnd.nextInt(3) == 0 ? Action.ALLOW : Action.DENY, 1000, p, covered,
                            cidrs(lists[rnd.nextInt(lists.length)]), except, ports, p == Protocol.ICMP ? IcmpMatch.ANY : null));
                }
            }
        }
        TreeMap<String, Fragment> f = new TreeMap<>();
        f.put("net-a", new Fragment("net-a", rnd.nextBoolean() ? DefaultPolicy.ALLOW : DefaultPolicy.DENY, vms, rules));
        return RENDERER.render("host-1", f);
    }

    private static FakeNftRunner fullyApplied(String script) throws EnforcementException {
        FakeNftRunner fresh = new FakeNftRunner();
        assertThat(fresh.run(script, List.of("-f", "-")).ok()).isTrue();
        return fresh;
    }

    private static String canonicalOf(FakeNftRunner kernel) throws EnforcementException {
        String json = kernel.run("", List.of("-j", "list", "table", "inet", "egressctl")).stdout();
        return NftablesEnforcer.canonical(JsonMapper.builder().build().readTree(json));
    }
}
