package io.egressctl.rules.cloudstack;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/** The store in memory, expiring seen fingerprints on the given clock (tests only). */
final class InMemoryCloudStackStore implements CloudStackStore {

    private final Clock clock;
    private final Map<String, Instant> seen = new HashMap<>();
    private final Map<String, Job> jobs = new HashMap<>();
    private final Map<String, Map<String, RuleMeta>> meta = new HashMap<>();
    private final Map<String, RuleRef> aliases = new HashMap<>();

    InMemoryCloudStackStore(Clock clock) {
        this.clock = clock;
    }

    int seenCount() {
        return seen.size();
    }

    Instant seenUntil(String fingerprintPrefix) {
        return seen.entrySet().stream().filter(e -> e.getKey().startsWith(fingerprintPrefix)).map(Map.Entry::getValue).findFirst().orElse(null);
    }

    @Override
    public synchronized boolean firstUse(String fingerprint, Duration ttl) {
        Instant now = clock.instant();
        Instant until = seen.get(fingerprint);
        if (until != null && until.isAfter(now)) {
            return false;
        }
        seen.put(fingerprint, now.plus(ttl));
        return true;
    }

    @Override
    public synchronized void saveJob(Job job, Duration ttl) {
        jobs.put(job.jobId(), job);
    }

    @Override
    public synchronized Optional<Job> job(String jobId) {
        return Optional.ofNullable(jobs.get(jobId));
    }

    @Override
    public synchronized void markCompleted(String jobId, Instant at) {
        Job j = jobs.get(jobId);
        if (j != null && j.completed() == null) {
            jobs.put(jobId, new Job(j.jobId(), j.command(), j.tenantId(), j.actor(), j.networkId(), j.ruleId(), j.created(), at, j.ruleJson()));
        }
    }

    @Override
    public synchronized Map<String, RuleMeta> ruleMeta(String networkId) {
        return Map.copyOf(meta.getOrDefault(networkId, Map.of()));
    }

    @Override
    public synchronized void saveRuleMeta(String networkId, String ruleId, RuleMeta m) {
        meta.computeIfAbsent(networkId, k -> new HashMap<>()).put(ruleId, m);
    }

    @Override
    public synchronized void dropRuleMeta(String networkId, String ruleId) {
        meta.getOrDefault(networkId, new HashMap<>()).remove(ruleId);
    }

    @Override
    public synchronized boolean claimAlias(String customId, RuleRef ref) {
        RuleRef existing = aliases.putIfAbsent(customId, ref);
        return existing == null || existing.equals(ref);
    }

    @Override
    public synchronized Optional<RuleRef> alias(String customId) {
        return Optional.ofNullable(aliases.get(customId));
    }

    @Override
    public synchronized void dropAlias(String customId) {
        aliases.remove(customId);
    }
}
