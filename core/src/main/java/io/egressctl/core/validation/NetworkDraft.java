package io.egressctl.core.validation;

/** A network as a client states it, before validation; every field may be null (omitted). */
public record NetworkDraft(String networkId, String kind, String guestCidr, String guestCidr6,
                           String defaultPolicy, Boolean advanced, Integer ruleQuota, Boolean keepEstablished) {

    /** A draft that leaves {@code keepEstablished} out. */
    public NetworkDraft(String networkId, String kind, String guestCidr, String guestCidr6,
                        String defaultPolicy, Boolean advanced, Integer ruleQuota) {
        this(networkId, kind, guestCidr, guestCidr6, defaultPolicy, advanced, ruleQuota, null);
    }
}
