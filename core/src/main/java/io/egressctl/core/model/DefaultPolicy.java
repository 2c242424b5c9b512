package io.egressctl.core.model;

/**
 * Verdict for egress traffic that no rule matches (CloudStack semantics): under {@link #ALLOW}
 * rules block what they match; under {@link #DENY} everything is blocked and rules open what
 * they match.
 */
public enum DefaultPolicy {
    ALLOW, DENY;

    /** The action a CloudStack-mode rule (one without an explicit action) takes under this policy. */
    public Action ruleAction() {
        return this == ALLOW ? Action.DENY : Action.ALLOW;
    }
}
