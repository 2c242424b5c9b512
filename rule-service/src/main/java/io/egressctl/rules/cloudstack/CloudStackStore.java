package io.egressctl.rules.cloudstack;

import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;

/**
 * What the CloudStack endpoint remembers beyond the egress configuration itself: seen request
 * signatures (replay protection), async jobs, and the CloudStack-only presentation of rules
 * (customid, fordisplay). None of it changes what is enforced; the egress rules stay in the log.
 */
public interface CloudStackStore {

    /** An async job: the change it tracks (jobid = change id for create and delete) and its owner. */
    record Job(String jobId, String command, String tenantId, String actor, String networkId, String ruleId,
               Instant created, Instant completed, String ruleJson) {
    }

    /** CloudStack-only attributes of a rule; null fields are unset. */
    record RuleMeta(String customId, Boolean forDisplay) {
    }

    /** Where a customid points. */
    record RuleRef(String networkId, String ruleId) {
    }

    /**
     * Marks a request fingerprint as used for {@code ttl}.
     *
     * @return true the first time, false when it was already used (a replay)
     */
    boolean firstUse(String fingerprint, Duration ttl);

    void saveJob(Job job, Duration ttl);

    Optional<Job> job(String jobId);

    /** Records when a job was first seen finished; keeps the first time. */
    void markCompleted(String jobId, Instant at);

    /** CloudStack attributes of a network's rules, by rule id. */
    Map<String, RuleMeta> ruleMeta(String networkId);

    void saveRuleMeta(String networkId, String ruleId, RuleMeta meta);

    void dropRuleMeta(String networkId, String ruleId);

    /** Claims {@code customId} for a rule; false when another rule holds it. */
    boolean claimAlias(String customId, RuleRef ref);

    Optional<RuleRef> alias(String customId);

    void dropAlias(String customId);
}
