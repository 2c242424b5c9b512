package io.egressctl.core.render;

import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.model.Action;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.IcmpMatch;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.core.render.RenderedTable.Packet;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.EdgeCasesMode;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;

import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A VM is its interface: for random hosts whose networks all share one address space (every
 * fragment 10.1.1.0/24 and fd00:1:1::/64, VMs of different networks holding the same addresses and
 * the same VM ids, interfaces now and then claimed twice or missing), random rules and both default
 * policies, and random packets entering on random interfaces (VM ports and one that is no VM's) with
 * random sources (the VM's own, the other VM's, spoofed, unspecified, link-local), the rendered
 * ruleset read back and walked as nft walks it ({@link RenderedTable}: the port's mark set in the
 * bridge or inet prerouting chain, the forward chain's jump, the vm chain's source check, layered
 * lookups and default map) decides every packet as {@link FirstMatchOracle} does: untouched when
 * no VM's; dropped when spoofed or from an interface claimed twice; else the first matching rule of
 * that VM's own network, else that network's default. Both host modes, with and without rule
 * counters.
 */
class InterfaceFirstMatchPropertyTest {

    static final String[] IFACES = {"tap-a1", "tap-b1", "tap-c1", "vnet0", "vnet12", "eth0.100"};
    static final String NOT_A_VM = "eth9";
    static final String[] VM4 = {"10.1.1.10", "10.1.1.11"};
    static final String[] VM6 = {"fd00:1:1::10", "fd00:1:1::11"};
    static final String[] SOURCES4 = {"10.1.1.10", "10.1.1.11", "10.1.1.99", "0.0.0.0"};
    static final String[] SOURCES6 = {"fd00:1:1::10", "fd00:1:1::11", "fd00:1:1::99", "fe80::1", "::"};
    static final String[] DST4 = {"10.0.0.0/8", "10.1.1.0/24", "10.1.1.1/32", "192.0.2.0/24", "192.0.2.128/25", "0.0.0.0/1",
            "203.0.113.0/24"};
    static final String[] DST6 = {"2001:db8::/32", "2001:db8:1::/48", "2001:db8:1::5/128", "fd00:1:1::/64", "::/1"};
    static final String[] PKT_DST4 = {"10.1.1.1", "10.1.1.10", "10.2.0.1", "192.0.2.1", "192.0.2.200", "8.8.8.8", "203.0.113.9",
            "255.255.255.255", "200.1.1.1"};
    static final String[] PKT_DST6 = {"2001:db8::1", "2001:db8:1::5", "2001:db8:1::6", "fd00:1:1::1", "ff02::1", "8000::1"};
    static final int[][] PORTS = {{80, 80}, {80, 90}, {443, 443}, {1, 1024}, {67, 67}, {547, 547}, {1000, 2000}};
    static final int[][] ICMP = {{-1, -1}, {8, -1}, {8, 0}, {3, 4}, {128, -1}, {135, -1}, {133, 0}};
    static final int[] PKT_SPORTS = {68, 546, 40000};
    static final int[] PKT_PORTS = {67, 80, 85, 443, 547, 1500, 5000};
    static final int[][] PKT_ICMP = {{8, 0}, {8, 1}, {3, 4}, {0, 0}, {128, 0}, {133, 0}, {135, 0}, {136, 0}, {143, 0}, {131, 0}, {1, 0}};
    static final int[] PROTOS = {6, 17, 1, 58, 47};
    static final List<String> VM_IDS = List.of("vm-0", "vm-1", "vm-2");

    @Provide
    Arbitrary<VmAddress> vms() {
        Arbitrary<String> iface = Arbitraries.of(IFACES).injectNull(0.12);
        Arbitrary<String> a4 = Arbitraries.of(VM4).injectNull(0.2);
        Arbitrary<String> a6 = Arbitraries.of(VM6).injectNull(0.2);
        Arbitrary<String> mac = Arbitraries.just("02:00:00:00:00:01").injectNull(0.5);
        return Combinators.combine(iface, mac, a4, a6).as((i, m, x, y) -> new VmAddress("?", i, m, x, y));
    }

    @Provide
    Arbitrary<CompiledRule> rules() {
        Arbitrary<Protocol> protocol = Arbitraries.of(Protocol.values());
        Arbitrary<Action> action = Arbitraries.of(Action.DENY, Action.ALLOW);
        Arbitrary<List<String>> dst = Arbitraries.of(concat(DST4, DST6)).list().ofMaxSize(2).uniqueElements();
        Arbitrary<List<String>> except = Arbitraries.of(concat(DST4, DST6)).list().ofMaxSize(1);
        Arbitrary<Integer> ports = Arbitraries.integers().between(-1, PORTS.length - 1);
        Arbitrary<Integer> icmp = Arbitraries.integers().between(0, ICMP.length - 1);
        Arbitrary<List<String>> covered = Arbitraries.of(VM_IDS).list().ofMinSize(1).ofMaxSize(3).uniqueElements();
        return Combinators.combine(protocol, action, dst, except, ports, icmp, covered).as((p, a, d, e, pt, ic, v) -> {
            PortRange pr = p.hasPorts() && pt >= 0 ? new PortRange(PORTS[pt][0], PORTS[pt][1]) : null;
            IcmpMatch im = p.isIcmp() ? new IcmpMatch(ICMP[ic][0], ICMP[ic][1]) : null;
            return new CompiledRule("?", a, 1000, p, v, d.stream().map(Cidr::parse).toList(), e.stream().map(Cidr::parse).toList(), pr, im);
        });
    }

    @Provide
    Arbitrary<Fragment> fragments() {
        return Combinators.combine(Arbitraries.of(DefaultPolicy.values()), Arbitraries.of(true, false),
                vms().list().ofMinSize(1).ofMaxSize(3), rules().list().ofMaxSize(7)).as((policy, keep, vms, rules) -> {
                    List<VmAddress> named = new ArrayList<>();
                    for (int i = 0; i < vms.size(); i++) {
                        VmAddress v = vms.get(i);
                        named.add(new VmAddress(VM_IDS.get(i), v.interfaceName(), v.mac(), v.ipv4(), v.ipv6()));
                    }
                    List<CompiledRule> ids = new ArrayList<>();
                    for (int i = 0; i < rules.size(); i++) {
                        CompiledRule r = rules.get(i);
                        ids.add(new CompiledRule("r" + i, r.action(), r.priority(), r.protocol(), r.vmIds(), r.destinationCidrs(),
                                r.destinationExceptCidrs(), r.ports(), r.icmp()));
                    }
                    return new Fragment("?", policy, named, ids, keep);
                });
    }

    /** One to three networks, all on the same addresses. */
    @Provide
    Arbitrary<List<Fragment>> hosts() {
        return fragments().list().ofMinSize(1).ofMaxSize(3).map(fs -> {
            List<Fragment> out = new ArrayList<>();
            for (int n = 0; n < fs.size(); n++) {
                Fragment f = fs.get(n);
                String id = "net-" + n;
                // Rule ids are unique per network; the same VM and rule ids in every network.
                out.add(new Fragment(id, f.defaultPolicy(), f.vms(), f.rules(), f.keepEstablished()));
            }
            return out;
        });
    }

    @Provide
    Arbitrary<Packet> packets() {
        Arbitrary<String> iface = Arbitraries.frequencyOf(Tuple.of(6, Arbitraries.of(IFACES)), Tuple.of(1, Arbitraries.just(NOT_A_VM)));
        return Arbitraries.of(true, false).flatMap(four -> Combinators.combine(
                iface,
                Arbitraries.of(four ? SOURCES4 : SOURCES6),
                Arbitraries.of(four ? PKT_DST4 : PKT_DST6),
                Arbitraries.of(PROTOS[0], PROTOS[1], PROTOS[2], PROTOS[3], PROTOS[4]),
                Arbitraries.of(PKT_SPORTS[0], PKT_SPORTS[1], PKT_SPORTS[2]),
                Arbitraries.integers().between(0, PKT_PORTS.length - 1),
                Arbitraries.integers().between(0, PKT_ICMP.length - 1))
                .as((i, src, dst, proto, sport, port, icmp) -> new Packet(i, four, src, dst, proto, sport, PKT_PORTS[port],
                        PKT_ICMP[icmp][0], PKT_ICMP[icmp][1])));
    }

    @Provide
    Arbitrary<List<Packet>> packetLists() {
        return packets().list().ofSize(60);
    }

    /**
     * A host and packets for it: most enter from one of its VM interfaces, and most of those come
     * from an address a VM of that interface holds; the rest are any packet of {@link #packets()}.
     */
    @Provide
    Arbitrary<Tuple.Tuple2<List<Fragment>, List<Packet>>> scenarios() {
        return hosts().flatMap(fragments -> {
            List<String[]> ports = new ArrayList<>(); // interface, ipv4, ipv6
            for (Fragment f : fragments) {
                for (VmAddress v : f.vms()) {
                    if (v.interfaceName() != null) {
                        ports.add(new String[]{v.interfaceName(), v.ipv4(), v.ipv6()});
                    }
                }
            }
            Arbitrary<Packet> fromPorts = ports.isEmpty() ? packets() : Combinators.combine(packets(), Arbitraries.of(ports),
                    Arbitraries.integers().between(0, 3)).as((p, port, own) -> {
                        String a = p.v4() ? port[1] : port[2];
                        String src = own > 0 && a != null ? a : p.src();
                        return new Packet(port[0], p.v4(), src, p.dst(), p.proto(), p.sport(), p.port(), p.icmpType(), p.icmpCode());
                    });
            Arbitrary<Packet> any = Arbitraries.frequencyOf(Tuple.of(5, fromPorts), Tuple.of(1, packets()));
            return any.list().ofSize(60).map(ps -> Tuple.of(fragments, ps));
        });
    }

    // Edge cases off: mixed in, they are mostly hosts whose VMs all lack an interface (nothing to decide).
    @Property(tries = 800, edgeCases = EdgeCasesMode.NONE)
    void everyPacketIsDecidedByTheRulesOfTheVmWhoseInterfaceItEntersFrom(@ForAll("scenarios") Tuple.Tuple2<List<Fragment>, List<Packet>> scenario,
                                                                         @ForAll HostMode mode, @ForAll boolean counters) {
        List<Fragment> fragments = scenario.get1();
        List<Packet> packets = scenario.get2();
        TreeMap<String, Fragment> host = new TreeMap<>();
        fragments.forEach(f -> host.put(f.networkId(), f));
        String script = new NftRenderer(counters, mode).render("host-p", host);
        RenderedTable table = RenderedTable.parse(script);
        assertThat(table.mode).isEqualTo(mode);

        for (Packet p : packets) {
            assertThat(table.verdict(p)).as("%s on a %s host with %s", p, mode, fragments).isEqualTo(FirstMatchOracle.verdict(fragments, p));
            Statistics.label("decided by").collect(FirstMatchOracle.path(fragments, p));
        }
    }

    /** The same packets, with only the VM's own address as source: the rules decide (not the source check). */
    @Property(tries = 500)
    void fromItsOwnAddressEachVmGetsItsOwnNetworksFirstMatch(@ForAll("hosts") List<Fragment> fragments, @ForAll HostMode mode,
                                                             @ForAll("packetLists") List<Packet> packets) {
        TreeMap<String, Fragment> host = new TreeMap<>();
        fragments.forEach(f -> host.put(f.networkId(), f));
        RenderedTable table = RenderedTable.parse(new NftRenderer(false, mode).render("host-p", host));

        for (Packet p : packets) {
            List<VmAddress> claimants = new ArrayList<>();
            Fragment of = null;
            for (Fragment f : fragments) {
                for (VmAddress v : f.vms()) {
                    if (p.iface().equals(v.interfaceName())) {
                        claimants.add(v);
                        of = f;
                    }
                }
            }
            if (claimants.size() != 1) {
                continue;
            }
            VmAddress vm = claimants.get(0);
            String own = p.v4() ? vm.ipv4() : vm.ipv6();
            if (own == null) {
                continue;
            }
            // Ordinary traffic (no DHCP or neighbour discovery) from the VM's own address.
            Packet mine = new Packet(p.iface(), p.v4(), own, p.dst(), p.proto(), 40000, p.port(), p.proto() == 58 ? 128 : p.icmpType(),
                    p.icmpCode());
            assertThat(table.verdict(mine)).as("%s on a %s host with %s", mine, mode, fragments)
                    .isEqualTo(FirstMatchOracle.firstMatch(of, vm, mine));
        }
    }

    /** The marks: one per VM interface, all distinct, tagged, the same in the ports map and every VM set. */
    @Property(tries = 300)
    void everyVmInterfaceHasItsOwnMarkAndEveryVmIsReachableOnlyByIt(@ForAll("hosts") List<Fragment> fragments, @ForAll HostMode mode) {
        TreeMap<String, Fragment> host = new TreeMap<>();
        fragments.forEach(f -> host.put(f.networkId(), f));
        RenderedTable table = RenderedTable.parse(new NftRenderer(false, mode).render("host-p", host));

        List<String> interfaces = fragments.stream().flatMap(f -> f.vms().stream()).map(VmAddress::interfaceName)
                .filter(java.util.Objects::nonNull).distinct().sorted().toList();
        assertThat(table.ports.keySet()).containsExactlyInAnyOrderElementsOf(interfaces);
        assertThat(table.ports.values()).doesNotHaveDuplicates().allMatch(m -> m.startsWith("0x45"));
        assertThat(table.vms).containsExactlyInAnyOrderElementsOf(table.ports.values());
        assertThat(table.defaults.keySet()).containsExactlyInAnyOrderElementsOf(table.ports.values());
        for (RenderedTable.SetDef s : table.sets.values()) {
            s.elements().forEach(e -> assertThat(table.vms).as("set %s element %s", s.name(), e).contains(e.fields().get(0)));
        }
        // Rule elements and addresses only for interfaces exactly one VM holds; a fail-closed port defaults to drop.
        for (String iface : interfaces) {
            long holders = fragments.stream().flatMap(f -> f.vms().stream()).filter(v -> iface.equals(v.interfaceName())).count();
            String mark = table.markOf(iface);
            if (holders > 1) {
                assertThat(table.defaults.get(mark)).isEqualTo("drop");
                assertThat(table.elementsOf(mark)).isEmpty();
                assertThat(table.addr4).doesNotContainKey(mark);
                assertThat(table.addr6).doesNotContainKey(mark);
            } else {
                assertThat(table.addr4.getOrDefault(mark, List.of())).hasSizeLessThanOrEqualTo(1);
                assertThat(table.addr6.getOrDefault(mark, List.of())).hasSizeLessThanOrEqualTo(1);
            }
        }
    }

    static String[] concat(String[] a, String[] b) {
        String[] out = new String[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
