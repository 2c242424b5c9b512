package io.egressctl.core.model;

import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * One egress rule of a network, as validated. Immutable; lists are sorted and de-duplicated by
 * {@link io.egressctl.core.validation.RuleValidator} so equal rules compare equal.
 *
 * @param action              explicit action, or {@code null} for CloudStack semantics (the opposite of
 *                            the network's default policy)
 * @param priority            lower runs first (advanced mode); CloudStack-mode rules all share one priority
 * @param sourceCidrs         covered VMs by address; empty with empty {@code sourceVmIds} means every VM
 * @param sourceVmIds         covered VMs by id
 * @param destinationCidrs    empty means anywhere
 * @param ports               tcp/udp only; {@code null} means every port
 * @param icmp                icmp/icmpv6 only; {@code null} means any type and code
 * @param description         free text, never rendered into nft input
 */
public record EgressRule(String ruleId, Protocol protocol, Action action, int priority,
                         List<Cidr> sourceCidrs, List<String> sourceVmIds,
                         List<Cidr> destinationCidrs, List<Cidr> destinationExceptCidrs,
                         PortRange ports, IcmpMatch icmp, String description) {

    /** Priority of rules that do not state one. */
    public static final int DEFAULT_PRIORITY = 1000;

    public EgressRule {
        Objects.requireNonNull(ruleId, "ruleId");
        Objects.requireNonNull(protocol, "protocol");
        sourceCidrs = List.copyOf(sourceCidrs);
        sourceVmIds = List.copyOf(sourceVmIds);
        destinationCidrs = List.copyOf(destinationCidrs);
        destinationExceptCidrs = List.copyOf(destinationExceptCidrs);
    }

    /** The action this rule takes on a network with the given default policy. */
    public Action effectiveAction(DefaultPolicy policy) {
        return action != null ? action : policy.ruleAction();
    }

    public Optional<PortRange> portRange() {
        return Optional.ofNullable(ports);
    }

    /** True when the rule covers every VM of its network. */
    public boolean coversWholeNetwork() {
        return sourceCidrs.isEmpty() && sourceVmIds.isEmpty();
    }

    /**
     * Whether this rule's source selects a VM with the given id and addresses (either may be null).
     * See {@link #covers(List, List, String, Cidr, Cidr)}.
     */
    public boolean covers(String vmId, Cidr ipv4, Cidr ipv6) {
        return covers(sourceCidrs, sourceVmIds, vmId, ipv4, ipv6);
    }

    /**
     * The one decision whether a rule's source selects a VM, for the compiler, the API's views and
     * the audit tools alike: a rule without sources covers every VM of its network; otherwise a VM
     * is covered when the rule names its id, or when one of the rule's source CIDRs holds the VM's
     * address of that family.
     */
    public static boolean covers(List<Cidr> sourceCidrs, List<String> sourceVmIds, String vmId, Cidr ipv4, Cidr ipv6) {
        if (sourceCidrs.isEmpty() && sourceVmIds.isEmpty()) {
            return true;
        }
        if (vmId != null && sourceVmIds.contains(vmId)) {
            return true;
        }
        for (Cidr c : sourceCidrs) {
            Cidr address = c.isIpv4() ? ipv4 : ipv6;
            if (address != null && c.contains(address)) {
                return true;
            }
        }
        return false;
    }

    /**
     * What the rule matches, without its id, priority and description: two rules of a network
     * with the same match key are duplicates.
     */
    public String matchKey() {
        // Built by hand: it is computed for every rule event and every replayed one.
        StringBuilder sb = new StringBuilder(96);
        sb.append(protocol).append('|').append(action).append('|');
        appendAll(sb, sourceCidrs).append('|');
        appendAll(sb, sourceVmIds).append('|');
        appendAll(sb, destinationCidrs).append('|');
        appendAll(sb, destinationExceptCidrs).append('|');
        if (ports != null) {
            sb.append(ports.start()).append('-').append(ports.end());
        }
        sb.append('|');
        if (icmp != null) {
            sb.append(icmp.type()).append('/').append(icmp.code());
        }
        return sb.toString();
    }

    private static StringBuilder appendAll(StringBuilder sb, List<?> items) {
        for (int i = 0; i < items.size(); i++) {
            if (i > 0) {
                sb.append(',');
            }
            sb.append(items.get(i));
        }
        return sb;
    }

    /** A copy with another id (used when the log assigns or keeps ids). */
    public EgressRule withId(String id) {
        return new EgressRule(id, protocol, action, priority, sourceCidrs, sourceVmIds, destinationCidrs,
                destinationExceptCidrs, ports, icmp, description);
    }
}
