package io.egressctl.compiler.heal;

import io.egressctl.schemas.view.RedisKeys;
import redis.clients.jedis.UnifiedJedis;

import java.time.Instant;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The compiler's side of {@code egress:rebuilding} (field: partition number, value: what is being
 * rebuilt and how far it got): a partition is marked while its state is being rebuilt from the log
 * (assigned without a checkpoint: until the replay reaches the log's end as it was at assignment;
 * healing after a Redis loss: until the re-fold is written), and the field is deleted once the
 * partition's views, snapshots and statuses are complete again. rule-service answers 503 while any
 * field is present (or the generation marker is absent). Not thread-safe: the listener's lock guards it.
 */
final class RebuildMarkers {

    /** Progress is written at most this often per partition while replaying (one HSET). */
    private static final long PROGRESS_EVERY_MS = 1000;

    private final UnifiedJedis redis;
    /** Partitions replaying from the beginning: the offset to reach (the log end at assignment). */
    private final Map<Integer, Long> targets = new TreeMap<>();
    private final Map<Integer, Long> lastProgress = new HashMap<>();

    RebuildMarkers(UnifiedJedis redis) {
        this.redis = redis;
    }

    /**
     * Partitions just assigned: those restored from a checkpoint are complete (their field is
     * deleted); the others replay from the beginning up to {@code ends} (their log end now).
     */
    void assigned(Set<Integer> restored, Map<Integer, Long> replayingEnds) {
        for (int p : restored) {
            targets.remove(p);
            redis.hdel(RedisKeys.rebuilding(), Integer.toString(p));
        }
        replayingEnds.forEach((p, end) -> {
            if (end <= 0) {
                targets.remove(p);
                redis.hdel(RedisKeys.rebuilding(), Integer.toString(p));
            } else {
                targets.put(p, end);
                write(p, "replaying the log from the beginning: at 0 of " + end);
            }
        });
    }

    /** The next offset reached per partition after a stored and published batch. */
    void reached(Map<Integer, Long> positions) {
        long now = System.currentTimeMillis();
        positions.forEach((p, pos) -> {
            Long target = targets.get(p);
            if (target == null) {
                return;
            }
            if (pos >= target) {
                targets.remove(p);
                lastProgress.remove(p);
                redis.hdel(RedisKeys.rebuilding(), Integer.toString(p));
            } else if (now - lastProgress.getOrDefault(p, 0L) >= PROGRESS_EVERY_MS) {
                lastProgress.put(p, now);
                write(p, "replaying the log from the beginning: at " + pos + " of " + target);
            }
        });
    }

    /** Partitions given up: their marker is the next owner's to set or clear. */
    void revoked(Collection<Integer> partitions) {
        partitions.forEach(p -> {
            targets.remove(p);
            lastProgress.remove(p);
        });
    }

    /** Marks partitions as healing (before a re-fold after a Redis loss). */
    void healing(Collection<Integer> partitions) {
        partitions.forEach(p -> write(p, "healing after a Redis loss: re-folding the log"));
    }

    /** After a heal: partitions still replaying keep their marker (with its target), the others are complete. */
    void healed(Collection<Integer> partitions) {
        for (int p : partitions) {
            Long target = targets.get(p);
            if (target == null) {
                redis.hdel(RedisKeys.rebuilding(), Integer.toString(p));
            } else {
                write(p, "replaying the log from the beginning: target " + target);
            }
        }
    }

    /** Partitions this instance is replaying, with their targets (for health). */
    Map<Integer, Long> replaying() {
        return Map.copyOf(targets);
    }

    private void write(int p, String what) {
        redis.hset(RedisKeys.rebuilding(), Integer.toString(p), what + " (since " + Instant.now() + ")");
    }

    /** Every partition number below {@code partitions}, as field names. */
    static List<String> fields(int partitions) {
        return java.util.stream.IntStream.range(0, partitions).mapToObj(Integer::toString).toList();
    }
}
