package io.egressctl.schemas.view;

import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.EgressRule;

import java.util.List;

/**
 * A rule as the API shows it (JSON). {@code action} is the effective action on its network;
 * optional fields are null when not set.
 */
public record RuleView(String ruleId, String protocol, String action, Integer priority, List<String> sourceCidrs,
                       List<String> sourceVmIds, List<String> destinationCidrs, List<String> destinationExceptCidrs,
                       Integer startPort, Integer endPort, Integer icmpType, Integer icmpCode, String description) {

    public static RuleView of(EgressRule r, DefaultPolicy policy) {
        return new RuleView(r.ruleId(), r.protocol().apiName(), r.effectiveAction(policy).name().toLowerCase(),
                r.priority(), texts(r.sourceCidrs()), r.sourceVmIds(), texts(r.destinationCidrs()),
                texts(r.destinationExceptCidrs()),
                r.ports() == null ? null : r.ports().start(), r.ports() == null ? null : r.ports().end(),
                r.icmp() == null ? null : r.icmp().type(), r.icmp() == null ? null : r.icmp().code(), r.description());
    }

    private static List<String> texts(List<Cidr> cidrs) {
        return cidrs.stream().map(Cidr::toString).toList();
    }
}
