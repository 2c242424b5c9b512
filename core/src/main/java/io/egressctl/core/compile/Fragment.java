package io.egressctl.core.compile;

import io.egressctl.core.hash.CanonicalHash;
import io.egressctl.core.model.DefaultPolicy;

import java.util.List;

/**
 * The desired egress state of one network on one host: the network's VMs on that host and the
 * rules that cover them, in evaluation order (priority, then rule id). Immutable; equal content
 * gives an equal {@link #hash()}.
 */
public record Fragment(String networkId, DefaultPolicy defaultPolicy, List<VmAddress> vms, List<CompiledRule> rules) {

    public Fragment {
        vms = List.copyOf(vms);
        rules = List.copyOf(rules);
    }

    /** sha256 (hex) of the canonical bytes. */
    public String hash() {
        return CanonicalHash.of(this);
    }
}
