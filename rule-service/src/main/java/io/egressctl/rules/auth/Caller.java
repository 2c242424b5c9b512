package io.egressctl.rules.auth;

/**
 * An authenticated caller.
 *
 * @param actor    who, for the audit log
 * @param tenantId the tenant whose networks the caller may see and change
 * @param operator operators may manage placements and read every tenant's networks
 */
public record Caller(String actor, String tenantId, boolean operator) {

    /** True when the caller may see a network of {@code tenantId}. */
    public boolean canSee(String tenantId) {
        return operator || this.tenantId.equals(tenantId);
    }
}
