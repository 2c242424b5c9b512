package io.egressctl.rules.views;

import io.egressctl.schemas.view.RedisKeys;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.stereotype.Component;
import redis.clients.jedis.UnifiedJedis;

import java.util.Map;
import java.util.TreeMap;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * Whether the read model in Redis is complete, as the compiler says in Redis: not while the
 * generation marker {@code egress:{control}:generation} is absent (Redis lost its state and no
 * compiler has noticed yet, or none ever ran) nor while {@code egress:{control}:rebuilding} names
 * partitions (a compiler replays the log without a checkpoint, or heals after a loss). While it is
 * not, the API answers 503 with a Retry-After rather than from an empty view, and readiness is
 * OUT_OF_SERVICE with the reason. Read at most every {@code egress.rebuild-check-ms} (100 ms): one
 * round trip for the two keys.
 */
@Component("rebuild")
public class RebuildState implements HealthIndicator {

    /** What the read model is: complete, or being rebuilt and why. */
    public record Status(boolean rebuilding, String reason) {
        public static final Status COMPLETE = new Status(false, null);
    }

    private final Supplier<Status> reader;
    private final long cacheMillis;
    private final LongSupplier clock;
    private volatile Status last;
    private volatile long readAt;

    @Autowired
    RebuildState(UnifiedJedis redis, @Value("${egress.rebuild-check-ms:100}") long cacheMillis) {
        this(() -> read(redis), cacheMillis, System::currentTimeMillis);
    }

    /**
     * @param reader      reads the status from where the compiler keeps it (Redis; a fake in unit tests)
     * @param cacheMillis how long a read status is used before reading again
     */
    public RebuildState(Supplier<Status> reader, long cacheMillis, LongSupplier clock) {
        this.reader = reader;
        this.cacheMillis = cacheMillis;
        this.clock = clock;
    }

    /** The current status (cached for a short while). */
    public Status status() {
        long now = clock.getAsLong();
        Status s = last;
        if (s == null || now - readAt >= cacheMillis) {
            s = reader.get();
            last = s;
            readAt = now;
        }
        return s;
    }

    private static Status read(UnifiedJedis redis) {
        String generation;
        Map<String, String> partitions;
        try (var p = redis.pipelined()) {
            var g = p.get(RedisKeys.generation());
            var r = p.hgetAll(RedisKeys.rebuilding());
            p.sync();
            generation = g.get();
            partitions = r.get();
        }
        return classify(generation, partitions);
    }

    /** Pure: the status for what Redis holds. */
    public static Status classify(String generation, Map<String, String> rebuilding) {
        if (generation == null) {
            return new Status(true, "the read model is not built: Redis holds no generation marker (it was emptied or"
                    + " restarted, or no compiler-service has started yet); the compiler rebuilds it from the log");
        }
        if (rebuilding != null && !rebuilding.isEmpty()) {
            Map<Integer, String> sorted = new TreeMap<>();
            rebuilding.forEach((k, v) -> {
                try {
                    sorted.put(Integer.parseInt(k), v);
                } catch (NumberFormatException e) {
                    sorted.put(-1, k + ": " + v);
                }
            });
            StringBuilder sb = new StringBuilder("the compiler is rebuilding the read model from the log: ");
            String sep = "";
            for (var e : sorted.entrySet()) {
                sb.append(sep).append("partition ").append(e.getKey()).append(": ").append(e.getValue());
                sep = "; ";
            }
            return new Status(true, sb.toString());
        }
        return Status.COMPLETE;
    }

    @Override
    public Health health() {
        try {
            Status s = status();
            return s.rebuilding() ? Health.outOfService().withDetail("reason", s.reason()).build() : Health.up().build();
        } catch (RuntimeException e) {
            return Health.down().withDetail("reason", "cannot read the rebuild markers in Redis: " + e.getMessage()).build();
        }
    }
}
