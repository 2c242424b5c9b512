package io.egressctl.agent.sync;

import io.egressctl.agent.enforce.EnforcementException;
import io.egressctl.agent.enforce.Enforcer;
import io.egressctl.agent.enforce.NftablesEnforcer;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.core.host.HostState;
import io.egressctl.core.render.NftRenderer;
import io.egressctl.events.AppliedFragment;
import io.egressctl.events.EnforcementReport;
import io.egressctl.events.EnforcementStatus;
import io.egressctl.events.EnforcementTrigger;
import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.Topics;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The agent's reconciler loop, on one thread:
 * <ol>
 *   <li>find the partition of egress.host-updates its host id maps to (the producer's partitioner)
 *       and assign only that one (no consumer group, no rebalancing);</li>
 *   <li>bootstrap (invariant 4): note the partition's end offset, then read the snapshot from the
 *       cache, enforce it, then consume from the noted offset. When the kernel already holds exactly
 *       the snapshot's ruleset (an agent restarted after a crash or kill -9: the kernel kept its
 *       table) nothing is applied, only reported; otherwise the whole snapshot is applied;</li>
 *   <li>for each poll: keep only its own host's records that are newer (invariant 3), render the
 *       whole host and apply it in one transaction (invariant 5), report ACK or NACK;</li>
 *   <li>on a timer, check the enforced ruleset against the desired one and repair drift (invariant 6);
 *       a failed apply is retried with exponential backoff.</li>
 * </ol>
 * Ready ({@link #isBootstrapped}) only once the first snapshot is enforced (applied, or found in force).
 * Metrics: timer {@code egress.agent.apply} (kernel applies), counter {@code egress.agent.drift.repairs},
 * gauge {@code egress.agent.lag} (records behind the end of its partition, sampled after every poll),
 * counters {@code egress.agent.apply.failures} and {@code egress.agent.poison}.
 *
 * <p>{@link #run} is {@link #bootstrap} then {@link #pollOnce} until {@link #stop}; tests drive the two
 * steps directly on one thread.
 */
public final class HostSync implements Runnable {

    private static final Logger log = LoggerFactory.getLogger(HostSync.class);
    private static final Duration MAX_BACKOFF = Duration.ofSeconds(30);

    private final String hostId;
    private final Consumer<String, byte[]> consumer;
    private final Producer<String, SpecificRecord> producer;
    private final SnapshotSource snapshots;
    private final AvroDeserializer<HostUpdate> deserializer;
    private final Enforcer enforcer;
    private final Duration reconcileInterval;
    private final Clock clock;
    private final MeterRegistry meters;
    private final Timer applyTimer;
    private final NftRenderer renderer;
    private final HostState state;
    private final CountDownLatch bootstrapped = new CountDownLatch(1);
    private final AtomicLong driftRepairs = new AtomicLong();
    private final Counter driftCounter;
    /** Records behind the end of the partition at the last poll; -1 until first known. */
    private final AtomicLong lag = new AtomicLong(-1);
    private volatile boolean running = true;

    private TopicPartition partition;
    private long nextLagLookupAt;
    private boolean lastBootstrapApplied;

    private String appliedScript;
    private String appliedHash = HostState.hashOf(new TreeMap<>());
    private boolean pendingRetry;
    private Duration backoff = Duration.ofMillis(200);
    private long nextRetryAt;
    private long nextReconcileAt;

    public HostSync(String hostId, Consumer<String, byte[]> consumer, Producer<String, SpecificRecord> producer,
                    SnapshotSource snapshots, AvroDeserializer<HostUpdate> deserializer, Enforcer enforcer,
                    NftRenderer renderer, Duration reconcileInterval, Clock clock, MeterRegistry meters) {
        this.hostId = hostId;
        this.consumer = consumer;
        this.producer = producer;
        this.snapshots = snapshots;
        this.deserializer = deserializer;
        this.enforcer = enforcer;
        this.renderer = renderer;
        this.reconcileInterval = reconcileInterval;
        this.clock = clock;
        this.meters = meters;
        this.state = new HostState(hostId);
        this.applyTimer = Timer.builder("egress.agent.apply").description("one apply of a host's ruleset to the enforcer")
                .publishPercentiles(0.5, 0.99).register(meters);
        this.driftCounter = Counter.builder("egress.agent.drift.repairs")
                .description("re-applies after the enforced ruleset drifted from the desired one").register(meters);
        Gauge.builder("egress.agent.lag", lag, l -> l.get() < 0 ? Double.NaN : l.get())
                .description("records of the agent's partition of egress.host-updates not yet consumed").register(meters);
    }

    /** True once the first snapshot is enforced (applied, or found already in force). */
    public boolean isBootstrapped() {
        return bootstrapped.getCount() == 0;
    }

    public String appliedHash() {
        return appliedHash;
    }

    /** Drift repairs since this agent started (what the reports carry). */
    public long driftRepairs() {
        return driftRepairs.get();
    }

    /** Records behind the end of its partition at the last poll, -1 before the first sample. */
    public long lag() {
        return lag.get();
    }

    /** True when the bootstrap applied the snapshot, false when it found it already in force. */
    boolean lastBootstrapApplied() {
        return lastBootstrapApplied;
    }

    public void stop() {
        running = false;
        consumer.wakeup();
    }

    @Override
    public void run() {
        try {
            bootstrap();
            while (running) {
                pollOnce(Duration.ofMillis(100));
            }
        } catch (WakeupException e) {
            if (running) {
                throw e;
            }
        } catch (InterruptedException e) {
            if (running) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        } catch (RuntimeException e) {
            log.error("host {}: sync loop stopped", hostId, e);
            throw e;
        } finally {
            consumer.close();
        }
    }

    /**
     * Invariant 4: note the partition's end offset, read the snapshot, enforce it, then position the
     * consumer at the noted offset. Enforcing the snapshot skips the kernel apply when the enforcer
     * reports that exactly this ruleset is already in force (a restarted agent), and reports an ACK
     * with trigger BOOTSTRAP either way.
     */
    void bootstrap() throws InterruptedException {
        partition = ownPartition();
        consumer.assign(List.of(partition));
        long end = consumer.endOffsets(List.of(partition)).get(partition);
        int fromSnapshot = 0;
        for (byte[] encoded : snapshots.read(hostId)) {
            HostUpdate update;
            try {
                update = HostUpdate.fromByteBuffer(ByteBuffer.wrap(encoded));
            } catch (IOException | RuntimeException e) {
                meters.counter("egress.agent.poison").increment();
                log.warn("host {}: skipping an undecodable snapshot entry: {}", hostId, e.getMessage());
                continue;
            }
            if (offer(update)) {
                fromSnapshot++;
            }
        }
        log.info("host {}: partition {}, end offset {}, {} fragments from the snapshot; enforcer {}",
                hostId, partition.partition(), end, fromSnapshot, enforcer.name());
        enforceBootstrap();
        consumer.seek(partition, end);
        nextReconcileAt = clock.millis() + reconcileInterval.toMillis();
    }

    /** One poll: take this host's newer updates and enforce them, then retries and the reconcile timer. */
    void pollOnce(Duration timeout) {
        ConsumerRecords<String, byte[]> records = consumer.poll(timeout);
        boolean accepted = false;
        for (ConsumerRecord<String, byte[]> record : records) {
            if (!hostId.equals(record.key())) {
                continue; // another host sharing this partition
            }
            try {
                accepted |= offer(deserializer.deserialize(record.topic(), record.value()));
            } catch (RuntimeException e) {
                meters.counter("egress.agent.poison").increment();
                log.warn("host {}: skipping bad update at offset {}: {}", hostId, record.offset(), e.getMessage());
            }
        }
        sampleLag();
        if (accepted) {
            enforce(EnforcementTrigger.UPDATE, false);
        }
        long now = clock.millis();
        if (pendingRetry && now >= nextRetryAt) {
            enforce(isBootstrapped() ? EnforcementTrigger.RETRY : EnforcementTrigger.BOOTSTRAP, true);
        }
        if (now >= nextReconcileAt) {
            nextReconcileAt = now + reconcileInterval.toMillis();
            reconcile();
        }
    }

    /**
     * The lag gauge: the consumer's own figure (from the last fetch's high watermark, no request), or
     * where it has none yet, end offset minus position, looked up at most once a second.
     */
    private void sampleLag() {
        OptionalLong current = consumer.currentLag(partition);
        if (current.isPresent()) {
            lag.set(current.getAsLong());
            return;
        }
        long now = clock.millis();
        if (now < nextLagLookupAt) {
            return;
        }
        nextLagLookupAt = now + 1000;
        try {
            Long end = consumer.endOffsets(List.of(partition), Duration.ofSeconds(1)).get(partition);
            if (end != null) {
                lag.set(Math.max(0, end - consumer.position(partition, Duration.ofSeconds(1))));
            }
        } catch (TimeoutException e) {
            log.debug("host {}: lag lookup timed out", hostId);
        }
    }

    private TopicPartition ownPartition() throws InterruptedException {
        while (running) {
            List<PartitionInfo> parts = consumer.partitionsFor(Topics.HOST_UPDATES, Duration.ofSeconds(5));
            if (parts != null && !parts.isEmpty()) {
                return new TopicPartition(Topics.HOST_UPDATES, Topics.partitionFor(hostId, parts.size()));
            }
            log.info("host {}: waiting for topic {}", hostId, Topics.HOST_UPDATES);
            Thread.sleep(500);
        }
        throw new InterruptedException("stopped");
    }

    /**
     * Offers one update; true when its version is newer than what the host held (then it must be
     * reported even if the content did not change: its change ids wait for the ACK). Other hosts'
     * updates, stale versions and redelivered duplicates return false (invariant 3).
     */
    private boolean offer(HostUpdate update) {
        FragmentUpdate u = EventMapper.fromAvro(update);
        if (!hostId.equals(u.hostId())) {
            return false;
        }
        Long held = state.versions().get(u.networkId());
        if (held != null && u.version() <= held) {
            return false;
        }
        state.offer(u);
        return true;
    }

    /**
     * The first enforcement: when the enforcer finds exactly this ruleset in force (the kernel kept
     * the table of an agent that was killed), it is taken as applied without touching the kernel;
     * the ACK's apply time is then the time of that check. Otherwise (or when the check itself
     * fails) the whole snapshot is applied.
     */
    private void enforceBootstrap() {
        String script = renderer.render(hostId, state.fragments());
        long started = System.nanoTime();
        boolean inForce;
        String why;
        try {
            inForce = enforcer.inSync(script);
            why = inForce ? "" : driftReason();
        } catch (EnforcementException e) {
            inForce = false;
            why = "the check failed: " + e.getMessage();
        }
        if (!inForce) {
            log.info("host {}: bootstrap applies the snapshot (hash {}) with the {} enforcer: what is in force is not it ({})",
                    hostId, state.hash(), enforcer.name(), why);
            lastBootstrapApplied = true;
            enforce(EnforcementTrigger.BOOTSTRAP, true, script);
            return;
        }
        long micros = (System.nanoTime() - started) / 1000;
        appliedScript = script;
        appliedHash = state.hash();
        lastBootstrapApplied = false;
        log.info("host {}: bootstrap found the snapshot (hash {}) already in force with the {} enforcer; nothing applied "
                + "(check took {} us)", hostId, appliedHash, enforcer.name(), micros);
        bootstrapped.countDown();
        report(EnforcementTrigger.BOOTSTRAP, EnforcementStatus.ACK, state.drainChangeIds(), null, micros);
    }

    private void enforce(EnforcementTrigger trigger, boolean force) {
        enforce(trigger, force, renderer.render(hostId, state.fragments()));
    }

    /** Applies {@code script}, the rendering of the current state, and reports. */
    private void enforce(EnforcementTrigger trigger, boolean force, String script) {
        String hash = state.hash();
        List<String> changeIds = state.drainChangeIds();
        long started = System.nanoTime();
        String error = null;
        try {
            if (force || !hash.equals(appliedHash) || !script.equals(appliedScript)) {
                Timer.Sample sample = Timer.start(meters);
                enforcer.apply(script);
                sample.stop(applyTimer);
            }
            appliedScript = script;
            appliedHash = hash;
            pendingRetry = false;
            backoff = Duration.ofMillis(200);
            bootstrapped.countDown();
        } catch (EnforcementException e) {
            error = e.getMessage();
            pendingRetry = true;
            Duration wait = backoff;
            nextRetryAt = clock.millis() + wait.toMillis();
            backoff = backoff.multipliedBy(2).compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : backoff.multipliedBy(2);
            meters.counter("egress.agent.apply.failures").increment();
            log.warn("host {}: apply failed, keeping the last good ruleset ({}), retry in {}: {}", hostId, appliedHash, wait, error);
        }
        long micros = (System.nanoTime() - started) / 1000;
        report(trigger, error == null ? EnforcementStatus.ACK : EnforcementStatus.NACK, changeIds, error, micros);
    }

    private void reconcile() {
        if (appliedScript == null || pendingRetry) {
            return;
        }
        try {
            if (!enforcer.inSync(appliedScript)) {
                driftRepairs.incrementAndGet();
                driftCounter.increment();
                log.warn("host {}: drift detected ({}), re-applying hash {}", hostId, driftReason(), appliedHash);
                enforce(EnforcementTrigger.DRIFT_REPAIR, true);
            }
        } catch (EnforcementException e) {
            log.warn("host {}: cannot read back the ruleset: {}", hostId, e.getMessage());
        }
    }

    /** Why the enforcer's last check found a difference, in its words where it has them. */
    private String driftReason() {
        return enforcer instanceof NftablesEnforcer n && !n.lastDriftReason().isEmpty() ? n.lastDriftReason() : "it differs";
    }

    private void report(EnforcementTrigger trigger, EnforcementStatus status, List<String> changeIds, String error, long micros) {
        List<AppliedFragment> fragments = new ArrayList<>();
        // On a NACK the kernel still holds the last good state; versions then describe what was wanted.
        for (Map.Entry<String, Long> e : state.versions().entrySet()) {
            fragments.add(AppliedFragment.newBuilder().setNetworkId(e.getKey()).setVersion(e.getValue()).build());
        }
        EnforcementReport r = EnforcementReport.newBuilder()
                .setHostId(hostId).setStatus(status).setTrigger(trigger)
                .setFragments(status == EnforcementStatus.ACK ? fragments : List.of())
                .setAppliedHash(appliedHash).setChangeIds(changeIds).setError(error)
                .setApplyMicros(micros).setEnforcer(enforcer.name()).setDriftRepairs(driftRepairs.get())
                .setReportedAt(clock.instant()).build();
        producer.send(new ProducerRecord<>(Topics.ENFORCEMENT_REPORTS, hostId, r));
    }
}
