package io.egressctl.rules.cloudstack;

import io.egressctl.schemas.view.RedisKeys;
import org.springframework.stereotype.Component;
import redis.clients.jedis.UnifiedJedis;
import redis.clients.jedis.params.SetParams;

import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The CloudStack endpoint's state in Redis, under {@code egress:cs:}:
 * <pre>
 * egress:cs:seen:F          STRING  a used request fingerprint (SET NX EX: replay protection), until the request expires
 * egress:cs:job:J           HASH    async job J (command, owner, network, rule, created, completed, rule snapshot), 24 h
 * egress:cs:meta:{N}        HASH    ruleId -> "customid fordisplay" of network N's rules
 * egress:cs:alias:C         STRING  customid C -> "networkId ruleId"
 * </pre>
 * Seen fingerprints and jobs are short-lived by nature. Meta and aliases are presentation only (what
 * CloudStack shows as the rule's id and display flag); a Redis rebuild loses them and rules then show
 * their own ids again.
 */
@Component
class RedisCloudStackStore implements CloudStackStore {

    static final String PREFIX = RedisKeys.PREFIX + "cs:";

    private final UnifiedJedis redis;

    RedisCloudStackStore(UnifiedJedis redis) {
        this.redis = redis;
    }

    @Override
    public boolean firstUse(String fingerprint, Duration ttl) {
        long seconds = Math.max(1, ttl.toSeconds() + (ttl.toMillis() % 1000 == 0 ? 0 : 1));
        return redis.set(PREFIX + "seen:" + fingerprint, "1", SetParams.setParams().nx().ex(seconds)) != null;
    }

    @Override
    public void saveJob(Job job, Duration ttl) {
        Map<String, String> f = new LinkedHashMap<>();
        f.put("command", job.command());
        f.put("tenantId", job.tenantId());
        f.put("actor", job.actor());
        f.put("networkId", job.networkId());
        f.put("ruleId", job.ruleId());
        f.put("created", job.created().toString());
        if (job.completed() != null) {
            f.put("completed", job.completed().toString());
        }
        if (job.ruleJson() != null) {
            f.put("rule", job.ruleJson());
        }
        String key = PREFIX + "job:" + job.jobId();
        redis.hset(key, f);
        redis.expire(key, ttl.toSeconds());
    }

    @Override
    public Optional<Job> job(String jobId) {
        Map<String, String> f = redis.hgetAll(PREFIX + "job:" + jobId);
        if (f.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(new Job(jobId, f.get("command"), f.get("tenantId"), f.get("actor"), f.get("networkId"), f.get("ruleId"),
                Instant.parse(f.get("created")), f.containsKey("completed") ? Instant.parse(f.get("completed")) : null, f.get("rule")));
    }

    @Override
    public void markCompleted(String jobId, Instant at) {
        redis.hsetnx(PREFIX + "job:" + jobId, "completed", at.toString());
    }

    @Override
    public Map<String, RuleMeta> ruleMeta(String networkId) {
        Map<String, RuleMeta> out = new HashMap<>();
        redis.hgetAll(metaKey(networkId)).forEach((ruleId, text) -> {
            String[] parts = text.split(" ", -1);
            String customId = parts[0].isEmpty() ? null : parts[0];
            Boolean display = parts.length < 2 || parts[1].isEmpty() ? null : Boolean.valueOf(parts[1]);
            out.put(ruleId, new RuleMeta(customId, display));
        });
        return out;
    }

    @Override
    public void saveRuleMeta(String networkId, String ruleId, RuleMeta meta) {
        redis.hset(metaKey(networkId), ruleId, (meta.customId() == null ? "" : meta.customId()) + " "
                + (meta.forDisplay() == null ? "" : meta.forDisplay()));
    }

    @Override
    public void dropRuleMeta(String networkId, String ruleId) {
        redis.hdel(metaKey(networkId), ruleId);
    }

    @Override
    public boolean claimAlias(String customId, RuleRef ref) {
        String key = PREFIX + "alias:" + customId;
        String value = ref.networkId() + " " + ref.ruleId();
        if (redis.set(key, value, SetParams.setParams().nx()) != null) {
            return true;
        }
        return value.equals(redis.get(key));
    }

    @Override
    public Optional<RuleRef> alias(String customId) {
        String v = redis.get(PREFIX + "alias:" + customId);
        if (v == null) {
            return Optional.empty();
        }
        String[] parts = v.split(" ", 2);
        return parts.length == 2 ? Optional.of(new RuleRef(parts[0], parts[1])) : Optional.empty();
    }

    @Override
    public void dropAlias(String customId) {
        redis.del(PREFIX + "alias:" + customId);
    }

    private static String metaKey(String networkId) {
        return PREFIX + "meta:{" + networkId + "}";
    }
}
