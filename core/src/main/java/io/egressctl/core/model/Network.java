package io.egressctl.core.model;

import java.util.Objects;
import java.util.Optional;

/**
 * A guest network and its egress defaults. Immutable; all fields non-null except {@code guestCidr6}.
 *
 * @param advanced  explicit rule actions and priorities are allowed (beyond CloudStack)
 * @param ruleQuota the most rules the network may hold
 */
public record Network(String networkId, String tenantId, NetworkKind kind, Cidr guestCidr, Cidr guestCidr6,
                      DefaultPolicy defaultPolicy, boolean advanced, int ruleQuota) {

    /** Rule quota used when none is given. */
    public static final int DEFAULT_RULE_QUOTA = 1000;

    public Network {
        Objects.requireNonNull(networkId, "networkId");
        Objects.requireNonNull(tenantId, "tenantId");
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(guestCidr, "guestCidr");
        Objects.requireNonNull(defaultPolicy, "defaultPolicy");
    }

    /** The IPv6 prefix, when the network has one. */
    public Optional<Cidr> ipv6Prefix() {
        return Optional.ofNullable(guestCidr6);
    }

    /** A copy with another default policy. */
    public Network withDefaultPolicy(DefaultPolicy policy) {
        return new Network(networkId, tenantId, kind, guestCidr, guestCidr6, policy, advanced, ruleQuota);
    }
}
