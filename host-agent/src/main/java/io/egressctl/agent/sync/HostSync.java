package io.egressctl.agent.sync;

import io.egressctl.agent.enforce.EnforcementException;
import io.egressctl.agent.enforce.Enforcer;
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
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The agent's reconciler loop, on one thread:
 * <ol>
 *   <li>find the partition of egress.host-updates its host id maps to (the producer's partitioner)
 *       and assign only that one (no consumer group, no rebalancing);</li>
 *   <li>bootstrap (invariant 4): note the partition's end offset, then read the snapshot from the
 *       cache, apply it, then consume from the noted offset;</li>
 *   <li>for each poll: keep only its own host's records that are newer (invariant 3), render the
 *       whole host and apply it in one transaction (invariant 5), report ACK or NACK;</li>
 *   <li>on a timer, check the enforced ruleset against the desired one and repair drift (invariant 6);
 *       a failed apply is retried with exponential backoff.</li>
 * </ol>
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
    private final NftRenderer renderer = new NftRenderer();
    private final HostState state;
    private final CountDownLatch bootstrapped = new CountDownLatch(1);
    private final AtomicLong driftRepairs = new AtomicLong();
    private volatile boolean running = true;

    private String appliedScript;
    private String appliedHash = HostState.hashOf(new java.util.TreeMap<>());
    private boolean pendingRetry;
    private Duration backoff = Duration.ofMillis(200);
    private long nextRetryAt;
    private long nextReconcileAt;

    public HostSync(String hostId, Consumer<String, byte[]> consumer, Producer<String, SpecificRecord> producer,
                    SnapshotSource snapshots, AvroDeserializer<HostUpdate> deserializer, Enforcer enforcer,
                    Duration reconcileInterval, Clock clock, MeterRegistry meters) {
        this.hostId = hostId;
        this.consumer = consumer;
        this.producer = producer;
        this.snapshots = snapshots;
        this.deserializer = deserializer;
        this.enforcer = enforcer;
        this.reconcileInterval = reconcileInterval;
        this.clock = clock;
        this.meters = meters;
        this.state = new HostState(hostId);
        this.applyTimer = Timer.builder("egress.agent.apply").description("render + apply of one host state")
                .publishPercentiles(0.5, 0.99).register(meters);
    }

    /** True once the first snapshot has been applied. */
    public boolean isBootstrapped() {
        return bootstrapped.getCount() == 0;
    }

    public String appliedHash() {
        return appliedHash;
    }

    public void stop() {
        running = false;
        consumer.wakeup();
    }

    @Override
    public void run() {
        try {
            TopicPartition tp = ownPartition();
            consumer.assign(List.of(tp));
            long end = consumer.endOffsets(List.of(tp)).get(tp);
            int fromSnapshot = 0;
            for (byte[] encoded : snapshots.read(hostId)) {
                if (offer(HostUpdate.fromByteBuffer(ByteBuffer.wrap(encoded)))) {
                    fromSnapshot++;
                }
            }
            log.info("host {}: partition {}, end offset {}, {} fragments from the snapshot; enforcer {}",
                    hostId, tp.partition(), end, fromSnapshot, enforcer.name());
            enforce(EnforcementTrigger.BOOTSTRAP, true);
            bootstrapped.countDown();
            consumer.seek(tp, end);
            nextReconcileAt = clock.millis() + reconcileInterval.toMillis();
            while (running) {
                ConsumerRecords<String, byte[]> records = consumer.poll(Duration.ofMillis(100));
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
                if (accepted) {
                    enforce(EnforcementTrigger.UPDATE, false);
                }
                long now = clock.millis();
                if (pendingRetry && now >= nextRetryAt) {
                    enforce(EnforcementTrigger.RETRY, true);
                }
                if (now >= nextReconcileAt) {
                    nextReconcileAt = now + reconcileInterval.toMillis();
                    reconcile();
                }
            }
        } catch (org.apache.kafka.common.errors.WakeupException e) {
            if (running) {
                throw e;
            }
        } catch (Exception e) {
            log.error("host {}: sync loop stopped", hostId, e);
            throw new IllegalStateException(e);
        } finally {
            consumer.close();
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

    /** Offers one update; true when its version was newer than what the host held. */
    private boolean offer(HostUpdate update) {
        FragmentUpdate u = EventMapper.fromAvro(update);
        if (!hostId.equals(u.hostId())) {
            return false;
        }
        state.offer(u);
        Long held = state.versions().get(u.networkId());
        return held != null && held == u.version();
    }

    private void enforce(EnforcementTrigger trigger, boolean force) {
        String script = renderer.render(hostId, state.fragments());
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
        } catch (EnforcementException e) {
            error = e.getMessage();
            pendingRetry = true;
            nextRetryAt = clock.millis() + backoff.toMillis();
            backoff = backoff.multipliedBy(2).compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : backoff.multipliedBy(2);
            meters.counter("egress.agent.apply.failures").increment();
            log.warn("host {}: apply failed, keeping the last good ruleset ({}), retry in {}: {}", hostId, appliedHash, backoff, error);
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
                meters.counter("egress.agent.drift.repairs").increment();
                log.warn("host {}: drift detected, re-applying hash {}", hostId, appliedHash);
                enforce(EnforcementTrigger.DRIFT_REPAIR, true);
            }
        } catch (EnforcementException e) {
            log.warn("host {}: cannot read back the ruleset: {}", hostId, e.getMessage());
        }
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
