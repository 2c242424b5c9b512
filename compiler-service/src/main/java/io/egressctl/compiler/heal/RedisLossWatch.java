package io.egressctl.compiler.heal;

import io.egressctl.compiler.compile.CompilerPipeline;
import io.egressctl.compiler.config.EgressProperties;
import io.egressctl.compiler.snapshot.SnapshotStore;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.Topics;
import io.egressctl.schemas.view.RedisKeys;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.stereotype.Component;
import redis.clients.jedis.UnifiedJedis;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Notices that Redis lost what the compiler wrote (emptied by FLUSHALL, restarted without
 * persistence, replaced) and has it written again, without an operator.
 *
 * <p><b>The generation marker.</b> {@code egress:{control}:generation} holds a random id. The first
 * compiler that finds it absent sets it and, in the same script, marks every partition of the network
 * events log as rebuilding ({@code egress:{control}:rebuilding}), so rule-service answers 503 from
 * that moment until each partition's owner has written its state again. Each instance remembers the
 * id it last saw; an absent or other id means the Redis it wrote to is gone. The marker is checked
 * every {@code egress.compiler.heal.check-interval-ms} (1 s) and at once after any failed batch.
 *
 * <p><b>The heal.</b> On a loss the listener (under its lock, so no batch runs meanwhile) calls
 * {@link #heal}: the instance re-folds its partitions from the log up to where it is
 * ({@link LogRefold}), folds the enforcement reports again into hosts' applied state, and clears its
 * partitions' rebuilding markers. Agents are not involved: they keep their tables (they read Redis
 * only at bootstrap, and fail closed on an empty snapshot).
 *
 * <p>A compiler that starts on a Redis without the marker drops any checkpoint it finds there (one
 * written after a loss by an instance that stopped before noticing it would be newer than what Redis
 * holds) and folds the enforcement reports again; its partitions then replay from the beginning.
 *
 * <p>It also keeps the markers of a start without a checkpoint: a partition replaying the log from
 * the beginning is marked until it reaches the log's end as it was when the partition was assigned.
 */
@Component
public class RedisLossWatch implements HealthIndicator, DisposableBean {

    private static final Logger log = LoggerFactory.getLogger(RedisLossWatch.class);

    /**
     * KEYS: generation, rebuilding. ARGV: a new generation id, then every partition number. Returns
     * the generation in force (the existing one, or the new one it set while marking every partition).
     */
    static final String CLAIM = """
            local g = redis.call('GET', KEYS[1])
            if g then return g end
            redis.call('SET', KEYS[1], ARGV[1])
            for i = 2, #ARGV do
              redis.call('HSET', KEYS[2], ARGV[i], 'Redis lost its state: waiting for the owner of this partition to rebuild it')
            end
            return ARGV[1]
            """;

    private final UnifiedJedis redis;
    private final RebuildMarkers markers;
    private final LogRefold refold;
    private final String bootstrap;
    private final int partitions;
    private final long intervalMillis;
    private final ScheduledExecutorService exec = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "redis-loss-watch");
        t.setDaemon(true);
        return t;
    });
    private volatile String generation;
    private volatile Runnable healer;
    private volatile String lastHeal = "none";
    private volatile String lastError;
    private volatile Map<Integer, Long> replaying = Map.of();

    RedisLossWatch(UnifiedJedis redis, SnapshotStore store, SchemaRegistryClient registry, EgressProperties props,
                   @Value("${spring.kafka.bootstrap-servers}") String bootstrap,
                   @Value("${egress.compiler.heal.check-interval-ms:1000}") long intervalMillis,
                   @Value("${egress.compiler.heal.timeout-s:240}") long timeoutSeconds,
                   io.egressctl.core.state.Limits limits, io.egressctl.schemas.integrity.UpdateMac mac,
                   @Value("${egress.compiler.accept-unsigned-reports:false}") boolean acceptUnsignedReports) {
        this.redis = redis;
        this.markers = new RebuildMarkers(redis);
        this.bootstrap = bootstrap;
        this.partitions = props.partitions();
        this.intervalMillis = intervalMillis;
        this.refold = new LogRefold(redis, store, this::consumer, registry, CompilerPipeline.TopicNames.defaults(),
                Topics.ENFORCEMENT_REPORTS, Duration.ofSeconds(timeoutSeconds), limits, mac, acceptUnsignedReports);
    }

    /**
     * Claims (or learns) the generation, then checks it periodically; {@code heal} runs the heal under
     * the caller's lock (it calls back {@link #heal} with the caller's owned positions and networks).
     */
    public void attach(Runnable heal) {
        this.healer = heal;
        String candidate = newGeneration();
        try {
            this.generation = claim(candidate);
        } catch (RuntimeException e) {
            // Redis unreachable at start: the first tick that reaches it claims the marker and heals (a
            // re-fold of whatever the instance owns by then, harmless if Redis kept everything).
            lastError = e.toString();
            log.warn("cannot read the Redis generation marker at start ({}); checking again every {} ms", e.toString(), intervalMillis);
            exec.scheduleWithFixedDelay(this::tick, intervalMillis, intervalMillis, TimeUnit.MILLISECONDS);
            return;
        }
        log.info("Redis generation {}", generation);
        if (generation.equals(candidate)) {
            // No marker: whatever checkpoint Redis holds was written after Redis lost its state (by a compiler
            // that did not notice before it stopped), so it may be newer than the views and snapshots Redis
            // holds. It is not restored: the partitions replay from the beginning, marked as rebuilding.
            for (int p = 0; p < partitions; p++) {
                if (redis.del(RedisKeys.checkpoint(p)) > 0) {
                    log.warn("partition {}: a checkpoint without a generation marker (written after a Redis loss) was dropped;"
                            + " the partition replays from the beginning", p);
                }
            }
            // Redis holds nothing of ours (a first start, or it lost its state while no compiler ran): the
            // partitions replay from the beginning as they are assigned, but the report listener's group has
            // committed past the reports that made the hosts' applied state.
            exec.execute(this::refoldReports);
        }
        exec.scheduleWithFixedDelay(this::tick, intervalMillis, intervalMillis, TimeUnit.MILLISECONDS);
    }

    private void refoldReports() {
        for (int attempt = 1; ; attempt++) {
            try {
                long[] r = refold.reports();
                log.info("Redis held no generation marker at start: folded {} enforcement reports again ({} hosts' applied state restored)",
                        r[0], r[1]);
                lastHeal = Instant.now() + ": applied state of " + r[1] + " hosts folded again from " + r[0] + " reports at start";
                return;
            } catch (RuntimeException e) {
                lastError = e.toString();
                log.warn("folding the enforcement reports again failed (attempt {}), retrying: {}", attempt, e.toString());
                try {
                    Thread.sleep(Math.min(30_000, 500L * attempt));
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /** A batch failed (Redis may be gone or back empty): check the marker now rather than at the next tick. */
    public void writeFailed() {
        exec.execute(this::tick);
    }

    /** Partitions assigned; {@code seeks} holds those restored from a checkpoint. Call on the consumer thread, under the lock. */
    public void assigned(Collection<TopicPartition> assignment, Map<TopicPartition, Long> seeks) {
        Set<Integer> restored = new TreeSet<>();
        List<TopicPartition> fromStart = new ArrayList<>();
        for (TopicPartition tp : assignment) {
            if (seeks.containsKey(tp)) {
                restored.add(tp.partition());
            } else {
                fromStart.add(tp);
            }
        }
        Map<Integer, Long> ends = new HashMap<>();
        if (!fromStart.isEmpty()) {
            try (Consumer<String, byte[]> c = consumer()) {
                c.endOffsets(fromStart).forEach((tp, end) -> ends.put(tp.partition(), end));
            }
        }
        markers.assigned(restored, ends);
        replaying = markers.replaying();
    }

    /** A batch was stored and published: partitions replaying from the beginning may have caught up. */
    public void afterBatch(List<ConsumerRecord<String, byte[]>> records) {
        if (replaying.isEmpty() || records.isEmpty()) {
            return;
        }
        Map<Integer, Long> reached = new HashMap<>();
        for (ConsumerRecord<String, byte[]> r : records) {
            reached.merge(r.partition(), r.offset() + 1, Math::max);
        }
        markers.reached(reached);
        replaying = markers.replaying();
    }

    /** Partitions revoked. */
    public void revoked(Collection<TopicPartition> partitions) {
        markers.revoked(partitions.stream().map(TopicPartition::partition).toList());
        replaying = markers.replaying();
    }

    /**
     * Writes again what this instance owns (see the class comment). Call under the listener's lock.
     *
     * @param positions the live pipeline's next offset per owned partition
     * @param networks  the networks of those partitions
     * @param epochs    the live pipeline's fencing epochs: the re-fold writes as this instance
     */
    public void heal(Map<Integer, Long> positions, Collection<String> networks, Map<Integer, Long> epochs) {
        String g = claim(newGeneration());
        if (g.equals(generation)) {
            return;
        }
        log.warn("Redis lost the compiler's state (generation {} -> {}): re-folding partitions {} from the log", generation, g,
                positions.keySet());
        markers.healing(positions.keySet());
        LogRefold.Result r = refold.refold(positions, networks, epochs);
        markers.healed(positions.keySet());
        generation = g;
        lastHeal = Instant.now() + ": " + r;
        lastError = null;
    }

    /** The generation this instance last saw, null before {@link #attach}. */
    public String generation() {
        return generation;
    }

    private void tick() {
        try {
            String current = redis.get(RedisKeys.generation());
            if (current != null && current.equals(generation)) {
                return;
            }
            Runnable h = healer;
            if (h != null) {
                h.run();
            }
        } catch (RuntimeException e) {
            // Redis down (it may come back empty: the next tick sees it) or a heal that failed: retried.
            lastError = e.toString();
            log.warn("Redis loss check or heal failed, retrying: {}", e.toString());
        }
    }

    private static String newGeneration() {
        return UUID.randomUUID() + " " + Instant.now();
    }

    /** Sets {@code candidate} (and marks every partition) when Redis holds no marker; returns the marker in force. */
    private String claim(String candidate) {
        List<String> args = new ArrayList<>();
        args.add(candidate);
        args.addAll(RebuildMarkers.fields(partitions));
        return (String) redis.eval(CLAIM, List.of(RedisKeys.generation(), RedisKeys.rebuilding()), args);
    }

    private Consumer<String, byte[]> consumer() {
        return new KafkaConsumer<>(io.egressctl.schemas.serde.KafkaDefaults.client(bootstrap,
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false,
                ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 500,
                ConsumerConfig.CLIENT_ID_CONFIG, "egress-compiler-refold-" + UUID.randomUUID().toString().substring(0, 8)),
                new StringDeserializer(), new ByteArrayDeserializer());
    }

    /** Always UP (the compiler keeps compiling); details say what is being rebuilt and how the last heal went. */
    @Override
    public Health health() {
        Health.Builder b = Health.up().withDetail("generation", String.valueOf(generation)).withDetail("lastHeal", lastHeal);
        if (!replaying.isEmpty()) {
            b.withDetail("rebuilding", "replaying partitions " + replaying.keySet() + " from the beginning");
        }
        if (lastError != null) {
            b.withDetail("lastError", lastError);
        }
        return b.build();
    }

    @Override
    public void destroy() {
        exec.shutdownNow();
    }
}
