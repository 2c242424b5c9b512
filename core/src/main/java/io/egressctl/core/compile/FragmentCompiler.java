package io.egressctl.core.compile;

import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.VmPlacement;
import io.egressctl.core.state.NetworkState;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Compiles one network into its per-host fragments: which VMs of the network run on each host and
 * which rules cover them. Cost is proportional to the network's VMs times its rules; nothing
 * outside the network is read. Stateless and thread-safe.
 */
public final class FragmentCompiler {

    /** The order a fragment holds its rules in: priority, then rule id. A delta applied keeps it too. */
    static final Comparator<CompiledRule> EVALUATION_ORDER =
            Comparator.comparingInt(CompiledRule::priority).thenComparing(CompiledRule::ruleId);

    /** Fragments by host id; empty when the network does not exist or has no VMs. */
    public Map<String, Fragment> compile(NetworkState state) {
        return compile(state, null);
    }

    /**
     * Fragments of the given hosts only ({@code null}: every host of the network). A host of the set
     * that runs no VM of the network has no entry. Cost: the network's VMs on those hosts times its
     * rules; nothing outside the network is read.
     */
    public Map<String, Fragment> compile(NetworkState state, java.util.Set<String> hosts) {
        Network network = state.network();
        Map<String, Fragment> out = new TreeMap<>();
        if (network == null) {
            return out;
        }
        Map<String, List<Vm>> byHost = new TreeMap<>();
        for (VmPlacement vm : state.vms().values()) {
            if (hosts == null || hosts.contains(vm.hostId())) {
                byHost.computeIfAbsent(vm.hostId(), h -> new ArrayList<>()).add(Vm.of(vm));
            }
        }
        for (Map.Entry<String, List<Vm>> host : byHost.entrySet()) {
            List<Vm> hostVms = host.getValue();
            List<VmAddress> vms = hostVms.stream().map(v -> new VmAddress(v.placement().vmId(), v.placement().interfaceName(),
                    v.placement().mac(), v.placement().ipv4(), v.placement().ipv6())).toList();
            List<CompiledRule> rules = new ArrayList<>();
            for (EgressRule rule : state.rules().values()) {
                List<String> covered = new ArrayList<>(2);
                for (Vm vm : hostVms) {
                    if (vm.coveredBy(rule)) {
                        covered.add(vm.placement().vmId());
                    }
                }
                if (!covered.isEmpty()) {
                    rules.add(new CompiledRule(rule.ruleId(), rule.effectiveAction(network.defaultPolicy()), rule.priority(),
                            rule.protocol(), covered, rule.destinationCidrs(), rule.destinationExceptCidrs(), rule.ports(), rule.icmp()));
                }
            }
            rules.sort(EVALUATION_ORDER);
            out.put(host.getKey(), new Fragment(network.networkId(), network.defaultPolicy(), vms, rules, network.keepEstablished()));
        }
        return out;
    }

    /** Hosts running a VM of the network that {@code rule} covers. */
    public java.util.Set<String> hostsCoveredBy(NetworkState state, EgressRule rule) {
        java.util.Set<String> out = new java.util.TreeSet<>();
        for (VmPlacement vm : state.vms().values()) {
            if (!out.contains(vm.hostId()) && Vm.of(vm).coveredBy(rule)) {
                out.add(vm.hostId());
            }
        }
        return out;
    }

    /**
     * Parsed VM addresses by text. Every change re-reads the addresses of the VMs it may cover, and
     * parsing them was a tenth of a rule change's cost; Cidr is immutable, so entries are shared.
     * Bounded: cleared whole when full (a cache, never a source of truth).
     */
    private static final io.egressctl.core.memo.BoundedMemo<String, Cidr> ADDRESSES =
            new io.egressctl.core.memo.BoundedMemo<>(1 << 20, Cidr::parse);

    static Cidr address(String text) {
        return text == null ? null : ADDRESSES.get(text);
    }

    /** A placement with its addresses parsed once, not once per rule. */
    private record Vm(VmPlacement placement, Cidr v4, Cidr v6) {
        static Vm of(VmPlacement p) {
            return new Vm(p, address(p.ipv4()), address(p.ipv6()));
        }

        boolean coveredBy(EgressRule rule) {
            return rule.covers(placement.vmId(), v4, v6);
        }
    }

    /** True when the rule's source selects this VM. */
    static boolean covers(EgressRule rule, VmPlacement vm) {
        return rule.covers(vm.vmId(), address(vm.ipv4()), address(vm.ipv6()));
    }
}
