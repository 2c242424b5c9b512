package io.egressctl.core.validation;

/** A network as a client states it, before validation; every field may be null (omitted). */
public record NetworkDraft(String networkId, String kind, String guestCidr, String guestCidr6,
                           String defaultPolicy, Boolean advanced, Integer ruleQuota) {
}
