package io.egressctl.core.compile;

import io.egressctl.core.hash.CanonicalHash;
import io.egressctl.core.model.DefaultPolicy;

import java.util.List;

/**
 * The desired egress state of one network on one host: the network's VMs on that host and the
 * rules that cover them, in evaluation order (priority, then rule id). Immutable; equal content
 * gives an equal {@link #hash()}. With {@code keepEstablished} a rule that starts blocking a flow
 * leaves connections already established open; by default they end (their conntrack entries go).
 */
public record Fragment(String networkId, DefaultPolicy defaultPolicy, List<VmAddress> vms, List<CompiledRule> rules,
                       boolean keepEstablished) {

    public Fragment {
        vms = List.copyOf(vms);
        rules = List.copyOf(rules);
    }

    /** A fragment whose new blocks end established flows (the default). */
    public Fragment(String networkId, DefaultPolicy defaultPolicy, List<VmAddress> vms, List<CompiledRule> rules) {
        this(networkId, defaultPolicy, vms, rules, false);
    }

    /** sha256 (hex) of the canonical bytes. */
    public String hash() {
        return CanonicalHash.of(this);
    }
}
