package io.egressctl.compiler.heal;

import io.egressctl.compiler.compile.CompilerPipeline;
import io.egressctl.compiler.snapshot.SnapshotStore;
import io.egressctl.compiler.status.EnforcementReportListener;
import io.egressctl.schemas.integrity.UpdateKeys;
import io.egressctl.schemas.integrity.UpdateMac;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.view.RedisKeys;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import redis.clients.jedis.UnifiedJedis;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.function.Supplier;

/**
 * Writes again everything a compiler instance owns after Redis lost it, by re-folding its partitions
 * of the network events log from the beginning up to where the live pipeline is, through a fresh
 * {@link CompilerPipeline} into the real store. The log, not the in-memory state, is the source:
 * only a replay gives each fragment the version it was produced at, tombstones, and the change
 * statuses (byte-identical to what was lost: replay determinism). Its HostUpdates and dead letters
 * are discarded (the agents hold them already; the live pipeline publishes its own pending output),
 * its checkpoint is written at the end, at the live position. Before the re-fold the views of the
 * owned networks are deleted: a batch the live pipeline wrote after the loss may have written only
 * the rules it touched. Then the hosts' applied state is folded again from the enforcement reports,
 * for hosts that have none yet (a report folded live since the loss is newer and stays).
 */
public final class LogRefold {

    private static final Logger log = LoggerFactory.getLogger(LogRefold.class);

    /** What a re-fold did. */
    public record Result(long events, long reports, int hostsRestored, int networksDropped, long millis) {
    }

    /** Sets a host's applied state only where it has none (a live report folded since the loss wins). */
    static final String SET_IF_ABSENT = """
            if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
            for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
            return 1
            """;

    private final UnifiedJedis redis;
    private final io.egressctl.core.state.Limits limits;
    private final UpdateMac mac;
    private final SnapshotStore store;
    private final Supplier<Consumer<String, byte[]>> consumers;
    private final AvroDeserializer<SpecificRecord> events;
    private final SchemaRegistryClient registry;
    private final CompilerPipeline.TopicNames topics;
    private final String reportsTopic;
    private final Duration timeout;
    private final boolean acceptUnsignedReports;

    /**
     * @param consumers new, unsubscribed consumers of raw records (no group, no auto commit); closed after use
     */
    public LogRefold(UnifiedJedis redis, SnapshotStore store, Supplier<Consumer<String, byte[]>> consumers, SchemaRegistryClient registry,
                     CompilerPipeline.TopicNames topics, String reportsTopic, Duration timeout) {
        this(redis, store, consumers, registry, topics, reportsTopic, timeout, io.egressctl.core.state.Limits.defaults(),
                new UpdateMac(UpdateKeys.NONE), false);
    }

    /**
     * @param limits the operator's limits, as the live pipeline decides under them (a re-fold under
     *               others could decide the log differently)
     * @param mac    signs the host updates it writes to the snapshot, as the live pipeline does; with keys,
     *               only the enforcement reports signed with them are folded, as the live listener does
     * @param acceptUnsignedReports folds unsigned reports too, as the live listener with the same setting
     */
    public LogRefold(UnifiedJedis redis, SnapshotStore store, Supplier<Consumer<String, byte[]>> consumers, SchemaRegistryClient registry,
                     CompilerPipeline.TopicNames topics, String reportsTopic, Duration timeout, io.egressctl.core.state.Limits limits,
                     UpdateMac mac, boolean acceptUnsignedReports) {
        this.acceptUnsignedReports = acceptUnsignedReports;
        this.limits = limits;
        this.mac = mac;
        this.redis = redis;
        this.store = store;
        this.consumers = consumers;
        this.events = CompilerPipeline.eventDeserializer(registry);
        this.registry = registry;
        this.topics = topics;
        this.reportsTopic = reportsTopic;
        this.timeout = timeout;
    }

    /**
     * @param positions the live pipeline's next offset per owned partition (what it has decided)
     * @param networks  the networks of those partitions the live pipeline knows
     * @param epochs    the live pipeline's fencing epoch per owned partition: the re-fold writes with them
     *               (a claim of its own would bump the epochs and fence the live pipeline); a partition
     *               without one is claimed
     */
    public Result refold(Map<Integer, Long> positions, Collection<String> networks, Map<Integer, Long> epochs) {
        long start = System.nanoTime();
        int dropped = 0;
        for (String n : networks) {
            dropped += (int) redis.del(RedisKeys.network(n));
        }
        long events = replay(positions, epochs);
        long[] reports = reports();
        Result r = new Result(events, reports[0], (int) reports[1], dropped, (System.nanoTime() - start) / 1_000_000);
        log.info("re-folded partitions {} after a Redis loss: {} events, {} reports ({} hosts' applied state restored) in {} ms",
                positions.keySet(), r.events(), r.reports(), r.hostsRestored(), r.millis());
        return r;
    }

    private long replay(Map<Integer, Long> positions, Map<Integer, Long> epochs) {
        CheckpointGate gate = new CheckpointGate(store, epochs);
        MockProducer<String, SpecificRecord> updates = new MockProducer<>(true, null, new StringSerializer(), (t, v) -> new byte[0]);
        MockProducer<String, byte[]> deadLetters = new MockProducer<>(true, null, new StringSerializer(), new ByteArraySerializer());
        CompilerPipeline pipeline = new CompilerPipeline(gate.store, updates, deadLetters, events, topics, Long.MAX_VALUE,
                new SimpleMeterRegistry(), limits, mac);
        List<TopicPartition> tps = new ArrayList<>();
        positions.keySet().forEach(p -> tps.add(new TopicPartition(topics.networkEvents(), p)));
        pipeline.assign(tps);
        long count = 0;
        try (Consumer<String, byte[]> consumer = consumers.get()) {
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> remaining = new HashMap<>();
            Map<TopicPartition, Long> begin = consumer.beginningOffsets(tps);
            for (TopicPartition tp : tps) {
                long to = positions.get(tp.partition());
                if (to > begin.getOrDefault(tp, 0L)) {
                    remaining.put(tp, to);
                }
            }
            long deadline = System.nanoTime() + timeout.toNanos();
            while (!remaining.isEmpty()) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("re-fold did not reach the live positions " + remaining + " within " + timeout);
                }
                List<ConsumerRecord<String, byte[]>> batch = new ArrayList<>();
                for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    Long to = positions.get(r.partition());
                    if (to != null && r.offset() < to) {
                        batch.add(r);
                    }
                }
                remaining.keySet().removeIf(tp -> consumer.position(tp) >= remaining.get(tp));
                if (!batch.isEmpty()) {
                    pipeline.process(batch);
                    count += batch.size();
                    updates.clear();
                    deadLetters.clear();
                }
            }
        }
        gate.open = true;
        pipeline.maybeCheckpoint(true);
        return count;
    }

    /**
     * Folds every enforcement report in memory and writes each host's result where the host has no
     * applied state (a compiler that starts on an empty Redis: its report listener's group has
     * committed past those reports).
     *
     * @return the reports read and the hosts whose applied state was written
     */
    public long[] reports() {
        InMemoryApplied applied = new InMemoryApplied();
        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        EnforcementReportListener fold = new EnforcementReportListener(applied.store, registry, new io.egressctl.compiler.compile.PipelineHealth(meters),
                new io.egressctl.schemas.integrity.ReportMac(mac.keys()), acceptUnsignedReports, meters);
        long count = 0;
        try (Consumer<String, byte[]> consumer = consumers.get()) {
            List<PartitionInfo> infos = consumer.partitionsFor(reportsTopic);
            if (infos == null || infos.isEmpty()) {
                return new long[] {0, 0};
            }
            List<TopicPartition> tps = infos.stream().map(i -> new TopicPartition(reportsTopic, i.partition())).toList();
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> end = consumer.endOffsets(tps);
            long deadline = System.nanoTime() + timeout.toNanos();
            while (tps.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp))) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("re-fold of " + reportsTopic + " did not reach its end within " + timeout);
                }
                List<ConsumerRecord<String, byte[]>> batch = new ArrayList<>();
                for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    if (r.offset() < end.get(new TopicPartition(r.topic(), r.partition()))) {
                        batch.add(r);
                    }
                }
                fold.onReports(batch);
                count += batch.size();
            }
        }
        int restored = 0;
        for (Map.Entry<String, Map<String, String>> e : applied.hosts.entrySet()) {
            List<String> args = new ArrayList<>();
            e.getValue().forEach((k, v) -> {
                args.add(k);
                args.add(v);
            });
            if (!args.isEmpty() && Long.valueOf(1).equals(redis.eval(SET_IF_ABSENT, List.of(RedisKeys.hostApplied(e.getKey())), args))) {
                restored++;
            }
            if (!args.isEmpty()) {
                // restored now or written live since: either way the host has an applied state to index
                redis.sadd(RedisKeys.appliedHosts(), e.getKey());
            }
        }
        return new long[] {count, restored};
    }

    /**
     * The store as the re-fold sees it: no checkpoint to restore (it replays from the beginning), none
     * written until opened; everything else goes to the real store. A proxy, so methods the store
     * gains pass through unchanged.
     */
    private static final class CheckpointGate {
        boolean open;
        final SnapshotStore store;

        CheckpointGate(SnapshotStore real, Map<Integer, Long> epochs) {
            this.store = (SnapshotStore) Proxy.newProxyInstance(SnapshotStore.class.getClassLoader(), new Class<?>[] {SnapshotStore.class},
                    (proxy, method, args) -> {
                        if (method.getName().equals("claim") && args != null && epochs.containsKey((Integer) args[0])) {
                            return epochs.get((Integer) args[0]);
                        }
                        if (method.getName().equals("readCheckpoint")) {
                            return Optional.empty();
                        }
                        if (method.getName().equals("writeCheckpoint") && !open) {
                            return null;
                        }
                        return invoke(real, method, args);
                    });
        }
    }

    /** Hosts' applied state folded in memory, with the same semantics as Redis (an ACK replaces the prefixed fields). */
    static final class InMemoryApplied {
        final Map<String, Map<String, String>> hosts = new TreeMap<>();
        final SnapshotStore store = (SnapshotStore) Proxy.newProxyInstance(SnapshotStore.class.getClassLoader(),
                new Class<?>[] {SnapshotStore.class}, (proxy, method, args) -> {
                    switch (method.getName()) {
                        case "writeApplied" -> {
                            @SuppressWarnings("unchecked") Map<String, String> fields = (Map<String, String>) args[1];
                            hosts.computeIfAbsent((String) args[0], h -> new TreeMap<>()).putAll(fields);
                            return null;
                        }
                        case "replaceApplied" -> {
                            @SuppressWarnings("unchecked") Map<String, String> fields = (Map<String, String>) args[1];
                            String prefix = (String) args[2];
                            Map<String, String> h = hosts.computeIfAbsent((String) args[0], x -> new TreeMap<>());
                            h.keySet().removeIf(k -> k.startsWith(prefix) && !fields.containsKey(k));
                            h.putAll(fields);
                            return null;
                        }
                        case "toString" -> {
                            return "in-memory applied state";
                        }
                        default -> throw new UnsupportedOperationException(method.getName() + " is not part of the report fold");
                    }
                });
    }

    private static Object invoke(Object target, Method method, Object[] args) throws Throwable {
        try {
            return method.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }
}
