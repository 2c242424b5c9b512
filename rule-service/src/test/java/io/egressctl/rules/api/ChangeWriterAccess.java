package io.egressctl.rules.api;

import io.egressctl.rules.auth.Caller;
import io.egressctl.rules.config.ReplicatedClaims;
import redis.clients.jedis.UnifiedJedis;

import java.time.Clock;
import java.util.Map;

/** A {@link ChangeWriter}'s idempotent write for tests outside its package: the claim, then {@code publish}. */
public final class ChangeWriterAccess {

    private final ChangeWriter writer;

    public ChangeWriterAccess(UnifiedJedis redis, ReplicatedClaims claims) {
        // Neither the tracker nor the waiters are reached by a first claim.
        this.writer = new ChangeWriter(null, null, redis, claims, "test", Clock.systemUTC());
    }

    /** {@code tenant}'s write with {@code idempotencyKey}; {@code publish} stands for the event's publication. */
    public Map<String, Object> once(String tenant, String idempotencyKey, String fingerprint, Runnable publish) {
        return writer.once(new Caller("alice", tenant, false), idempotencyKey, fingerprint, "ruleId", claim -> {
            publish.run();
            return Map.of("changeId", claim.changeId(), "ruleId", claim.entityId());
        });
    }
}
