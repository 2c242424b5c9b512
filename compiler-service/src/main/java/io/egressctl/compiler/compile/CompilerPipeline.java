package io.egressctl.compiler.compile;

import io.egressctl.compiler.snapshot.FencedException;
import io.egressctl.compiler.snapshot.SnapshotStore;
import io.egressctl.compiler.snapshot.SnapshotStore.ChangeWrite;
import io.egressctl.compiler.snapshot.SnapshotStore.FragmentWrite;
import io.egressctl.compiler.snapshot.SnapshotStore.InterfaceWrite;
import io.egressctl.compiler.snapshot.SnapshotStore.ViewWrite;
import io.egressctl.compiler.snapshot.SnapshotStore.WriteOutcome;
import io.egressctl.core.compile.CompileResult;
import io.egressctl.core.compile.CompilerEngine;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.FragmentDelta;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.state.Decision;
import io.egressctl.core.state.NetworkState;
import io.egressctl.core.validation.ValidationException;
import io.egressctl.events.HostUpdate;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.schemas.integrity.UpdateKeys;
import io.egressctl.schemas.integrity.UpdateMac;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.Topics;
import io.egressctl.schemas.view.NetworkView;
import io.egressctl.schemas.view.RedisKeys;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import io.egressctl.schemas.registry.RegistryOutage;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import tools.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The compiler's work on one consumer batch, independent of Spring:
 * <pre>
 *  records of egress.network-events (RuleEvent, WorkloadEvent: one log, one position per network)
 *     │
 *     ▼ decode/validate──▶ CompilerEngine (decide in log order, compile the network)
 *     │ poison ─▶ &lt;topic&gt;.DLT          │ FragmentUpdates, coalesced per (host, network): last wins
 *     ▼                                  ▼
 *  change status, network views,
 *  host interface claims ──────────▶ SnapshotStore.write(batch)  (one pipelined round trip)
 *                                        │ outcome per fragment
 *                                        ▼
 *                         HostUpdate to egress.host-updates unless the store held newer; flush
 *                                        ▼
 *                         checkpoint per owned partition (offsets + network states), now and then
 * </pre>
 * HostUpdates carry the version (the position in the log) and are stamped with the change id and
 * the time of the event that produced them, never the wall clock, so whatever the batching, the
 * poll sizes or the restarts, the same log publishes the same (version, content) HostUpdates
 * (coalescing only leaves some out) and a rebuild writes byte-identical snapshots
 * ({@code ReplayDeterminismTest}). On the log a version may travel as a rule-keyed delta against
 * the version of its (host, network) this instance published before (when that is smaller than the
 * whole fragment): its bytes then depend on what was published before, its content (fragment hash,
 * signed fields) does not; the snapshot always holds the whole fragment. What a batch that failed half way produced is kept and written
 * and published with the next batch, and no checkpoint is written meanwhile; a batch is done only
 * when every send (dead letters too) is acknowledged, and records this instance already decided are
 * passed over when a failed batch is read again. An outage of the schema registry fails the batch
 * (retried), it does not make a record poison. Every store write carries this instance's epoch of the
 * partitions it claimed ({@link #assign}); a refused write ({@link FencedException}: another instance
 * took partitions over) makes it forget those partitions. Not thread-safe: the consumer thread owns it.
 */
public final class CompilerPipeline {

    private static final Logger log = LoggerFactory.getLogger(CompilerPipeline.class);

    /** Topic names (configurable so benchmarks and tests can use their own). */
    public record TopicNames(String networkEvents, String hostUpdates) {
        public static TopicNames defaults() {
            return new TopicNames(Topics.NETWORK_EVENTS, Topics.HOST_UPDATES);
        }
    }

    private final CompilerEngine engine;
    private final Map<String, Integer> networkPartition = new HashMap<>();
    private final Map<TopicPartition, Long> positions = new HashMap<>();
    private final Set<Integer> owned = new java.util.TreeSet<>();
    /** This instance's fencing epoch of each partition it claimed ({@link SnapshotStore#claim}). */
    private final Map<Integer, Long> epochs = new TreeMap<>();
    /**
     * Partitions whose writes the store refused since they were last assigned here: another instance
     * took them over. Their records are ignored until the group assigns them here again.
     */
    private final Set<Integer> fenced = new java.util.TreeSet<>();
    /** Dead letters decided but not yet acknowledged by Kafka: sent (again) until they are. */
    private final List<DeadLetter> pendingDeadLetters = new ArrayList<>();

    /** A dead letter of a record of an input partition. */
    private record DeadLetter(int partition, ProducerRecord<String, byte[]> record) {
    }
    /** How long to wait for a send that flush() should already have completed. */
    private static final long SEND_WAIT_SECONDS = 180;
    private final SnapshotStore store;
    /** Signs each host update written (topic and snapshot alike). */
    private final UpdateMac mac;
    private final Producer<String, SpecificRecord> producer;
    private final Producer<String, byte[]> dltProducer;
    private final AvroDeserializer<SpecificRecord> eventDeserializer;
    private final TopicNames topics;
    private final long checkpointIntervalMillis;
    private final JsonMapper json = JsonMapper.builder().build();
    private final MeterRegistry meters;
    private final Timer batchTimer;
    private final Counter fragmentsWritten;
    private final Counter deltasPublished;
    private final Timer storeTimer;
    /** Counters by topic and outcome, looked up once (a tagged lookup per event is not free). */
    private final Map<String, Counter> eventCounters = new HashMap<>();
    private final Timer flushTimer;
    private long lastCheckpoint = System.currentTimeMillis();
    private boolean dirtySinceCheckpoint;
    /** Offset of each owned partition's last checkpoint written by this instance (forgotten when the partition is assigned or revoked). */
    private final Map<Integer, Long> checkpointed = new HashMap<>();
    /**
     * Each network's checkpoint entry as JSON, with the state object and position it was made of: a network
     * changes only by an event applied to it, which moves its position (a restored or re-limited network
     * is a new object), so an entry whose state and position are the same is the entry again.
     */
    private final Map<String, CachedEntry> entryCache = new HashMap<>();

    private record CachedEntry(NetworkState state, long position, String json) {
    }

    /**
     * @param eventDeserializer reads both record types of the network events topic (see {@link #eventDeserializer})
     */
    public CompilerPipeline(SnapshotStore store, Producer<String, SpecificRecord> producer, Producer<String, byte[]> dltProducer,
                            AvroDeserializer<SpecificRecord> eventDeserializer,
                            TopicNames topics, long checkpointIntervalMillis, MeterRegistry meters) {
        this(store, producer, dltProducer, eventDeserializer, topics, checkpointIntervalMillis, meters,
                io.egressctl.core.state.Limits.defaults());
    }

    /** A pipeline deciding every network under the operator's {@code limits}. */
    public CompilerPipeline(SnapshotStore store, Producer<String, SpecificRecord> producer, Producer<String, byte[]> dltProducer,
                            AvroDeserializer<SpecificRecord> eventDeserializer, TopicNames topics, long checkpointIntervalMillis,
                            MeterRegistry meters, io.egressctl.core.state.Limits limits) {
        this(store, producer, dltProducer, eventDeserializer, topics, checkpointIntervalMillis, meters, limits,
                new UpdateMac(UpdateKeys.NONE));
    }

    /**
     * A pipeline deciding every network under the operator's {@code limits} and signing every host
     * update it writes (to the topic and to the snapshot) with {@code mac} (unsigned without keys).
     */
    public CompilerPipeline(SnapshotStore store, Producer<String, SpecificRecord> producer, Producer<String, byte[]> dltProducer,
                            AvroDeserializer<SpecificRecord> eventDeserializer, TopicNames topics, long checkpointIntervalMillis,
                            MeterRegistry meters, io.egressctl.core.state.Limits limits, UpdateMac mac) {
        this.mac = mac;
        this.engine = new CompilerEngine(limits);
        this.store = store;
        this.producer = producer;
        this.dltProducer = dltProducer;
        this.eventDeserializer = eventDeserializer;
        this.topics = topics;
        this.checkpointIntervalMillis = checkpointIntervalMillis;
        this.meters = meters;
        this.batchTimer = Timer.builder("egress.compiler.batch").description("decide + compile + store + publish one consumer batch")
                .publishPercentiles(0.5, 0.99).register(meters);
        this.fragmentsWritten = Counter.builder("egress.compiler.fragments.written").register(meters);
        this.deltasPublished = Counter.builder("egress.compiler.updates.deltas")
                .description("host updates published as rule-keyed deltas (the others whole: egress.compiler.fragments.written minus these)")
                .register(meters);
        io.micrometer.core.instrument.Gauge.builder("egress.compiler.delta.held-rules", this, p -> p.heldRules)
                .description("rules held in memory as the bases of the next deltas (at most " + DELTA_HELD_RULES + ")").register(meters);
        this.storeTimer = Timer.builder("egress.compiler.store").description("one batch's Redis round trip(s)").register(meters);
        this.flushTimer = Timer.builder("egress.compiler.flush").description("waiting for the batch's HostUpdates to be acknowledged").register(meters);
    }

    /** The deserializer of the network events topic: RuleEvent or WorkloadEvent by the writer schema's name. */
    public static AvroDeserializer<SpecificRecord> eventDeserializer(io.egressctl.schemas.registry.SchemaRegistryClient registry) {
        return AvroDeserializer.ofTypes(registry, RuleEvent.class, WorkloadEvent.class);
    }

    /**
     * Takes ownership of input partitions: restores each from its checkpoint when there is one.
     *
     * @return where to start reading each assigned topic partition (absent: from the beginning)
     */
    public Map<TopicPartition, Long> assign(Collection<TopicPartition> partitions) {
        Map<TopicPartition, Long> seeks = new HashMap<>();
        Set<Integer> numbers = new java.util.TreeSet<>();
        partitions.forEach(tp -> numbers.add(tp.partition()));
        for (int p : numbers) {
            if (owned.contains(p) && !fenced.contains(p)) {
                continue;
            }
            fenced.remove(p);
            // The epoch first, then the checkpoint: from here on a write of the previous owner is refused,
            // so the checkpoint read is the last one it could write.
            long epoch;
            Optional<String> text;
            try {
                epoch = store.claim(p);
                text = store.readCheckpoint(p);
            } catch (RuntimeException e) {
                // Not taken: the listener claims it again before processing a record of it.
                owned.remove(p);
                throw e;
            }
            owned.add(p);
            epochs.put(p, epoch);
            checkpointed.remove(p);
            log.info("partition {}: claimed with epoch {}", p, epoch);
            var checkpoint = text.flatMap(t -> Checkpoint.fromJson(t, topics.networkEvents()));
            if (checkpoint.isEmpty()) {
                log.info("partition {}: no checkpoint{}, replaying {} from the beginning", p,
                        text.isPresent() ? " of " + topics.networkEvents() + " (one of another format or topic was left alone)" : "",
                        topics.networkEvents());
                continue;
            }
            Checkpoint cp = checkpoint.get();
            for (Checkpoint.NetworkEntry e : cp.networks()) {
                NetworkState restored = Checkpoint.restore(e);
                engine.restore(restored);
                networkPartition.put(e.networkId(), p);
                // What the index holds for the network as of the checkpoint (its claims were written
                // when the events before it were); events replayed from there write the differences.
                if (restored.network() != null) {
                    claims.put(e.networkId(), claimsOf(restored));
                    tenantOf.put(e.networkId(), restored.network().tenantId());
                }
            }
            TopicPartition tp = new TopicPartition(topics.networkEvents(), p);
            seeks.put(tp, cp.offset());
            positions.put(tp, cp.offset());
            log.info("partition {}: restored {} networks from the checkpoint at offset {}", p, cp.networks().size(), cp.offset());
        }
        return seeks;
    }

    /** Gives up input partitions: their networks are forgotten and no longer written for. */
    public void revoke(Collection<TopicPartition> partitions) {
        Set<Integer> numbers = new java.util.TreeSet<>();
        partitions.forEach(tp -> numbers.add(tp.partition()));
        networkPartition.entrySet().removeIf(e -> {
            if (numbers.contains(e.getValue())) {
                engine.forget(e.getKey());
                metaJson.remove(e.getKey());
                claims.remove(e.getKey());
                tenantOf.remove(e.getKey());
                return true;
            }
            return false;
        });
        owned.removeAll(numbers);
        numbers.forEach(epochs::remove);
        numbers.forEach(checkpointed::remove);
        positions.keySet().removeIf(tp -> numbers.contains(tp.partition()));
        // What an unfinished batch produced for these networks is the new owner's to produce again.
        pending.keySet().removeIf(k -> !networkPartition.containsKey(networkOf(k)));
        lastPublished.entrySet().removeIf(e -> {
            if (!networkPartition.containsKey(networkOf(e.getKey()))) {
                heldRules -= e.getValue().fragment().rules().size();
                return true;
            }
            return false;
        });
        pendingTime.keySet().retainAll(pending.keySet());
        touched.removeIf(n -> !networkPartition.containsKey(n));
        resync.removeIf(n -> !networkPartition.containsKey(n));
        changes.removeIf(c -> !networkPartition.containsKey(c.fields().get("networkId")));
        // The new owner decides these records again, dead letters included.
        pendingDeadLetters.removeIf(d -> numbers.contains(d.partition()));
    }

    /** Processes one consumer batch end to end (store, publish, flush); see the class comment. */
    public void process(List<ConsumerRecord<String, byte[]>> records) {
        Timer.Sample sample = Timer.start(meters);
        batchTime = Instant.now().toString();
        if (unfinished) {
            // The last batch failed after the engine took its events: its output is still pending (written
            // and published with this batch); the read model caches may hold views that never reached the store.
            log.warn("the previous batch did not complete: writing and publishing its {} updates with this batch", pending.size());
            touched.forEach(n -> {
                ruleJson.remove(n);
                metaJson.remove(n);
            });
            resync.addAll(touched);
        }
        unfinished = true;
        vmsChanged.clear();
        for (ConsumerRecord<String, byte[]> record : records) {
            TopicPartition tp = new TopicPartition(record.topic(), record.partition());
            Long next = positions.get(tp);
            if (fenced.contains(record.partition()) || next != null && record.offset() < next) {
                // Fenced: the partition's new owner decides it. Below the position: decided (or dead-lettered)
                // by this instance already, in a batch that failed after it and is being retried.
                continue;
            }
            owned.add(record.partition());
            // May throw (the registry cannot be reached): the batch fails before this record is taken, and
            // the retry starts from it.
            CompileResult result = decide(record);
            positions.put(tp, record.offset() + 1);
            if (result == null) {
                continue;
            }
            Decision d = result.decision();
            eventCounters.computeIfAbsent(record.topic() + '/' + d.outcome(),
                    k -> meters.counter("egress.compiler.events", "topic", record.topic(), "outcome", d.outcome().name())).increment();
            networkPartition.put(result.networkId(), record.partition());
            if (lastWasWorkload) {
                vmsChanged.add(result.networkId());
            }
            if (d.outcome() == Decision.Outcome.ALREADY_APPLIED) {
                // A redelivery: its output was produced when it was first decided (and, if that batch
                // failed, is still pending), so a replay never publishes other bytes for a version.
                continue;
            }
            Map<String, Long> targets = new TreeMap<>();
            for (FragmentUpdate u : result.updates()) {
                coalesce(pending, u);
                pendingTime.put(key(u), record.timestamp());
                targets.put(u.hostId(), u.version());
            }
            // A rejected event moves the network's version too: its view is written either way, so the
            // view's version is the network's position whatever the batching.
            touched.add(result.networkId());
            changes.add(new ChangeWrite(result.eventId(), changeFields(result, targets, record.timestamp())));
        }
        List<FragmentWrite> fragments = new ArrayList<>(pending.size());
        List<HostUpdate> avro = new ArrayList<>(pending.size());
        for (Map.Entry<String, FragmentUpdate> e : pending.entrySet()) {
            Instant compiledAt = Instant.ofEpochMilli(pendingTime.getOrDefault(e.getKey(), 0L));
            HostUpdate h = EventMapper.toAvro(e.getValue(), compiledAt);
            // Each form signed as it is stored: the snapshot's whole, without ids and time; the log's with
            // them, as a delta against the version this instance last published when that is smaller.
            fragments.add(new FragmentWrite(e.getValue(), encodeSnapshotForm(h, mac)));
            FragmentDelta delta = delta(e.getKey(), e.getValue());
            avro.add(mac.sign(delta == null ? h : EventMapper.toAvroDelta(e.getValue(), delta, compiledAt)));
        }
        List<ViewWrite> views = new ArrayList<>(touched.size());
        for (String networkId : touched) {
            views.add(view(networkId));
        }
        Map<String, Map<HostInterface, String>> claimsAfter = new HashMap<>();
        List<InterfaceWrite> interfaces = interfaceWrites(touched, resync, claimsAfter);
        long storeStart = System.nanoTime();
        SnapshotStore.BatchResult written;
        try {
            written = store.write(new SnapshotStore.Batch(fragments, views, changes, interfaces, Map.copyOf(epochs)));
        } catch (FencedException e) {
            fence(e.partitions());
            throw e;
        }
        // Only once written: after a failed write the next batch (carrying this one's output, its
        // networks in resync) diffs against what the index held before, releases included.
        claimsAfter.forEach((networkId, c) -> {
            if (c == null) {
                claims.remove(networkId);
            } else {
                claims.put(networkId, c);
            }
        });
        List<WriteOutcome> outcomes = written.fragments();
        for (int i = 0; i < views.size(); i++) {
            if (!written.viewsWritten().get(i)) {
                // The store holds a newer view (another writer): our next write of it is whole.
                ruleJson.remove(views.get(i).networkId());
            }
        }
        storeTimer.record(System.nanoTime() - storeStart, java.util.concurrent.TimeUnit.NANOSECONDS);
        List<Future<RecordMetadata>> sends = new ArrayList<>(outcomes.size());
        for (int i = 0; i < outcomes.size(); i++) {
            if (outcomes.get(i) != WriteOutcome.STALE) {
                // Snapshot first, then the log (invariant 4).
                sends.add(producer.send(new ProducerRecord<>(topics.hostUpdates(), avro.get(i).getHostId(), avro.get(i))));
            }
        }
        List<Future<RecordMetadata>> deadLetters = new ArrayList<>(pendingDeadLetters.size());
        pendingDeadLetters.forEach(d -> deadLetters.add(dltProducer.send(d.record())));
        long flushStart = System.nanoTime();
        producer.flush();
        if (!deadLetters.isEmpty()) {
            dltProducer.flush();
        }
        flushTimer.record(System.nanoTime() - flushStart, java.util.concurrent.TimeUnit.NANOSECONDS);
        // Durable only once acknowledged: flush() returns after a failed send too. A failure fails the batch,
        // which is then published again whole (identical bytes; agents ignore what is not newer).
        RuntimeException deadLetterFailure = null;
        for (int i = deadLetters.size() - 1; i >= 0; i--) {
            RuntimeException failure = failureOf(deadLetters.get(i), "a dead letter to " + pendingDeadLetters.get(i).record().topic());
            if (failure == null) {
                pendingDeadLetters.remove(i);
            } else {
                deadLetterFailure = failure;
            }
        }
        for (Future<RecordMetadata> f : sends) {
            RuntimeException failure = failureOf(f, "a HostUpdate to " + topics.hostUpdates());
            if (failure != null) {
                throw failure;
            }
        }
        for (int i = 0; i < outcomes.size(); i++) {
            published(fragments.get(i).update(), outcomes.get(i) != WriteOutcome.STALE);
        }
        if (deadLetterFailure != null) {
            throw deadLetterFailure;
        }
        fragmentsWritten.increment(sends.size());
        for (int i = 0; i < outcomes.size(); i++) {
            if (outcomes.get(i) != WriteOutcome.STALE && avro.get(i).getDelta() != null) {
                deltasPublished.increment();
            }
        }
        pending.clear();
        pendingTime.clear();
        touched.clear();
        changes.clear();
        resync.clear();
        unfinished = false;
        dirtySinceCheckpoint |= !records.isEmpty();
        sample.stop(batchTimer);
        maybeCheckpoint(false);
    }

    private String entryJson(NetworkState s) {
        CachedEntry c = entryCache.get(s.networkId());
        if (c == null || c.state() != s || c.position() != s.position()) {
            c = new CachedEntry(s, s.position(), Checkpoint.entryJson(s));
            entryCache.put(s.networkId(), c);
        }
        return c.json();
    }

    /**
     * Writes checkpoints of every owned partition if the interval passed (or {@code force}); never while
     * the output of a batch is not stored and published yet (a checkpoint must not move past it).
     */
    public void maybeCheckpoint(boolean force) {
        long now = System.currentTimeMillis();
        if (unfinished || !dirtySinceCheckpoint || (!force && now - lastCheckpoint < checkpointIntervalMillis)) {
            return;
        }
        Map<Integer, List<String>> byPartition = new TreeMap<>();
        for (int p : owned) {
            long offset = positions.getOrDefault(new TopicPartition(topics.networkEvents(), p), 0L);
            if (!Long.valueOf(offset).equals(checkpointed.get(p))) {
                // A partition whose offset did not move since its last checkpoint would be written the same.
                byPartition.put(p, new ArrayList<>());
            }
        }
        Set<String> kept = new java.util.HashSet<>();
        networkPartition.forEach((networkId, p) -> {
            NetworkState s = engine.state(networkId);
            List<String> entries = byPartition.get(p);
            if (s != null && entries != null) {
                entries.add(entryJson(s));
                kept.add(networkId);
            }
        });
        entryCache.keySet().retainAll(kept);
        Set<Integer> refused = new java.util.TreeSet<>();
        for (Map.Entry<Integer, List<String>> e : byPartition.entrySet()) {
            int p = e.getKey();
            long offset = positions.getOrDefault(new TopicPartition(topics.networkEvents(), p), 0L);
            try {
                store.writeCheckpoint(p, Checkpoint.toJson(topics.networkEvents(), offset, e.getValue()), epochs.getOrDefault(p, 0L));
                checkpointed.put(p, offset);
            } catch (FencedException fencedOut) {
                refused.addAll(fencedOut.partitions().isEmpty() ? Set.of(p) : fencedOut.partitions());
            }
        }
        lastCheckpoint = now;
        dirtySinceCheckpoint = false;
        if (!refused.isEmpty()) {
            fence(refused);
            throw new FencedException(refused);
        }
    }

    /**
     * Forgets partitions another instance took over (the store refused a write for them): their
     * networks, pending output and epochs; their records are ignored until they are assigned here again.
     */
    private void fence(Set<Integer> refused) {
        // A refusal that names no partition (an unexpected reply) fences every partition this instance holds.
        Set<Integer> partitions = refused.isEmpty() ? Set.copyOf(epochs.keySet()) : refused;
        log.warn("fenced: the store refused writes for partition(s) {} (another instance took them over); forgetting them", partitions);
        meters.counter("egress.compiler.fenced").increment(partitions.size());
        revoke(partitions.stream().map(p -> new TopicPartition(topics.networkEvents(), p)).toList());
        fenced.addAll(partitions);
    }

    /** The partitions this instance writes for (claimed and not fenced). */
    public Set<Integer> owned() {
        return Set.copyOf(owned);
    }

    /**
     * Whether a record of {@code partition} needs the partition claimed first: it was assigned but its
     * claim failed. Never for a fenced partition: only a new assignment by the group gives it back.
     */
    public boolean needsClaim(int partition) {
        return !owned.contains(partition) && !fenced.contains(partition);
    }

    /** Null when the send was acknowledged; otherwise the failure, saying what was sent. */
    private static RuntimeException failureOf(Future<RecordMetadata> f, String what) {
        try {
            f.get(SEND_WAIT_SECONDS, TimeUnit.SECONDS);
            return null;
        } catch (ExecutionException e) {
            Throwable cause = e.getCause() == null ? e : e.getCause();
            return cause instanceof KafkaException k ? k : new KafkaException("sending " + what + " failed: " + cause, cause);
        } catch (TimeoutException e) {
            return new KafkaException("sending " + what + " was not acknowledged in " + SEND_WAIT_SECONDS + " s", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new KafkaException("interrupted while waiting for " + what, e);
        }
    }

    /** Whether the record {@link #decide} last decided was a placement (its network's cached JSON is stale). */
    private boolean lastWasWorkload;

    /** Decodes a record of the network events log and decides it at its position (offset + 1), whatever its type. */
    private CompileResult decide(ConsumerRecord<String, byte[]> record) {
        try {
            SpecificRecord event = eventDeserializer.deserialize(record.topic(), record.value());
            if (event instanceof RuleEvent e) {
                RuleChange c = EventMapper.fromAvro(e);
                requireKey(record, c.networkId());
                lastWasWorkload = false;
                return engine.onRuleChange(c, record.offset() + 1);
            }
            if (event instanceof WorkloadEvent e) {
                WorkloadChange c = EventMapper.fromAvro(e);
                requireKey(record, c.networkId());
                lastWasWorkload = true;
                return engine.onWorkloadChange(c, record.offset() + 1);
            }
            throw new SerializationException(event == null ? "a null value (tombstone) is no event"
                    : "a " + event.getSchema().getFullName() + " is no event of " + record.topic());
        } catch (SerializationException e) {
            if (RegistryOutage.isOutage(e)) {
                // Not a property of the record: the same bytes decode once the registry answers.
                throw e;
            }
            deadLetter(record, "undecodable", e.getMessage());
        } catch (ValidationException | IllegalArgumentException | NullPointerException e) {
            deadLetter(record, "invalid", e.getMessage());
        }
        return null;
    }

    /**
     * Keeps only the newest update per (host, network) of a batch. Its change ids are those of the
     * event that made this version, not of the batch, so the stored bytes do not depend on where
     * batch boundaries fell (two instances, or a rebuild, write identical snapshots). Change status
     * needs no ids here: it compares versions.
     */
    private static void coalesce(Map<String, FragmentUpdate> pending, FragmentUpdate u) {
        pending.remove(key(u));
        pending.put(key(u), u);
    }

    /**
     * The last version of each (host, network) this instance published and saw acknowledged, whole:
     * the base of the next version's delta. Only fragments of {@link #deltaMinRules} rules or more,
     * within {@link #DELTA_HELD_RULES} rules in all; the others are published whole. Forgotten with
     * the network's partition (revoked or fenced): a new owner starts with whole fragments.
     */
    private final Map<String, Published> lastPublished = new HashMap<>();
    private long heldRules;
    private boolean deltaUpdates = true;
    private int deltaMinRules = DELTA_MIN_RULES;

    private record Published(long version, Fragment fragment) {
    }

    /** Below this many rules a fragment is published whole: small, and not worth a base held in memory. */
    static final int DELTA_MIN_RULES = 16;
    /** Rules held as delta bases at most (about 120 bytes each): beyond, fragments are published whole. */
    static final long DELTA_HELD_RULES = 250_000;

    /**
     * Whether host updates go to the log as deltas where they are smaller (default on). Off: every
     * update whole, as agents before deltas read them (roll agents forward first, then compilers).
     */
    public CompilerPipeline deltaUpdates(boolean on) {
        this.deltaUpdates = on;
        if (!on) {
            lastPublished.clear();
            heldRules = 0;
        }
        return this;
    }

    /** Fragments of fewer rules are published whole ({@link #DELTA_MIN_RULES} by default; tests use 1 to see deltas on small networks). */
    public CompilerPipeline deltaMinRules(int rules) {
        this.deltaMinRules = Math.max(1, rules);
        return this;
    }

    /**
     * The delta of {@code u} against the version of its (host, network) this instance last published,
     * or null to publish it whole: a removal, nothing published before, or a delta that would carry
     * half the fragment's rules or more.
     */
    private FragmentDelta delta(String key, FragmentUpdate u) {
        Published base = deltaUpdates && !u.isTombstone() ? lastPublished.get(key) : null;
        if (base == null || base.version() >= u.version()) {
            return null;
        }
        FragmentDelta d = FragmentDelta.between(base.version(), base.fragment(), u.fragment());
        return d.ruleCount() * 2 < u.fragment().rules().size() ? d : null;
    }

    /** Notes an acknowledged publication ({@code landed}) as the next delta's base, or forgets the base (the store held newer). */
    private void published(FragmentUpdate u, boolean landed) {
        if (!deltaUpdates) {
            return;
        }
        String key = key(u);
        Published old = lastPublished.remove(key);
        if (old != null) {
            heldRules -= old.fragment().rules().size();
        }
        if (!landed || u.isTombstone()) {
            return;
        }
        int rules = u.fragment().rules().size();
        if (rules >= deltaMinRules && heldRules + rules <= DELTA_HELD_RULES) {
            lastPublished.put(key, new Published(u.version(), u.fragment()));
            heldRules += rules;
        }
    }

    private static String key(FragmentUpdate u) {
        return u.hostId() + '\u0000' + u.networkId();
    }

    private static String networkOf(String key) {
        return key.substring(key.indexOf('\u0000') + 1);
    }

    /*
     * The output of the batch being processed, kept across a batch that fails half way (a store or
     * publish error after the engine took its events): the next batch writes and publishes it again
     * (identical bytes; the store's guard answers SAME), and no checkpoint is written until it is.
     */
    private final Map<String, FragmentUpdate> pending = new LinkedHashMap<>();
    private final Map<String, Long> pendingTime = new HashMap<>();
    private final Set<String> touched = new LinkedHashSet<>();
    private final List<ChangeWrite> changes = new ArrayList<>();
    /** Networks of a batch that did not complete: their interface claims are written whole with the next one. */
    private final Set<String> resync = new LinkedHashSet<>();
    /** True from the start of a batch until its output is stored and published. */
    private boolean unfinished;

    private ViewWrite view(String networkId) {
        NetworkState s = engine.state(networkId);
        if (s.network() == null) {
            ruleJson.remove(networkId);
            // The tenant it was deleted from: its index must lose it, or the deleted network counts
            // against the tenant's limit of networks for ever.
            return new ViewWrite(networkId, tenantOf.remove(networkId), s.version(), "", Map.of(), List.of(), true);
        }
        tenantOf.put(networkId, s.network().tenantId());
        return viewWrite(s);
    }

    /**
     * The tenant of each live network this instance decides (from its views and the restored
     * checkpoints), kept after the network is gone until its deleted view is written, so that the
     * tenant's index drops it.
     */
    private final Map<String, String> tenantOf = new HashMap<>();

    /**
     * The network's read model as a write: the network without its rules as JSON, plus one hash
     * field per rule. A rule's JSON is kept while the rule object (and the policy) is unchanged, so a
     * change writes only the rules it touched; the first write of a network by this instance, or
     * after the store held a newer view, replaces the hash whole.
     */
    private ViewWrite viewWrite(NetworkState s) {
        var policy = s.network().defaultPolicy();
        Map<String, CachedRule> previous = ruleJson.get(s.networkId());
        boolean full = previous == null;
        Map<String, CachedRule> current = new HashMap<>();
        Map<String, String> changed = new LinkedHashMap<>();
        for (var e : s.rules().entrySet()) {
            CachedRule c = full ? null : previous.get(e.getKey());
            // The policy is part of a rule's view (its effective action): a policy change rewrites all.
            if (c == null || c.rule() != e.getValue() || c.policy() != policy) {
                c = new CachedRule(e.getValue(), policy, json.writeValueAsString(io.egressctl.schemas.view.RuleView.of(e.getValue(), policy)));
                changed.put(NetworkView.RULE_FIELD + e.getKey(), c.json());
            }
            current.put(e.getKey(), c);
        }
        List<String> removed = new ArrayList<>();
        if (!full) {
            previous.keySet().stream().filter(id -> !current.containsKey(id)).forEach(id -> removed.add(NetworkView.RULE_FIELD + id));
        }
        ruleJson.put(s.networkId(), current);
        CachedMeta meta = metaJson.get(s.networkId());
        if (meta == null || meta.network() != s.network() || meta.configVersion() != s.configVersion() || vmsChanged.contains(s.networkId())) {
            meta = new CachedMeta(s.network(), s.configVersion(), json.writeValueAsString(NetworkView.withRules(s, Map.of())));
            metaJson.put(s.networkId(), meta);
        }
        return new ViewWrite(s.networkId(), s.network().tenantId(), s.version(), meta.json(), changed, removed, full);
    }

    /**
     * A network's JSON without rules (its definition and VMs), valid while the definition object and
     * its config version are unchanged and no workload event for it arrived: a rule change then
     * reuses it, since the hash's own version field carries the network's version.
     */
    private record CachedMeta(io.egressctl.core.model.Network network, long configVersion, String json) {
    }

    private final Map<String, CachedMeta> metaJson = new HashMap<>();
    /** Networks with a workload event in the batch being processed: their cached JSON is stale. */
    private final Set<String> vmsChanged = new java.util.HashSet<>();

    /** A rule's JSON, valid while the state holds this very rule object. */
    private record CachedRule(io.egressctl.core.model.EgressRule rule, io.egressctl.core.model.DefaultPolicy policy, String json) {
    }

    private final Map<String, Map<String, CachedRule>> ruleJson = new HashMap<>();

    /** A VM's interface on its host: one field of the host's interface index. */
    private record HostInterface(String hostId, String interfaceName) {
    }

    /**
     * The host interfaces each network's VMs hold, as this instance last wrote them to the index (VM
     * id by host interface); absent while the network does not exist. Kept per network so a batch
     * writes only what changed: a network of thousands of VMs with one VM moved costs two writes.
     */
    private final Map<String, Map<HostInterface, String>> claims = new HashMap<>();

    /** The interfaces the VMs of an existing network hold (VMs placed without one hold none). */
    private static Map<HostInterface, String> claimsOf(NetworkState s) {
        Map<HostInterface, String> out = new HashMap<>();
        for (var p : s.vms().values()) {
            if (p.interfaceName() != null) {
                out.put(new HostInterface(p.hostId(), p.interfaceName()), p.vmId());
            }
        }
        return out;
    }

    /**
     * The interface index writes of a batch: for each network whose VMs changed (or that was created
     * or deleted, or is resynced whole), the claims it lost are released and the ones it gained (all,
     * for a resync) are set. A deleted network holds none. Releases go first, so an interface one
     * network's VM left and another's took in the same batch ends up with the new holder.
     *
     * @param after filled with each recomputed network's claims (null: the network does not exist),
     *              to be kept once the batch is written
     */
    private List<InterfaceWrite> interfaceWrites(Set<String> touched, Set<String> resync, Map<String, Map<HostInterface, String>> after) {
        List<InterfaceWrite> releases = new ArrayList<>();
        List<InterfaceWrite> sets = new ArrayList<>();
        for (String networkId : touched) {
            NetworkState s = engine.state(networkId);
            boolean exists = s != null && s.network() != null;
            boolean full = resync.contains(networkId);
            if (!full && !vmsChanged.contains(networkId) && exists == claims.containsKey(networkId)) {
                // A rule change: the network's VMs, and so its claims, are what they were.
                continue;
            }
            Map<HostInterface, String> before = claims.getOrDefault(networkId, Map.of());
            Map<HostInterface, String> now = exists ? claimsOf(s) : Map.of();
            before.forEach((hi, vm) -> {
                if (!now.containsKey(hi)) {
                    releases.add(new InterfaceWrite(hi.hostId(), hi.interfaceName(), RedisKeys.interfaceHolder(networkId, vm), false));
                }
            });
            now.forEach((hi, vm) -> {
                if (full || !vm.equals(before.get(hi))) {
                    sets.add(new InterfaceWrite(hi.hostId(), hi.interfaceName(), RedisKeys.interfaceHolder(networkId, vm), true));
                }
            });
            after.put(networkId, exists ? now : null);
        }
        releases.addAll(sets);
        return releases;
    }

    /** Wall-clock time of the batch being processed (one per batch, not per event). */
    private String batchTime = "";

    private Map<String, String> changeFields(CompileResult result, Map<String, Long> targets, long eventTime) {
        Decision d = result.decision();
        Map<String, String> fields = new LinkedHashMap<>();
        fields.put("networkId", result.networkId());
        fields.put("status", d.isAccepted() ? "COMPILED" : "REJECTED");
        fields.put("version", Long.toString(result.networkVersion()));
        fields.put("targets", json.writeValueAsString(targets));
        fields.put("compiledAt", batchTime);
        fields.put("eventTime", Instant.ofEpochMilli(eventTime).toString());
        if (d.code() != null) {
            fields.put("code", d.code());
            fields.put("reason", d.reason());
        }
        if (d.ruleId() != null) {
            fields.put("ruleId", d.ruleId());
        }
        return fields;
    }

    /**
     * The bytes kept in the snapshot: the HostUpdate without the change ids and the event time of the
     * event that produced it. Which event that was depends on how the two input topics interleaved,
     * while the snapshot must depend only on content and version (byte-identical after a rebuild or
     * a failover); the ids and times travel on the HostUpdate in the log, where agents report them.
     * The two fields are blanked on the record itself for the encoding and put back afterwards: a
     * copy of the whole record per fragment cost more than the encoding.
     */
    static byte[] encodeSnapshotForm(HostUpdate h) {
        return encodeSnapshotForm(h, new UpdateMac(UpdateKeys.NONE));
    }

    /** The snapshot form (no change ids, compiledAt at the epoch), signed by {@code mac} as that form; {@code h} is left as it was. */
    static byte[] encodeSnapshotForm(HostUpdate h, UpdateMac mac) {
        List<String> changeIds = h.getChangeIds();
        Instant compiledAt = h.getCompiledAt();
        String signature = h.getMac();
        h.setChangeIds(List.of());
        h.setCompiledAt(Instant.EPOCH);
        try {
            return encode(mac.sign(h));
        } finally {
            h.setChangeIds(changeIds);
            h.setCompiledAt(compiledAt);
            h.setMac(signature);
        }
    }

    /**
     * Avro single-object encoding (0xC3 0x01, the schema's CRC-64-AVRO fingerprint little-endian,
     * then the binary datum), byte for byte what {@code HostUpdate.toByteBuffer()} writes, through a
     * buffered encoder: Avro's message encoder writes field by field into a synchronized stream,
     * which cost more than the rest of a fragment's encoding.
     */
    static byte[] encode(HostUpdate h) {
        try {
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream(2048);
            out.write(SINGLE_OBJECT_HEADER);
            org.apache.avro.io.BinaryEncoder encoder = org.apache.avro.io.EncoderFactory.get().binaryEncoder(out, null);
            HOST_UPDATE_WRITER.write(h, encoder);
            encoder.flush();
            return out.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot encode HostUpdate", e);
        }
    }

    private static final byte[] SINGLE_OBJECT_HEADER = singleObjectHeader(HostUpdate.getClassSchema());
    /** Thread-safe: Avro datum writers keep no state between writes. */
    private static final org.apache.avro.io.DatumWriter<HostUpdate> HOST_UPDATE_WRITER =
            new org.apache.avro.specific.SpecificDatumWriter<>(HostUpdate.getClassSchema(),
                    org.apache.avro.specific.SpecificData.getForClass(HostUpdate.class));

    private static byte[] singleObjectHeader(org.apache.avro.Schema schema) {
        long fingerprint = org.apache.avro.SchemaNormalization.parsingFingerprint64(schema);
        byte[] header = new byte[10];
        header[0] = (byte) 0xC3;
        header[1] = (byte) 0x01;
        for (int i = 0; i < 8; i++) {
            header[2 + i] = (byte) (fingerprint >>> (8 * i));
        }
        return header;
    }

    private static void requireKey(ConsumerRecord<String, byte[]> record, String networkId) {
        if (!networkId.equals(record.key())) {
            throw new ValidationException("key", "record key '" + record.key() + "' differs from networkId '" + networkId
                    + "'; events of a network must share its key to keep their order");
        }
    }

    private void deadLetter(ConsumerRecord<String, byte[]> record, String kind, String reason) {
        log.warn("dead-lettering {}-{}@{}: {}: {}", record.topic(), record.partition(), record.offset(), kind, reason);
        RecordHeaders headers = new RecordHeaders();
        headers.add("egress.dlt.kind", kind.getBytes(StandardCharsets.UTF_8));
        headers.add("egress.dlt.reason", String.valueOf(reason).getBytes(StandardCharsets.UTF_8));
        headers.add("egress.dlt.original", (record.topic() + "-" + record.partition() + "@" + record.offset()).getBytes(StandardCharsets.UTF_8));
        // Sent with the batch's output and awaited before the batch completes (and its offsets are committed).
        pendingDeadLetters.add(new DeadLetter(record.partition(),
                new ProducerRecord<>(Topics.dlt(record.topic()), null, record.key(), record.value(), headers)));
        meters.counter("egress.compiler.dlt", "topic", record.topic(), "kind", kind).increment();
    }

    /** The next offset to decide per owned partition (0 for one nothing was read from yet), for a heal after a Redis loss. */
    public Map<Integer, Long> ownedPositions() {
        Map<Integer, Long> out = new TreeMap<>();
        owned.forEach(p -> out.put(p, positions.getOrDefault(new TopicPartition(topics.networkEvents(), p), 0L)));
        return out;
    }

    /** This instance's fencing epoch of each owned partition, so that a heal writes as this instance. */
    public Map<Integer, Long> ownedEpochs() {
        return Map.copyOf(epochs);
    }

    /** The networks of the owned partitions, for a heal after a Redis loss. */
    public Set<String> ownedNetworks() {
        return new java.util.TreeSet<>(networkPartition.keySet());
    }

    /** The engine (for tests and admin views). */
    CompilerEngine engine() {
        return engine;
    }
}
