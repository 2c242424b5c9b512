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

    private static final Comparator<CompiledRule> EVALUATION_ORDER =
            Comparator.comparingInt(CompiledRule::priority).thenComparing(CompiledRule::ruleId);

    /** Fragments by host id; empty when the network does not exist or has no VMs. */
    public Map<String, Fragment> compile(NetworkState state) {
        Network network = state.network();
        Map<String, Fragment> out = new TreeMap<>();
        if (network == null) {
            return out;
        }
        Map<String, List<VmPlacement>> byHost = new TreeMap<>();
        for (VmPlacement vm : state.vms().values()) {
            byHost.computeIfAbsent(vm.hostId(), h -> new ArrayList<>()).add(vm);
        }
        for (Map.Entry<String, List<VmPlacement>> host : byHost.entrySet()) {
            List<VmPlacement> hostVms = host.getValue();
            List<VmAddress> vms = hostVms.stream().map(p -> new VmAddress(p.vmId(), p.ipv4(), p.ipv6())).toList();
            List<CompiledRule> rules = new ArrayList<>();
            for (EgressRule rule : state.rules().values()) {
                List<String> covered = new ArrayList<>();
                for (VmPlacement vm : hostVms) {
                    if (covers(rule, vm)) {
                        covered.add(vm.vmId());
                    }
                }
                if (!covered.isEmpty()) {
                    rules.add(new CompiledRule(rule.ruleId(), rule.effectiveAction(network.defaultPolicy()), rule.priority(),
                            rule.protocol(), covered, rule.destinationCidrs(), rule.destinationExceptCidrs(), rule.ports(), rule.icmp()));
                }
            }
            rules.sort(EVALUATION_ORDER);
            out.put(host.getKey(), new Fragment(network.networkId(), network.defaultPolicy(), vms, rules));
        }
        return out;
    }

    /** True when the rule's source selects this VM. */
    static boolean covers(EgressRule rule, VmPlacement vm) {
        if (rule.coversWholeNetwork()) {
            return true;
        }
        if (!rule.sourceVmIds().isEmpty()) {
            return rule.sourceVmIds().contains(vm.vmId());
        }
        for (Cidr c : rule.sourceCidrs()) {
            String ip = c.isIpv4() ? vm.ipv4() : vm.ipv6();
            if (ip != null && c.containsAddress(ip)) {
                return true;
            }
        }
        return false;
    }
}
