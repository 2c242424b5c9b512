package io.egressctl.core.validation;

import java.util.List;

/**
 * A rule as a client or an event states it, before validation: every field may be null (omitted).
 * An empty list is different from an omitted one and is refused.
 */
public record RuleDraft(String protocol, String action, Integer priority, List<String> sourceCidrs,
                        List<String> sourceVmIds, List<String> destinationCidrs,
                        List<String> destinationExceptCidrs, Integer startPort, Integer endPort,
                        Integer icmpType, Integer icmpCode, String description) {
}
