package io.egressctl.agent.sync;

import io.egressctl.core.nft.NftRuleset;
import io.egressctl.core.nft.NftScript;
import io.egressctl.agent.enforce.EnforcementException;
import io.egressctl.agent.enforce.Enforcer;
import io.egressctl.agent.enforce.FlowTable;
import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.host.HostState;
import io.egressctl.core.model.Action;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.core.render.NftRenderer;
import io.egressctl.events.EnforcementReport;
import io.egressctl.events.EnforcementStatus;
import io.egressctl.events.EnforcementTrigger;
import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.registry.InMemorySchemaRegistryClient;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.Topics;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.clients.consumer.OffsetOutOfRangeException;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The agent's sync loop against fakes: an in-memory {@link Enforcer} standing for the kernel, the
 * snapshot as a lambda, Kafka's MockConsumer and MockProducer for the log and the reports, a clock
 * the test moves. Every test drives {@link HostSync#bootstrap} and {@link HostSync#pollOnce} on the
 * test thread.
 */
class HostSyncTest {

    private static final String HOST = "host-7";
    private static final int PARTITIONS = 4;
    private static final TopicPartition TP = new TopicPartition(Topics.HOST_UPDATES, Topics.partitionFor(HOST, PARTITIONS));
    private static final NftRenderer RENDERER = new NftRenderer();

    private final InMemorySchemaRegistryClient registry = new InMemorySchemaRegistryClient();
    private final AvroSerializer<HostUpdate> serializer = new AvroSerializer<>(registry);
    private final MutableClock clock = new MutableClock();
    private final SimpleMeterRegistry meters = new SimpleMeterRegistry();
    private final FakeEnforcer enforcer = new FakeEnforcer();
    private final FakeFlowTable flows = new FakeFlowTable();
    private final List<byte[]> snapshot = new ArrayList<>();
    /** When set, reading the snapshot throws this (Redis down). */
    private RuntimeException snapshotFailure;
    private MockConsumer<String, byte[]> consumer;
    private MockProducer<String, SpecificRecord> producer;
    private long nextOffset;

    @BeforeEach
    void setUp() {
        consumer = new MockConsumer<>("earliest");
        List<PartitionInfo> parts = new ArrayList<>();
        for (int p = 0; p < PARTITIONS; p++) {
            parts.add(new PartitionInfo(Topics.HOST_UPDATES, p, Node.noNode(), new Node[0], new Node[0]));
        }
        consumer.updatePartitions(Topics.HOST_UPDATES, parts);
        consumer.updateBeginningOffsets(Map.of(TP, 0L));
        nextOffset = 5; // five records before the agent starts; they are in the snapshot
        consumer.updateEndOffsets(Map.of(TP, nextOffset));
        producer = new MockProducer<>(true, null, new StringSerializer(), (topic, value) -> new byte[0]);
    }

    private HostSync sync() {
        return sync(HostSync.DEFAULT_MAX_ELEMENTS);
    }

    /** When set, the agent requires updates signed with these keys. */
    private io.egressctl.schemas.integrity.UpdateMac updateMac =
            new io.egressctl.schemas.integrity.UpdateMac(io.egressctl.schemas.integrity.UpdateKeys.NONE);

    private HostSync sync(long maxElements) {
        return new HostSync(HOST, consumer, producer, host -> {
            assertThat(host).isEqualTo(HOST);
            if (snapshotFailure != null) {
                throw snapshotFailure;
            }
            return List.copyOf(snapshot);
        }, new AvroDeserializer<>(registry, HostUpdate.class), enforcer, flows, RENDERER, Duration.ofSeconds(5), clock, meters, maxElements, updateMac);
    }

    // ---- fixtures --------------------------------------------------------------------------------

    /** A network with one VM on interface {@code tap-<network>} and a rule denying tcp/{@code port}. */
    static Fragment fragment(String network, int port) {
        return fragment(network, "tap-" + network, false, deny(network, port));
    }

    static Fragment fragment(String network, String interfaceName, boolean keepEstablished, CompiledRule... rules) {
        String vm = network + "-vm1";
        return new Fragment(network, DefaultPolicy.ALLOW, List.of(new VmAddress(vm, interfaceName, null, "10.1.1.11", null)),
                List.of(rules), keepEstablished);
    }

    static CompiledRule deny(String network, int port) {
        return rule(network, Action.DENY, port);
    }

    static CompiledRule rule(String network, Action action, int port) {
        String vm = network + "-vm1";
        return new CompiledRule("r-" + network + "-" + action + "-" + port, action, 1000, Protocol.TCP, List.of(vm), List.of(),
                List.of(), PortRange.single(port), null);
    }

    /** A network whose VM was placed by an event without an interface (before 0.2.0). */
    static Fragment legacy(String network, int port) {
        String vm = network + "-vm1";
        return new Fragment(network, DefaultPolicy.ALLOW, List.of(new VmAddress(vm, "10.1.1.12", null)), List.of(deny(network, port)));
    }

    static FragmentUpdate update(String host, String network, long version, Fragment f, String... changeIds) {
        return new FragmentUpdate(host, network, version, f, f == null ? "" : f.hash(), List.of(changeIds));
    }

    static HostUpdate avro(FragmentUpdate u) {
        return EventMapper.toAvro(u, Instant.parse("2024-01-01T00:00:00Z"));
    }

    /** The single-object encoding the compiler stores in the snapshot. */
    void inSnapshot(FragmentUpdate u) {
        inSnapshot(avro(u));
    }

    /** {@code h} in the snapshot, in the single-object encoding. */
    void inSnapshot(HostUpdate h) {
        try {
            ByteBuffer b = h.toByteBuffer();
            byte[] out = new byte[b.remaining()];
            b.get(out);
            snapshot.add(out);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A record on the host's partition after the noted end offset, keyed {@code key}. */
    void inLog(String key, FragmentUpdate u) {
        inLog(key, avro(u));
    }

    void inLog(String key, HostUpdate h) {
        consumer.addRecord(new ConsumerRecord<>(TP.topic(), TP.partition(), nextOffset++, key,
                serializer.serialize(Topics.HOST_UPDATES, h)));
        consumer.updateEndOffsets(Map.of(TP, nextOffset));
    }

    static String script(Fragment... fragments) {
        SortedMap<String, Fragment> m = new TreeMap<>();
        for (Fragment f : fragments) {
            m.put(f.networkId(), f);
        }
        return RENDERER.render(HOST, m);
    }

    static NftRenderer.Plan plan(Fragment... fragments) {
        SortedMap<String, Fragment> m = new TreeMap<>();
        for (Fragment f : fragments) {
            m.put(f.networkId(), f);
        }
        return RENDERER.plan(m);
    }

    static int mark(String interfaceName, Fragment... fragments) {
        return plan(fragments).ports().stream().filter(p -> p.interfaceName().equals(interfaceName)).findFirst().orElseThrow().mark();
    }

    static String hash(Fragment... fragments) {
        SortedMap<String, Fragment> m = new TreeMap<>();
        for (Fragment f : fragments) {
            m.put(f.networkId(), f);
        }
        return HostState.hashOf(m);
    }

    List<EnforcementReport> reports() {
        List<EnforcementReport> out = new ArrayList<>();
        for (ProducerRecord<String, SpecificRecord> r : producer.history()) {
            assertThat(r.topic()).isEqualTo(Topics.ENFORCEMENT_REPORTS);
            assertThat(r.key()).isEqualTo(HOST);
            out.add((EnforcementReport) r.value());
        }
        return out;
    }

    EnforcementReport lastReport() {
        List<EnforcementReport> all = reports();
        assertThat(all).isNotEmpty();
        return all.get(all.size() - 1);
    }

    // ---- bootstrap -------------------------------------------------------------------------------

    @Test
    void bootstrapAppliesTheSnapshotThenConsumesFromTheNotedEndOffset() throws Exception {
        Fragment a = fragment("net-a", 80);
        Fragment b = fragment("net-b", 443);
        inSnapshot(update(HOST, "net-a", 3, a, "c1"));
        inSnapshot(update(HOST, "net-b", 1, b, "c2"));
        HostSync sync = sync();

        sync.bootstrap();

        assertThat(enforcer.applies).containsExactly(script(a, b));
        assertThat(enforcer.kernel).isEqualTo(script(a, b));
        assertThat(sync.isBootstrapped()).isTrue();
        assertThat(sync.lastBootstrapApplied()).isTrue();
        assertThat(sync.appliedHash()).isEqualTo(hash(a, b));
        EnforcementReport r = lastReport();
        assertThat(r.getStatus()).isEqualTo(EnforcementStatus.ACK);
        assertThat(r.getTrigger()).isEqualTo(EnforcementTrigger.BOOTSTRAP);
        assertThat(r.getAppliedHash()).isEqualTo(hash(a, b));
        assertThat(r.getChangeIds()).containsExactlyInAnyOrder("c1", "c2");
        assertThat(r.getFragments()).extracting(f -> f.getNetworkId() + "@" + f.getVersion()).containsExactly("net-a@3", "net-b@1");
        assertThat(r.getEnforcer()).isEqualTo("fake");
        assertThat(consumer.assignment()).containsExactly(TP);
        assertThat(consumer.position(TP)).isEqualTo(5);
        assertThat(meters.timer("egress.agent.apply").count()).isEqualTo(1);

        // The tail: an update after the noted offset is applied and reported.
        Fragment a2 = fragment("net-a", 8080);
        inLog(HOST, update(HOST, "net-a", 4, a2, "c3"));
        sync.pollOnce(Duration.ZERO);
        assertThat(enforcer.kernel).isEqualTo(script(a2, b));
        assertThat(lastReport().getTrigger()).isEqualTo(EnforcementTrigger.UPDATE);
        assertThat(lastReport().getChangeIds()).containsExactly("c3");
        assertThat(lastReport().getAppliedHash()).isEqualTo(hash(a2, b));
    }

    @Test
    void bootstrapSkipsTheApplyWhenTheKernelAlreadyHoldsTheSnapshot() throws Exception {
        Fragment a = fragment("net-a", 80);
        inSnapshot(update(HOST, "net-a", 3, a, "c1"));
        enforcer.kernel = script(a); // what a killed agent left in the kernel
        HostSync sync = sync();

        sync.bootstrap();

        assertThat(enforcer.applies).as("no needless re-apply").isEmpty();
        assertThat(enforcer.checks).isEqualTo(1);
        assertThat(sync.isBootstrapped()).isTrue();
        assertThat(sync.lastBootstrapApplied()).isFalse();
        assertThat(sync.appliedHash()).isEqualTo(hash(a));
        EnforcementReport r = lastReport();
        assertThat(r.getStatus()).isEqualTo(EnforcementStatus.ACK);
        assertThat(r.getTrigger()).isEqualTo(EnforcementTrigger.BOOTSTRAP);
        assertThat(r.getAppliedHash()).isEqualTo(hash(a));
        assertThat(r.getApplyMicros()).isGreaterThanOrEqualTo(0);
        assertThat(r.getFragments()).hasSize(1);
        assertThat(meters.timer("egress.agent.apply").count()).isZero();

        // Reconcile finds nothing to do; a hand edit afterwards is repaired and counted.
        clock.advance(Duration.ofSeconds(6));
        sync.pollOnce(Duration.ZERO);
        assertThat(enforcer.applies).isEmpty();
        enforcer.kernel = "edited by hand";
        clock.advance(Duration.ofSeconds(6));
        sync.pollOnce(Duration.ZERO);
        assertThat(enforcer.applies).containsExactly(script(a));
        assertThat(lastReport().getTrigger()).isEqualTo(EnforcementTrigger.DRIFT_REPAIR);
        assertThat(lastReport().getDriftRepairs()).isEqualTo(1);
        assertThat(sync.driftRepairs()).isEqualTo(1);
        assertThat(meters.counter("egress.agent.drift.repairs").count()).isEqualTo(1.0);
    }

    @Test
    void bootstrapAppliesWhenTheKernelHoldsSomethingElseOrCannotBeRead() throws Exception {
        Fragment a = fragment("net-a", 80);
        inSnapshot(update(HOST, "net-a", 3, a));
        enforcer.kernel = script(fragment("net-a", 81));
        enforcer.failNextCheck = "cannot list table inet egressctl: Operation not permitted";
        HostSync sync = sync();

        sync.bootstrap();

        assertThat(enforcer.applies).containsExactly(script(a));
        assertThat(sync.lastBootstrapApplied()).isTrue();
        assertThat(lastReport().getTrigger()).isEqualTo(EnforcementTrigger.BOOTSTRAP);
    }

    // ---- failures --------------------------------------------------------------------------------

    @Test
    void aFailedApplyNacksWithTheEnforcersMessageKeepsTheLastGoodHashAndRetries() throws Exception {
        Fragment a = fragment("net-a", 80);
        inSnapshot(update(HOST, "net-a", 1, a));
        HostSync sync = sync();
        sync.bootstrap();
        String good = hash(a);

        Fragment a2 = fragment("net-a", 99);
        enforcer.failNextApply = "nft rejected the ruleset (exit 1): Error: Could not process rule: No such file or directory";
        inLog(HOST, update(HOST, "net-a", 2, a2, "c-bad"));
        sync.pollOnce(Duration.ZERO);

        EnforcementReport nack = lastReport();
        assertThat(nack.getStatus()).isEqualTo(EnforcementStatus.NACK);
        assertThat(nack.getTrigger()).isEqualTo(EnforcementTrigger.UPDATE);
        assertThat(nack.getError()).isEqualTo(enforcer.lastFailure);
        assertThat(nack.getAppliedHash()).as("the last good hash").isEqualTo(good);
        assertThat(nack.getFragments()).isEmpty();
        assertThat(nack.getChangeIds()).containsExactly("c-bad");
        assertThat(sync.appliedHash()).isEqualTo(good);
        assertThat(enforcer.kernel).as("the previous ruleset is still in force").isEqualTo(script(a));
        assertThat(meters.counter("egress.agent.apply.failures").count()).isEqualTo(1.0);

        // No retry before the backoff has passed, then an ACK with the new hash.
        sync.pollOnce(Duration.ZERO);
        assertThat(reports()).hasSize(2);
        clock.advance(Duration.ofMillis(250));
        sync.pollOnce(Duration.ZERO);
        EnforcementReport retry = lastReport();
        assertThat(retry.getStatus()).isEqualTo(EnforcementStatus.ACK);
        assertThat(retry.getTrigger()).isEqualTo(EnforcementTrigger.RETRY);
        assertThat(retry.getAppliedHash()).isEqualTo(hash(a2));
        assertThat(enforcer.kernel).isEqualTo(script(a2));
    }

    @Test
    void aFailedFirstApplyIsNotReadyUntilARetrySucceeds() throws Exception {
        Fragment a = fragment("net-a", 80);
        inSnapshot(update(HOST, "net-a", 1, a));
        enforcer.failNextApply = "nft: Error: syntax error";
        HostSync sync = sync();

        sync.bootstrap();

        assertThat(sync.isBootstrapped()).as("ready only once the first snapshot is enforced").isFalse();
        assertThat(lastReport().getStatus()).isEqualTo(EnforcementStatus.NACK);
        assertThat(lastReport().getError()).isEqualTo("nft: Error: syntax error");
        assertThat(lastReport().getAppliedHash()).isEqualTo(hash());

        clock.advance(Duration.ofSeconds(1));
        sync.pollOnce(Duration.ZERO);
        assertThat(sync.isBootstrapped()).isTrue();
        assertThat(lastReport().getStatus()).isEqualTo(EnforcementStatus.ACK);
        assertThat(lastReport().getTrigger()).isEqualTo(EnforcementTrigger.BOOTSTRAP);
        assertThat(lastReport().getAppliedHash()).isEqualTo(hash(a));
    }

    // ---- one network's refusal stays its own -------------------------------------------------------

    /** What stands in for a network the host never held when its version is refused: its VMs, egress blocked. */
    static Fragment blocking(Fragment f) {
        return new Fragment(f.networkId(), DefaultPolicy.DENY, f.vms(), List.of(), false);
    }

    @Test
    void aVersionTheKernelRefusesIsRefusedAloneWhileTheOtherNetworksApply() throws Exception {
        Fragment a = fragment("net-a", 80);
        Fragment b = fragment("net-b", 443);
        Fragment c = fragment("net-c", 25);
        inSnapshot(update(HOST, "net-a", 1, a));
        inSnapshot(update(HOST, "net-b", 1, b));
        inSnapshot(update(HOST, "net-c", 1, c));
        HostSync sync = sync();
        sync.bootstrap();

        Fragment a2 = fragment("net-a", 8080);
        Fragment b2 = fragment("net-b", 6666); // the kernel will not take this one
        Fragment c2 = fragment("net-c", 2525);
        enforcer.refuseContaining = "r-net-b-DENY-6666";
        inLog(HOST, update(HOST, "net-a", 2, a2, "c-a"));
        inLog(HOST, update(HOST, "net-b", 2, b2, "c-b"));
        inLog(HOST, update(HOST, "net-c", 2, c2, "c-c"));
        sync.pollOnce(Duration.ZERO);

        assertThat(enforcer.kernel).as("net-a and net-c at v2, net-b keeps v1").isEqualTo(script(a2, b, c2));
        EnforcementReport r = lastReport();
        assertThat(r.getStatus()).as("an ACK for the other networks").isEqualTo(EnforcementStatus.ACK);
        assertThat(r.getFragments()).extracting(f -> f.getNetworkId() + "@" + f.getVersion())
                .containsExactly("net-a@2", "net-b@1", "net-c@2");
        assertThat(r.getRefused()).hasSize(1);
        assertThat(r.getRefused().get(0).getNetworkId()).isEqualTo("net-b");
        assertThat(r.getRefused().get(0).getVersion()).isEqualTo(2);
        assertThat(r.getRefused().get(0).getReason()).contains("Numerical result out of range");
        assertThat(r.getChangeIds()).containsExactlyInAnyOrder("c-a", "c-b", "c-c");
        assertThat(r.getAppliedHash()).isEqualTo(hash(a2, b, c2));
        assertThat(sync.readiness().ready()).isTrue();
        assertThat(sync.readiness().details().get("refused")).asList().singleElement().asString().startsWith("net net-b v2: ");
        assertThat(meters.get("egress.agent.refused").gauge().value()).isEqualTo(1.0);

        // Updates of other networks do not try the refused version again (no failing transaction each time).
        int checks = enforcer.trialChecks;
        Fragment a3 = fragment("net-a", 81);
        inLog(HOST, update(HOST, "net-a", 3, a3, "c-a3"));
        sync.pollOnce(Duration.ZERO);
        assertThat(enforcer.kernel).isEqualTo(script(a3, b, c2));
        assertThat(enforcer.trialChecks).isEqualTo(checks);
        assertThat(lastReport().getRefused()).hasSize(1);

        // A newer version of the refused network ends the refusal.
        Fragment b3 = fragment("net-b", 444);
        inLog(HOST, update(HOST, "net-b", 3, b3, "c-b3"));
        sync.pollOnce(Duration.ZERO);
        assertThat(enforcer.kernel).isEqualTo(script(a3, b3, c2));
        assertThat(lastReport().getRefused()).isEmpty();
        assertThat(lastReport().getFragments()).extracting(f -> f.getNetworkId() + "@" + f.getVersion())
                .containsExactly("net-a@3", "net-b@3", "net-c@2");
        assertThat(sync.readiness().details()).doesNotContainKey("refused");
        assertThat(meters.get("egress.agent.refused").gauge().value()).isZero();
    }

    @Test
    void aRefusedVersionIsTriedAgainOnItsOwnTimer() throws Exception {
        Fragment a = fragment("net-a", 80);
        inSnapshot(update(HOST, "net-a", 1, a));
        HostSync sync = sync();
        sync.bootstrap();
        Fragment a2 = fragment("net-a", 6666);
        enforcer.refuseContaining = "r-net-a-DENY-6666";
        inLog(HOST, update(HOST, "net-a", 2, a2, "c-a2"));
        sync.pollOnce(Duration.ZERO);
        assertThat(lastReport().getRefused()).extracting(f -> f.getNetworkId() + "@" + f.getVersion()).containsExactly("net-a@2");
        assertThat(enforcer.kernel).isEqualTo(script(a));

        // Still refused after a second: reported again, and the next try waits longer.
        clock.advance(Duration.ofMillis(1100));
        sync.pollOnce(Duration.ZERO);
        assertThat(lastReport().getTrigger()).isEqualTo(EnforcementTrigger.RETRY);
        assertThat(lastReport().getRefused()).hasSize(1);
        int reports = reports().size();
        clock.advance(Duration.ofMillis(1100));
        sync.pollOnce(Duration.ZERO);
        assertThat(reports()).as("the second retry waits two seconds").hasSize(reports);

        // The kernel takes it now: applied on the next try, the refusal gone.
        enforcer.refuseContaining = null;
        clock.advance(Duration.ofMillis(1000));
        sync.pollOnce(Duration.ZERO);
        assertThat(enforcer.kernel).isEqualTo(script(a2));
        assertThat(lastReport().getStatus()).isEqualTo(EnforcementStatus.ACK);
        assertThat(lastReport().getRefused()).isEmpty();
        assertThat(lastReport().getFragments()).extracting(f -> f.getNetworkId() + "@" + f.getVersion()).containsExactly("net-a@2");
    }

    @Test
    void aNetworkTheHostNeverHeldThatIsRefusedHasItsVmsEgressBlocked() throws Exception {
        Fragment a = fragment("net-a", 80);
        Fragment c = fragment("net-c", 6666);
        inSnapshot(update(HOST, "net-a", 1, a));
        inSnapshot(update(HOST, "net-c", 1, c)); // refused at the bootstrap already
        enforcer.refuseContaining = "r-net-c-DENY-6666";
        HostSync sync = sync();

        sync.bootstrap();

        assertThat(enforcer.kernel).as("fail closed: net-c's VM is blocked, not left unfiltered").isEqualTo(script(a, blocking(c)));
        EnforcementReport r = lastReport();
        assertThat(r.getStatus()).isEqualTo(EnforcementStatus.ACK);
        assertThat(r.getTrigger()).isEqualTo(EnforcementTrigger.BOOTSTRAP);
        assertThat(r.getFragments()).extracting(f -> f.getNetworkId() + "@" + f.getVersion()).containsExactly("net-a@1");
        assertThat(r.getRefused()).extracting(f -> f.getNetworkId() + "@" + f.getVersion()).containsExactly("net-c@1");
        assertThat(r.getAppliedHash()).as("the hash of what the host holds: net-a only").isEqualTo(hash(a));
        assertThat(sync.isBootstrapped()).isTrue();
    }

    @Test
    void overTheHostsElementLimitTheNetworkThatWouldPassItIsRefused() throws Exception {
        Fragment a = fragment("net-a", 80);
        Fragment b = fragment("net-b", 443);
        long fits = RENDERER.ruleset(HOST, new TreeMap<>(Map.of("net-a", a, "net-b", b))).elementCount();
        inSnapshot(update(HOST, "net-a", 1, a));
        inSnapshot(update(HOST, "net-b", 1, b));
        HostSync sync = sync(fits);
        sync.bootstrap();
        assertThat(enforcer.kernel).isEqualTo(script(a, b));

        Fragment a2 = fragment("net-a", 81); // same size: fits
        Fragment b2 = fragment("net-b", "tap-net-b", false, deny("net-b", 443), deny("net-b", 8443), deny("net-b", 9443));
        inLog(HOST, update(HOST, "net-a", 2, a2, "c-a2"));
        inLog(HOST, update(HOST, "net-b", 2, b2, "c-b2"));
        sync.pollOnce(Duration.ZERO);

        assertThat(enforcer.kernel).isEqualTo(script(a2, b));
        EnforcementReport r = lastReport();
        assertThat(r.getStatus()).isEqualTo(EnforcementStatus.ACK);
        assertThat(r.getFragments()).extracting(f -> f.getNetworkId() + "@" + f.getVersion()).containsExactly("net-a@2", "net-b@1");
        assertThat(r.getRefused()).singleElement().satisfies(f -> {
            assertThat(f.getNetworkId()).isEqualTo("net-b");
            assertThat(f.getReason()).contains("over its limit of " + fits + " (egress.agent.max-elements)");
        });
        assertThat(enforcer.applies).as("nothing over the limit ever reached the kernel")
                .allSatisfy(applied -> assertThat(applied).doesNotContain("r-net-b-DENY-8443"));
    }

    @Test
    void whenTheLastGoodStateIsRefusedTooTheWholeHostNacks() throws Exception {
        Fragment a = fragment("net-a", 80);
        inSnapshot(update(HOST, "net-a", 1, a));
        HostSync sync = sync();
        sync.bootstrap();
        enforcer.refuseContaining = "table inet"; // nothing at all is taken: the host's problem, not a network's
        inLog(HOST, update(HOST, "net-a", 2, fragment("net-a", 81), "c-a2"));
        sync.pollOnce(Duration.ZERO);
        EnforcementReport r = lastReport();
        assertThat(r.getStatus()).isEqualTo(EnforcementStatus.NACK);
        assertThat(r.getRefused()).isEmpty();
        assertThat(r.getError()).contains("the host's last good state is refused too");
        assertThat(enforcer.kernel).isEqualTo(script(a));
    }

    @Test
    void aZeroElementLimitIsRefusedAtConstruction() {
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> sync(0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("maxElements must be at least 1");
    }

    // ---- authenticated updates --------------------------------------------------------------------

    static final String KEY = java.util.Base64.getEncoder().encodeToString("0123456789abcdef0123456789abcdef".getBytes());
    static final io.egressctl.schemas.integrity.UpdateMac COMPILER =
            new io.egressctl.schemas.integrity.UpdateMac(io.egressctl.schemas.integrity.UpdateKeys.parse("k1:" + KEY, null));

    /** The single-object encoding of a signed update, as the compiler stores it in the snapshot. */
    void inSnapshotSigned(FragmentUpdate u) {
        inSnapshot(COMPILER.sign(avro(u)));
    }

    void inLogSigned(FragmentUpdate u) {
        inLog(HOST, COMPILER.sign(avro(u)));
    }

    @Test
    void withKeysOnlyTheCompilersSignedUpdatesAreAppliedAndTheOthersAreRefusedAndReported() throws Exception {
        updateMac = COMPILER;
        Fragment a = fragment("net-a", 80);
        inSnapshotSigned(update(HOST, "net-a", 1, a, "c1"));
        inSnapshot(update(HOST, "net-x", 1, fragment("net-x", 22))); // written into Redis by something else
        enforcer.kernel = "the table a previous agent applied";
        HostSync sync = sync();
        assertThat(sync.step(Duration.ZERO)).as("fails closed, with back-off").isPositive();
        assertThat(enforcer.applies).as("nothing applied while the snapshot holds an unsigned entry").isEmpty();
        assertThat(sync.readiness().ready()).isFalse();
        assertThat(sync.readiness().reason()).contains("not signed by the compiler (net-x v1)").contains("egressctl rebuild");
        assertThat(meters.counter("egress.agent.sync.failures", "reason", "snapshot-unauthenticated").count()).isEqualTo(1.0);

        snapshot.remove(1); // the operator's rebuild rewrote the snapshot
        sync.step(Duration.ZERO);
        assertThat(enforcer.kernel).as("only the signed fragment").isEqualTo(script(a));
        assertThat(sync.readiness().ready()).isTrue();

        // On the log: an unsigned update with a huge version (it would hide every later real one), then the real one.
        Fragment open = new Fragment("net-a", DefaultPolicy.ALLOW, a.vms(), List.of(), false);
        inLog(HOST, update(HOST, "net-a", 1_000_000, open));
        sync.pollOnce(Duration.ZERO);
        assertThat(enforcer.kernel).as("the forged update changed nothing").isEqualTo(script(a));
        EnforcementReport r = lastReport();
        assertThat(r.getRefused()).extracting(f -> f.getNetworkId() + "@" + f.getVersion()).containsExactly("net-a@1000000");
        assertThat(r.getFragments()).extracting(f -> f.getNetworkId() + "@" + f.getVersion()).containsExactly("net-a@1");
        Fragment a2 = fragment("net-a", 443);
        inLogSigned(update(HOST, "net-a", 2, a2, "c2"));
        sync.pollOnce(Duration.ZERO);
        assertThat(enforcer.kernel).as("the real version 2 is applied: the forged one did not raise the bar").isEqualTo(script(a2));
        assertThat(lastReport().getRefused()).as("reported once").isEmpty();
        assertThat(lastReport().getChangeIds()).containsExactly("c2");
        assertThat(meters.counter("egress.agent.updates.refused", "reason", "authentication").count()).isEqualTo(2.0);
        assertThat(sync.readiness().details().get("lastUnauthenticatedUpdate")).asString().startsWith("net net-a v1000000: ");
    }

    @Test
    void withKeysEveryReportIsSignedWithThem_withoutKeysNone() throws Exception {
        updateMac = COMPILER;
        inSnapshotSigned(update(HOST, "net-a", 1, fragment("net-a", 80), "c1"));
        HostSync sync = sync();
        sync.bootstrap();
        inLogSigned(update(HOST, "net-a", 2, fragment("net-a", 443), "c2"));
        sync.pollOnce(Duration.ZERO);
        io.egressctl.schemas.integrity.ReportMac compiler = new io.egressctl.schemas.integrity.ReportMac(COMPILER.keys());
        assertThat(reports()).hasSizeGreaterThanOrEqualTo(2);
        for (EnforcementReport r : reports()) {
            assertThat(r.getMac()).startsWith("hmac-sha256:k1:");
            compiler.verify(r); // throws when it does not verify
        }

        producer.clear();
        snapshot.clear();
        updateMac = new io.egressctl.schemas.integrity.UpdateMac(io.egressctl.schemas.integrity.UpdateKeys.NONE);
        inSnapshot(update(HOST, "net-a", 1, fragment("net-a", 80)));
        HostSync unkeyed = sync();
        unkeyed.bootstrap();
        assertThat(lastReport().getMac()).isNull();
    }

    @Test
    void withoutKeysUnsignedUpdatesAreTakenAsBefore() throws Exception {
        Fragment a = fragment("net-a", 80);
        inSnapshot(update(HOST, "net-a", 1, a));
        HostSync sync = sync();
        sync.bootstrap();
        assertThat(enforcer.kernel).isEqualTo(script(a));
        assertThat(lastReport().getRefused()).isEmpty();
    }

    // ---- deltas ----------------------------------------------------------------------------------

    /** net-a's VM with a deny rule per port. */
    static Fragment ports(int... ports) {
        CompiledRule[] rules = new CompiledRule[ports.length];
        for (int i = 0; i < ports.length; i++) {
            rules[i] = deny("net-a", ports[i]);
        }
        return new Fragment("net-a", DefaultPolicy.ALLOW, fragment("net-a", 1).vms(), java.util.Arrays.stream(rules)
                .sorted(java.util.Comparator.comparingInt(CompiledRule::priority).thenComparing(CompiledRule::ruleId)).toList(), false);
    }

    /** Version {@code version} of net-a, {@code next}, as a delta against version {@code base}, {@code baseFragment}. */
    static HostUpdate delta(long version, long base, Fragment baseFragment, Fragment next, String changeId) {
        return EventMapper.toAvroDelta(update(HOST, "net-a", version, next, changeId),
                io.egressctl.core.compile.FragmentDelta.between(base, baseFragment, next), Instant.parse("2024-01-01T00:00:00Z"));
    }

    /** net-a at version 3, the base of the delta tests: three deny rules. */
    static final Fragment V3 = ports(80, 81, 82);

    /** An agent bootstrapped from a snapshot holding net-a {@link #V3} (signed, with the compiler's keys, when asked). */
    private HostSync bootstrappedAtV3(boolean withKeys) throws Exception {
        if (withKeys) {
            updateMac = COMPILER;
            inSnapshotSigned(update(HOST, "net-a", 3, V3, "c3"));
        } else {
            inSnapshot(update(HOST, "net-a", 3, V3, "c3"));
        }
        HostSync sync = sync();
        sync.bootstrap();
        return sync;
    }

    @Test
    void aDeltaAgainstTheVersionHeldIsAppliedToItAndReportedAsAnyUpdate() throws Exception {
        HostSync sync = bootstrappedAtV3(false);

        Fragment v4 = ports(80, 81, 82, 443);
        inLog(HOST, delta(4, 3, V3, v4, "c4"));
        sync.pollOnce(Duration.ZERO);
        assertThat(enforcer.kernel).isEqualTo(script(v4));
        assertThat(lastReport().getChangeIds()).containsExactly("c4");
        assertThat(lastReport().getAppliedHash()).isEqualTo(hash(v4));
        assertThat(lastReport().getFragments()).extracting(f -> f.getNetworkId() + "@" + f.getVersion()).containsExactly("net-a@4");

        // A removal of one rule, then the same delta again (redelivered): applied once.
        Fragment v5 = ports(80, 82, 443);
        inLog(HOST, delta(5, 4, v4, v5, "c5"));
        inLog(HOST, delta(5, 4, v4, v5, "c5"));
        sync.pollOnce(Duration.ZERO);
        assertThat(enforcer.kernel).isEqualTo(script(v5));
        assertThat(meters.counter("egress.agent.delta.gaps").count()).isZero();
        assertThat(meters.counter("egress.agent.rebootstraps").count()).isZero();
    }

    @Test
    void aDeltaAgainstAnotherVersionThanTheOneHeldBootstrapsAgainFromTheSnapshot() throws Exception {
        HostSync sync = bootstrappedAtV3(false);

        // Versions 4 and 5 went by (another compiler instance took over: it published 5 whole, then 6 against 5);
        // the snapshot holds 6 whole, as the compiler writes it before the log.
        Fragment v5 = ports(80, 81, 82, 443);
        Fragment v6 = ports(80, 81, 443);
        snapshot.clear();
        inSnapshot(update(HOST, "net-a", 6, v6, "c6"));
        inLog(HOST, delta(6, 5, v5, v6, "c6"));
        Fragment v7 = ports(81, 443);
        inLog(HOST, delta(7, 6, v6, v7, "c7"));
        sync.pollOnce(Duration.ZERO);
        assertThat(enforcer.kernel).as("nothing applied from a delta it cannot apply").isEqualTo(script(V3));
        assertThat(meters.counter("egress.agent.delta.gaps").count()).isEqualTo(1.0);

        assertThat(sync.step(Duration.ZERO)).as("the bootstrap, at once").isZero();
        assertThat(enforcer.kernel).as("the snapshot's version 6").isEqualTo(script(v6));
        assertThat(lastReport().getTrigger()).isEqualTo(EnforcementTrigger.BOOTSTRAP);
        assertThat(consumer.position(TP)).as("the tail from the end offset noted before the snapshot read").isEqualTo(nextOffset);

        // The next delta applies to what the snapshot gave.
        inLog(HOST, delta(7, 6, v6, v7, "c7"));
        sync.pollOnce(Duration.ZERO);
        assertThat(enforcer.kernel).isEqualTo(script(v7));
        assertThat(meters.counter("egress.agent.delta.gaps").count()).isEqualTo(1.0);
    }

    @Test
    void aDeltaWhoseResultDoesNotHashToTheUpdatesHashIsAGapNotAnApply() throws Exception {
        HostSync sync = bootstrappedAtV3(false);

        HostUpdate wrong = delta(4, 3, V3, ports(80, 81, 82, 443), "c4");
        wrong.setFragmentHash(ports(80, 443).hash());
        inLog(HOST, wrong);
        sync.pollOnce(Duration.ZERO);
        assertThat(enforcer.kernel).isEqualTo(script(V3));
        assertThat(meters.counter("egress.agent.delta.gaps").count()).isEqualTo(1.0);
    }

    @Test
    void aDeltaNotNewerThanTheVersionHeldIsIgnoredWhateverItsBase() throws Exception {
        HostSync sync = bootstrappedAtV3(false);
        int reports = reports().size();

        inLog(HOST, delta(3, 1, ports(80), V3, "c3"));
        sync.pollOnce(Duration.ZERO);
        assertThat(reports()).hasSize(reports);
        assertThat(meters.counter("egress.agent.delta.gaps").count()).isZero();
    }

    @Test
    void withKeysAnUnsignedDeltaIsRefusedBeforeItCouldCauseASnapshotRead_aSignedOneIsApplied() throws Exception {
        HostSync sync = bootstrappedAtV3(true);

        inLog(HOST, delta(9, 8, ports(1), ports(1, 2), "forged"));
        Fragment v4 = ports(80, 81, 82, 443);
        inLog(HOST, COMPILER.sign(delta(4, 3, V3, v4, "c4")));
        sync.pollOnce(Duration.ZERO);
        assertThat(enforcer.kernel).isEqualTo(script(v4));
        assertThat(meters.counter("egress.agent.updates.refused", "reason", "authentication").count()).isEqualTo(1.0);
        assertThat(meters.counter("egress.agent.delta.gaps").count()).isZero();
        assertThat(lastReport().getRefused()).extracting(f -> f.getNetworkId() + "@" + f.getVersion()).containsExactly("net-a@9");
    }

    @Test
    void aSnapshotHoldingADeltaIsNotAppliedAndTheAgentIsNotReady() {
        inSnapshot(delta(4, 3, V3, ports(80, 81, 82, 443), "c4"));
        enforcer.kernel = "the table a previous agent applied";
        HostSync sync = sync();

        assertThat(sync.step(Duration.ZERO)).isPositive();
        assertThat(enforcer.applies).isEmpty();
        assertThat(sync.readiness().ready()).isFalse();
        assertThat(sync.readiness().reason()).contains("holds a delta for network net-a v4");
        assertThat(meters.counter("egress.agent.sync.failures", "reason", "snapshot-invalid").count()).isEqualTo(1.0);
    }

    // ---- topology ------------------------------------------------------------------------------

    @Test
    void aChangedPartitionCountMakesTheAgentBootstrapAgainOnItsNewPartition() throws Exception {
        Fragment a = fragment("net-a", 80);
        inSnapshot(update(HOST, "net-a", 1, a));
        HostSync sync = sync();
        sync.bootstrap();
        assertThat(consumer.assignment()).containsExactly(TP);

        // An operator adds partitions: the producer now sends this host's updates elsewhere.
        int grown = 12;
        List<PartitionInfo> parts = new ArrayList<>();
        for (int p = 0; p < grown; p++) {
            parts.add(new PartitionInfo(Topics.HOST_UPDATES, p, Node.noNode(), new Node[0], new Node[0]));
        }
        consumer.updatePartitions(Topics.HOST_UPDATES, parts);
        TopicPartition moved = new TopicPartition(Topics.HOST_UPDATES, Topics.partitionFor(HOST, grown));
        assertThat(moved).as("the test needs a host whose partition moves").isNotEqualTo(TP);
        consumer.updateBeginningOffsets(Map.of(moved, 0L));
        consumer.updateEndOffsets(Map.of(moved, 3L));
        Fragment a2 = fragment("net-a", 81); // written to the new partition before the agent moved: in the snapshot
        inSnapshot(update(HOST, "net-a", 2, a2, "c-moved"));

        sync.step(Duration.ZERO);
        assertThat(consumer.assignment()).as("not before the check is due").containsExactly(TP);
        clock.advance(HostSync.TOPOLOGY_CHECK.plusSeconds(1));
        sync.step(Duration.ZERO); // the poll that notices
        sync.step(Duration.ZERO); // the bootstrap

        assertThat(consumer.assignment()).containsExactly(moved);
        assertThat(consumer.position(moved)).isEqualTo(3);
        assertThat(enforcer.kernel).isEqualTo(script(a2));
        assertThat(lastReport().getTrigger()).isEqualTo(EnforcementTrigger.BOOTSTRAP);
        assertThat(lastReport().getChangeIds()).containsExactly("c-moved");
        assertThat(meters.counter("egress.agent.rebootstraps").count()).isEqualTo(1.0);
    }

    // ---- what is ignored -------------------------------------------------------------------------

    @Test
    void staleAndDuplicateUpdatesAreIgnored() throws Exception {
        Fragment a5 = fragment("net-a", 80);
        inSnapshot(update(HOST, "net-a", 5, a5, "c5"));
        inSnapshot(update(HOST, "net-a", 4, fragment("net-a", 44), "c4")); // older, listed after: ignored
        HostSync sync = sync();
        sync.bootstrap();
        assertThat(enforcer.kernel).isEqualTo(script(a5));
        int reportsAfterBootstrap = reports().size();

        // The log tail repeats what the snapshot already had (written between the end-offset note and
        // the snapshot read) and an older version: nothing is applied or reported.
        inLog(HOST, update(HOST, "net-a", 4, fragment("net-a", 44), "c4"));
        inLog(HOST, update(HOST, "net-a", 5, a5, "c5"));
        inLog(HOST, update(HOST, "net-a", 3, null, "c3")); // an old tombstone
        sync.pollOnce(Duration.ZERO);
        assertThat(enforcer.applies).hasSize(1);
        assertThat(reports()).hasSize(reportsAfterBootstrap);
        assertThat(enforcer.kernel).isEqualTo(script(a5));

        // A newer version is taken; a newer tombstone removes the network.
        inLog(HOST, update(HOST, "net-a", 6, null, "c6"));
        sync.pollOnce(Duration.ZERO);
        assertThat(enforcer.kernel).isEqualTo(script());
        assertThat(lastReport().getChangeIds()).containsExactly("c6");
        assertThat(lastReport().getAppliedHash()).isEqualTo(hash());
    }

    @Test
    void otherHostsKeysAreIgnored() throws Exception {
        Fragment a = fragment("net-a", 80);
        inSnapshot(update(HOST, "net-a", 1, a));
        inSnapshot(update("host-8", "net-x", 9, fragment("net-x", 22))); // a foreign entry in the cache
        HostSync sync = sync();
        sync.bootstrap();
        assertThat(enforcer.kernel).isEqualTo(script(a));
        int reportsAfterBootstrap = reports().size();

        // Another host sharing this partition, and a record with our key but another host's payload.
        inLog("host-8", update("host-8", "net-a", 2, fragment("net-a", 25)));
        inLog(HOST, update("host-9", "net-a", 3, fragment("net-a", 26)));
        sync.pollOnce(Duration.ZERO);

        assertThat(enforcer.applies).hasSize(1);
        assertThat(reports()).hasSize(reportsAfterBootstrap);
        assertThat(enforcer.kernel).isEqualTo(script(a));
        assertThat(consumer.position(TP)).as("all consumed").isEqualTo(nextOffset);
    }

    @Test
    void aRecordThatDoesNotDecodeIsSkippedAndCounted() throws Exception {
        HostSync sync = sync();
        sync.bootstrap();
        consumer.addRecord(new ConsumerRecord<>(TP.topic(), TP.partition(), nextOffset++, HOST, new byte[]{0, 0, 0, 0, 42, 1}));
        Fragment a = fragment("net-a", 80);
        inLog(HOST, update(HOST, "net-a", 1, a, "c1"));
        sync.pollOnce(Duration.ZERO);
        assertThat(meters.counter("egress.agent.poison").count()).isEqualTo(1.0);
        assertThat(enforcer.kernel).isEqualTo(script(a));
    }

    // ---- metrics ---------------------------------------------------------------------------------

    @Test
    void theLagGaugeShowsRecordsBehindTheEndOfThePartition() throws Exception {
        HostSync sync = sync();
        assertThat(meters.get("egress.agent.lag").gauge().value()).as("unknown before the first poll").isNaN();
        sync.bootstrap();
        sync.pollOnce(Duration.ZERO);
        assertThat(meters.get("egress.agent.lag").gauge().value()).isEqualTo(0.0);

        consumer.updateEndOffsets(Map.of(TP, nextOffset + 42)); // written, not yet fetched
        consumer.setMaxPollRecords(1);
        sync.pollOnce(Duration.ZERO);
        assertThat(sync.lag()).isEqualTo(42);
        assertThat(meters.get("egress.agent.lag").gauge().value()).isEqualTo(42.0);
    }

    // ---- an ACK means what it says -----------------------------------------------------------------

    @Test
    void aVmWithoutAnInterfaceIsReportedUnenforcedAndItsNetworkLeftOutOfTheAck() throws Exception {
        Fragment a = fragment("net-a", 80);
        Fragment old = legacy("net-old", 22);
        inSnapshot(update(HOST, "net-a", 3, a, "c1"));
        inSnapshot(update(HOST, "net-old", 5, old, "c2"));
        HostSync sync = sync();

        sync.bootstrap();

        EnforcementReport r = lastReport();
        assertThat(r.getStatus()).isEqualTo(EnforcementStatus.ACK);
        assertThat(r.getFragments()).as("the unenforced network is not reported as applied")
                .extracting(f -> f.getNetworkId() + "@" + f.getVersion()).containsExactly("net-a@3");
        assertThat(r.getUnenforced()).extracting(u -> u.getNetworkId() + "/" + u.getVmId())
                .containsExactly("net-old/net-old-vm1");
        assertThat(r.getUnenforced().get(0).getReason()).isNotBlank();
        assertThat(r.getAppliedHash()).as("covers only what was rendered").isEqualTo(hash(a))
                .isNotEqualTo(hash(a, old));
        assertThat(sync.appliedHash()).isEqualTo(hash(a));
        assertThat(meters.get("egress.agent.unenforced").gauge().value()).isEqualTo(1.0);
        assertThat(sync.readiness().ready()).isTrue();
        assertThat(sync.readiness().details()).containsKey("unenforced");

        // Once its placement names an interface, the network is enforced and reported.
        Fragment fixed = fragment("net-old", 22);
        inLog(HOST, update(HOST, "net-old", 6, fixed, "c3"));
        sync.pollOnce(Duration.ZERO);
        r = lastReport();
        assertThat(r.getFragments()).extracting(f -> f.getNetworkId() + "@" + f.getVersion()).containsExactly("net-a@3", "net-old@6");
        assertThat(r.getUnenforced()).isEmpty();
        assertThat(r.getAppliedHash()).isEqualTo(hash(a, fixed));
        assertThat(sync.readiness().details()).doesNotContainKey("unenforced");
    }

    @Test
    void anInterfaceClaimedByTwoNetworksLeavesBothOutOfTheAck() throws Exception {
        Fragment a = fragment("net-a", "tap-shared", false, deny("net-a", 80));
        Fragment b = fragment("net-b", "tap-shared", false, deny("net-b", 443));
        Fragment c = fragment("net-c", 25);
        inSnapshot(update(HOST, "net-a", 1, a));
        inSnapshot(update(HOST, "net-b", 1, b));
        inSnapshot(update(HOST, "net-c", 1, c));
        HostSync sync = sync();

        sync.bootstrap();

        EnforcementReport r = lastReport();
        assertThat(r.getFragments()).extracting(f -> f.getNetworkId()).containsExactly("net-c");
        assertThat(r.getUnenforced()).extracting(u -> u.getNetworkId()).containsExactlyInAnyOrder("net-a", "net-b");
        assertThat(r.getAppliedHash()).isEqualTo(hash(c));
        assertThat(enforcer.kernel).as("the shared interface is still in the ruleset, fail-closed").contains("\"tap-shared\"");
    }

    @Test
    void aNackReportsNoVersionsAndTheUnenforcedVmsOfTheStateInForce() throws Exception {
        Fragment a = fragment("net-a", 80);
        Fragment old = legacy("net-old", 22);
        inSnapshot(update(HOST, "net-a", 1, a));
        inSnapshot(update(HOST, "net-old", 1, old));
        HostSync sync = sync();
        sync.bootstrap();

        enforcer.failNextApply = "nft: Error: Could not process rule";
        inLog(HOST, update(HOST, "net-a", 2, fragment("net-a", 81), "c-bad"));
        sync.pollOnce(Duration.ZERO);

        EnforcementReport nack = lastReport();
        assertThat(nack.getStatus()).isEqualTo(EnforcementStatus.NACK);
        assertThat(nack.getFragments()).isEmpty();
        assertThat(nack.getAppliedHash()).isEqualTo(hash(a));
        assertThat(nack.getUnenforced()).extracting(u -> u.getNetworkId()).containsExactly("net-old");
    }

    // ---- fail closed -----------------------------------------------------------------------------

    @Test
    void anUnreadableSnapshotKeepsTheTableReportsNotReadyAndRetriesWithBackoff() {
        Fragment a = fragment("net-a", 80);
        enforcer.kernel = script(a); // what the previous run left in force
        snapshotFailure = new IllegalStateException("Failed to connect to any host resolved for DNS name.");
        HostSync sync = sync();

        assertThat(sync.step(Duration.ZERO)).isEqualTo(Duration.ofMillis(200));
        assertThat(sync.step(Duration.ZERO)).as("back-off grows").isEqualTo(Duration.ofMillis(400));

        assertThat(enforcer.applies).as("nothing applied: the table in force stays").isEmpty();
        assertThat(enforcer.kernel).isEqualTo(script(a));
        assertThat(reports()).as("nothing ACKed").isEmpty();
        HostSync.Readiness r = sync.readiness();
        assertThat(r.ready()).isFalse();
        assertThat(r.reason()).startsWith("not syncing: cannot read the snapshot").contains("Failed to connect");
        assertThat(meters.counter("egress.agent.sync.failures", "reason", "snapshot-unreadable").count()).isEqualTo(2.0);

        // Redis is back: the next turn bootstraps.
        snapshotFailure = null;
        inSnapshot(update(HOST, "net-a", 3, a, "c1"));
        assertThat(sync.step(Duration.ZERO)).isEqualTo(Duration.ZERO);
        assertThat(sync.readiness().ready()).isTrue();
        assertThat(lastReport().getStatus()).isEqualTo(EnforcementStatus.ACK);
        assertThat(lastReport().getAppliedHash()).isEqualTo(hash(a));
        assertThat(enforcer.applies).as("found in force").isEmpty();
    }

    @Test
    void anEmptySnapshotWhileTheKernelHoldsRulesKeepsTheTableAndIsNotReady() {
        Fragment a = fragment("net-a", 80);
        enforcer.kernel = script(a);
        HostSync sync = sync();

        assertThat(sync.step(Duration.ZERO)).isEqualTo(Duration.ofMillis(200));

        assertThat(enforcer.applies).as("never an empty ruleset over a non-empty one").isEmpty();
        assertThat(enforcer.kernel).isEqualTo(script(a));
        assertThat(reports()).isEmpty();
        assertThat(sync.isBootstrapped()).isFalse();
        assertThat(sync.readiness().reason()).startsWith("not syncing: the snapshot of host host-7 is empty while the kernel holds rules");
        assertThat(meters.counter("egress.agent.sync.failures", "reason", "snapshot-empty").count()).isEqualTo(1.0);

        // The compiler writes the host's snapshot again: bootstrapped.
        inSnapshot(update(HOST, "net-a", 3, a, "c1"));
        sync.step(Duration.ZERO);
        assertThat(sync.readiness().ready()).isTrue();
        assertThat(lastReport().getChangeIds()).containsExactly("c1");
    }

    @Test
    void anEmptySnapshotOnANewHostIsAppliedAndAcked() {
        HostSync sync = sync(); // no table of ours in the kernel

        assertThat(sync.step(Duration.ZERO)).isEqualTo(Duration.ZERO);

        assertThat(enforcer.applies).containsExactly(script());
        assertThat(sync.readiness().ready()).isTrue();
        assertThat(lastReport().getStatus()).isEqualTo(EnforcementStatus.ACK);
        assertThat(lastReport().getAppliedHash()).isEqualTo(hash());
    }

    @Test
    void anEmptyTableInForceIsNoReasonToHoldBack() {
        enforcer.kernel = script(); // an empty host's table
        HostSync sync = sync();

        sync.step(Duration.ZERO);

        assertThat(sync.readiness().ready()).isTrue();
        assertThat(lastReport().getStatus()).isEqualTo(EnforcementStatus.ACK);
    }

    @Test
    void aSnapshotOfTombstonesEmptiesTheTable() {
        enforcer.kernel = script(fragment("net-a", 80));
        inSnapshot(update(HOST, "net-a", 4, null, "c-removed")); // the log removed the network
        HostSync sync = sync();

        assertThat(sync.step(Duration.ZERO)).isEqualTo(Duration.ZERO);

        assertThat(enforcer.kernel).isEqualTo(script());
        assertThat(sync.readiness().ready()).isTrue();
        assertThat(lastReport().getFragments()).extracting(f -> f.getNetworkId() + "@" + f.getVersion()).containsExactly("net-a@4");
        assertThat(lastReport().getChangeIds()).containsExactly("c-removed");
    }

    @Test
    void anEmptySnapshotWhileTheKernelCannotBeReadHoldsBack() {
        enforcer.kernel = script(fragment("net-a", 80));
        enforcer.failHoldsRules = "cannot list table inet egressctl: Operation not permitted";
        HostSync sync = sync();

        sync.step(Duration.ZERO);

        assertThat(enforcer.applies).isEmpty();
        assertThat(sync.readiness().reason()).contains("cannot be read").contains("Operation not permitted");
    }

    @Test
    void anEmptySnapshotWhenBootstrappingAgainKeepsWhatTheAgentEnforces() throws Exception {
        Fragment a = fragment("net-a", 80);
        inSnapshot(update(HOST, "net-a", 3, a));
        HostSync sync = sync();
        sync.bootstrap();
        snapshot.clear(); // Redis lost its data meanwhile

        consumer.setPollException(new OffsetOutOfRangeException("out of range", Map.of(TP, 2L)));
        sync.step(Duration.ZERO); // position invalid: bootstrap due
        assertThat(sync.step(Duration.ZERO)).isEqualTo(Duration.ofMillis(200));

        assertThat(enforcer.applies).containsExactly(script(a));
        assertThat(enforcer.kernel).isEqualTo(script(a));
        assertThat(sync.readiness().reason()).contains("is empty although this agent knows 1 network(s)");
    }

    // ---- a new block ends what it blocks ---------------------------------------------------------

    @Test
    void aNewBlockEndsTheEstablishedFlowsOfThePortsItBlocksMoreOn() throws Exception {
        Fragment a = fragment("net-a", 80);
        Fragment b = fragment("net-b", 443);
        inSnapshot(update(HOST, "net-a", 1, a));
        inSnapshot(update(HOST, "net-b", 1, b));
        HostSync sync = sync();
        sync.bootstrap();
        assertThat(flows.ended).as("a new host has no flows of ours").isEmpty();

        Fragment a2 = fragment("net-a", "tap-net-a", false, deny("net-a", 80), deny("net-a", 22));
        inLog(HOST, update(HOST, "net-a", 2, a2, "c-block"));
        sync.pollOnce(Duration.ZERO);

        assertThat(flows.ended).as("only the port whose rules block more").containsExactly(mark("tap-net-a", a2, b));
        assertThat(meters.counter("egress.agent.flows.ended").count()).isEqualTo(3.0);
        assertThat(lastReport().getStatus()).isEqualTo(EnforcementStatus.ACK);
    }

    @Test
    void anAddedAllowEndsNoFlows() throws Exception {
        Fragment a = fragment("net-a", 80);
        inSnapshot(update(HOST, "net-a", 1, a));
        HostSync sync = sync();
        sync.bootstrap();

        inLog(HOST, update(HOST, "net-a", 2, fragment("net-a", "tap-net-a", false, rule("net-a", Action.ALLOW, 22), deny("net-a", 80))));
        sync.pollOnce(Duration.ZERO);

        assertThat(enforcer.applies).hasSize(2);
        assertThat(flows.ended).isEmpty();
    }

    @Test
    void aNetworkThatKeepsEstablishedFlowsHasNoneEnded() throws Exception {
        Fragment a = fragment("net-a", "tap-net-a", true, deny("net-a", 80));
        inSnapshot(update(HOST, "net-a", 1, a));
        HostSync sync = sync();
        sync.bootstrap();

        inLog(HOST, update(HOST, "net-a", 2, fragment("net-a", "tap-net-a", true, deny("net-a", 80), deny("net-a", 22))));
        sync.pollOnce(Duration.ZERO);

        assertThat(enforcer.applies).hasSize(2);
        assertThat(flows.ended).isEmpty();
    }

    @Test
    void flowsThatCannotBeEndedAreCountedAndTheApplyStands() throws Exception {
        Fragment a = fragment("net-a", 80);
        inSnapshot(update(HOST, "net-a", 1, a));
        HostSync sync = sync();
        sync.bootstrap();

        flows.failWith = "conntrack v1.4.7 (conntrack-tools): Operation failed: sorry, you must be root";
        Fragment a2 = fragment("net-a", 22);
        inLog(HOST, update(HOST, "net-a", 2, a2, "c2"));
        sync.pollOnce(Duration.ZERO);

        assertThat(meters.counter("egress.agent.flows.failures").count()).isEqualTo(1.0);
        assertThat(enforcer.kernel).isEqualTo(script(a2));
        assertThat(lastReport().getStatus()).isEqualTo(EnforcementStatus.ACK);
        assertThat(lastReport().getChangeIds()).containsExactly("c2");
        assertThat(sync.readiness().ready()).isTrue();
    }

    @Test
    void aBootstrapThatReplacesATableHoldingRulesEndsTheFlowsOfEveryPortThatDoesNotKeepThem() throws Exception {
        Fragment a = fragment("net-a", 80);
        Fragment k = fragment("net-k", "tap-net-k", true, deny("net-k", 80));
        enforcer.kernel = script(fragment("net-a", 81), k); // left by an agent that ran before the change
        inSnapshot(update(HOST, "net-a", 2, a));
        inSnapshot(update(HOST, "net-k", 1, k));
        HostSync sync = sync();

        sync.bootstrap();

        assertThat(enforcer.applies).containsExactly(script(a, k));
        assertThat(flows.ended).containsExactly(mark("tap-net-a", a, k));
    }

    @Test
    void aBootstrapFoundInForceEndsNoFlows() throws Exception {
        Fragment a = fragment("net-a", 80);
        enforcer.kernel = script(a);
        inSnapshot(update(HOST, "net-a", 2, a));
        HostSync sync = sync();

        sync.bootstrap();

        assertThat(flows.ended).isEmpty();
    }

    // ---- supervised ------------------------------------------------------------------------------

    @Test
    void anExceptionInAPollIsNotSyncingWithTheReasonThenSyncsAgain() throws Exception {
        Fragment a = fragment("net-a", 80);
        inSnapshot(update(HOST, "net-a", 1, a));
        HostSync sync = sync();
        assertThat(sync.step(Duration.ZERO)).isEqualTo(Duration.ZERO);
        assertThat(sync.readiness().ready()).isTrue();

        consumer.setPollException(new KafkaException("broker said something unexpected"));
        assertThat(sync.step(Duration.ZERO)).isEqualTo(Duration.ofMillis(200));
        HostSync.Readiness r = sync.readiness();
        assertThat(r.ready()).isFalse();
        assertThat(r.reason()).isEqualTo("not syncing: org.apache.kafka.common.KafkaException: broker said something unexpected");
        assertThat(r.details()).containsKey("since");
        assertThat(meters.counter("egress.agent.sync.failures", "reason", "error").count()).isEqualTo(1.0);

        Fragment a2 = fragment("net-a", 22);
        inLog(HOST, update(HOST, "net-a", 2, a2));
        assertThat(sync.step(Duration.ZERO)).isEqualTo(Duration.ZERO);
        assertThat(sync.readiness().ready()).isTrue();
        assertThat(enforcer.kernel).isEqualTo(script(a2));
    }

    @Test
    void aFailingReportIsSentAgainWithItsChangeIds() throws Exception {
        Fragment a = fragment("net-a", 80);
        inSnapshot(update(HOST, "net-a", 1, a));
        HostSync sync = sync();
        sync.step(Duration.ZERO);
        int before = reports().size();

        Fragment a2 = fragment("net-a", 22);
        inLog(HOST, update(HOST, "net-a", 2, a2, "c2"));
        producer.sendException = new org.apache.kafka.common.errors.TimeoutException("Topic egress.enforcement-reports not present in metadata after 60000 ms.");
        assertThat(sync.step(Duration.ZERO)).isEqualTo(Duration.ofMillis(200));
        assertThat(enforcer.kernel).as("applied").isEqualTo(script(a2));
        assertThat(sync.readiness().ready()).isFalse();

        producer.sendException = null;
        assertThat(sync.step(Duration.ZERO)).isEqualTo(Duration.ZERO);
        EnforcementReport r = lastReport();
        assertThat(reports()).hasSize(before + 1);
        assertThat(r.getStatus()).isEqualTo(EnforcementStatus.ACK);
        assertThat(r.getChangeIds()).containsExactly("c2");
        assertThat(r.getAppliedHash()).isEqualTo(hash(a2));
        assertThat(enforcer.applies).as("not applied twice").hasSize(2);
    }

    @Test
    void anOffsetOutOfRangeBootstrapsAgainFromTheSnapshotInsteadOfSkipping() throws Exception {
        Fragment a = fragment("net-a", 80);
        inSnapshot(update(HOST, "net-a", 1, a));
        HostSync sync = sync();
        sync.step(Duration.ZERO);

        // While the agent was paused, retention deleted updates it had not read; the snapshot has them.
        Fragment a3 = fragment("net-a", 22);
        Fragment b = fragment("net-b", 443);
        snapshot.clear();
        inSnapshot(update(HOST, "net-a", 3, a3, "c3"));
        inSnapshot(update(HOST, "net-b", 1, b, "c4"));
        nextOffset = 40;
        consumer.updateBeginningOffsets(Map.of(TP, 30L));
        consumer.updateEndOffsets(Map.of(TP, nextOffset));
        consumer.setPollException(new OffsetOutOfRangeException("Fetch position is out of range", Map.of(TP, 5L)));

        assertThat(sync.step(Duration.ZERO)).as("at once").isEqualTo(Duration.ZERO);
        assertThat(sync.readiness().ready()).isFalse();
        assertThat(sync.readiness().reason()).contains("bootstrapping again from the snapshot");
        assertThat(meters.counter("egress.agent.rebootstraps").count()).isEqualTo(1.0);

        assertThat(sync.step(Duration.ZERO)).isEqualTo(Duration.ZERO);
        assertThat(sync.readiness().ready()).isTrue();
        assertThat(enforcer.kernel).isEqualTo(script(a3, b));
        assertThat(lastReport().getTrigger()).isEqualTo(EnforcementTrigger.BOOTSTRAP);
        assertThat(lastReport().getChangeIds()).containsExactlyInAnyOrder("c3", "c4");
        assertThat(consumer.position(TP)).as("from the end noted before the snapshot read").isEqualTo(40);

        Fragment b2 = fragment("net-b", 8443);
        inLog(HOST, update(HOST, "net-b", 2, b2));
        sync.step(Duration.ZERO);
        assertThat(enforcer.kernel).isEqualTo(script(a3, b2));
    }

    @Test
    void anUnreachableRegistryIsNotPoisonTheUpdateIsReadAgain() throws Exception {
        HostSync sync = sync();
        sync.step(Duration.ZERO);
        Fragment a = fragment("net-a", 80);
        long offset = nextOffset;
        inLog(HOST, update(HOST, "net-a", 1, a, "c1"));
        registry.setUnreachable(true);

        assertThat(sync.step(Duration.ZERO)).isEqualTo(Duration.ofMillis(200));
        assertThat(sync.readiness().reason()).startsWith("not syncing: the schema registry cannot be reached");
        assertThat(meters.counter("egress.agent.poison").count()).isZero();
        assertThat(meters.counter("egress.agent.sync.failures", "reason", "registry-unreachable").count()).isEqualTo(1.0);
        assertThat(consumer.position(TP)).as("back at the record it could not read").isEqualTo(offset);
        assertThat(enforcer.applies).hasSize(1);

        // The broker delivers it again from there (MockConsumer forgets delivered records: add it again).
        registry.setUnreachable(false);
        consumer.addRecord(new ConsumerRecord<>(TP.topic(), TP.partition(), offset, HOST,
                serializer.serialize(Topics.HOST_UPDATES, avro(update(HOST, "net-a", 1, a, "c1")))));
        assertThat(sync.step(Duration.ZERO)).isEqualTo(Duration.ZERO);
        assertThat(enforcer.kernel).isEqualTo(script(a));
        assertThat(lastReport().getChangeIds()).containsExactly("c1");
        assertThat(sync.readiness().ready()).isTrue();
    }

    @Test
    void theLoopSurvivesExceptionsOnItsThreadAndEndsOnStop() throws Exception {
        Fragment a = fragment("net-a", 80);
        inSnapshot(update(HOST, "net-a", 1, a));
        HostSync sync = sync();
        consumer.schedulePollTask(() -> {
            throw new IllegalStateException("a bug in a poll");
        });
        Thread t = new Thread(sync, "host-sync-test");
        t.start();
        try {
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (meters.counter("egress.agent.sync.failures", "reason", "error").count() < 1 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertThat(meters.counter("egress.agent.sync.failures", "reason", "error").count()).isEqualTo(1.0);
            while (!sync.readiness().ready() && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertThat(sync.readiness().ready()).as("synced again after the back-off").isTrue();
            assertThat(t.isAlive()).isTrue();
        } finally {
            sync.stop();
            t.join(5000);
        }
        assertThat(t.isAlive()).isFalse();
        assertThat(sync.readiness().ready()).isFalse();
        assertThat(sync.readiness().reason()).startsWith("not syncing: the sync loop ended");
    }

    // ---- fakes -----------------------------------------------------------------------------------

    /** The kernel as one string (the ruleset's script): apply replaces it, inSync compares with it. */
    static final class FakeEnforcer implements Enforcer {
        String kernel;
        String failHoldsRules;
        final List<String> applies = new ArrayList<>();
        int checks;
        /** A ruleset whose text holds this is refused by apply and by check (a network the kernel will not take). */
        String refuseContaining;
        int trialChecks;
        String failNextApply;
        String failNextCheck;
        String lastFailure;

        @Override
        public String name() {
            return "fake";
        }

        @Override
        public void apply(NftRuleset ruleset) throws EnforcementException {
            String script = NftScript.script(ruleset);
            if (refuseContaining != null && script.contains(refuseContaining)) {
                lastFailure = "nft rejected the ruleset (exit 1): Error: Could not process rule: Numerical result out of range";
                throw new EnforcementException(lastFailure);
            }
            if (failNextApply != null) {
                lastFailure = failNextApply;
                failNextApply = null;
                throw new EnforcementException(lastFailure);
            }
            applies.add(script);
            kernel = script;
        }

        @Override
        public void check(NftRuleset ruleset) throws EnforcementException {
            trialChecks++;
            if (refuseContaining != null && NftScript.script(ruleset).contains(refuseContaining)) {
                throw new EnforcementException("nft rejected the ruleset (exit 1): Error: Could not process rule: Numerical result out of range");
            }
        }

        @Override
        public boolean inSync(NftRuleset ruleset) throws EnforcementException {
            String script = NftScript.script(ruleset);
            checks++;
            if (failNextCheck != null) {
                String m = failNextCheck;
                failNextCheck = null;
                throw new EnforcementException(m);
            }
            return script.equals(kernel);
        }

        @Override
        public boolean holdsRules() throws EnforcementException {
            if (failHoldsRules != null) {
                throw new EnforcementException(failHoldsRules);
            }
            return kernel != null && kernel.contains("elements = {");
        }
    }

    /** Conntrack as a list of the marks whose flows were ended; each port has three flows. */
    static final class FakeFlowTable implements FlowTable {
        final List<Integer> ended = new ArrayList<>();
        String failWith;

        @Override
        public String name() {
            return "fake-conntrack";
        }

        @Override
        public long endFlows(int mark) throws EnforcementException {
            if (failWith != null) {
                throw new EnforcementException(failWith);
            }
            ended.add(mark);
            return 3;
        }
    }

    static final class MutableClock extends Clock {
        private Instant now = Instant.parse("2024-01-01T00:00:00Z");

        void advance(Duration d) {
            now = now.plus(d);
        }

        @Override
        public java.time.ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(java.time.ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return now;
        }
    }
}
