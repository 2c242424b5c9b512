package io.egressctl.rules.config;

import io.egressctl.schemas.redis.RedisTarget;
import redis.clients.jedis.AbstractPipeline;
import redis.clients.jedis.Response;
import redis.clients.jedis.UnifiedJedis;
import redis.clients.jedis.params.SetParams;

/**
 * The claims rule-service makes in Redis before it publishes (a bare network name's owner, an
 * idempotency key's change id), made so that a Redis fail-over cannot lose them once they count: the
 * {@code SET ... NX} and a {@code WAIT} for {@code ack-replicas} replicas go on one connection (WAIT
 * counts that connection's writes), and a claim that fewer replicas hold within {@code ack-timeout-ms}
 * is {@link NotReplicatedException not replicated}: the caller publishes nothing and answers 503, so
 * the client retries. Without it, a primary lost right after a claim could take the claim along while
 * its event is in the log: a retry would claim again and publish a second event (a duplicate change),
 * or a second tenant could claim a name the first one's network already uses. {@code ack-replicas}
 * comes from {@code REDIS_URL} (1 with Sentinel, 0 standalone: then a claim is a plain SET NX).
 */
public final class ReplicatedClaims {

    private final UnifiedJedis redis;
    private final int ackReplicas;
    private final long ackTimeoutMs;

    public ReplicatedClaims(UnifiedJedis redis, int ackReplicas, long ackTimeoutMs) {
        this.redis = redis;
        this.ackReplicas = ackReplicas;
        this.ackTimeoutMs = ackTimeoutMs;
    }

    /** The claims of the Redis {@code redisUrl} names, with its {@code ack-replicas} and {@code ack-timeout-ms}. */
    public static ReplicatedClaims of(UnifiedJedis redis, String redisUrl) {
        RedisTarget target = RedisTarget.parse(redisUrl);
        return new ReplicatedClaims(redis, target.ackReplicas(), target.ackTimeoutMs());
    }

    /** A claim was written to the primary but fewer replicas than wanted hold it: it may be lost in a fail-over. */
    public static final class NotReplicatedException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        public NotReplicatedException(String message) {
            super(message);
        }
    }

    /**
     * {@code SET key value} with {@code params} (NX, maybe EX), counted once {@code ack-replicas}
     * replicas hold it.
     *
     * @return true when this call set the key, false when it was there already
     * @throws NotReplicatedException when it set the key but too few replicas acknowledged it in time
     *                                (the key may still be on the primary)
     */
    public boolean setIfAbsent(String key, String value, SetParams params) {
        if (ackReplicas == 0) {
            return redis.set(key, value, params) != null;
        }
        Response<String> set;
        Response<Long> acked;
        try (AbstractPipeline p = redis.pipelined()) {
            set = p.set(key, value, params);
            acked = p.waitReplicas(key, ackReplicas, ackTimeoutMs);
            p.sync();
        }
        boolean mine = set.get() != null;
        if (mine && acked.get() < ackReplicas) {
            throw new NotReplicatedException("Redis acknowledged the claim of " + key + " on " + acked.get() + " replica(s) within "
                    + ackTimeoutMs + " ms, " + ackReplicas + " wanted (ack-replicas in REDIS_URL): it could be lost in a fail-over");
        }
        return mine;
    }
}
