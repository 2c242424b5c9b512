package io.egressctl.core.compile;

import io.egressctl.core.model.DefaultPolicy;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * What changed in one (host, network) fragment from the version {@code baseVersion} to the next,
 * keyed by rule id: the rules that are new or differ ({@code upserts}) and the ids of the rules that
 * went ({@code removedRuleIds}). The network's small parts (default policy, the host's VMs of the
 * network, keep-established) travel whole. A change to a network of 1,000 rules that touches one rule
 * carries one rule, so what the compiler publishes and an agent decodes does not grow with the
 * network.
 *
 * <p>Applied to the fragment of {@code baseVersion} it gives the next fragment exactly (rules in
 * evaluation order: priority, then rule id, as {@link FragmentCompiler} orders them), which the
 * receiver checks against the update's fragment hash; a receiver that does not hold the base asks
 * for the whole fragment instead (a gap).
 */
public record FragmentDelta(long baseVersion, DefaultPolicy defaultPolicy, List<VmAddress> vms, boolean keepEstablished,
                            List<CompiledRule> upserts, List<String> removedRuleIds) {

    public FragmentDelta {
        Objects.requireNonNull(defaultPolicy, "defaultPolicy");
        vms = List.copyOf(vms);
        upserts = List.copyOf(upserts);
        removedRuleIds = List.copyOf(removedRuleIds);
        Set<String> seen = new HashSet<>();
        for (CompiledRule r : upserts) {
            if (!seen.add(r.ruleId())) {
                throw new IllegalArgumentException("rule " + r.ruleId() + " is upserted twice");
            }
        }
        for (String id : removedRuleIds) {
            if (!seen.add(id)) {
                throw new IllegalArgumentException("rule " + id + " is both upserted and removed, or removed twice");
            }
        }
    }

    /**
     * The delta from {@code base} (version {@code baseVersion}) to {@code next}, both fragments of
     * the same network. A rule whose content is equal in both is left out.
     */
    public static FragmentDelta between(long baseVersion, Fragment base, Fragment next) {
        if (!base.networkId().equals(next.networkId())) {
            throw new IllegalArgumentException("fragments of two networks: " + base.networkId() + ", " + next.networkId());
        }
        Map<String, CompiledRule> before = new HashMap<>(base.rules().size() * 2);
        for (CompiledRule r : base.rules()) {
            before.put(r.ruleId(), r);
        }
        List<CompiledRule> upserts = new ArrayList<>();
        for (CompiledRule r : next.rules()) {
            CompiledRule old = before.remove(r.ruleId());
            // Identity first: the compiler reuses unchanged rule objects, and equals walks lists.
            if (old != r && !r.equals(old)) {
                upserts.add(r);
            }
        }
        List<String> removed = new ArrayList<>(before.keySet());
        removed.sort(null);
        return new FragmentDelta(baseVersion, next.defaultPolicy(), next.vms(), next.keepEstablished(), upserts, removed);
    }

    /** The rules this delta carries or names: its cost, against the next fragment's rule count. */
    public int ruleCount() {
        return upserts.size() + removedRuleIds.size();
    }

    /**
     * The next fragment: {@code base}'s rules without the removed and upserted ids, the upserts
     * added, in evaluation order; the network's parts from this delta.
     *
     * @throws IllegalArgumentException when a removed rule is not in {@code base} (not its base)
     */
    public Fragment applyTo(Fragment base) {
        Map<String, CompiledRule> rules = new HashMap<>(base.rules().size() * 2);
        for (CompiledRule r : base.rules()) {
            rules.put(r.ruleId(), r);
        }
        for (String id : removedRuleIds) {
            if (rules.remove(id) == null) {
                throw new IllegalArgumentException("rule " + id + " to remove is not in the base fragment");
            }
        }
        for (CompiledRule r : upserts) {
            rules.put(r.ruleId(), r);
        }
        List<CompiledRule> ordered = new ArrayList<>(rules.values());
        ordered.sort(FragmentCompiler.EVALUATION_ORDER);
        return new Fragment(base.networkId(), defaultPolicy, vms, ordered, keepEstablished);
    }
}
