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
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The key correctness property of the layered layout: for random rule lists (overlapping
 * destinations, exceptions, port ranges, ICMP types and codes, both verdicts, both families) and
 * random packets on random interfaces, what the rendered ruleset does (the port's mark, the vm
 * chain's source check, its lookups in order, the first set with a matching element deciding, then
 * the VM's default; traffic from an interface that is no VM's untouched) is exactly what the plain
 * first-match evaluation of that interface's VM's rules says ({@link FirstMatchOracle}), on routed
 * and bridged hosts. The ruleset is read back from the script text itself, field by field as the
 * kernel would match it ({@link RenderedTable}). A second property: within every set no two
 * elements overlap (the kernel's interval sets refuse that), and every element carries a rule's
 * comment.
 */
class LayeredFirstMatchPropertyTest {

    private static final NftRenderer RENDERER = new NftRenderer();

    private static final String[] DST4 = {"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "10.1.2.128/25",
            "192.0.2.0/24", "0.0.0.0/1", "128.0.0.0/1"};
    private static final String[] DST6 = {"2001:db8::/32", "2001:db8:1::/48", "2001:db8:1::5/128", "fd00::/8", "::/1"};
    private static final String[] PKT_DST4 = {"10.0.0.1", "10.1.0.0", "10.1.2.3", "10.1.2.4", "10.1.2.200", "10.1.255.255",
            "10.2.0.0", "192.0.2.1", "8.8.8.8", "200.1.1.1", "127.255.255.255", "128.0.0.0"};
    private static final String[] PKT_DST6 = {"2001:db8::1", "2001:db8:1::5", "2001:db8:1::6", "2001:db9::1", "fd00::1", "fe80::1",
            "7fff::1", "8000::1"};
    private static final int[][] PORTS = {{80, 80}, {80, 90}, {85, 100}, {443, 443}, {1, 1024}, {90, 90}, {1000, 2000}};
    private static final int[][] ICMP = {{-1, -1}, {8, -1}, {8, 0}, {3, 4}, {3, -1}, {128, -1}, {128, 0}};
    private static final int[] PKT_PORTS = {79, 80, 85, 89, 90, 91, 100, 443, 1024, 1500, 5000};
    private static final int[][] PKT_ICMP = {{8, 0}, {8, 1}, {3, 4}, {3, 1}, {0, 0}, {128, 0}, {128, 3}};
    private static final int[] PROTOS = {6, 17, 1, 58, 47};

    /** Three VMs, each on its interface: dual stack, IPv4 only, IPv6 only; plus an interface that is no VM's. */
    private static final List<VmAddress> VMS = List.of(new VmAddress("vm-a", "tap-a", null, "10.9.0.1", "fd00:9::1"),
            new VmAddress("vm-b", "tap-b", null, "10.9.0.2", null), new VmAddress("vm-c", "tap-c", null, null, "fd00:9::3"));
    private static final String[] IFACES = {"tap-a", "tap-b", "tap-c", "eth9"};
    private static final String[] SOURCES4 = {"10.9.0.1", "10.9.0.2", "10.9.0.99"};
    private static final String[] SOURCES6 = {"fd00:9::1", "fd00:9::3", "fd00:9::99"};

    @Provide
    Arbitrary<CompiledRule> rules() {
        Arbitrary<Protocol> protocol = Arbitraries.of(Protocol.values());
        Arbitrary<Action> action = Arbitraries.of(Action.DENY, Action.ALLOW);
        Arbitrary<List<String>> dst = Arbitraries.of(concat(DST4, DST6)).list().ofMaxSize(2).uniqueElements();
        Arbitrary<List<String>> except = Arbitraries.of(concat(DST4, DST6)).list().ofMaxSize(2).uniqueElements();
        Arbitrary<Integer> ports = Arbitraries.integers().between(-1, PORTS.length - 1);
        Arbitrary<Integer> icmp = Arbitraries.integers().between(0, ICMP.length - 1);
        Arbitrary<List<String>> vms = Arbitraries.of("vm-a", "vm-b", "vm-c").list().ofMinSize(1).ofMaxSize(3).uniqueElements();
        Arbitrary<String> id = Arbitraries.strings().withCharRange('a', 'z').ofLength(6);
        return Combinators.combine(id, protocol, action, dst, except, ports, icmp, vms).as((i, p, a, d, e, pt, ic, v) -> {
            PortRange pr = p.hasPorts() && pt >= 0 ? new PortRange(PORTS[pt][0], PORTS[pt][1]) : null;
            IcmpMatch im = null;
            if (p.isIcmp()) {
                int[] m = ICMP[ic];
                im = new IcmpMatch(m[0], m[1]);
            }
            return new CompiledRule(i, a, 1000, p, v, d.stream().map(Cidr::parse).toList(), e.stream().map(Cidr::parse).toList(), pr, im);
        });
    }

    @Provide
    Arbitrary<List<CompiledRule>> ruleLists() {
        return rules().list().ofMinSize(0).ofMaxSize(9).map(LayeredFirstMatchPropertyTest::uniqueIds);
    }

    /**
     * A packet on a random interface; three times in four from the address of that interface's VM
     * (so that the rules decide), else from any source (the VM's own, another's, spoofed).
     */
    @Provide
    Arbitrary<Packet> packets() {
        Arbitrary<Boolean> v4 = Arbitraries.of(true, false);
        return v4.flatMap(four -> Combinators.combine(
                Arbitraries.of(IFACES),
                Arbitraries.of(four ? SOURCES4 : SOURCES6),
                Arbitraries.integers().between(0, 3),
                Arbitraries.of(four ? PKT_DST4 : PKT_DST6),
                Arbitraries.of(PROTOS[0], PROTOS[1], PROTOS[2], PROTOS[3], PROTOS[4]),
                Arbitraries.integers().between(0, PKT_PORTS.length - 1),
                Arbitraries.integers().between(0, PKT_ICMP.length - 1))
                .as((iface, anySource, own, dst, proto, port, icmp) -> {
                    String src = anySource;
                    for (VmAddress v : VMS) {
                        String a = four ? v.ipv4() : v.ipv6();
                        if (own > 0 && iface.equals(v.interfaceName()) && a != null) {
                            src = a;
                        }
                    }
                    return new Packet(iface, four, src, dst, proto, PKT_PORTS[port], PKT_ICMP[icmp][0], PKT_ICMP[icmp][1]);
                }));
    }

    @Property(tries = 600)
    void theLayeredChainDecidesEveryPacketAsTheFirstMatchingRuleDoes(@ForAll("ruleLists") List<CompiledRule> rules,
                                                                      @ForAll DefaultPolicy policy, @ForAll HostMode mode,
                                                                      @ForAll("packetLists") List<Packet> packets) {
        Fragment f = new Fragment("net-p", policy, VMS, rules);
        SortedMap<String, Fragment> host = new TreeMap<>(Map.of("net-p", f));
        RenderedTable table = RenderedTable.parse(new NftRenderer(false, mode).render("host-p", host));

        for (Packet p : packets) {
            assertThat(table.verdict(p)).as("%s with rules %s", p, rules).isEqualTo(FirstMatchOracle.verdict(List.of(f), p));
        }
    }

    @Provide
    Arbitrary<List<Packet>> packetLists() {
        return packets().list().ofSize(40);
    }

    @Property(tries = 300)
    void noTwoElementsOfASetOverlapAndEveryElementNamesItsRule(@ForAll("ruleLists") List<CompiledRule> rules) {
        Fragment f = new Fragment("net-p", DefaultPolicy.ALLOW, VMS, rules);
        RenderedTable table = RenderedTable.parse(RENDERER.render("host-p", new TreeMap<>(Map.of("net-p", f))));

        table.sets.values().forEach(s -> {
            List<RenderedTable.Element> els = s.elements();
            assertThat(els).as("set %s", s.name()).isNotEmpty();
            for (int i = 0; i < els.size(); i++) {
                assertThat(els.get(i).comment()).matches("r=[a-z]+ h=[0-9a-f]{12}( r=[a-z]+ h=[0-9a-f]{12})*( \\+\\d+)?");
                for (int j = i + 1; j < els.size(); j++) {
                    assertThat(overlap(els.get(i).fields(), els.get(j).fields()))
                            .as("set %s: %s and %s overlap", s.name(), els.get(i), els.get(j)).isFalse();
                }
            }
        });
    }

    /** Two elements of one set overlap when every field's values intersect. */
    static boolean overlap(List<String> a, List<String> b) {
        for (int i = 0; i < a.size(); i++) {
            BigInteger[] x = values(a.get(i));
            BigInteger[] y = values(b.get(i));
            if (x[0].compareTo(y[1]) > 0 || y[0].compareTo(x[1]) > 0) {
                return false;
            }
        }
        return true;
    }

    private static BigInteger[] values(String field) {
        if (field.startsWith("0x")) { // a port's mark
            BigInteger v = new BigInteger(field.substring(2), 16);
            return new BigInteger[]{v, v};
        }
        if (field.contains(".") && !field.matches("\\d+(-\\d+)?") || field.contains(":")) {
            return RenderedTable.range(field);
        }
        if (field.matches("[a-z][a-z0-9-]*")) {
            BigInteger v = BigInteger.valueOf(RenderedTable.protoNumber(field));
            return new BigInteger[]{v, v};
        }
        int dash = field.indexOf('-');
        BigInteger lo = new BigInteger(dash < 0 ? field : field.substring(0, dash));
        return new BigInteger[]{lo, dash < 0 ? lo : new BigInteger(field.substring(dash + 1))};
    }

    private static List<CompiledRule> uniqueIds(List<CompiledRule> rules) {
        List<CompiledRule> out = new ArrayList<>();
        for (int i = 0; i < rules.size(); i++) {
            CompiledRule r = rules.get(i);
            out.add(new CompiledRule("r" + (char) ('a' + i) + r.ruleId().substring(0, 2), r.action(), r.priority(), r.protocol(),
                    r.vmIds(), r.destinationCidrs(), r.destinationExceptCidrs(), r.ports(), r.icmp()));
        }
        return out;
    }

    private static String[] concat(String[] a, String[] b) {
        String[] out = new String[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
