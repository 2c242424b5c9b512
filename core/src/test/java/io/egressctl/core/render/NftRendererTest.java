package io.egressctl.core.render;

import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.FragmentCompiler;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.host.HostState;
import io.egressctl.core.model.Action;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.IcmpMatch;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.core.state.NetworkState;
import io.egressctl.core.testing.Drafts;
import io.egressctl.core.testing.Events;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static io.egressctl.core.testing.Drafts.draft;
import static org.assertj.core.api.Assertions.assertThat;

class NftRendererTest {

    private static final Network NET_A = Events.network("net-a", "10.1.0.0/24");
    private static final Network NET_DENY = Events.network("net-d", "10.4.0.0/24", "fd00:4::/64", DefaultPolicy.DENY, true, 100);

    private final NftRenderer renderer = new NftRenderer();

    /** Builds a network through the log-order state, as the compiler does, and compiles it. */
    private static final class NetworkBuilder {
        private final Network network;
        private final NetworkState state;
        private long rulePosition = 1;
        private long workloadPosition;

        NetworkBuilder(Network network) {
            this.network = network;
            this.state = new NetworkState(network.networkId());
            assertThat(state.applyRule(Events.networkCreated(network), rulePosition).isAccepted()).isTrue();
        }

        NetworkBuilder vm(String vmId, String host, String ipv4) {
            return vm(vmId, host, ipv4, null);
        }

        NetworkBuilder vm(String vmId, String host, String ipv4, String ipv6) {
            assertThat(state.applyWorkload(Events.placed(network.networkId(), vmId, host, ipv4, ipv6), ++workloadPosition)
                    .isAccepted()).isTrue();
            return this;
        }

        NetworkBuilder rule(String ruleId, Drafts d) {
            EgressRule r = Events.rule(ruleId, network, d.build());
            assertThat(state.applyRule(Events.ruleCreated(network.networkId(), r), ++rulePosition).isAccepted()).isTrue();
            return this;
        }

        Fragment fragment(String host) {
            return new FragmentCompiler().compile(state).get(host);
        }
    }

    private static SortedMap<String, Fragment> host(Fragment... fragments) {
        SortedMap<String, Fragment> out = new TreeMap<>();
        for (Fragment f : fragments) {
            out.put(f.networkId(), f);
        }
        return out;
    }

    private static final Pattern NAMED_SET = Pattern.compile(
            "  set ([A-Za-z0-9_]+) \\{\n(?:    (?!elements)[^\n]*\n)*    elements = \\{ ([^}]*) \\}\n  \\}\n");
    private static final Pattern INLINE_PREFIX = Pattern.compile("(ip6? daddr (?:!= )?)([0-9a-f:.]+/\\d+)");

    /**
     * The script with every destination operand written one way, as an anonymous set: a named set
     * reference is replaced by its elements and a single inline prefix is put in braces. The tests
     * assert what a rule matches, not how the renderer chose to spell it.
     */
    static String expanded(String script) {
        Map<String, String> sets = new HashMap<>();
        Matcher m = NAMED_SET.matcher(script);
        while (m.find()) {
            sets.put(m.group(1), m.group(2));
        }
        String out = script;
        for (Map.Entry<String, String> e : sets.entrySet()) {
            out = out.replace("@" + e.getKey() + " ", "{ " + e.getValue() + " } ");
        }
        return INLINE_PREFIX.matcher(out).replaceAll("$1{ $2 }");
    }

    /** The chain name the vm4 or vm6 map sends {@code address} to. */
    private static String chainNameOf(String script, String address) {
        Matcher m = Pattern.compile("[{,] " + Pattern.quote(address) + " : jump (vm_[A-Za-z0-9_]+)").matcher(script);
        assertThat(m.find()).as("%s is in a map", address).isTrue();
        return m.group(1);
    }

    /** The statements of the chain the vm4 or vm6 map sends {@code address} to, destinations expanded. */
    private static List<String> chainOf(String script, String address) {
        return chain(expanded(script), chainNameOf(script, address));
    }

    private static List<String> chain(String script, String name) {
        List<String> out = new ArrayList<>();
        boolean in = false;
        for (String line : script.split("\n")) {
            if (line.equals("  chain " + name + " {")) {
                in = true;
            } else if (in && line.equals("  }")) {
                return out;
            } else if (in) {
                out.add(line.trim());
            }
        }
        throw new AssertionError("no chain " + name);
    }

    /** net-a on host-1: vm-1 .5, vm-2 .6, vm-3 .7 and the seed user guide's six examples. */
    private static NetworkBuilder seedExamples() {
        return new NetworkBuilder(NET_A)
                .vm("vm-1", "host-1", "10.1.0.5")
                .vm("vm-2", "host-1", "10.1.0.6")
                .vm("vm-3", "host-1", "10.1.0.7")
                .rule("icmp-one", draft("icmp").sources("10.1.0.5/32"))
                .rule("icmp-set", draft("icmp").icmp(8, 0).sources("10.1.0.6/32", "10.1.0.7/32"))
                .rule("web-one", draft("tcp").port(80).sources("10.1.0.5/32"))
                .rule("web-set", draft("tcp").port(80).sources("10.1.0.6/31"))
                .rule("range-one", draft("tcp").ports(1000, 2000).sources("10.1.0.6/32"))
                .rule("range-set", draft("udp").ports(1000, 2000).vms("vm-1", "vm-3"))
                .rule("all-one", draft("all").sources("10.1.0.7/32"))
                .rule("all-set", draft("all").vms("vm-1", "vm-2").destinations("192.0.2.0/24"));
    }

    @Test
    void theScriptCreatesThenDeletesTheTableAndDefinesItAnewSoOneTransactionReplacesIt() {
        SortedMap<String, Fragment> fragments = host(seedExamples().fragment("host-1"));

        String script = renderer.render("host-1", fragments);

        String[] lines = script.split("\n");
        assertThat(lines[0]).isEqualTo("# egressctl host host-1 hash " + HostState.hashOf(fragments));
        assertThat(lines[1]).isEqualTo("table inet egressctl");
        assertThat(lines[2]).isEqualTo("delete table inet egressctl");
        assertThat(lines[3]).isEqualTo("table inet egressctl {");
        assertThat(script).endsWith("\n}\n");
        assertThat(script).as("no other table is touched").doesNotContain("flush ruleset")
                .containsOnlyOnce("delete table");
        assertThat(script).contains("""
                  chain forward {
                    type filter hook forward priority filter; policy accept;
                    ct state established,related accept
                    ip saddr vmap @vm4
                    ip6 saddr vmap @vm6
                  }
                """);
    }

    @Test
    void seedExampleBlockIcmpRendersForOneVmAndForASetOfVms() {
        String script = renderer.render("host-1", host(seedExamples().fragment("host-1")));

        assertThat(chainOf(script, "10.1.0.5")).anyMatch(l -> l.startsWith("meta l4proto icmp counter drop comment \"r=icmp-one h="));
        assertThat(chainOf(script, "10.1.0.6")).anyMatch(l -> l.startsWith("icmp type 8 icmp code 0 counter drop comment \"r=icmp-set "));
        assertThat(chainOf(script, "10.1.0.7")).anyMatch(l -> l.startsWith("icmp type 8 icmp code 0 counter drop comment \"r=icmp-set "));
    }

    @Test
    void seedExampleBlockPort80RendersForOneVmAndForASetOfVms() {
        String script = renderer.render("host-1", host(seedExamples().fragment("host-1")));

        assertThat(chainOf(script, "10.1.0.5")).anyMatch(l -> l.startsWith("tcp dport 80 counter drop comment \"r=web-one "));
        assertThat(chainOf(script, "10.1.0.6")).anyMatch(l -> l.startsWith("tcp dport 80 counter drop comment \"r=web-set "));
        assertThat(chainOf(script, "10.1.0.7")).anyMatch(l -> l.startsWith("tcp dport 80 counter drop comment \"r=web-set "));
    }

    @Test
    void seedExampleBlockAPortRangeRendersForOneVmAndForASetOfVms() {
        String script = renderer.render("host-1", host(seedExamples().fragment("host-1")));

        assertThat(chainOf(script, "10.1.0.6")).anyMatch(l -> l.startsWith("tcp dport 1000-2000 counter drop comment \"r=range-one "));
        assertThat(chainOf(script, "10.1.0.5")).anyMatch(l -> l.startsWith("udp dport 1000-2000 counter drop comment \"r=range-set "));
        assertThat(chainOf(script, "10.1.0.7")).anyMatch(l -> l.startsWith("udp dport 1000-2000 counter drop comment \"r=range-set "));
    }

    @Test
    void seedExampleBlockAllOutgoingRendersForOneVmAndForASetOfVms() {
        String script = renderer.render("host-1", host(seedExamples().fragment("host-1")));

        assertThat(chainOf(script, "10.1.0.7")).anyMatch(l -> l.startsWith("counter drop comment \"r=all-one "));
        assertThat(chainOf(script, "10.1.0.5")).anyMatch(l -> l.startsWith("ip daddr { 192.0.2.0/24 } counter drop comment \"r=all-set "));
        assertThat(chainOf(script, "10.1.0.6")).anyMatch(l -> l.startsWith("ip daddr { 192.0.2.0/24 } counter drop comment \"r=all-set "));
    }

    @Test
    void rulesAppearOnlyInTheChainsOfTheVmsTheyCover() {
        String script = renderer.render("host-1", host(seedExamples().fragment("host-1")));

        assertThat(String.join("\n", chainOf(script, "10.1.0.5")))
                .contains("r=icmp-one", "r=web-one", "r=range-set", "r=all-set")
                .doesNotContain("r=icmp-set", "r=web-set", "r=range-one", "r=all-one");
        assertThat(String.join("\n", chainOf(script, "10.1.0.6")))
                .contains("r=icmp-set", "r=web-set", "r=range-one", "r=all-set")
                .doesNotContain("r=icmp-one", "r=web-one", "r=range-set", "r=all-one");
        assertThat(String.join("\n", chainOf(script, "10.1.0.7")))
                .contains("r=icmp-set", "r=web-set", "r=range-set", "r=all-one")
                .doesNotContain("r=icmp-one", "r=web-one", "r=range-one", "r=all-set");
    }

    @Test
    void everyVmChainIsJumpedToFromTheVm4MapAndEndsWithTheDefaultAllow() {
        String script = renderer.render("host-1", host(seedExamples().fragment("host-1")));

        assertThat(script).containsPattern(
                "  map vm4 \\{\n    type ipv4_addr : verdict\n    elements = \\{ 10\\.1\\.0\\.5 : jump vm_\\w+, 10\\.1\\.0\\.6 : jump vm_\\w+, "
                        + "10\\.1\\.0\\.7 : jump vm_\\w+ \\}\n  \\}\n  map vm6 \\{\n    type ipv6_addr : verdict\n  \\}\n");
        assertThat(List.of("10.1.0.5", "10.1.0.6", "10.1.0.7")).extracting(a -> chainNameOf(script, a))
                .as("one chain per VM").doesNotHaveDuplicates();
        for (String address : List.of("10.1.0.5", "10.1.0.6", "10.1.0.7")) {
            List<String> chain = chainOf(script, address);
            assertThat(chain.get(0)).startsWith("comment \"net net-a vm vm-");
            assertThat(chain).last().isEqualTo("counter accept comment \"default allow\"");
            assertThat(chain).filteredOn(l -> l.contains("default")).hasSize(1);
        }
        assertThat(chainOf(script, "10.1.0.5").get(0)).isEqualTo("comment \"net net-a vm vm-1\"");
    }

    @Test
    void aDenyNetworkRendersItsRulesAsAcceptAndEndsEachChainWithTheDefaultDeny() {
        Fragment f = new NetworkBuilder(NET_DENY)
                .vm("vm-1", "host-1", "10.4.0.5")
                .rule("https", draft("tcp").port(443))
                .rule("block-smtp", draft("tcp").action("deny").priority(5).port(25))
                .fragment("host-1");

        List<String> chain = chainOf(renderer.render("host-1", host(f)), "10.4.0.5");

        assertThat(chain).containsSubsequence(
                "tcp dport 25 counter drop comment \"r=block-smtp h=" + NftRenderer.ruleHash(f.rules().get(0)) + "\"",
                "tcp dport 443 counter accept comment \"r=https h=" + NftRenderer.ruleHash(f.rules().get(1)) + "\"",
                "counter drop comment \"default deny\"");
        assertThat(chain).last().isEqualTo("counter drop comment \"default deny\"");
    }

    @Test
    void rulesAreRenderedInEvaluationOrderPriorityThenRuleId() {
        Fragment f = new NetworkBuilder(NET_DENY)
                .vm("vm-1", "host-1", "10.4.0.5")
                .rule("a-late", draft("tcp").priority(900).port(1))
                .rule("z-early", draft("tcp").priority(10).port(2))
                .rule("b-default", draft("tcp").port(3))
                .rule("a-default", draft("tcp").port(4))
                .fragment("host-1");

        List<String> chain = chainOf(renderer.render("host-1", host(f)), "10.4.0.5");

        assertThat(chain).filteredOn(l -> l.contains("r=")).extracting(l -> l.replaceAll(".*r=(\\S+) .*", "$1"))
                .containsExactly("z-early", "a-late", "a-default", "b-default");
    }

    @Test
    void anIpv6VmIsJumpedToFromTheVm6MapAndADualStackVmFromBothToOneChain() {
        Fragment f = new NetworkBuilder(NET_DENY)
                .vm("dual", "host-1", "10.4.0.5", "fd00:4::5")
                .vm("v6-only", "host-1", null, "FD00:4:0::6")
                .rule("icmpv6-echo", draft("icmpv6").icmp(128, -1))
                .rule("ping6-all", draft("icmpv6"))
                .fragment("host-1");

        String script = renderer.render("host-1", host(f));

        String dual = chainNameOf(script, "10.4.0.5");
        assertThat(script).contains("elements = { 10.4.0.5 : jump " + dual + " }")
                .contains("elements = { fd00:4::5 : jump " + dual + ", fd00:4::6 : jump " + chainNameOf(script, "fd00:4::6") + " }");
        assertThat(chainOf(script, "fd00:4::6")).anyMatch(l -> l.startsWith("icmpv6 type 128 counter accept comment \"r=icmpv6-echo "))
                .anyMatch(l -> l.startsWith("meta l4proto ipv6-icmp counter accept comment \"r=ping6-all "));
        assertThat(chainOf(script, "10.4.0.5")).isEqualTo(chainOf(script, "fd00:4::5"));
    }

    @Test
    void destinationsAndExceptionsRenderPerAddressFamily() {
        Fragment f = new NetworkBuilder(NET_DENY)
                .vm("vm-1", "host-1", "10.4.0.5", "fd00:4::5")
                .rule("web-out", draft("tcp").port(443).destinations("192.0.2.0/24", "2001:db8::/32").except("192.0.2.128/25"))
                .rule("not-internal", draft("all").except("10.0.0.0/8", "fd00::/8"))
                .rule("dns", draft("udp").destinations("198.51.100.53/32"))
                .fragment("host-1");

        List<String> chain = chainOf(renderer.render("host-1", host(f)), "10.4.0.5");

        assertThat(chain).anyMatch(l -> l.startsWith("ip daddr { 192.0.2.0/24 } ip daddr != { 192.0.2.128/25 } tcp dport 443 counter accept"))
                .anyMatch(l -> l.startsWith("ip6 daddr { 2001:db8::/32 } tcp dport 443 counter accept"))
                .anyMatch(l -> l.startsWith("meta nfproto ipv4 ip daddr != { 10.0.0.0/8 } counter accept comment \"r=not-internal "))
                .anyMatch(l -> l.startsWith("meta nfproto ipv6 ip6 daddr != { fd00::/8 } counter accept comment \"r=not-internal "))
                .anyMatch(l -> l.startsWith("ip daddr { 198.51.100.53/32 } meta l4proto udp counter accept comment \"r=dns "));
    }

    @Test
    void descriptionsAreNeverRenderedEvenWhenTheyLookLikeNftSyntax() {
        Fragment f = new NetworkBuilder(NET_A)
                .vm("vm-1", "host-1", "10.1.0.5")
                .rule("web", draft("tcp").port(80).description("\"; flush ruleset; \""))
                .rule("tagged", draft("udp").port(53).description("SECRET-DESCRIPTION"))
                .fragment("host-1");

        String script = renderer.render("host-1", host(f));

        assertThat(script).doesNotContain("flush").doesNotContain("SECRET-DESCRIPTION").contains("tcp dport 80 counter drop");
    }

    @Test
    void idsWithOddCharactersAreSanitisedSoNothingCanEscapeAComment() {
        String evilNetwork = "net\"; flush ruleset; #";
        String evilVm = "vm\n} table ip x {";
        CompiledRule evilRule = new CompiledRule("r\" accept; #", Action.DENY, 1, Protocol.TCP, List.of(evilVm), List.of(), List.of(),
                PortRange.single(22), null);
        Fragment f = new Fragment(evilNetwork, DefaultPolicy.ALLOW, List.of(new VmAddress(evilVm, "10.9.0.5", null)), List.of(evilRule));

        String script = renderer.render("host\"1; flush", host(f));

        assertThat(script).doesNotContain("flush ruleset").doesNotContain("table ip x").doesNotContain("accept; #");
        Matcher comments = Pattern.compile("comment \"([^\"\\n]*)\"").matcher(script);
        int count = 0;
        while (comments.find()) {
            count++;
            assertThat(comments.group(1)).matches("[A-Za-z0-9._:= -]*");
        }
        assertThat(count).isEqualTo(3);
        assertThat(script.lines().filter(l -> l.contains("\"")))
                .allSatisfy(l -> assertThat(l.chars().filter(c -> c == '"').count()).isEqualTo(2));
        assertThat(NftRenderer.safe("a\"b;c d\u00e9")).isEqualTo("a_b_c_d_");
        assertThat(NftRenderer.safe("x".repeat(100))).hasSize(64);
    }

    @Test
    void chainCommentsStayWithinTheLengthNftAcceptsEvenForTheLongestIds() {
        String longNet = "n".repeat(64);
        String longVm = "v".repeat(64);
        Fragment f = new Fragment(longNet, DefaultPolicy.ALLOW, List.of(new VmAddress(longVm, "10.9.0.5", null)), List.of());

        String script = renderer.render("host-1", host(f));

        Matcher comments = Pattern.compile("comment \"([^\"]*)\"").matcher(script);
        while (comments.find()) {
            assertThat(comments.group(1).length()).isLessThanOrEqualTo(128);
        }
        assertThat(chainOf(script, "10.9.0.5").get(0)).startsWith("comment \"net " + longNet + " vm v");
    }

    @Test
    void theSameInputAlwaysRendersTheSameBytes() {
        SortedMap<String, Fragment> first = host(seedExamples().fragment("host-1"),
                new NetworkBuilder(NET_DENY).vm("vm-9", "host-1", "10.4.0.9").rule("https", draft("tcp").port(443)).fragment("host-1"));
        SortedMap<String, Fragment> rebuilt = host(
                new NetworkBuilder(NET_DENY).vm("vm-9", "host-1", "10.4.0.9").rule("https", draft("tcp").port(443)).fragment("host-1"),
                seedExamples().fragment("host-1"));

        assertThat(renderer.render("host-1", rebuilt)).isEqualTo(renderer.render("host-1", first));
        assertThat(new NftRenderer().render("host-1", first)).isEqualTo(renderer.render("host-1", first));
    }

    @Test
    void anAddressClaimedTwiceOnOneHostIsMappedOnceAndTheSecondClaimIsLeftOut() {
        Fragment a = new Fragment("net-a", DefaultPolicy.ALLOW, List.of(new VmAddress("vm-1", "10.9.0.5", null)), List.of());
        Fragment b = new Fragment("net-b", DefaultPolicy.DENY, List.of(new VmAddress("vm-2", "10.9.0.5", null)), List.of());

        String script = renderer.render("host-1", host(a, b));

        assertThat(script).containsOnlyOnce("10.9.0.5 : jump").doesNotContain("vm vm-2").doesNotContain("default deny");
    }

    @Test
    void aHostWithoutFragmentsRendersEmptyMapsAndNoVmChains() {
        String table = renderer.renderTable(new TreeMap<>());

        assertThat(table).doesNotContain("elements").doesNotContain("chain vm_").contains("chain forward {");
    }

    @Test
    void protocolsWithoutPortsOrTypesMatchTheWholeProtocol() {
        CompiledRule udp = new CompiledRule("u", Action.DENY, 1, Protocol.UDP, List.of("vm"), List.of(), List.of(), null, null);
        CompiledRule icmpAnyCode = new CompiledRule("i", Action.DENY, 1, Protocol.ICMP, List.of("vm"), List.of(), List.of(), null,
                new IcmpMatch(3, -1));
        CompiledRule icmpAny = new CompiledRule("a", Action.DENY, 1, Protocol.ICMP, List.of("vm"),
                List.of(Cidr.parse("192.0.2.0/24")), List.of(), null, IcmpMatch.ANY);

        assertThat(renderer.ruleLines(udp)).singleElement().asString().startsWith("meta l4proto udp counter drop");
        assertThat(renderer.ruleLines(icmpAnyCode)).singleElement().asString().startsWith("icmp type 3 counter drop");
        assertThat(renderer.ruleLines(icmpAny)).singleElement().asString()
                .startsWith("ip daddr { 192.0.2.0/24 } meta l4proto icmp counter drop");
    }

    @Test
    void theRuleHashTagChangesWithWhatTheRuleMatchesButNotWithWhichVmsItCovers() {
        CompiledRule r = new CompiledRule("r", Action.DENY, 1, Protocol.TCP, List.of("vm-1"), List.of(), List.of(), PortRange.single(80), null);
        CompiledRule otherVms = new CompiledRule("r", Action.DENY, 1, Protocol.TCP, List.of("vm-2"), List.of(), List.of(), PortRange.single(80), null);
        CompiledRule otherPort = new CompiledRule("r", Action.DENY, 1, Protocol.TCP, List.of("vm-1"), List.of(), List.of(), PortRange.single(81), null);

        assertThat(NftRenderer.ruleHash(r)).hasSize(12).isEqualTo(NftRenderer.ruleHash(otherVms)).isNotEqualTo(NftRenderer.ruleHash(otherPort));
    }
}
