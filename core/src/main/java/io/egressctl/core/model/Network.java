package io.egressctl.core.model;

import java.util.Objects;
import java.util.Optional;

/**
 * A guest network and its egress defaults. Immutable; all fields non-null except {@code guestCidr6}.
 *
 * @param advanced  explicit rule actions and priorities are allowed (beyond CloudStack)
 * @param ruleQuota the most rules the network may hold
 * @param keepEstablished a rule that starts blocking a flow leaves connections already established open
 *                  (by default the hosts end them)
 */
public record Network(String networkId, String tenantId, NetworkKind kind, Cidr guestCidr, Cidr guestCidr6,
                      DefaultPolicy defaultPolicy, boolean advanced, int ruleQuota, boolean keepEstablished) {

    /** Rule quota used when none is given. */
    public static final int DEFAULT_RULE_QUOTA = 1000;

    public Network {
        Objects.requireNonNull(networkId, "networkId");
        Objects.requireNonNull(tenantId, "tenantId");
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(guestCidr, "guestCidr");
        Objects.requireNonNull(defaultPolicy, "defaultPolicy");
    }

    /** A network whose new blocks end established flows (the default). */
    public Network(String networkId, String tenantId, NetworkKind kind, Cidr guestCidr, Cidr guestCidr6,
                   DefaultPolicy defaultPolicy, boolean advanced, int ruleQuota) {
        this(networkId, tenantId, kind, guestCidr, guestCidr6, defaultPolicy, advanced, ruleQuota, false);
    }

    /** The IPv6 prefix, when the network has one. */
    public Optional<Cidr> ipv6Prefix() {
        return Optional.ofNullable(guestCidr6);
    }

    /** The same network under another id (its log id, when the tenant's name is scoped: see {@code NetworkIds}). */
    public Network withNetworkId(String id) {
        return new Network(id, tenantId, kind, guestCidr, guestCidr6, defaultPolicy, advanced, ruleQuota, keepEstablished);
    }

    /** A copy with another default policy. */
    public Network withDefaultPolicy(DefaultPolicy policy) {
        return new Network(networkId, tenantId, kind, guestCidr, guestCidr6, policy, advanced, ruleQuota, keepEstablished);
    }

    /** A copy with another {@code keepEstablished} setting. */
    public Network withKeepEstablished(boolean keep) {
        return new Network(networkId, tenantId, kind, guestCidr, guestCidr6, defaultPolicy, advanced, ruleQuota, keep);
    }
}
