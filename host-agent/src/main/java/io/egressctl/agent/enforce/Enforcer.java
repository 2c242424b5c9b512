package io.egressctl.agent.enforce;

/**
 * The seam between the agent and the place rules are enforced. Implementations apply a complete
 * rendered ruleset atomically: after {@link #apply} returns, all of it is in force; after it
 * throws, the previous ruleset still is (invariant 5). Called from the agent's one sync thread.
 */
public interface Enforcer {

    /** Short name for reports and logs, e.g. {@code nftables} or {@code dry-run}. */
    String name();

    /**
     * Replaces the product's ruleset with {@code script} in one transaction.
     *
     * @throws EnforcementException with the enforcer's own message when the apply failed
     */
    void apply(String script) throws EnforcementException;

    /**
     * True when what is in force equals what {@code script} defines; false means drift (for
     * example a rule deleted by hand) or nothing applied yet.
     */
    boolean inSync(String script) throws EnforcementException;
}
