package io.egressctl.agent.enforce;

import io.egressctl.core.nft.NftRuleset;

/**
 * The seam between the agent and the place rules are enforced. Implementations take the host's ruleset
 * as values ({@link NftRuleset}; text is made of it only where it leaves the process) and apply it atomically: after {@link #apply} returns, all of it is in force; after it
 * throws, the previous ruleset still is (invariant 5). Called from the agent's one sync thread.
 */
public interface Enforcer {

    /** Short name for reports and logs, e.g. {@code nftables} or {@code dry-run}. */
    String name();

    /**
     * Replaces the product's tables with {@code ruleset}'s in one transaction.
     *
     * @throws EnforcementException with the enforcer's own message when the apply failed
     */
    void apply(NftRuleset ruleset) throws EnforcementException;

    /**
     * Asks whether {@link #apply} would take {@code ruleset}, without changing what is in force. The
     * agent uses it to find which network a refused transaction is due to, so that one network's
     * refused apply does not hold back the others on the host.
     *
     * <p>The default accepts everything (an enforcer that cannot ask): the agent then isolates a
     * network only by the host's element limit, and a refused apply stays a refusal of the whole host.
     *
     * @throws EnforcementException with the enforcer's own message when it would refuse the ruleset
     */
    default void check(NftRuleset ruleset) throws EnforcementException {
    }

    /**
     * True when what is in force equals what {@code ruleset} defines; false means drift (for
     * example a rule deleted by hand) or nothing applied yet.
     */
    boolean inSync(NftRuleset ruleset) throws EnforcementException;

    /**
     * True when what is in force holds any VM or rule of ours: something an empty ruleset would take
     * away. The agent asks before it would apply an empty snapshot at bootstrap, and keeps the table
     * instead when this is true (fail closed: an emptied cache must not empty the kernel). False when
     * nothing of ours is in force (a new host) or only an empty table is.
     *
     * <p>The default answers false (this enforcer cannot tell): such an enforcer is treated as a new
     * host. Kernel enforcers override it with one read of their table.
     *
     * @throws EnforcementException when what is in force cannot be read (the agent then holds back too)
     */
    default boolean holdsRules() throws EnforcementException {
        return false;
    }
}
