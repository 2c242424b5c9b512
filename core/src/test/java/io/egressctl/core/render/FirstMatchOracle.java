package io.egressctl.core.render;

import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.model.Action;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.IcmpMatch;
import io.egressctl.core.render.RenderedTable.Packet;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;

/**
 * What the host must do with a packet, from the fragments alone (no nft), as the host identity design
 * says: a VM is its interface.
 * <ol>
 *   <li>A packet entering from an interface that is no VM's is untouched: accept.</li>
 *   <li>What a VM needs to work passes whatever its rules say, before the source check: DHCP from no
 *       address ({@code 0.0.0.0 -> 255.255.255.255}, udp 68 -> 67), neighbour discovery and MLD
 *       reports from the unspecified or a link-local source, DHCPv6 from a link-local source.</li>
 *   <li>An interface several VMs claim is fail-closed: everything else from it is dropped.</li>
 *   <li>A source that is not the VM's own address of the packet's family is dropped (spoofed).</li>
 *   <li>From its own address, DHCP (udp 68 -> 67) and neighbour discovery (router and neighbour
 *       solicitations, neighbour advertisements) pass.</li>
 *   <li>Else the first rule of the VM's fragment, in evaluation order, that covers the VM and
 *       matches decides; else the network's default.</li>
 * </ol>
 * Steps 2 and 5 are the renderer's documented list of what a VM needs
 * ({@code NftRenderer.BEFORE_SOURCE_CHECK}, {@code AFTER_SOURCE_CHECK}); they are here so that
 * packets of those kinds can be drawn too.
 */
final class FirstMatchOracle {

    private FirstMatchOracle() {
    }

    /** A VM with the fragment it belongs to. */
    record Placed(Fragment fragment, VmAddress vm) {
    }

    private static final Set<Integer> ND_UNSPECIFIED_OR_LINK_LOCAL = Set.of(133, 135, 136, 131, 143);
    private static final Set<Integer> ND_OWN = Set.of(133, 135, 136);

    static String verdict(Collection<Fragment> fragments, Packet p) {
        return decide(fragments, p)[0];
    }

    /** Which step of the list above decided a packet: untouched, needed, claimed twice, spoofed, rule or default. */
    static String path(Collection<Fragment> fragments, Packet p) {
        return decide(fragments, p)[1];
    }

    private static String[] decide(Collection<Fragment> fragments, Packet p) {
        List<Placed> claimants = new ArrayList<>();
        for (Fragment f : fragments) {
            for (VmAddress v : f.vms()) {
                if (v.interfaceName() != null && v.interfaceName().equals(p.iface())) {
                    claimants.add(new Placed(f, v));
                }
            }
        }
        if (claimants.isEmpty()) {
            return new String[]{"accept", "untouched"};
        }
        if (neededBeforeSourceCheck(p)) {
            return new String[]{"accept", "needed"};
        }
        if (claimants.size() > 1) {
            return new String[]{"drop", "claimed twice"};
        }
        Placed placed = claimants.get(0);
        String own = p.v4() ? placed.vm().ipv4() : placed.vm().ipv6();
        if (own == null || !address(own).equals(RenderedTable.canonical(p.src()))) {
            return new String[]{"drop", "spoofed"};
        }
        if (p.proto() == 17 && p.sport() == 68 && p.port() == 67) {
            return new String[]{"accept", "needed"};
        }
        if (!p.v4() && p.proto() == 58 && ND_OWN.contains(p.icmpType())) {
            return new String[]{"accept", "needed"};
        }
        for (CompiledRule r : placed.fragment().rules()) {
            if (r.vmIds().contains(placed.vm().vmId()) && matches(r, p)) {
                return new String[]{r.action() == Action.DENY ? "drop" : "accept", "rule"};
            }
        }
        return new String[]{firstMatch(placed.fragment(), placed.vm(), p), "default"};
    }

    /** The first rule covering {@code vm} that matches, else the default. */
    static String firstMatch(Fragment f, VmAddress vm, Packet p) {
        for (CompiledRule r : f.rules()) {
            if (r.vmIds().contains(vm.vmId()) && matches(r, p)) {
                return r.action() == Action.DENY ? "drop" : "accept";
            }
        }
        return f.defaultPolicy() == DefaultPolicy.DENY ? "drop" : "accept";
    }

    private static boolean neededBeforeSourceCheck(Packet p) {
        if (p.v4()) {
            return p.src().equals("0.0.0.0") && p.dst().equals("255.255.255.255") && p.proto() == 17 && p.sport() == 68 && p.port() == 67;
        }
        boolean linkLocal = Cidr.parse("fe80::/10").contains(Cidr.parse(p.src()));
        boolean unspecified = RenderedTable.canonical(p.src()).equals(RenderedTable.canonical("::"));
        if ((linkLocal || unspecified) && p.proto() == 58 && ND_UNSPECIFIED_OR_LINK_LOCAL.contains(p.icmpType())) {
            return true;
        }
        return linkLocal && p.proto() == 17 && p.sport() == 546 && p.port() == 547;
    }

    /** A VM's address as the renderer takes it (an address, or a host prefix). */
    private static String address(String a) {
        return Cidr.parse(a).addressText();
    }

    static boolean matches(CompiledRule r, Packet p) {
        boolean protocol = switch (r.protocol()) {
            case TCP -> p.proto() == 6 && inPorts(r, p);
            case UDP -> p.proto() == 17 && inPorts(r, p);
            case ICMP -> p.v4() && p.proto() == 1 && inIcmp(r, p);
            case ICMPV6 -> !p.v4() && p.proto() == 58 && inIcmp(r, p);
            case ALL -> true;
        };
        if (!protocol) {
            return false;
        }
        Cidr dst = Cidr.parse(p.dst());
        boolean in = r.destinationCidrs().isEmpty() || r.destinationCidrs().stream().anyMatch(c -> c.contains(dst));
        return in && r.destinationExceptCidrs().stream().noneMatch(c -> c.contains(dst));
    }

    private static boolean inPorts(CompiledRule r, Packet p) {
        return r.ports() == null || (r.ports().start() <= p.port() && p.port() <= r.ports().end());
    }

    private static boolean inIcmp(CompiledRule r, Packet p) {
        IcmpMatch m = r.icmp();
        if (m == null || m.anyType()) {
            return true;
        }
        return m.type() == p.icmpType() && (m.anyCode() || m.code() == p.icmpCode());
    }
}
