package io.egressctl.agent.sync;

import io.egressctl.agent.enforce.EnforcementException;
import io.egressctl.agent.enforce.Enforcer;
import io.egressctl.agent.enforce.FlowTable;
import io.egressctl.agent.enforce.NftablesEnforcer;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.FragmentDelta;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.core.host.HostState;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.nft.NftRuleset;
import io.egressctl.core.render.NftRenderer;
import io.egressctl.core.render.NftRenderer.Plan;
import io.egressctl.core.render.NftRenderer.Port;
import io.egressctl.events.AppliedFragment;
import io.egressctl.events.EnforcementReport;
import io.egressctl.events.EnforcementStatus;
import io.egressctl.events.EnforcementTrigger;
import io.egressctl.events.HostUpdate;
import io.egressctl.events.RefusedFragment;
import io.egressctl.events.UnenforcedVm;
import io.egressctl.schemas.integrity.UpdateKeys;
import io.egressctl.schemas.integrity.UpdateMac;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.registry.RegistryOutage;
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
import org.apache.kafka.clients.consumer.InvalidOffsetException;
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
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
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
 *       whole host and apply it in one transaction (invariant 5), end the established flows of the
 *       ports the apply blocks more on, report ACK or NACK;</li>
 *   <li>an update that carries its fragment as a delta ({@link io.egressctl.core.compile.FragmentDelta})
 *       is applied to the version it names when that is the version held, and the result must hash to
 *       the update's signed fragment hash; otherwise (a gap: the agent holds another version, e.g. the
 *       compiler failed over, or the result differs) the agent bootstraps again from the snapshot,
 *       which holds whole fragments at least as new as the log (counter {@code egress.agent.delta.gaps});</li>
 *   <li>on a timer, check the enforced ruleset against the desired one and repair drift (invariant 6);
 *       a failed apply is retried with exponential backoff.</li>
 * </ol>
 *
 * <h2>Fail closed</h2>
 * A snapshot that cannot be read (Redis down), or that holds nothing for this host at all (not even
 * a tombstone) while the kernel holds a non-empty table of ours ({@link Enforcer#holdsRules}) or this
 * agent already knows networks, is not applied: the table in force stays, the agent is not ready
 * (with the reason) and tries the bootstrap again with back-off. Only tombstones (the log removed
 * the networks) empty a table that held rules. A host with no table of ours and an empty snapshot is
 * a new host: the empty ruleset is applied and ACKed.
 *
 * <h2>An ACK means what it says</h2>
 * VMs the renderer cannot enforce ({@link Plan#unenforced()}: no interface in their placement, or an
 * interface claimed by another VM too) are reported in the report's {@code unenforced} list; their
 * networks are left out of its {@code fragments} and of the applied hash (the host hash over the
 * fragments of the other networks), so no change of such a network counts as applied on this host
 * and the host's applied hash differs from the one the compiler expects.
 *
 * <h2>A new block ends what it blocks</h2>
 * After a successful apply, the ports {@link NftRenderer#portsToFlush} names (their decisions may
 * block a flow they let through before; not ports of networks with keepEstablished) have their
 * established flows ended through the {@link FlowTable} (conntrack entries with the port's mark).
 * A bootstrap that replaced a table holding rules ends the flows of every such port of the new plan
 * (what the old table let through is not known). Failures are logged and counted; the apply stands.
 *
 * <h2>Supervised</h2>
 * {@link #run} survives every exception: each turn ({@link #step}) catches what it throws, records
 * it as the reason the agent is not syncing ({@link #readiness}), counts it and waits with
 * exponential back-off (200 ms doubling to 30 s) before the next turn. A consumer position the
 * broker no longer has (retention, a reset; the consumer runs with {@code auto.offset.reset=none})
 * bootstraps again from the snapshot rather than skipping, and so does a change of the partition count
 * of egress.host-updates (looked at every {@link #TOPOLOGY_CHECK}; the host's partition moves with it).
 * A record the schema registry cannot be
 * reached for is not skipped as poison: the consumer goes back to it and the turn is retried.
 *
 * <p>Ready ({@link #readiness}) once the first snapshot is enforced (applied, or found in force) and
 * while the loop is not failing or holding back. Metrics: timer {@code egress.agent.apply} (kernel
 * applies), counter {@code egress.agent.drift.repairs}, gauge {@code egress.agent.lag} (records behind
 * the end of its partition, sampled after every poll), counters {@code egress.agent.apply.failures},
 * {@code egress.agent.poison}, {@code egress.agent.sync.failures} (tag {@code reason}:
 * snapshot-unreadable, snapshot-empty, registry-unreachable, error), {@code egress.agent.rebootstraps},
 * {@code egress.agent.flows.ended} (conntrack entries deleted) and {@code egress.agent.flows.failures},
 * gauge {@code egress.agent.unenforced} (VMs of the host's fragments not enforced).
 *
 * <p>{@link #run} is {@link #step} until {@link #stop}; {@link #step} is {@link #bootstrap} when one
 * is due, else {@link #pollOnce}. Tests drive these on one thread.
 */
public final class HostSync implements Runnable {

    private static final Logger log = LoggerFactory.getLogger(HostSync.class);
    private static final Duration MAX_BACKOFF = Duration.ofSeconds(30);
    private static final Duration FIRST_BACKOFF = Duration.ofMillis(200);
    private static final Duration FIRST_REFUSAL_RETRY = Duration.ofSeconds(1);
    /** How often the partition count of egress.host-updates is looked at (from the consumer's metadata). */
    static final Duration TOPOLOGY_CHECK = Duration.ofSeconds(30);
    /**
     * How long one poll of the loop waits for records. A record ends the wait at once, so this is no
     * latency: it is how often an idle agent wakes up to look at its timers (reconcile, retries, the
     * partition count), and so how late a retry due sooner may come. {@code bench propagation}
     * measured 100 agents idle at 21.6 % of a core with 100 ms and 11 % with 500 ms.
     */
    static final Duration POLL_TIMEOUT = Duration.ofMillis(500);
    /** Elements a host holds unless its operator says otherwise ({@code egress.agent.max-elements}). */
    public static final long DEFAULT_MAX_ELEMENTS = 500_000;

    private final String hostId;
    private final Consumer<String, byte[]> consumer;
    private final Producer<String, SpecificRecord> producer;
    private final SnapshotSource snapshots;
    private final AvroDeserializer<HostUpdate> deserializer;
    private final Enforcer enforcer;
    private final FlowTable flows;
    private final Duration reconcileInterval;
    private final Clock clock;
    private final MeterRegistry meters;
    private final Timer applyTimer;
    private final NftRenderer renderer;
    private final HostState state;
    private final long maxElements;
    /** Checks that each update was signed by the compiler (when keys are configured). */
    private final UpdateMac updateMac;
    /** Signs this host's reports with the same keys (the compiler takes only signed reports when it holds them). */
    private final io.egressctl.schemas.integrity.ReportMac reportMac;
    private final Counter unauthenticated;
    /** Updates refused as unauthenticated since the last report: the next report lists them as refused. */
    private final List<RefusedFragment> unauthenticatedSinceReport = new ArrayList<>();
    private volatile String lastUnauthenticated;
    private final CountDownLatch bootstrapped = new CountDownLatch(1);
    private final CountDownLatch stopSignal = new CountDownLatch(1);
    private final AtomicLong driftRepairs = new AtomicLong();
    private final Counter driftCounter;
    private final Counter rebootstraps;
    private final Counter deltaGaps;
    private final Counter flowsEnded;
    private final Counter flowFailures;
    /** Records behind the end of the partition at the last poll; -1 until first known. */
    private final AtomicLong lag = new AtomicLong(-1);
    private final AtomicLong unenforcedCount = new AtomicLong();
    private final AtomicLong refusedCount = new AtomicLong();
    private volatile Map<String, Refusal> appliedRefusals = Map.of();
    private volatile boolean running = true;

    private TopicPartition partition;
    /** Partitions of egress.host-updates when this agent picked its own; a change makes it bootstrap again. */
    private int partitionCount;
    private long nextTopologyCheckAt;
    private long nextLagLookupAt;
    private boolean lastBootstrapApplied;
    /** A bootstrap is due: at start, and after the consumer's position became invalid. */
    private boolean needsBootstrap = true;
    /** Updates taken into the state that are not yet enforced and reported. */
    private boolean dirty;
    /** Change ids taken from the state and not yet sent in a report (a failed send keeps them). */
    private final List<String> unreportedChangeIds = new ArrayList<>();
    /** The next successful apply ends the flows of every port of its plan (a bootstrap replaced a table holding rules). */
    private boolean flushAllOnNextApply;

    private NftRuleset appliedRuleset;
    private Plan appliedPlan;
    /** The fragments the applied ruleset was rendered from, by network, and their versions (stand-ins without one). */
    private SortedMap<String, Fragment> appliedFragments = new TreeMap<>();
    private Map<String, Long> appliedVersions = Map.of();
    /** Networks whose newest version is refused on this host, with what stands in for each; retried on a timer. */
    private final Map<String, Refusal> refusals = new TreeMap<>();
    private Duration refusalBackoff = FIRST_REFUSAL_RETRY;
    private long nextRefusalRetryAt;
    private volatile String appliedHash = HostState.hashOf(new TreeMap<>());
    private volatile List<NftRenderer.Unenforced> appliedUnenforced = List.of();
    private boolean pendingRetry;
    private Duration backoff = FIRST_BACKOFF;
    private long nextRetryAt;
    private long nextReconcileAt;

    /** Why the loop is not syncing now (null when it is), since when, and its back-off. */
    private volatile String fault;
    private volatile Instant faultSince;
    private volatile String lastApplyError;
    private volatile boolean ended;
    private Duration loopBackoff = FIRST_BACKOFF;

    public HostSync(String hostId, Consumer<String, byte[]> consumer, Producer<String, SpecificRecord> producer,
                    SnapshotSource snapshots, AvroDeserializer<HostUpdate> deserializer, Enforcer enforcer, FlowTable flows,
                    NftRenderer renderer, Duration reconcileInterval, Clock clock, MeterRegistry meters) {
        this(hostId, consumer, producer, snapshots, deserializer, enforcer, flows, renderer, reconcileInterval, clock, meters,
                DEFAULT_MAX_ELEMENTS, new UpdateMac(UpdateKeys.NONE));
    }

    /**
     * @param maxElements the most set and map elements the host's ruleset may hold (the operator's
     *                    limit): a network whose version would take the host past it is refused on this
     *                    host, the others applied
     * @param updateMac   checks every update (log and snapshot) before it is taken into the state: with
     *                    keys, one the compiler did not sign is refused, counted and reported, never applied
     */
    public HostSync(String hostId, Consumer<String, byte[]> consumer, Producer<String, SpecificRecord> producer,
                    SnapshotSource snapshots, AvroDeserializer<HostUpdate> deserializer, Enforcer enforcer, FlowTable flows,
                    NftRenderer renderer, Duration reconcileInterval, Clock clock, MeterRegistry meters, long maxElements,
                    UpdateMac updateMac) {
        if (maxElements < 1) {
            throw new IllegalArgumentException("maxElements must be at least 1, got " + maxElements);
        }
        this.maxElements = maxElements;
        this.updateMac = updateMac;
        this.reportMac = new io.egressctl.schemas.integrity.ReportMac(updateMac.keys());
        this.unauthenticated = Counter.builder("egress.agent.updates.refused").tag("reason", "authentication")
                .description("host updates refused because they are not signed by the compiler (unsigned, forged, altered)")
                .register(meters);
        this.hostId = hostId;
        this.consumer = consumer;
        this.producer = producer;
        this.snapshots = snapshots;
        this.deserializer = deserializer;
        this.enforcer = enforcer;
        this.flows = flows;
        this.renderer = renderer;
        this.reconcileInterval = reconcileInterval;
        this.clock = clock;
        this.meters = meters;
        this.state = new HostState(hostId);
        this.applyTimer = Timer.builder("egress.agent.apply").description("one apply of a host's ruleset to the enforcer")
                .publishPercentiles(0.5, 0.99).register(meters);
        this.driftCounter = Counter.builder("egress.agent.drift.repairs")
                .description("re-applies after the enforced ruleset drifted from the desired one").register(meters);
        this.rebootstraps = Counter.builder("egress.agent.rebootstraps")
                .description("bootstraps from the snapshot after the consumer's position became invalid, or a delta update's base was not the version held").register(meters);
        this.deltaGaps = Counter.builder("egress.agent.delta.gaps")
                .description("delta updates whose base this agent did not hold: read again from the snapshot").register(meters);
        this.flowsEnded = Counter.builder("egress.agent.flows.ended")
                .description("established flows (conntrack entries) ended after a new block").register(meters);
        this.flowFailures = Counter.builder("egress.agent.flows.failures")
                .description("ports whose established flows could not be ended after a new block").register(meters);
        Gauge.builder("egress.agent.lag", lag, l -> l.get() < 0 ? Double.NaN : l.get())
                .description("records of the agent's partition of egress.host-updates not yet consumed").register(meters);
        Gauge.builder("egress.agent.unenforced", unenforcedCount, AtomicLong::get)
                .description("VMs of the host's fragments the applied ruleset does not enforce").register(meters);
        Gauge.builder("egress.agent.refused", refusedCount, AtomicLong::get)
                .description("networks whose newest version this host refused while applying the others").register(meters);
    }

    /** True once the first snapshot is enforced (applied, or found already in force). */
    public boolean isBootstrapped() {
        return bootstrapped.getCount() == 0;
    }

    /** Whether the agent is ready, and why not. */
    public record Readiness(boolean ready, String reason, Map<String, Object> details) {
    }

    /**
     * Ready once the first snapshot is enforced and while the loop syncs. Not ready, with the reason:
     * before the first snapshot is enforced (with the last apply error if any), while a turn of the
     * loop fails or holds back (snapshot unreadable or empty, registry unreachable, any exception;
     * "not syncing: ..."), and after the loop ended. Thread-safe.
     */
    public Readiness readiness() {
        Map<String, Object> details = new LinkedHashMap<>();
        details.put("appliedHash", appliedHash);
        List<NftRenderer.Unenforced> un = appliedUnenforced;
        if (!un.isEmpty()) {
            List<String> list = new ArrayList<>();
            un.forEach(u -> list.add("net " + u.networkId() + " vm " + u.vmId() + ": " + u.reason()));
            details.put("unenforced", list);
        }
        String forged = lastUnauthenticated;
        if (forged != null) {
            details.put("lastUnauthenticatedUpdate", forged);
        }
        Map<String, Refusal> refused = appliedRefusals;
        if (!refused.isEmpty()) {
            List<String> list = new ArrayList<>();
            refused.forEach((n, r) -> list.add("net " + n + " v" + r.version() + ": " + r.reason()));
            details.put("refused", list);
        }
        String f = fault;
        if (ended) {
            return new Readiness(false, "not syncing: the sync loop ended" + (f == null ? "" : " (" + f + ")"), details);
        }
        if (f != null) {
            details.put("since", String.valueOf(faultSince));
            return new Readiness(false, "not syncing: " + f, details);
        }
        if (!isBootstrapped()) {
            String e = lastApplyError;
            return new Readiness(false, "first snapshot not applied yet" + (e == null ? "" : ": " + e), details);
        }
        return new Readiness(true, "", details);
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
        stopSignal.countDown();
        consumer.wakeup();
    }

    @Override
    public void run() {
        try {
            while (running) {
                Duration wait = step(POLL_TIMEOUT);
                if (running && !wait.isZero()) {
                    try {
                        stopSignal.await(wait.toMillis(), TimeUnit.MILLISECONDS);
                    } catch (InterruptedException e) {
                        if (!running) {
                            break;
                        }
                        Thread.interrupted(); // not a stop: keep going
                    }
                }
            }
        } catch (Error e) {
            fault = "the sync loop ended: " + e;
            log.error("host {}: sync loop ended", hostId, e);
            throw e;
        } finally {
            ended = true;
            consumer.close();
        }
    }

    /**
     * One turn of the supervised loop: a bootstrap when one is due, else a poll. Whatever it throws
     * is caught here: the reason becomes the readiness answer and a count in
     * {@code egress.agent.sync.failures}, and the returned wait grows (200 ms doubling up to 30 s);
     * an invalid consumer position makes the next turn a bootstrap, at once.
     *
     * @return how long to wait before the next turn (zero after a good one)
     */
    Duration step(Duration pollTimeout) {
        try {
            if (needsBootstrap) {
                bootstrap();
            } else {
                pollOnce(pollTimeout);
            }
            recovered();
            return Duration.ZERO;
        } catch (InvalidOffsetException e) {
            // Retention deleted what the agent had not read, or its position was reset: what it
            // missed is in the snapshot, not in the log.
            needsBootstrap = true;
            rebootstraps.increment();
            setFault("its position in " + (partition == null ? Topics.HOST_UPDATES : partition) + " is not valid any more ("
                    + e.getMessage() + "); bootstrapping again from the snapshot");
            log.warn("host {}: {}", hostId, fault);
            return Duration.ZERO;
        } catch (WakeupException e) {
            if (!running) {
                return Duration.ZERO;
            }
            return failed("error", "woken up unexpectedly", e);
        } catch (InterruptedException e) {
            if (!running) {
                return Duration.ZERO;
            }
            return failed("error", "interrupted", e);
        } catch (NotReadyException e) {
            return failed(e.kind, e.getMessage(), null);
        } catch (RuntimeException e) {
            return failed("error", e.toString(), e);
        }
    }

    private void recovered() {
        if (fault != null) {
            log.info("host {}: syncing again (was: {})", hostId, fault);
        }
        fault = null;
        faultSince = null;
        loopBackoff = FIRST_BACKOFF;
    }

    private void setFault(String reason) {
        if (fault == null) {
            faultSince = clock.instant();
        }
        fault = reason;
    }

    private Duration failed(String kind, String reason, Throwable e) {
        boolean again = reason.equals(fault);
        setFault(reason);
        meters.counter("egress.agent.sync.failures", "reason", kind).increment();
        Duration wait = loopBackoff;
        loopBackoff = loopBackoff.multipliedBy(2).compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : loopBackoff.multipliedBy(2);
        if (e != null && !again) { // the stack once per run of the same failure
            log.warn("host {}: not syncing, retrying in {}: {}", hostId, wait, reason, e);
        } else {
            log.warn("host {}: not syncing, retrying in {}: {}", hostId, wait, reason);
        }
        return wait;
    }

    /** A turn that holds back on purpose: its message is the reason, {@code kind} the metric's tag. */
    static final class NotReadyException extends RuntimeException {
        final String kind;

        NotReadyException(String kind, String message, Throwable cause) {
            super(message, cause);
            this.kind = kind;
        }
    }

    /**
     * Invariant 4: note the partition's end offset, read the snapshot, enforce it, then position the
     * consumer at the noted offset. Enforcing the snapshot skips the kernel apply when the enforcer
     * reports that exactly this ruleset is already in force (a restarted agent), and reports an ACK
     * with trigger BOOTSTRAP either way. Fails closed (see the class comment): throws
     * {@link NotReadyException} without touching the kernel when the snapshot cannot be read, or
     * holds nothing for this host while there is something to lose.
     */
    void bootstrap() throws InterruptedException {
        partition = ownPartition();
        consumer.assign(List.of(partition));
        long end = consumer.endOffsets(List.of(partition)).get(partition);
        List<byte[]> entries;
        try {
            entries = snapshots.read(hostId);
        } catch (RuntimeException e) {
            throw new NotReadyException("snapshot-unreadable", "cannot read the snapshot of host " + hostId
                    + " (keeping the ruleset in force): " + e.getMessage(), e);
        }
        int fromSnapshot = 0;
        int forThisHost = 0;
        List<String> unauthentic = new ArrayList<>();
        for (byte[] encoded : entries) {
            HostUpdate update;
            try {
                update = HostUpdate.fromByteBuffer(ByteBuffer.wrap(encoded));
            } catch (IOException | RuntimeException e) {
                meters.counter("egress.agent.poison").increment();
                log.warn("host {}: skipping an undecodable snapshot entry: {}", hostId, e.getMessage());
                continue;
            }
            if (hostId.equals(update.getHostId())) {
                forThisHost++;
            }
            if (EventMapper.isDelta(update)) {
                // The compiler writes whole fragments to the snapshot: a delta there is not its, and
                // what this host should enforce for that network is not known (fail closed).
                throw new NotReadyException("snapshot-invalid", "the snapshot of host " + hostId + " holds a delta for network "
                        + update.getNetworkId() + " v" + update.getVersion() + " (snapshots hold whole fragments); keeping the "
                        + "ruleset in force (./egressctl rebuild rewrites the snapshots from the log)", null);
            }
            double refusedBefore = unauthenticated.count();
            if (offer(update)) {
                fromSnapshot++;
            } else if (unauthenticated.count() > refusedBefore) {
                unauthentic.add(update.getNetworkId() + " v" + update.getVersion());
            }
        }
        if (!unauthentic.isEmpty()) {
            // Whoever wrote them could also have removed the real entries of those networks: what this
            // host should enforce for them is not known, so nothing is applied (fail closed).
            throw new NotReadyException("snapshot-unauthenticated", "the snapshot of host " + hostId + " holds " + unauthentic.size()
                    + " entr" + (unauthentic.size() == 1 ? "y" : "ies") + " not signed by the compiler (" + String.join(", ", unauthentic)
                    + "); keeping the ruleset in force until they are gone (./egressctl rebuild rewrites the snapshots from the log)",
                    null);
        }
        if (forThisHost == 0) {
            failClosedOnEmptySnapshot(entries.size());
        }
        log.info("host {}: partition {}, end offset {}, {} fragments from the snapshot; enforcer {}",
                hostId, partition.partition(), end, fromSnapshot, enforcer.name());
        enforceBootstrap();
        consumer.seek(partition, end);
        needsBootstrap = false;
        nextReconcileAt = clock.millis() + reconcileInterval.toMillis();
    }

    /**
     * The snapshot holds nothing for this host, not even a tombstone. That is a new host, unless
     * there is something to lose: the agent already knows networks (a bootstrap again after an
     * invalid position), or the kernel holds a table of ours with rules. Then the cache was emptied
     * or lost, not the host's networks: hold.
     */
    private void failClosedOnEmptySnapshot(int entries) {
        String what = entries == 0 ? "is empty" : "has no entry this agent can read (" + entries + " undecodable or foreign)";
        if (!state.versions().isEmpty()) {
            throw new NotReadyException("snapshot-empty", "the snapshot of host " + hostId + " " + what + " although this agent "
                    + "knows " + state.versions().size() + " network(s); keeping the ruleset in force until the snapshot is back", null);
        }
        boolean holds;
        try {
            holds = enforcer.holdsRules();
        } catch (EnforcementException e) {
            throw new NotReadyException("snapshot-empty", "the snapshot of host " + hostId + " " + what + " and the ruleset in "
                    + "force cannot be read (" + e.getMessage() + "); not applying an empty ruleset", e);
        }
        if (holds) {
            throw new NotReadyException("snapshot-empty", "the snapshot of host " + hostId + " " + what + " while the kernel "
                    + "holds rules of ours; keeping them until the snapshot is back (an emptied cache must not empty the host)", null);
        }
        log.info("host {}: empty snapshot and no rules of ours in force: a new host", hostId);
    }

    /** One poll: take this host's newer updates and enforce them, then retries and the reconcile timer. */
    void pollOnce(Duration timeout) {
        ConsumerRecords<String, byte[]> records = consumer.poll(timeout);
        NotReadyException blocked = null;
        for (ConsumerRecord<String, byte[]> record : records) {
            if (!hostId.equals(record.key())) {
                continue; // another host sharing this partition
            }
            HostUpdate update;
            try {
                update = deserializer.deserialize(record.topic(), record.value());
            } catch (RuntimeException e) {
                if (RegistryOutage.isOutage(e)) {
                    // Not poison: the record is read again once the registry answers.
                    consumer.seek(partition, record.offset());
                    blocked = new NotReadyException("registry-unreachable", "the schema registry cannot be reached to read the "
                            + "update at offset " + record.offset() + ": " + e.getMessage(), e);
                    break;
                }
                meters.counter("egress.agent.poison").increment();
                log.warn("host {}: skipping bad update at offset {}: {}", hostId, record.offset(), e.getMessage());
                continue;
            }
            try {
                boolean newer = offer(update); // before the read of dirty: a refused update sets it
                dirty |= newer;
            } catch (DeltaGap gap) {
                // The rest of this poll is read again after the bootstrap: the snapshot holds whole
                // fragments at least as new as this record, and the tail is read from where it noted.
                deltaGaps.increment();
                rebootstraps.increment();
                needsBootstrap = true;
                log.info("host {}: {} at offset {}; bootstrapping again from the snapshot", hostId, gap.getMessage(), record.offset());
                break;
            } catch (RuntimeException e) {
                meters.counter("egress.agent.poison").increment();
                log.warn("host {}: skipping bad update at offset {}: {}", hostId, record.offset(), e.getMessage());
            }
        }
        sampleLag();
        if (dirty) {
            enforce(EnforcementTrigger.UPDATE, false);
        }
        long now = clock.millis();
        if (pendingRetry && now >= nextRetryAt) {
            enforce(isBootstrapped() ? EnforcementTrigger.RETRY : EnforcementTrigger.BOOTSTRAP, true);
        } else if (!refusals.isEmpty() && now >= nextRefusalRetryAt) {
            // A refusal may have been the kernel's passing state, or the limit may fit now: try the refused versions again.
            refusals.clear();
            enforce(EnforcementTrigger.RETRY, false);
        }
        if (now >= nextReconcileAt) {
            nextReconcileAt = now + reconcileInterval.toMillis();
            reconcile();
        }
        if (blocked != null) {
            throw blocked;
        }
        if (now >= nextTopologyCheckAt) {
            nextTopologyCheckAt = now + TOPOLOGY_CHECK.toMillis();
            checkTopology();
        }
    }

    /**
     * An operator added partitions to egress.host-updates: the producer's partitioner now sends this
     * host's updates to another partition, so the agent bootstraps again (its partition picked anew,
     * the snapshot read, the tail read from there). What it enforces stays in force meanwhile.
     */
    private void checkTopology() {
        List<PartitionInfo> parts;
        try {
            parts = consumer.partitionsFor(Topics.HOST_UPDATES, Duration.ofSeconds(1));
        } catch (TimeoutException e) {
            log.debug("host {}: partition lookup timed out", hostId);
            return;
        }
        if (parts == null || parts.isEmpty() || parts.size() == partitionCount) {
            return;
        }
        int now = Topics.partitionFor(hostId, parts.size());
        log.warn("host {}: {} has {} partitions now (was {}); this host's updates go to partition {} (was {}): bootstrapping again",
                hostId, Topics.HOST_UPDATES, parts.size(), partitionCount, now, partition.partition());
        rebootstraps.increment();
        needsBootstrap = true;
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
                partitionCount = parts.size();
                nextTopologyCheckAt = clock.millis() + TOPOLOGY_CHECK.toMillis();
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
        if (!hostId.equals(update.getHostId())) {
            return false;
        }
        FragmentUpdate u;
        try {
            if (EventMapper.isDelta(update)) {
                // resolveDelta checks the signature, and the resolved fragment against the signed hash, itself.
                u = resolveDelta(update);
                if (u == null) {
                    return false; // a delta of a version not newer than the one held
                }
            } else {
                u = EventMapper.fromAvro(update);
                updateMac.verify(update, u);
            }
        } catch (UpdateMac.RefusedUpdateException e) {
            // Before the state sees it: a forged update with a high version must not hide later real ones.
            String network = update.getNetworkId();
            long version = update.getVersion();
            unauthenticated.increment();
            lastUnauthenticated = "net " + network + " v" + version + ": " + e.getMessage();
            log.warn("host {}: refused an update that is not the compiler's (net {} v{}): {}", hostId, network, version, e.getMessage());
            if (unauthenticatedSinceReport.size() < 100) {
                unauthenticatedSinceReport.add(RefusedFragment.newBuilder().setNetworkId(network).setVersion(version)
                        .setReason("not authenticated: " + e.getMessage()).build());
            }
            dirty = true; // reported with the next report
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
     * A delta update made whole against the fragment this host holds for its network, or null when
     * its version is not newer than the one held. Its signature is checked first (a refusal is
     * counted as any other), so an update nobody signed cannot make the agent read its snapshot.
     *
     * @throws DeltaGap when the held version is not the delta's base, or the result does not hash to
     *                  the update's fragment hash (with or without update keys)
     */
    private FragmentUpdate resolveDelta(HostUpdate update) throws UpdateMac.RefusedUpdateException {
        updateMac.verifySignature(update);
        Long held = state.versions().get(update.getNetworkId());
        if (held != null && update.getVersion() <= held) {
            return null;
        }
        FragmentDelta delta = EventMapper.deltaFromAvro(update);
        Fragment base = state.fragments().get(update.getNetworkId());
        if (held == null || held != delta.baseVersion() || base == null) {
            throw new DeltaGap("network " + update.getNetworkId() + " v" + update.getVersion() + " is a delta against v"
                    + delta.baseVersion() + ", this host holds " + (held == null ? "none" : "v" + held));
        }
        FragmentUpdate u = EventMapper.resolve(update, delta, base);
        if (!u.fragment().hash().equals(update.getFragmentHash())) {
            throw new DeltaGap("network " + update.getNetworkId() + " v" + update.getVersion() + ", a delta against v" + held
                    + " applied to the fragment held, does not hash to the update's fragment hash");
        }
        return u;
    }

    /** A delta update this host cannot apply: it reads the snapshot again. */
    static final class DeltaGap extends RuntimeException {
        private static final long serialVersionUID = 1L;

        DeltaGap(String message) {
            super(message, null, false, false);
        }
    }

    /**
     * A network version this host refused, why, and what stands in for it: the network's last good
     * fragment ({@code standInVersion} its version), a fragment that blocks its VMs' egress (a network
     * the host never held; {@code standInVersion} null), or nothing (a removal refused: null both).
     */
    record Refusal(long version, String reason, Fragment standIn, Long standInVersion) {
    }

    /**
     * What a set of fragments renders to: the fragments and their versions (stand-ins for refused
     * networks included; a blocking stand-in has no version), the plan, the ruleset, the hash and
     * networks an ACK of it reports, and the refusals it stands for.
     */
    private record Desired(SortedMap<String, Fragment> fragments, Map<String, Long> versions, Plan plan, NftRuleset ruleset,
                           String hash, Set<String> unenforcedNetworks, Map<String, Refusal> refusals) {
    }

    /**
     * The state's newest fragments, with the standing refusals' stand-ins in place of the versions
     * they refused. A refusal ends when a newer version of its network arrives (that one is tried).
     */
    private Desired desired() {
        refusals.entrySet().removeIf(e -> !Long.valueOf(e.getValue().version()).equals(state.versions().get(e.getKey())));
        SortedMap<String, Fragment> fragments = new TreeMap<>(state.fragments());
        Map<String, Long> versions = new TreeMap<>();
        fragments.keySet().forEach(n -> versions.put(n, state.versions().get(n)));
        Map<String, Refusal> standing = new TreeMap<>(refusals);
        standing.forEach((n, r) -> standIn(fragments, versions, n, r));
        return render(fragments, versions, standing);
    }

    private static void standIn(SortedMap<String, Fragment> fragments, Map<String, Long> versions, String network, Refusal r) {
        if (r.standIn() == null) {
            fragments.remove(network);
        } else {
            fragments.put(network, r.standIn());
        }
        if (r.standInVersion() == null) {
            versions.remove(network);
        } else {
            versions.put(network, r.standInVersion());
        }
    }

    private Desired render(SortedMap<String, Fragment> fragments, Map<String, Long> versions, Map<String, Refusal> refused) {
        Plan plan = renderer.plan(fragments);
        NftRuleset ruleset = renderer.ruleset(hostId, fragments, plan);
        Set<String> unenforced = plan.unenforcedNetworks();
        SortedMap<String, Fragment> hashed = new TreeMap<>(fragments);
        hashed.keySet().retainAll(versions.keySet()); // a blocking stand-in is no version of its network
        return new Desired(fragments, versions, plan, ruleset, enforcedHash(hashed, unenforced), unenforced, Map.copyOf(refused));
    }

    /**
     * The applied hash a host reports: {@link HostState#hashOf} over the fragments of the networks
     * it enforces, those with an unenforced VM left out (so it differs from the compiler's expected
     * hash while a VM is not enforced).
     */
    static String enforcedHash(SortedMap<String, Fragment> fragments, Set<String> unenforcedNetworks) {
        if (unenforcedNetworks.isEmpty()) {
            return HostState.hashOf(fragments);
        }
        TreeMap<String, Fragment> enforced = new TreeMap<>(fragments);
        enforced.keySet().removeAll(unenforcedNetworks);
        return HostState.hashOf(enforced);
    }

    /**
     * The first enforcement: when the enforcer finds exactly this ruleset in force (the kernel kept
     * the table of an agent that was killed), it is taken as applied without touching the kernel;
     * the ACK's apply time is then the time of that check. Otherwise (or when the check itself
     * fails) the whole snapshot is applied, and when the table it replaces held rules, the flows of
     * every port of the new plan are ended after the apply.
     */
    private void enforceBootstrap() {
        Desired d = desired();
        long started = System.nanoTime();
        boolean inForce;
        String why;
        try {
            inForce = enforcer.inSync(d.ruleset());
            why = inForce ? "" : driftReason();
        } catch (EnforcementException e) {
            inForce = false;
            why = "the check failed: " + e.getMessage();
        }
        if (!inForce) {
            if (appliedPlan == null) {
                try {
                    flushAllOnNextApply = enforcer.holdsRules();
                } catch (EnforcementException e) {
                    flushAllOnNextApply = true; // cannot tell: end them, it costs an allowed flow nothing
                }
            }
            log.info("host {}: bootstrap applies the snapshot (hash {}) with the {} enforcer: what is in force is not it ({})",
                    hostId, d.hash(), enforcer.name(), why);
            lastBootstrapApplied = true;
            enforce(EnforcementTrigger.BOOTSTRAP, true, d);
            return;
        }
        long micros = (System.nanoTime() - started) / 1000;
        List<String> changeIds = takeChangeIds();
        commit(d);
        lastBootstrapApplied = false;
        log.info("host {}: bootstrap found the snapshot (hash {}) already in force with the {} enforcer; nothing applied "
                + "(check took {} us)", hostId, appliedHash, enforcer.name(), micros);
        bootstrapped.countDown();
        report(EnforcementTrigger.BOOTSTRAP, EnforcementStatus.ACK, changeIds, null, micros, d);
    }

    private void enforce(EnforcementTrigger trigger, boolean force) {
        enforce(trigger, force, desired());
    }

    /** Applies {@code d}, the rendering of the current state, ends the flows it blocks, and reports. */
    private void enforce(EnforcementTrigger trigger, boolean force, Desired d) {
        List<String> changeIds = takeChangeIds();
        long started = System.nanoTime();
        String error = null;
        try {
            boolean applied = false;
            if (force || !d.hash().equals(appliedHash) || !d.ruleset().sameTables(appliedRuleset)) {
                d = applyIsolating(d);
                applied = true;
            }
            Plan before = appliedPlan;
            commit(d);
            pendingRetry = false;
            backoff = FIRST_BACKOFF;
            lastApplyError = null;
            bootstrapped.countDown();
            if (applied) {
                endFlows(flushAllOnNextApply ? flushable(d.plan()) : NftRenderer.portsToFlush(before, d.plan()));
                flushAllOnNextApply = false;
            }
        } catch (EnforcementException e) {
            error = e.getMessage();
            lastApplyError = error;
            pendingRetry = true;
            Duration wait = backoff;
            nextRetryAt = clock.millis() + wait.toMillis();
            backoff = backoff.multipliedBy(2).compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : backoff.multipliedBy(2);
            meters.counter("egress.agent.apply.failures").increment();
            log.warn("host {}: apply failed, keeping the last good ruleset ({}), retry in {}: {}", hostId, appliedHash, wait, error);
        }
        long micros = (System.nanoTime() - started) / 1000;
        report(trigger, error == null ? EnforcementStatus.ACK : EnforcementStatus.NACK, changeIds, error, micros, d);
    }

    /** Takes {@code d} as what is in force. */
    private void commit(Desired d) {
        appliedRuleset = d.ruleset();
        appliedPlan = d.plan();
        appliedHash = d.hash();
        appliedFragments = d.fragments();
        appliedVersions = d.versions();
        setUnenforced(d.plan().unenforced());
        if (!d.refusals().equals(appliedRefusals)) {
            d.refusals().forEach((n, r) -> {
                if (!r.equals(appliedRefusals.get(n))) {
                    log.warn("host {}: refused net {} v{} (the other networks are applied; {}): {}", hostId, n, r.version(),
                            r.standInVersion() != null ? "v" + r.standInVersion() + " stays in force"
                                    : r.standIn() != null ? "its VMs' egress is blocked" : "its removal waits", r.reason());
                }
            });
        }
        appliedRefusals = d.refusals();
        refusedCount.set(d.refusals().size());
        if (d.refusals().isEmpty()) {
            refusalBackoff = FIRST_REFUSAL_RETRY;
        }
    }

    /**
     * Applies {@code d}; when that is refused, finds the networks it is due to and applies the others.
     * <ul>
     *   <li>A ruleset over the host's element limit, or one the kernel refuses (and refuses again on a
     *       {@link Enforcer#check}) while it takes the host's last good state, is due to the networks
     *       that changed since that state: they are admitted by halves ({@code check} of each trial,
     *       nothing in force changes) and those that cannot be admitted alone are refused, each with its
     *       reason. The result (the admitted networks' new versions, the refused ones' stand-ins) is
     *       applied in one transaction.</li>
     *   <li>A refusal that the check does not repeat (a timeout, nft missing) or that the last good state
     *       gets too is the host's, not a network's: it is thrown, and the whole host NACKs and retries.</li>
     * </ul>
     *
     * @return what is now in force: {@code d}, or its isolated variant with the new refusals
     */
    private Desired applyIsolating(Desired d) throws EnforcementException {
        String limit = overLimit(d.ruleset());
        EnforcementException refused = null;
        if (limit == null) {
            try {
                applyTimed(d.ruleset());
                return d;
            } catch (EnforcementException e) {
                refused = e;
            }
        }
        String why = limit != null ? limit : refused.getMessage();
        // The networks that changed since the state in force, and what each would fall back to.
        List<String> changed = new ArrayList<>();
        SortedMap<String, Fragment> base = new TreeMap<>(d.fragments());
        Map<String, Long> baseVersions = new TreeMap<>(d.versions());
        Map<String, Refusal> fallbacks = new TreeMap<>();
        Set<String> networks = new TreeSet<>(d.fragments().keySet());
        networks.addAll(appliedFragments.keySet());
        for (String n : networks) {
            Fragment want = d.fragments().get(n);
            Fragment have = appliedFragments.get(n);
            if (want == have) {
                continue;
            }
            changed.add(n);
            Fragment standIn = have != null ? have : blocking(want);
            Refusal fallback = new Refusal(state.versions().getOrDefault(n, 0L), "", standIn, have != null ? appliedVersions.get(n) : null);
            fallbacks.put(n, fallback);
            standIn(base, baseVersions, n, fallback);
        }
        if (changed.isEmpty()) {
            throw refused != null ? refused : new EnforcementException(limit);
        }
        Desired fallback = render(base, baseVersions, d.refusals());
        String baseProblem = problem(fallback.ruleset());
        if (baseProblem != null) {
            throw new EnforcementException(why + "; the host's last good state is refused too (" + baseProblem + ")");
        }
        if (refused != null && problem(d.ruleset()) == null) {
            throw refused; // the kernel takes it on a check: not the content's fault; the whole host retries
        }
        Map<String, Refusal> found = new TreeMap<>(d.refusals());
        Desired admitted = admit(changed, fallback, d, fallbacks, found);
        log.warn("host {}: the ruleset was refused ({}); {} of {} changed network(s) refused, the others applied", hostId, why,
                found.size() - d.refusals().size(), changed.size());
        applyTimed(admitted.ruleset());
        refusals.putAll(found);
        nextRefusalRetryAt = clock.millis() + refusalBackoff.toMillis();
        refusalBackoff = refusalBackoff.multipliedBy(2).compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : refusalBackoff.multipliedBy(2);
        return render(admitted.fragments(), admitted.versions(), found);
    }

    /**
     * Admits {@code networks} (each at its version in {@code target}) into {@code accepted} all at once
     * when the result passes {@link #problem}, else by halves; a single network that does not pass is
     * refused (into {@code found}) and keeps its fallback.
     */
    private Desired admit(List<String> networks, Desired accepted, Desired target, Map<String, Refusal> fallbacks,
                          Map<String, Refusal> found) throws EnforcementException {
        SortedMap<String, Fragment> fragments = new TreeMap<>(accepted.fragments());
        Map<String, Long> versions = new TreeMap<>(accepted.versions());
        for (String n : networks) {
            Fragment f = target.fragments().get(n);
            if (f == null) {
                fragments.remove(n);
                versions.remove(n);
            } else {
                fragments.put(n, f);
                versions.put(n, target.versions().get(n));
            }
        }
        Desired trial = render(fragments, versions, accepted.refusals());
        String problem = problem(trial.ruleset());
        if (problem == null) {
            return trial;
        }
        if (networks.size() == 1) {
            String n = networks.get(0);
            Refusal fb = fallbacks.get(n);
            found.put(n, new Refusal(fb.version(), problem, fb.standIn(), fb.standInVersion()));
            return accepted;
        }
        int half = networks.size() / 2;
        Desired withFirst = admit(networks.subList(0, half), accepted, target, fallbacks, found);
        return admit(networks.subList(half, networks.size()), withFirst, target, fallbacks, found);
    }

    /** Why {@code ruleset} cannot be applied (the host's element limit, the enforcer's check), or null. */
    private String problem(NftRuleset ruleset) {
        String limit = overLimit(ruleset);
        if (limit != null) {
            return limit;
        }
        try {
            enforcer.check(ruleset);
            return null;
        } catch (EnforcementException e) {
            return e.getMessage();
        }
    }

    /** The element limit's refusal of {@code ruleset}, or null within it. */
    private String overLimit(NftRuleset ruleset) {
        long n = ruleset.elementCount();
        return n <= maxElements ? null
                : "the host's ruleset would hold " + n + " set elements, over its limit of " + maxElements + " (egress.agent.max-elements)";
    }

    /** A network the host never held, in place of a refused version: its VMs, no rules, egress blocked (fail closed). */
    private static Fragment blocking(Fragment f) {
        return f == null ? null : new Fragment(f.networkId(), DefaultPolicy.DENY, f.vms(), List.of(), false);
    }

    private void applyTimed(NftRuleset ruleset) throws EnforcementException {
        Timer.Sample sample = Timer.start(meters);
        enforcer.apply(ruleset);
        sample.stop(applyTimer);
    }

    /** Every port of {@code plan} whose network does not keep established flows. */
    private static List<Port> flushable(Plan plan) {
        List<Port> out = new ArrayList<>();
        for (Port p : plan.ports()) {
            if (!p.keepEstablished()) {
                out.add(p);
            }
        }
        return out;
    }

    /**
     * Ends the established flows of {@code ports}, all in one call of the flow table (one process
     * for every port); a failure is logged and counted, never fails the apply.
     */
    private void endFlows(List<Port> ports) {
        if (ports.isEmpty()) {
            return;
        }
        List<Integer> marks = new ArrayList<>(ports.size());
        StringBuilder which = new StringBuilder();
        for (Port p : ports) {
            marks.add(p.mark());
            which.append(which.isEmpty() ? "" : ", ").append(p.interfaceName()).append(" (mark ").append(p.markText())
                    .append(", net ").append(p.networkId()).append(" vm ").append(p.vmId()).append(')');
        }
        try {
            long n = flows.endFlows(marks);
            if (n > 0) {
                flowsEnded.increment(n);
            }
            log.info("host {}: ended {} established flow(s) of port(s) {} after a new block", hostId, n < 0 ? "the" : n, which);
        } catch (EnforcementException | RuntimeException e) {
            flowFailures.increment(ports.size());
            log.warn("host {}: cannot end the established flows of port(s) {} with {}: {}", hostId, which, flows.name(), e.getMessage());
        }
    }

    private void setUnenforced(List<NftRenderer.Unenforced> unenforced) {
        if (!unenforced.equals(appliedUnenforced) && !unenforced.isEmpty()) {
            unenforced.forEach(u -> log.warn("host {}: not enforced: net {} vm {}: {}", hostId, u.networkId(), u.vmId(), u.reason()));
        }
        appliedUnenforced = List.copyOf(unenforced);
        unenforcedCount.set(unenforced.size());
    }

    /** The change ids not yet reported: those a failed report kept, then the state's new ones. */
    private List<String> takeChangeIds() {
        unreportedChangeIds.addAll(state.drainChangeIds());
        return List.copyOf(unreportedChangeIds);
    }

    private void reconcile() {
        if (appliedRuleset == null || pendingRetry) {
            return;
        }
        try {
            if (!enforcer.inSync(appliedRuleset)) {
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

    /**
     * Sends one report. An ACK lists the versions of every network the host knows (tombstones
     * included) except those with a VM the apply did not enforce, and the VMs it did not enforce;
     * a NACK lists no versions (the kernel still holds the last good state) and the VMs the state in
     * force leaves out. Once sent, the change ids are reported and the update is done.
     */
    private void report(EnforcementTrigger trigger, EnforcementStatus status, List<String> changeIds, String error, long micros,
                        Desired d) {
        List<AppliedFragment> fragments = new ArrayList<>();
        List<RefusedFragment> refused = new ArrayList<>();
        if (status == EnforcementStatus.ACK) {
            for (Map.Entry<String, Long> e : state.versions().entrySet()) {
                String n = e.getKey();
                if (d.unenforcedNetworks().contains(n)) {
                    continue;
                }
                Refusal r = d.refusals().get(n);
                if (r == null) {
                    fragments.add(AppliedFragment.newBuilder().setNetworkId(n).setVersion(e.getValue()).build());
                } else if (r.standInVersion() != null) {
                    fragments.add(AppliedFragment.newBuilder().setNetworkId(n).setVersion(r.standInVersion()).build());
                }
            }
            d.refusals().forEach((n, r) -> refused.add(RefusedFragment.newBuilder().setNetworkId(n).setVersion(r.version())
                    .setReason(r.reason()).build()));
        }
        refused.addAll(unauthenticatedSinceReport);
        List<UnenforcedVm> unenforced = new ArrayList<>();
        for (NftRenderer.Unenforced u : appliedUnenforced) {
            unenforced.add(UnenforcedVm.newBuilder().setNetworkId(u.networkId()).setVmId(String.valueOf(u.vmId()))
                    .setReason(String.valueOf(u.reason())).build());
        }
        EnforcementReport r = EnforcementReport.newBuilder()
                .setHostId(hostId).setStatus(status).setTrigger(trigger)
                .setFragments(fragments)
                .setAppliedHash(appliedHash).setChangeIds(changeIds).setError(error)
                .setApplyMicros(micros).setEnforcer(enforcer.name()).setDriftRepairs(driftRepairs.get())
                .setReportedAt(clock.instant()).setUnenforced(unenforced).setRefused(refused).build();
        producer.send(new ProducerRecord<>(Topics.ENFORCEMENT_REPORTS, hostId, reportMac.sign(r)));
        unreportedChangeIds.clear();
        unauthenticatedSinceReport.clear();
        dirty = false;
    }
}
