package io.egressctl.rules.api;

import io.egressctl.core.validation.NetworkDraft;
import io.egressctl.core.validation.RuleDraft;

import java.util.List;

/** JSON request bodies of the REST API. Every field is optional at this level; the core validates. */
final class Requests {

    private Requests() {
    }

    record NetworkRequest(String networkId, String kind, String guestCidr, String guestCidr6, String defaultPolicy,
                          Boolean advanced, Integer ruleQuota, Boolean keepEstablished) {
        NetworkDraft draft() {
            return new NetworkDraft(networkId, kind, guestCidr, guestCidr6, defaultPolicy, advanced, ruleQuota, keepEstablished);
        }
    }

    /** A change of a network's settings; at least one field is given. */
    record NetworkPatch(String defaultPolicy, Boolean keepEstablished) {
    }

    record RuleRequest(String protocol, String action, Integer priority, List<String> sourceCidrs, List<String> sourceVmIds,
                       List<String> destinationCidrs, List<String> destinationExceptCidrs, Integer startPort, Integer endPort,
                       Integer icmpType, Integer icmpCode, String description) {
        RuleDraft draft() {
            return new RuleDraft(protocol, action, priority, sourceCidrs, sourceVmIds, destinationCidrs, destinationExceptCidrs,
                    startPort, endPort, icmpType, icmpCode, description);
        }
    }

    /**
     * Where a VM runs: its host, the interface it is plugged into there (tap/vnet/veth, its identity on
     * the host), that interface's MAC, and its addresses.
     */
    /**
     * A placement. {@code tenantId} is optional: the tenant compute places the VM for; when given, the
     * network must be that tenant's, else the placement is refused, and the event is bound to it.
     */
    record PlacementRequest(String hostId, String interfaceName, String mac, String ipv4, String ipv6, String tenantId) {

        /** A placement that names no tenant: bound to the network's owner when published. */
        PlacementRequest(String hostId, String interfaceName, String mac, String ipv4, String ipv6) {
            this(hostId, interfaceName, mac, ipv4, ipv6, null);
        }
    }
}
