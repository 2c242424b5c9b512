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
        private long position = 1;

        NetworkBuilder(Network network) {
            this.network = network;
            this.state = new NetworkState(network.networkId());
            assertThat(state.applyRule(Events.networkCreated(network), position).isAccepted()).isTrue();
        }

        NetworkBuilder vm(String vmId, String host, String ipv4) {
            return vm(vmId, host, ipv4, null);
        }

        NetworkBuilder vm(String vmId, String host, String ipv4, String ipv6) {
            assertThat(state.applyWorkload(Events.placed(network.networkId(), vmId, host, ipv4, ipv6), ++position)
                    .isAccepted()).isTrue();
            return this;
        }

        NetworkBuilder rule(String ruleId, Drafts d) {
            EgressRule r = Events.rule(ruleId, network, d.build());
            assertThat(state.applyRule(Events.ruleCreated(network.networkId(), r), ++position).isAccepted()).isTrue();
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

    private RenderedTable table(Fragment... fragments) {
        return RenderedTable.parse(renderer.render("host-1", host(fragments)));
    }

    /**
     * The elements of the VM with {@code address}, as "set: key" lines with the port's mark shown as
     * that address (comments as "r=<id>"); the address must belong to one VM of the table.
     */
    private static List<String> elements(RenderedTable t, String address) {
        String mark = markOfAddress(t, address);
        String family = address.contains(":") ? "6" : "4";
        return t.elementsOf(mark).entrySet().stream()
                .filter(e -> e.getKey().matches("l\\d+_[a-z]+" + family + "(_.*)?"))
                .flatMap(e -> e.getValue().stream().map(el -> e.getKey() + ": " + address + " . "
                        + String.join(" . ", el.fields().subList(1, el.fields().size())) + " r=" + el.ruleId()))
                .map(line -> line.replace(" .  r=", " r="))
                .toList();
    }

    /** The mark of the one port whose VM has {@code address}. */
    private static String markOfAddress(RenderedTable t, String address) {
        String canonical = RenderedTable.canonical(address);
        List<String> marks = new java.util.ArrayList<>();
        t.addr4.forEach((m, a) -> { if (a.contains(canonical)) { marks.add(m); } });
        t.addr6.forEach((m, a) -> { if (a.contains(canonical)) { marks.add(m); } });
        assertThat(marks).as("ports with address %s", address).hasSize(1);
        return marks.get(0);
    }

    /** A packet from the VM with address {@code src}, entering from that VM's interface. */
    private static RenderedTable.Packet packetFrom(RenderedTable t, boolean v4, String src, String dst, int proto, int port, int type, int code) {
        String mark = markOfAddress(t, src);
        String iface = t.ports.entrySet().stream().filter(e -> e.getValue().equals(mark)).map(Map.Entry::getKey).findFirst().orElseThrow();
        return new RenderedTable.Packet(iface, v4, src, dst, proto, port, type, code);
    }

    /** The mark of the port of the VM {@code vmId} (unique among the host's VMs) as the plan gives it. */
    private String markOfVm(SortedMap<String, Fragment> h, String vmId) {
        return renderer.plan(h).ports().stream().filter(p -> vmId.equals(p.vmId())).findFirst().orElseThrow().markText();
    }

    /** The default verdict of the VM with {@code address}. */
    private static String defaultOf(RenderedTable t, String address) {
        return t.defaults.get(markOfAddress(t, address));
    }

    /** A VM on an interface named after it ({@code tap-<id>}, or a hash of the id when that is no valid name). */
    static VmAddress vmAt(String vmId, String ipv4, String ipv6) {
        String name = "tap-" + vmId;
        if (!io.egressctl.core.validation.Interfaces.isValidName(name)) {
            name = "t" + Integer.toHexString(vmId.hashCode());
        }
        return new VmAddress(vmId, name, null, ipv4, ipv6);
    }

    private static CompiledRule rule(String id, Action action, Protocol p, PortRange ports, IcmpMatch icmp, List<String> dst,
                                     List<String> except, String... vms) {
        return new CompiledRule(id, action, 1000, p, List.of(vms), dst.stream().map(Cidr::parse).toList(),
                except.stream().map(Cidr::parse).toList(), ports, icmp);
    }

    private static CompiledRule tcp(String id, Action action, int from, int to, String... dst) {
        return rule(id, action, Protocol.TCP, new PortRange(from, to), null, List.of(dst), List.of(), "vm-1");
    }

    private static Fragment oneVm(DefaultPolicy policy, CompiledRule... rules) {
        return new Fragment("net-t", policy, List.of(vmAt("vm-1", "10.9.0.5", "fd00:9::5")), List.of(rules));
    }

    /** "all" to anywhere first: the later ICMP rule of the same VM can never be the first match. */
    private static Fragment icmpAfterAll() {
        return oneVm(DefaultPolicy.ALLOW,
                rule("block-all", Action.DENY, Protocol.ALL, null, null, List.of(), List.of(), "vm-1"),
                rule("block-icmp", Action.DENY, Protocol.ICMP, null, null, List.of(), List.of(), "vm-1"));
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

        // Header notes on shadowed rules (see below) aside.
        String[] lines = java.util.Arrays.stream(script.split("\n")).filter(l -> !l.startsWith("# shadowed: ")).toArray(String[]::new);
        assertThat(lines[0]).isEqualTo("# egressctl host host-1 hash " + HostState.hashOf(fragments) + " mode routed");
        assertThat(lines[1]).isEqualTo("table inet egressctl");
        assertThat(lines[2]).isEqualTo("delete table inet egressctl");
        assertThat(lines[3]).isEqualTo("table inet egressctl {");
        assertThat(script).endsWith("\n}\n");
        assertThat(script).as("no other table is touched").doesNotContain("flush ruleset")
                .containsOnlyOnce("delete table");
        RenderedTable t = RenderedTable.parse(script);
        assertThat(t.forward).as("only traffic from a VM's interface goes to the rules").contains("meta mark @vms jump vm");
        assertThat(t.vm.get(t.vm.size() - 1)).isEqualTo("meta mark vmap @def");
        assertThat(script).as("one chain for every VM, not a chain per VM").doesNotContain("chain vm_").containsOnlyOnce("jump");
    }

    @Test
    void networksPlannedInParallelGiveTheSamePlanAsOneByOneAndOverlappingAddressesAreAllEnforced() {
        java.util.Random rnd = new java.util.Random(7);
        SortedMap<String, Fragment> fragments = new TreeMap<>();
        for (int n = 0; n < 60; n++) {
            List<VmAddress> vms = new java.util.ArrayList<>();
            for (int v = 0; v < 4; v++) {
                // Every 10th network reuses addresses of network 0: each VM is its own interface all the same.
                int host = n % 10 == 9 ? v + 1 : n * 4 + v + 1;
                vms.add(new VmAddress("vm" + v, "t" + n + "-" + v, null, "10.20." + host / 250 + "." + host % 250, v % 2 == 0 ? "fd00:20::" + Integer.toHexString(host) : null));
            }
            List<CompiledRule> rules = new java.util.ArrayList<>();
            for (int r = 0; r < 12; r++) {
                Action action = rnd.nextInt(4) == 0 ? Action.ALLOW : Action.DENY;
                List<String> dst = rnd.nextBoolean() ? List.of() : List.of("198.18." + 4 * rnd.nextInt(4) + ".0/" + (22 + rnd.nextInt(3)));
                String vm = "vm" + rnd.nextInt(4);
                rules.add(switch (rnd.nextInt(3)) {
                    case 0 -> rule("r" + r, action, Protocol.TCP, PortRange.single(1 + rnd.nextInt(3)), null, dst, List.of(), vm);
                    case 1 -> rule("r" + r, action, Protocol.UDP, new PortRange(10, 10 + rnd.nextInt(20)), null, dst, List.of(), vm);
                    default -> rule("r" + r, action, Protocol.ALL, null, null, dst, List.of(), vm);
                });
            }
            Fragment f = new Fragment(String.format("net-%02d", n), n % 3 == 0 ? DefaultPolicy.DENY : DefaultPolicy.ALLOW, vms, rules);
            fragments.put(f.networkId(), f);
        }

        NftRenderer.Plan parallel = new NftRenderer().plan(fragments, true);
        NftRenderer.Plan oneByOne = new NftRenderer().plan(fragments, false);

        assertThat(parallel).isEqualTo(oneByOne);
        assertThat(parallel.sets()).isNotEmpty();
        assertThat(parallel.ports()).hasSize(60 * 4);
        assertThat(parallel.unenforced()).isEmpty();
        assertThat(renderer.plan(fragments)).as("the public entry, parallel at this size").isEqualTo(oneByOne);
    }

    @Test
    void aRendererThatRemembersItsNetworksRendersEveryUpdateAsAFreshRendererWould() {
        // One renderer, as an agent keeps it, through updates that change, drop, re-add and rename
        // networks' content; each output must equal a fresh renderer's.
        NftRenderer agent = new NftRenderer();
        java.util.Random rnd = new java.util.Random(11);
        SortedMap<String, Fragment> host = new TreeMap<>();
        for (int step = 0; step < 40; step++) {
            String id = "net-" + rnd.nextInt(6);
            switch (rnd.nextInt(4)) {
                case 0 -> host.remove(id);
                default -> {
                    int port = 1 + rnd.nextInt(5);
                    List<CompiledRule> rules = List.of(
                            rule("r-" + port, Action.DENY, Protocol.TCP, PortRange.single(port), null, List.of(), List.of(), "vm-1"),
                            rule("r-all", rnd.nextBoolean() ? Action.ALLOW : Action.DENY, Protocol.ALL, null, null,
                                    List.of("198.18." + rnd.nextInt(3) + ".0/24"), List.of(), "vm-1"));
                    int vm = id.charAt(4) - '0';
                    host.put(id, new Fragment(id, rnd.nextBoolean() ? DefaultPolicy.DENY : DefaultPolicy.ALLOW,
                            List.of(vmAt("vm-1", "10.30.0." + (vm + 1), null)), rules));
                }
            }
            // A copy each time: equal fragments that are not the same objects must be found too.
            SortedMap<String, Fragment> copy = new TreeMap<>();
            host.forEach((k, f) -> copy.put(k, new Fragment(f.networkId(), f.defaultPolicy(), List.copyOf(f.vms()), List.copyOf(f.rules()))));
            assertThat(agent.render("host-1", step % 2 == 0 ? host : copy)).as("step %d", step)
                    .isEqualTo(new NftRenderer().render("host-1", host));
        }
    }

    @Test
    void aRuleEarlierRulesFullyDecideGetsNoElementAndAHeaderNoteSaysWhy() {
        Fragment f = icmpAfterAll();

        String script = renderer.render("host-1", host(f));

        String header = script.substring(0, script.indexOf("table inet egressctl {"));
        assertThat(header).contains("# shadowed: r=block-icmp h=" + NftRenderer.ruleHash(f.rules().get(1))
                + " vm vm-1 (tap-vm-1) ipv4: earlier rules decide every packet it matches");
        assertThat(header).as("IPv6 has no ICMP (v4) box at all: nothing to note").doesNotContain("ipv6:");
        assertThat(script.substring(script.indexOf("table inet egressctl {"))).doesNotContain("r=block-icmp");
        assertThat(elements(RenderedTable.parse(script), "10.9.0.5")).containsExactly("l0_all4: 10.9.0.5 r=block-all");
    }

    @Test
    void seedExampleBlockIcmpRendersForOneVmAndForASetOfVms() {
        RenderedTable t = table(seedExamples().fragment("host-1"));

        assertThat(elements(t, "10.1.0.5")).contains("l0_proto4: 10.1.0.5 . icmp r=icmp-one");
        assertThat(elements(t, "10.1.0.6")).contains("l0_code4: 10.1.0.6 . 8 . 0 r=icmp-set");
        assertThat(t.vm).contains("meta nfproto ipv4 meta mark . meta l4proto @l0_proto4 drop comment \"layer 0 deny proto ipv4\"",
                "meta nfproto ipv4 meta mark . icmp type . icmp code @l0_code4 drop comment \"layer 0 deny code ipv4\"");
    }

    @Test
    void seedExampleBlockPort80RendersForOneVmAndForASetOfVms() {
        RenderedTable t = table(seedExamples().fragment("host-1"));

        assertThat(elements(t, "10.1.0.5")).contains("l0_port4: 10.1.0.5 . tcp . 80-80 r=web-one");
        assertThat(elements(t, "10.1.0.6")).contains("l0_port4: 10.1.0.6 . tcp . 80-80 r=web-set");
        assertThat(t.vm).contains("meta nfproto ipv4 meta mark . meta l4proto . th dport @l0_port4 drop comment \"layer 0 deny port ipv4\"");
        assertThat(t.sets.get("l0_port4").interval()).as("a port key may hold a range").isTrue();
    }

    @Test
    void seedExampleBlockAPortRangeRendersForOneVmAndForASetOfVms() {
        RenderedTable t = table(seedExamples().fragment("host-1"));

        assertThat(elements(t, "10.1.0.6")).contains("l0_port4: 10.1.0.6 . tcp . 1000-2000 r=range-one");
        assertThat(elements(t, "10.1.0.5")).contains("l0_port4: 10.1.0.5 . udp . 1000-2000 r=range-set");
    }

    @Test
    void seedExampleBlockAllOutgoingRendersForOneVmAndForASetOfVms() {
        RenderedTable t = table(seedExamples().fragment("host-1"));

        assertThat(elements(t, "10.1.0.7")).containsExactly("l0_all4: 10.1.0.7 r=all-one");
        assertThat(elements(t, "10.1.0.5")).contains("l0_all4_dst24: 10.1.0.5 . 192.0.2.0 r=all-set");
        assertThat(elements(t, "10.1.0.6")).contains("l0_all4_dst24: 10.1.0.6 . 192.0.2.0 r=all-set");
        assertThat(t.sets.get("l0_all4").interval()).as("a key of exact values is a hash set").isFalse();
        assertThat(t.sets.get("l0_all4").type()).isEqualTo("mark");
        assertThat(t.sets.get("l0_all4_dst24").type()).isEqualTo("mark . ipv4_addr");
        assertThat(t.sets.get("l0_all4_dst24").interval()).as("one prefix: an exact, masked key").isFalse();
        assertThat(t.vm).contains("meta nfproto ipv4 meta mark @l0_all4 drop comment \"layer 0 deny all ipv4\"",
                "meta mark . ip daddr & 255.255.255.0 @l0_all4_dst24 drop comment \"layer 0 deny all ipv4 by destination /24\"");
    }

    @Test
    void rulesHaveElementsOnlyForTheVmsTheyCoverAndNotWhereAnEarlierRuleMatchesEverythingTheyDo() {
        RenderedTable t = table(seedExamples().fragment("host-1"));

        // Evaluation order is by rule id here (equal priorities): all-one, all-set, icmp-one, ...
        assertThat(t.rulesOf(markOfAddress(t, "10.1.0.5"))).containsExactlyInAnyOrder("all-set", "icmp-one", "range-set", "web-one");
        assertThat(t.rulesOf(markOfAddress(t, "10.1.0.6"))).containsExactlyInAnyOrder("all-set", "icmp-set", "range-one", "web-set");
        // vm-3's first rule drops everything it sends: its later rules can never decide a packet.
        assertThat(t.rulesOf(markOfAddress(t, "10.1.0.7"))).containsExactly("all-one");
    }

    @Test
    void everyVmHasItsNetworksDefaultInTheDefaultMapWithItsNames() {
        RenderedTable t = table(seedExamples().fragment("host-1"));

        assertThat(t.defaults).hasSize(3).containsValues("accept").doesNotContainValue("drop");
        assertThat(defaultOf(t, "10.1.0.5")).isEqualTo("accept");
        assertThat(t.vmComments).containsEntry(markOfAddress(t, "10.1.0.5"), "net net-a vm vm-1");
        assertThat(t.ports).containsOnlyKeys(Events.tap("net-a", "vm-1"), Events.tap("net-a", "vm-2"), Events.tap("net-a", "vm-3"));
        assertThat(renderer.render("host-1", host(seedExamples().fragment("host-1"))))
                .contains("  map def {\n    type mark : verdict\n    counter\n    elements = {\n");
    }

    @Test
    void ruleElementsCarryCountersOnlyWhenAskedWhileTheDefaultMapsAlwaysCount() {
        SortedMap<String, Fragment> fragments = host(seedExamples().fragment("host-1"));

        String plain = renderer.render("host-1", fragments);
        String counted = new NftRenderer(true).render("host-1", fragments);

        int sets = RenderedTable.parse(plain).sets.size();
        assertThat(sets).isPositive();
        assertThat(renderer.ruleCounters()).isFalse();
        assertThat(plain.split("\n    counter\n", -1)).as("the default map only").hasSize(2);
        assertThat(counted.split("\n    counter\n", -1)).as("every set and the default map").hasSize(sets + 2);
        assertThat(counted.replace("    counter\n", "")).as("nothing else differs").isEqualTo(plain.replace("    counter\n", ""));
    }

    @Test
    void nftIsSentTheScriptWithoutItsHeaderNotes() {
        Fragment f = icmpAfterAll();
        String script = renderer.render("host-1", host(f));
        assertThat(script).startsWith("# egressctl host host-1 hash ").contains("\n# shadowed: r=block-icmp");

        String input = NftRenderer.kernelInput(script);

        assertThat(input).startsWith("table inet egressctl\ndelete table inet egressctl\ntable inet egressctl {\n")
                .doesNotContain("#");
        assertThat(script).endsWith(input);
        String noHeader = "table inet egressctl\n";
        assertThat(NftRenderer.kernelInput(noHeader)).as("nothing to strip").isSameAs(noHeader);
        String onlyNotes = "# a note\n# another\n";
        assertThat(NftRenderer.kernelInput(onlyNotes)).as("no statement: left as is for nft to judge").isSameAs(onlyNotes);
    }

    @Test
    void aDenyNetworkRendersItsRulesAsAcceptAfterItsDenyRulesAndDefaultsToDrop() {
        Fragment f = new NetworkBuilder(NET_DENY)
                .vm("vm-1", "host-1", "10.4.0.5")
                .rule("https", draft("tcp").port(443))
                .rule("block-smtp", draft("tcp").action("deny").priority(5).port(25))
                .fragment("host-1");

        RenderedTable t = table(f);

        assertThat(elements(t, "10.4.0.5")).containsExactly("l0_port4: 10.4.0.5 . tcp . 25-25 r=block-smtp",
                "l1_port4: 10.4.0.5 . tcp . 443-443 r=https");
        assertThat(t.sets.get("l0_port4").elements().get(0).comment()).isEqualTo("r=block-smtp h=" + NftRenderer.ruleHash(f.rules().get(0)));
        assertThat(t.vm).containsSubsequence(
                "meta nfproto ipv4 meta mark . meta l4proto . th dport @l0_port4 drop comment \"layer 0 deny port ipv4\"",
                "meta nfproto ipv4 meta mark . meta l4proto . th dport @l1_port4 accept comment \"layer 1 allow port ipv4\"",
                "meta mark vmap @def");
        assertThat(t.defaults.values()).containsExactly("drop");
    }

    // ---- layering ----------------------------------------------------------------------------------

    @Test
    void onlyDenyRulesNeedOneLayer() {
        RenderedTable t = table(oneVm(DefaultPolicy.ALLOW, tcp("a", Action.DENY, 80, 80), tcp("b", Action.DENY, 443, 443, "192.0.2.0/24"),
                rule("c", Action.DENY, Protocol.ALL, null, null, List.of("198.51.100.0/24"), List.of(), "vm-1")));

        assertThat(t.sets.keySet()).allMatch(n -> n.startsWith("l0_"));
        assertThat(t.vm).filteredOn(l -> l.contains("@l")).allMatch(l -> l.contains(" drop comment \"layer 0 deny "));
    }

    @Test
    void anAllowAfterAnOverlappingDenyGoesToALaterLayerSoTheDenyStillWins() {
        RenderedTable t = table(oneVm(DefaultPolicy.DENY, tcp("deny-web", Action.DENY, 80, 80, "10.1.0.0/16"),
                tcp("allow-tcp", Action.ALLOW, 1, 65535, "10.0.0.0/8")));

        assertThat(elements(t, "10.9.0.5")).containsExactly("l0_port4_dst16: 10.9.0.5 . 10.1.0.0 . tcp . 80 r=deny-web",
                "l1_port4_dst: 10.9.0.5 . 10.0.0.0/8 . tcp . 1-65535 r=allow-tcp");
        RenderedTable.Packet web = packetFrom(t, true, "10.9.0.5", "10.1.2.3", 6, 80, 0, 0);
        assertThat(t.verdict(web)).isEqualTo("drop");
        assertThat(t.verdict(packetFrom(t, true, "10.9.0.5", "10.2.0.1", 6, 80, 0, 0))).isEqualTo("accept");
        assertThat(t.verdict(packetFrom(t, true, "10.9.0.5", "192.0.2.1", 6, 80, 0, 0))).as("default deny").isEqualTo("drop");
    }

    @Test
    void aDenyAfterAnOverlappingAllowGoesAboveTheAllowsLayer() {
        RenderedTable t = table(oneVm(DefaultPolicy.ALLOW, tcp("allow-api", Action.ALLOW, 443, 443, "10.1.0.0/16"),
                rule("deny-internal", Action.DENY, Protocol.ALL, null, null, List.of("10.0.0.0/8"), List.of(), "vm-1")));

        assertThat(elements(t, "10.9.0.5")).containsExactly("l1_port4_dst16: 10.9.0.5 . 10.1.0.0 . tcp . 443 r=allow-api",
                "l2_all4_dst8: 10.9.0.5 . 10.0.0.0 r=deny-internal");
        assertThat(t.vm.stream().filter(l -> l.contains("@l")).map(l -> l.replaceAll(".*@(\\S+) .*", "$1")).toList())
                .containsExactly("l1_port4_dst16", "l2_all4_dst8");
        assertThat(t.verdict(packetFrom(t, true, "10.9.0.5", "10.1.0.1", 6, 443, 0, 0))).isEqualTo("accept");
        assertThat(t.verdict(packetFrom(t, true, "10.9.0.5", "10.1.0.1", 6, 444, 0, 0))).isEqualTo("drop");
    }

    @Test
    void disjointAllowsAndDeniesShareTwoLayersHoweverTheyAlternate() {
        RenderedTable t = table(oneVm(DefaultPolicy.DENY, tcp("d1", Action.DENY, 25, 25), tcp("a1", Action.ALLOW, 443, 443),
                tcp("d2", Action.DENY, 22, 22), tcp("a2", Action.ALLOW, 80, 80)));

        assertThat(elements(t, "10.9.0.5")).containsExactly("l0_port4: 10.9.0.5 . tcp . 25-25 r=d1", "l0_port4: 10.9.0.5 . tcp . 22-22 r=d2",
                "l1_port4: 10.9.0.5 . tcp . 443-443 r=a1", "l1_port4: 10.9.0.5 . tcp . 80-80 r=a2");
    }

    @Test
    void exceptionsBecomeDisjointRangesPrefixesWhereTheyAreOne() {
        RenderedTable t = table(oneVm(DefaultPolicy.ALLOW,
                rule("not-10-1", Action.DENY, Protocol.UDP, PortRange.single(53), null, List.of("10.0.0.0/8"), List.of("10.1.0.0/16"), "vm-1"),
                rule("not-internal", Action.DENY, Protocol.ALL, null, null, List.of(), List.of("10.0.0.0/8", "fd00::/8"), "vm-1")));

        assertThat(elements(t, "10.9.0.5")).containsExactly(
                "l0_all4_dst: 10.9.0.5 . 0.0.0.0-9.255.255.255 r=not-internal",
                "l0_all4_dst: 10.9.0.5 . 11.0.0.0-255.255.255.255 r=not-internal",
                "l0_port4_dst: 10.9.0.5 . 10.2.0.0-10.255.255.255 . udp . 53-53 r=not-10-1",
                "l0_port4_dst16: 10.9.0.5 . 10.0.0.0 . udp . 53 r=not-10-1");
        assertThat(elements(t, "fd00:9::5")).containsExactly(
                "l0_all6_dst: fd00:9::5 . ::-fcff:ffff:ffff:ffff:ffff:ffff:ffff:ffff r=not-internal",
                "l0_all6_dst7: fd00:9::5 . fe00:: r=not-internal");
        assertThat(t.verdict(packetFrom(t, true, "10.9.0.5", "10.1.0.1", 17, 53, 0, 0))).isEqualTo("accept");
        assertThat(t.verdict(packetFrom(t, true, "10.9.0.5", "10.3.0.1", 17, 53, 0, 0))).isEqualTo("drop");
    }

    @Test
    void anExceptionCoveringTheWholeDestinationLeavesNoElement() {
        RenderedTable t = table(oneVm(DefaultPolicy.ALLOW,
                rule("nothing", Action.DENY, Protocol.TCP, null, null, List.of("10.1.0.0/24"), List.of("10.0.0.0/8"), "vm-1")));

        assertThat(t.sets).isEmpty();
        assertThat(t.vm).noneMatch(l -> l.contains("@l"));
    }

    @Test
    void touchingPortRangesOfOneLayerBecomeOneElementNamingEveryRule() {
        RenderedTable t = table(oneVm(DefaultPolicy.ALLOW, tcp("a", Action.DENY, 80, 90), tcp("b", Action.DENY, 85, 100),
                tcp("c", Action.DENY, 101, 120), tcp("d", Action.DENY, 200, 300)));

        assertThat(elements(t, "10.9.0.5")).containsExactly("l0_port4: 10.9.0.5 . tcp . 80-120 r=a", "l0_port4: 10.9.0.5 . tcp . 200-300 r=d");
        assertThat(t.sets.get("l0_port4").elements().get(0).comment()).matches("r=a h=[0-9a-f]{12} r=b h=[0-9a-f]{12} r=c h=[0-9a-f]{12}");
        assertThat(t.sets).doesNotContainKey("l0_port4_b1");
        assertThat(t.verdict(packetFrom(t, true, "10.9.0.5", "198.18.0.1", 6, 101, 0, 0))).isEqualTo("drop");
        assertThat(t.verdict(packetFrom(t, true, "10.9.0.5", "198.18.0.1", 6, 121, 0, 0))).isEqualTo("accept");
    }

    @Test
    void destinationRangesOfOneLayerMergeButExactKeysStayExact() {
        RenderedTable t = table(oneVm(DefaultPolicy.ALLOW,
                rule("x", Action.DENY, Protocol.TCP, PortRange.single(443), null, List.of("100.64.0.0/10"), List.of("100.64.8.0/24"), "vm-1"),
                rule("y", Action.DENY, Protocol.TCP, PortRange.single(443), null, List.of("100.64.0.0/10"), List.of("100.64.18.0/24"), "vm-1"),
                tcp("p", Action.DENY, 22, 22, "198.18.1.0/24"), tcp("q", Action.DENY, 22, 22, "198.18.2.0/24")));

        assertThat(elements(t, "10.9.0.5")).as("x and y together cover 100.64.0.0/10: one exact key; two /24s stay two hash keys")
                .containsExactly("l0_port4_dst10: 10.9.0.5 . 100.64.0.0 . tcp . 443 r=x", "l0_port4_dst24: 10.9.0.5 . 198.18.1.0 . tcp . 22 r=p",
                        "l0_port4_dst24: 10.9.0.5 . 198.18.2.0 . tcp . 22 r=q");
    }

    @Test
    void overlappingBoxesOfOneVmThatCannotMergeGoToBuckets() {
        RenderedTable t = table(oneVm(DefaultPolicy.ALLOW, tcp("a", Action.DENY, 80, 90, "10.0.0.0/8"), tcp("b", Action.DENY, 85, 100, "10.1.0.0/16"),
                tcp("d", Action.DENY, 200, 300)));

        assertThat(elements(t, "10.9.0.5")).containsExactly("l0_port4: 10.9.0.5 . tcp . 200-300 r=d",
                "l0_port4_dst: 10.9.0.5 . 10.0.0.0/8 . tcp . 80-90 r=a", "l0_port4_dst_b1: 10.9.0.5 . 10.1.0.0/16 . tcp . 85-100 r=b");
        assertThat(t.vm).contains("meta mark . ip daddr . meta l4proto . th dport @l0_port4_dst_b1 drop comment \"layer 0 deny port ipv4 by destination bucket 1\"");
        // Another VM's equal boxes never overlap these (another mark): same sets, no more buckets.
        Fragment two = new Fragment("net-t", DefaultPolicy.ALLOW, List.of(vmAt("vm-1", "10.9.0.5", null),
                vmAt("vm-2", "10.9.0.6", null)), List.of(
                rule("a", Action.DENY, Protocol.TCP, new PortRange(80, 90), null, List.of(), List.of(), "vm-1", "vm-2")));
        assertThat(table(two).sets.get("l0_port4").elements()).hasSize(2);
    }

    @Test
    void aBoxInsideAnEarlierRulesBoxIsLeftOutIdenticalOnesToo() {
        RenderedTable t = table(oneVm(DefaultPolicy.ALLOW, tcp("wide", Action.DENY, 80, 80, "10.0.0.0/8"),
                tcp("narrow", Action.ALLOW, 80, 80, "10.1.0.0/16"), tcp("again", Action.DENY, 80, 80, "10.0.0.0/8"),
                rule("icmp-1", Action.DENY, Protocol.ICMP, null, new IcmpMatch(8, -1), List.of(), List.of(), "vm-1"),
                rule("icmp-2", Action.DENY, Protocol.ICMP, null, new IcmpMatch(8, -1), List.of(), List.of(), "vm-1"),
                rule("icmp-3", Action.DENY, Protocol.ICMP, null, new IcmpMatch(8, 0), List.of(), List.of(), "vm-1")));

        assertThat(elements(t, "10.9.0.5")).containsExactly("l0_port4_dst8: 10.9.0.5 . 10.0.0.0 . tcp . 80 r=wide",
                "l0_type4: 10.9.0.5 . 8 r=icmp-1");
        assertThat(t.verdict(packetFrom(t, true, "10.9.0.5", "10.1.0.1", 6, 80, 0, 0)))
                .as("the earlier deny wins over the allow inside it").isEqualTo("drop");
    }

    @Test
    void ipv6RulesGetTheirOwnSetsAndDualStackVmsBoth() {
        RenderedTable t = table(oneVm(DefaultPolicy.ALLOW,
                rule("web", Action.DENY, Protocol.TCP, PortRange.single(443), null, List.of("192.0.2.0/24", "2001:db8::/32"), List.of(), "vm-1"),
                rule("dns", Action.DENY, Protocol.UDP, PortRange.single(53), null, List.of(), List.of(), "vm-1")));

        assertThat(elements(t, "10.9.0.5")).containsExactly("l0_port4: 10.9.0.5 . udp . 53-53 r=dns",
                "l0_port4_dst24: 10.9.0.5 . 192.0.2.0 . tcp . 443 r=web");
        assertThat(elements(t, "fd00:9::5")).containsExactly("l0_port6: fd00:9::5 . udp . 53-53 r=dns",
                "l0_port6_dst32: fd00:9::5 . 2001:db8:: . tcp . 443 r=web");
        assertThat(t.sets.get("l0_port6_dst32").type()).isEqualTo("mark . ipv6_addr . inet_proto . inet_service");
        assertThat(t.vm).contains("meta mark . ip6 daddr & ffff:ffff:: . meta l4proto . th dport @l0_port6_dst32 drop "
                + "comment \"layer 0 deny port ipv6 by destination /32\"");
        assertThat(defaultOf(t, "fd00:9::5")).isEqualTo("accept");
    }

    @Test
    void icmpRulesMatchOnlyIpv4AndIcmpv6OnlyIpv6WithTheNarrowestKey() {
        RenderedTable t = table(oneVm(DefaultPolicy.ALLOW,
                rule("icmp-any", Action.DENY, Protocol.ICMP, null, IcmpMatch.ANY, List.of("192.0.2.0/24"), List.of(), "vm-1"),
                rule("icmp-type", Action.DENY, Protocol.ICMP, null, new IcmpMatch(8, -1), List.of(), List.of(), "vm-1"),
                rule("icmp-code", Action.DENY, Protocol.ICMP, null, new IcmpMatch(3, 4), List.of(), List.of(), "vm-1"),
                rule("v6-any", Action.DENY, Protocol.ICMPV6, null, null, List.of("2001:db8::/32"), List.of(), "vm-1"),
                rule("v6-echo", Action.DENY, Protocol.ICMPV6, null, new IcmpMatch(128, -1), List.of(), List.of(), "vm-1")));

        assertThat(elements(t, "10.9.0.5")).containsExactly("l0_proto4_dst24: 10.9.0.5 . 192.0.2.0 . icmp r=icmp-any",
                "l0_type4: 10.9.0.5 . 8 r=icmp-type", "l0_code4: 10.9.0.5 . 3 . 4 r=icmp-code");
        assertThat(elements(t, "fd00:9::5")).containsExactly("l0_proto6_dst32: fd00:9::5 . 2001:db8:: . ipv6-icmp r=v6-any",
                "l0_type6: fd00:9::5 . 128 r=v6-echo");
        assertThat(t.sets.get("l0_code4").type()).isEqualTo("mark . icmp_type . icmp_code");
        assertThat(t.sets.get("l0_type6").type()).isEqualTo("mark . icmpv6_type");
        assertThat(t.vm).contains("meta nfproto ipv4 meta mark . icmp type . icmp code @l0_code4 drop comment \"layer 0 deny code ipv4\"",
                "meta nfproto ipv6 meta mark . icmpv6 type @l0_type6 drop comment \"layer 0 deny type ipv6\"");
        assertThat(t.verdict(packetFrom(t, true, "10.9.0.5", "8.8.8.8", 1, 0, 3, 4))).isEqualTo("drop");
        assertThat(t.verdict(packetFrom(t, true, "10.9.0.5", "8.8.8.8", 1, 0, 3, 3))).isEqualTo("accept");
        assertThat(t.verdict(packetFrom(t, false, "fd00:9::5", "2001:db9::1", 58, 0, 128, 0))).isEqualTo("drop");
    }

    @Test
    void tcpAndUdpWithoutPortsMatchTheWholeProtocol() {
        RenderedTable t = table(oneVm(DefaultPolicy.ALLOW,
                rule("u", Action.DENY, Protocol.UDP, null, null, List.of(), List.of(), "vm-1"),
                rule("t", Action.DENY, Protocol.TCP, null, null, List.of("192.0.2.0/24"), List.of(), "vm-1")));

        assertThat(elements(t, "10.9.0.5")).containsExactly("l0_proto4: 10.9.0.5 . udp r=u", "l0_proto4_dst24: 10.9.0.5 . 192.0.2.0 . tcp r=t");
        assertThat(t.sets.get("l0_proto4").type()).isEqualTo("mark . inet_proto");
        assertThat(t.sets.get("l0_proto4_dst24").type()).isEqualTo("mark . ipv4_addr . inet_proto");
        assertThat(t.sets.get("l0_proto4").interval()).isFalse();
        assertThat(t.sets.get("l0_proto4_dst24").interval()).isFalse();
    }

    @Test
    void aDestinationThatIsOnePrefixIsAMaskedExactKeyInAHashSetAndRangesStayIntervals() {
        RenderedTable t = table(oneVm(DefaultPolicy.ALLOW,
                rule("one-port", Action.DENY, Protocol.TCP, PortRange.single(443), null, List.of("198.51.100.0/24"), List.of(), "vm-1"),
                rule("port-range", Action.DENY, Protocol.TCP, new PortRange(8000, 8010), null, List.of("198.51.100.0/24"), List.of(), "vm-1"),
                rule("one-host", Action.DENY, Protocol.ALL, null, null, List.of("203.0.113.7/32"), List.of(), "vm-1"),
                rule("with-hole", Action.DENY, Protocol.UDP, PortRange.single(53), null, List.of("192.0.2.0/24"), List.of("192.0.2.0/25"),
                        "vm-1"),
                rule("v6-net", Action.DENY, Protocol.ICMPV6, null, new IcmpMatch(128, -1), List.of("2001:db8:1::/48"), List.of(), "vm-1")));

        assertThat(elements(t, "10.9.0.5")).containsExactly(
                "l0_all4_dst32: 10.9.0.5 . 203.0.113.7 r=one-host",
                "l0_port4_dst: 10.9.0.5 . 198.51.100.0/24 . tcp . 8000-8010 r=port-range",
                "l0_port4_dst24: 10.9.0.5 . 198.51.100.0 . tcp . 443 r=one-port",
                "l0_port4_dst25: 10.9.0.5 . 192.0.2.128 . udp . 53 r=with-hole");
        assertThat(elements(t, "fd00:9::5")).containsExactly("l0_type6_dst48: fd00:9::5 . 2001:db8:1:: . 128 r=v6-net");
        assertThat(t.sets.get("l0_port4_dst").interval()).as("a port range needs an interval set").isTrue();
        assertThat(t.sets.get("l0_port4_dst24").interval()).isFalse();
        assertThat(t.vm).contains(
                "meta mark . ip daddr @l0_all4_dst32 drop comment \"layer 0 deny all ipv4 by destination /32\"",
                "meta mark . ip daddr & 255.255.255.128 . meta l4proto . th dport @l0_port4_dst25 drop "
                        + "comment \"layer 0 deny port ipv4 by destination /25\"",
                "meta mark . ip6 daddr & ffff:ffff:ffff:: . icmpv6 type @l0_type6_dst48 drop "
                        + "comment \"layer 0 deny type ipv6 by destination /48\"");

        // The mask keeps every address of the prefix and nothing next to it.
        assertThat(t.verdict(packetFrom(t, true, "10.9.0.5", "198.51.100.255", 6, 443, 0, 0))).isEqualTo("drop");
        assertThat(t.verdict(packetFrom(t, true, "10.9.0.5", "198.51.101.0", 6, 443, 0, 0))).isEqualTo("accept");
        assertThat(t.verdict(packetFrom(t, true, "10.9.0.5", "192.0.2.127", 17, 53, 0, 0))).as("the hole").isEqualTo("accept");
        assertThat(t.verdict(packetFrom(t, true, "10.9.0.5", "192.0.2.200", 17, 53, 0, 0))).isEqualTo("drop");
        assertThat(t.verdict(packetFrom(t, true, "10.9.0.5", "203.0.113.8", 1, 0, 8, 0))).isEqualTo("accept");
        assertThat(t.verdict(packetFrom(t, false, "fd00:9::5", "2001:db8:1:ffff::1", 58, 0, 128, 0))).isEqualTo("drop");
        assertThat(t.verdict(packetFrom(t, false, "fd00:9::5", "2001:db8:2::1", 58, 0, 128, 0))).isEqualTo("accept");
    }

    @Test
    void rulesAreLayeredInEvaluationOrderPriorityThenRuleId() {
        Fragment f = new NetworkBuilder(NET_DENY)
                .vm("vm-1", "host-1", "10.4.0.5")
                .rule("a-late", draft("tcp").priority(900).port(80).action("deny"))
                .rule("z-early", draft("tcp").priority(10).ports(1, 1024))
                .fragment("host-1");

        // z-early (allow 1-1024) comes first: a-late's deny of port 80 is inside it and never decides.
        assertThat(elements(table(f), "10.4.0.5")).containsExactly("l1_port4: 10.4.0.5 . tcp . 1-1024 r=z-early");
    }

    @Test
    void descriptionsAreNeverRenderedEvenWhenTheyLookLikeNftSyntax() {
        Fragment f = new NetworkBuilder(NET_A)
                .vm("vm-1", "host-1", "10.1.0.5")
                .rule("web", draft("tcp").port(80).description("\"; flush ruleset; \""))
                .rule("tagged", draft("udp").port(53).description("SECRET-DESCRIPTION"))
                .fragment("host-1");

        String script = renderer.render("host-1", host(f));

        assertThat(script).doesNotContain("flush").doesNotContain("SECRET-DESCRIPTION").contains(" . tcp . 80-80 comment \"r=web h=");
    }

    @Test
    void idsWithOddCharactersAreSanitisedSoNothingCanEscapeAComment() {
        String evilNetwork = "net\"; flush ruleset; #";
        String evilVm = "vm\n} table ip x {";
        CompiledRule evilRule = new CompiledRule("r\" accept; #", Action.DENY, 1, Protocol.TCP, List.of(evilVm), List.of(), List.of(),
                PortRange.single(22), null);
        Fragment f = new Fragment(evilNetwork, DefaultPolicy.ALLOW, List.of(vmAt(evilVm, "10.9.0.5", null)), List.of(evilRule));

        String script = renderer.render("host\"1; flush", host(f));

        assertThat(script).doesNotContain("flush ruleset").doesNotContain("table ip x").doesNotContain("accept; #");
        Matcher comments = Pattern.compile("comment \"([^\"\\n]*)\"").matcher(script);
        int count = 0;
        while (comments.find()) {
            assertThat(comments.group(1)).matches("[A-Za-z0-9._:= -]*");
            if (comments.group(1).startsWith("r=") || comments.group(1).startsWith("net ") || comments.group(1).startsWith("layer ")) {
                count++;
            }
        }
        assertThat(count).as("the element, the VM's address, its default and the lookup").isEqualTo(4);
        assertThat(script.lines().filter(l -> l.contains("\"")))
                .allSatisfy(l -> assertThat(l.chars().filter(c -> c == '"').count()).isEqualTo(2));
        assertThat(NftRenderer.safe("a\"b;c d\u00e9")).isEqualTo("a_b_c_d_");
        assertThat(NftRenderer.safe("x".repeat(100))).hasSize(64);
    }

    @Test
    void vmAddressesThatAreNotSingleAddressesAreLeftOutAndTheVmGetsNothingOutFromThem() {
        Fragment f = new Fragment("net-t", DefaultPolicy.DENY, List.of(vmAt("vm-1", "10.9.0.0/24", null),
                vmAt("vm-2", "10.9.0.6 } ; flush", "not-an-address"), vmAt("vm-3", "FD00:9:0::7", null)),
                List.of(tcp("a", Action.ALLOW, 80, 80)));

        RenderedTable t = table(f);

        assertThat(t.addr4).as("no malformed address reaches the source check").isEmpty();
        assertThat(t.addr6).as("a v6 address given as ipv4 is not used as one").isEmpty();
        assertThat(t.ports).as("the interfaces are still the VMs': their traffic fails the source check")
                .containsOnlyKeys("tap-vm-1", "tap-vm-2", "tap-vm-3");
        assertThat(t.verdict(new RenderedTable.Packet("tap-vm-1", true, "10.9.0.1", "192.0.2.1", 6, 80, 0, 0))).isEqualTo("drop");
        Fragment ok = new Fragment("net-t", DefaultPolicy.DENY, List.of(vmAt("vm-3", null, "FD00:9:0::7")), List.of());
        assertThat(table(ok).addr6.values()).as("normalised as nft prints it").containsExactly(List.of("fd00:9::7"));
    }

    @Test
    void commentsStayWithinTheLengthNftAcceptsEvenForTheLongestIds() {
        String longNet = "n".repeat(64);
        String longVm = "v".repeat(64);
        CompiledRule r = new CompiledRule("r".repeat(64), Action.DENY, 1, Protocol.TCP, List.of(longVm), List.of(), List.of(),
                PortRange.single(22), null);
        Fragment f = new Fragment(longNet, DefaultPolicy.ALLOW, List.of(vmAt(longVm, "10.9.0.5", null)), List.of(r));

        String script = renderer.render("host-1", host(f));

        Matcher comments = Pattern.compile("comment \"([^\"]*)\"").matcher(script);
        int n = 0;
        while (comments.find()) {
            if (comments.group(1).startsWith("r=") || comments.group(1).startsWith("net ")) {
                n++;
            }
            assertThat(comments.group(1).length()).isLessThanOrEqualTo(128);
        }
        assertThat(n).as("the rule's element, the VM's address and its default").isEqualTo(3);
        RenderedTable t = RenderedTable.parse(script);
        assertThat(t.vmComments.get(markOfAddress(t, "10.9.0.5"))).startsWith("net " + longNet + " vm v");
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
    void setNamesDependOnlyOnEachVmsOwnRules() {
        Fragment a = oneVm(DefaultPolicy.ALLOW, tcp("x", Action.ALLOW, 80, 80), tcp("y", Action.DENY, 1, 1000));
        Fragment other = new Fragment("net-o", DefaultPolicy.DENY, List.of(vmAt("vm-o", "10.8.0.5", null)),
                List.of(rule("o", Action.DENY, Protocol.ALL, null, null, List.of(), List.of(), "vm-o")));

        assertThat(elements(table(a, other), "10.9.0.5")).isEqualTo(elements(table(a), "10.9.0.5"))
                .containsExactly("l1_port4: 10.9.0.5 . tcp . 80-80 r=x", "l2_port4: 10.9.0.5 . tcp . 1-1000 r=y");
    }

    @Test
    void twoTenantsWithTheSameAddressOnOneHostEachGetExactlyTheirOwnRules() {
        Fragment a = new Fragment("tenant-a-net", DefaultPolicy.ALLOW, List.of(new VmAddress("a1", "tap-a1", null, "10.1.1.10", null)),
                List.of(rule("block-all", Action.DENY, Protocol.ALL, null, null, List.of(), List.of(), "a1")));
        Fragment b = new Fragment("tenant-b-net", DefaultPolicy.ALLOW, List.of(new VmAddress("b1", "tap-b1", null, "10.1.1.10", null)),
                List.of(tcp443("block-https", "b1")));

        RenderedTable t = table(a, b);

        assertThat(t.rulesOf(t.markOf("tap-a1"))).containsExactly("block-all");
        assertThat(t.rulesOf(t.markOf("tap-b1"))).containsExactly("block-https");
        assertThat(t.verdict(new RenderedTable.Packet("tap-a1", true, "10.1.1.10", "198.51.100.10", 6, 80, 0, 0))).isEqualTo("drop");
        assertThat(t.verdict(new RenderedTable.Packet("tap-b1", true, "10.1.1.10", "198.51.100.10", 6, 80, 0, 0))).isEqualTo("accept");
        assertThat(t.verdict(new RenderedTable.Packet("tap-b1", true, "10.1.1.10", "198.51.100.10", 6, 443, 0, 0))).isEqualTo("drop");
        assertThat(renderer.plan(host(a, b)).unenforced()).isEmpty();
    }

    private static CompiledRule tcp443(String id, String vm) {
        return rule(id, Action.DENY, Protocol.TCP, PortRange.single(443), null, List.of(), List.of(), vm);
    }

    @Test
    void anInterfaceClaimedByTwoVmsIsRenderedFailClosedAndBothVmsAreReportedUnenforced() {
        Fragment a = new Fragment("net-a", DefaultPolicy.ALLOW, List.of(new VmAddress("vm-1", "tap-x", null, "10.9.0.5", null)), List.of());
        Fragment b = new Fragment("net-b", DefaultPolicy.ALLOW, List.of(new VmAddress("vm-2", "tap-x", null, "10.9.0.6", null)),
                List.of(rule("b", Action.ALLOW, Protocol.ALL, null, null, List.of(), List.of(), "vm-2")));

        NftRenderer.Plan plan = renderer.plan(host(a, b));
        RenderedTable t = table(a, b);

        assertThat(plan.unenforced()).extracting(NftRenderer.Unenforced::vmId).containsExactly("vm-1", "vm-2");
        assertThat(plan.unenforced().get(0).reason()).contains("interface tap-x is claimed by several VMs");
        assertThat(plan.unenforcedNetworks()).containsExactly("net-a", "net-b");
        assertThat(t.defaults.get(t.markOf("tap-x"))).isEqualTo("drop");
        assertThat(t.addr4).isEmpty();
        assertThat(t.verdict(new RenderedTable.Packet("tap-x", true, "10.9.0.5", "192.0.2.1", 6, 80, 0, 0))).isEqualTo("drop");
        assertThat(t.verdict(new RenderedTable.Packet("tap-x", true, "10.9.0.6", "192.0.2.1", 6, 80, 0, 0))).isEqualTo("drop");
        assertThat(renderer.render("host-1", host(a, b))).doesNotContain("r=b");
    }

    @Test
    void aVmWithoutAnInterfaceGetsNothingRenderedAndIsReportedUnenforcedWithTheReason() {
        Fragment f = new Fragment("net-a", DefaultPolicy.DENY, List.of(new VmAddress("vm-old", "10.9.0.5", null),
                new VmAddress("vm-new", "tap-new", null, "10.9.0.6", null)), List.of());

        NftRenderer.Plan plan = renderer.plan(host(f));
        String script = renderer.render("host-1", host(f));

        assertThat(plan.unenforced()).singleElement().satisfies(u -> {
            assertThat(u.vmId()).isEqualTo("vm-old");
            assertThat(u.reason()).startsWith("no interface in its placement");
        });
        assertThat(plan.ports()).extracting(NftRenderer.Port::interfaceName).containsExactly("tap-new");
        assertThat(script).doesNotContain("10.9.0.5 comment").contains("# unenforced: net net-a vm vm-old: no interface");
    }

    @Test
    void trafficFromAnInterfaceThatIsNoVmsIsUntouchedAndASpoofedSourceIsDropped() {
        RenderedTable t = table(oneVm(DefaultPolicy.ALLOW));

        assertThat(t.verdict(new RenderedTable.Packet("uplink0", true, "10.9.0.5", "192.0.2.1", 6, 80, 0, 0))).isEqualTo("accept");
        assertThat(t.verdict(new RenderedTable.Packet("tap-vm-1", true, "10.9.0.5", "192.0.2.1", 6, 80, 0, 0))).isEqualTo("accept");
        assertThat(t.verdict(new RenderedTable.Packet("tap-vm-1", true, "10.9.0.99", "192.0.2.1", 6, 80, 0, 0))).isEqualTo("drop");
        assertThat(t.verdict(new RenderedTable.Packet("tap-vm-1", false, "fd00:9::99", "2001:db8::1", 6, 80, 0, 0))).isEqualTo("drop");
        assertThat(t.vm).anyMatch(r -> r.contains("@addr4") && r.contains("counter drop"));
    }

    @Test
    void aBridgedHostMarksPortsInABridgeTableAndBothTablesAreReplacedInOneScript() {
        String script = new NftRenderer(false, HostMode.BRIDGED).render("host-1", host(oneVm(DefaultPolicy.ALLOW)));

        assertThat(script).contains("\ntable bridge egressctl\ndelete table bridge egressctl\ntable bridge egressctl {\n")
                .contains("type filter hook prerouting priority -300; policy accept;")
                .containsOnlyOnce("meta mark set iifname map @ports")
                .contains("\"tap-vm-1\" : 0x45");
        String routed = renderer.render("host-1", host(oneVm(DefaultPolicy.ALLOW)));
        assertThat(routed).doesNotContain("table bridge").contains("type filter hook prerouting priority raw; policy accept;");
    }

    @Test
    void marksDependOnlyOnTheHostsInterfacesAndStayWhenOthersComeAndGo() {
        Map<String, Integer> few = NftRenderer.marks(new java.util.TreeSet<>(List.of("tap-a", "tap-b")));
        Map<String, Integer> more = NftRenderer.marks(new java.util.TreeSet<>(List.of("tap-a", "tap-b", "tap-c", "vnet7")));

        assertThat(more).containsAllEntriesOf(few);
        assertThat(new java.util.HashSet<>(more.values())).hasSize(4);
        assertThat(more.values()).allMatch(m -> (m & 0xff000000) == NftRenderer.MARK_TAG && (m & 0xffffff) != 0);
    }

    @Test
    void aNewBlockFlushesThePortsItMayBlockMoreOnButNotThoseOfNetworksThatKeepEstablished() {
        NftRenderer r = new NftRenderer();
        Fragment before = oneVm(DefaultPolicy.ALLOW);
        Fragment blocked = oneVm(DefaultPolicy.ALLOW, tcp("deny-web", Action.DENY, 80, 80));
        Fragment kept = new Fragment(blocked.networkId(), blocked.defaultPolicy(), blocked.vms(), blocked.rules(), true);
        NftRenderer.Plan p0 = r.plan(host(before));
        NftRenderer.Plan p1 = r.plan(host(blocked));

        assertThat(NftRenderer.portsToFlush(p0, p1)).extracting(NftRenderer.Port::interfaceName).containsExactly("tap-vm-1");
        assertThat(NftRenderer.portsToFlush(p1, r.plan(host(before)))).as("a deny removed only lets more through").isEmpty();
        assertThat(NftRenderer.portsToFlush(p0, r.plan(host(kept)))).isEmpty();
        assertThat(NftRenderer.portsToFlush(null, p1)).isEmpty();
    }

    @Test
    void aHostWithoutFragmentsRendersEmptyMapsAndNoSets() {
        String table = renderer.renderTable(new TreeMap<>());

        assertThat(table).doesNotContain("elements").doesNotContainPattern("set l\\d").contains("chain forward {").contains("chain vm {");
    }

    @Test
    void ruleStatementsListARulesElementsAsCommandsThenTheLookupsTheyGoThrough() {
        SortedMap<String, Fragment> h = host(seedExamples().fragment("host-1"));

        assertThat(renderer.ruleStatements(h, "web-set")).containsExactly(
                "add element inet egressctl l0_port4 { " + markOfVm(h, "vm-2") + " . tcp . 80-80 comment \"r=web-set h="
                        + NftRenderer.ruleHash(seedExamples().fragment("host-1").rules().stream()
                        .filter(r -> r.ruleId().equals("web-set")).findFirst().orElseThrow()) + "\" }",
                "meta nfproto ipv4 meta mark . meta l4proto . th dport @l0_port4 drop comment \"layer 0 deny port ipv4\"",
                "# shadowed: r=web-set h=" + NftRenderer.ruleHash(seedExamples().fragment("host-1").rules().stream()
                        .filter(r -> r.ruleId().equals("web-set")).findFirst().orElseThrow())
                        + " vm vm-3 (" + Events.tap("net-a", "vm-3") + ") ipv4: earlier rules decide every packet it matches");
        assertThat(renderer.ruleStatements(h, "no-such-rule")).isEmpty();
    }

    @Test
    void ruleStatementsNameTheVmsARuleGetsNoElementForBecauseEarlierRulesDecide() {
        Fragment f = seedExamples().fragment("host-1");
        String hash = NftRenderer.ruleHash(f.rules().stream().filter(r -> r.ruleId().equals("icmp-set")).findFirst().orElseThrow());

        // icmp-set covers vm-2 (.6) and vm-3 (.7); vm-3's earlier all-one already drops everything it sends.
        assertThat(renderer.ruleStatements(host(f), "icmp-set")).containsExactly(
                "add element inet egressctl l0_code4 { " + markOfVm(host(f), "vm-2") + " . 8 . 0 comment \"r=icmp-set h=" + hash + "\" }",
                "meta nfproto ipv4 meta mark . icmp type . icmp code @l0_code4 drop comment \"layer 0 deny code ipv4\"",
                "# shadowed: r=icmp-set h=" + hash + " vm vm-3 (" + Events.tap("net-a", "vm-3") + ") ipv4: earlier rules decide every packet it matches");
    }

    @Test
    void theRuleHashTagChangesWithWhatTheRuleMatchesButNotWithWhichVmsItCovers() {
        CompiledRule r = new CompiledRule("r", Action.DENY, 1, Protocol.TCP, List.of("vm-1"), List.of(), List.of(), PortRange.single(80), null);
        CompiledRule otherVms = new CompiledRule("r", Action.DENY, 1, Protocol.TCP, List.of("vm-2"), List.of(), List.of(), PortRange.single(80), null);
        CompiledRule otherPort = new CompiledRule("r", Action.DENY, 1, Protocol.TCP, List.of("vm-1"), List.of(), List.of(), PortRange.single(81), null);

        assertThat(NftRenderer.ruleHash(r)).hasSize(12).isEqualTo(NftRenderer.ruleHash(otherVms)).isNotEqualTo(NftRenderer.ruleHash(otherPort));
    }

    @Test
    void addressSpansPrintPrefixesRangesAndAddressesAsNftReadsThem() {
        AddressSpans.Span all4 = AddressSpans.all(true);
        assertThat(AddressSpans.text(all4)).isEqualTo("0.0.0.0/0");
        assertThat(AddressSpans.text(AddressSpans.all(false))).isEqualTo("::/0");
        assertThat(AddressSpans.text(AddressSpans.of(Cidr.parse("10.1.2.3/32")))).isEqualTo("10.1.2.3");
        assertThat(AddressSpans.text(AddressSpans.of(Cidr.parse("2001:db8::/33")))).isEqualTo("2001:db8::/33");
        assertThat(AddressSpans.text(AddressSpans.of(Cidr.parse("2001:db8::/64")))).isEqualTo("2001:db8::/64");
        assertThat(AddressSpans.text(AddressSpans.of(Cidr.parse("2001:db8::/65")))).isEqualTo("2001:db8::/65");
        assertThat(AddressSpans.minus(List.of(all4), List.of(all4))).isEmpty();
        List<AddressSpans.Span> parts = AddressSpans.minus(List.of(AddressSpans.of(Cidr.parse("2001:db8::/32"))),
                List.of(AddressSpans.of(Cidr.parse("2001:db8::/64")), AddressSpans.of(Cidr.parse("2001:db8:0:1::/64"))));
        assertThat(parts).extracting(AddressSpans::text).containsExactly("2001:db8:0:2::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
        assertThat(AddressSpans.union(List.of(AddressSpans.of(Cidr.parse("10.0.0.0/25")), AddressSpans.of(Cidr.parse("10.0.0.128/25")))))
                .extracting(AddressSpans::text).containsExactly("10.0.0.0/24");
    }
}
