package io.egressctl.rules.api;

import io.egressctl.core.validation.NetworkDraft;
import io.egressctl.core.validation.RuleDraft;

import java.util.List;

/** JSON request bodies of the REST API. Every field is optional at this level; the core validates. */
final class Requests {

    private Requests() {
    }

    record NetworkRequest(String networkId, String kind, String guestCidr, String guestCidr6, String defaultPolicy,
                          Boolean advanced, Integer ruleQuota) {
        NetworkDraft draft() {
            return new NetworkDraft(networkId, kind, guestCidr, guestCidr6, defaultPolicy, advanced, ruleQuota);
        }
    }

    record NetworkPatch(String defaultPolicy) {
    }

    record RuleRequest(String protocol, String action, Integer priority, List<String> sourceCidrs, List<String> sourceVmIds,
                       List<String> destinationCidrs, List<String> destinationExceptCidrs, Integer startPort, Integer endPort,
                       Integer icmpType, Integer icmpCode, String description) {
        RuleDraft draft() {
            return new RuleDraft(protocol, action, priority, sourceCidrs, sourceVmIds, destinationCidrs, destinationExceptCidrs,
                    startPort, endPort, icmpType, icmpCode, description);
        }
    }

    record PlacementRequest(String hostId, String ipv4, String ipv6) {
    }
}
