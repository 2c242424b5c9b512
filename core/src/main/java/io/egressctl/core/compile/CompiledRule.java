package io.egressctl.core.compile;

import io.egressctl.core.model.Action;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.IcmpMatch;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;

import java.util.List;

/**
 * A rule resolved for one host: its effective action and the VMs of that host it covers.
 * {@code ports} and {@code icmp} may be null (any).
 */
public record CompiledRule(String ruleId, Action action, int priority, Protocol protocol, List<String> vmIds,
                           List<Cidr> destinationCidrs, List<Cidr> destinationExceptCidrs, PortRange ports,
                           IcmpMatch icmp) {

    public CompiledRule {
        vmIds = List.copyOf(vmIds);
        destinationCidrs = List.copyOf(destinationCidrs);
        destinationExceptCidrs = List.copyOf(destinationExceptCidrs);
    }
}
