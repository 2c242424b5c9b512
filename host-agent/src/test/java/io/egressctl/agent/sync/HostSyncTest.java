package io.egressctl.agent.sync;

import io.egressctl.agent.enforce.EnforcementException;
import io.egressctl.agent.enforce.Enforcer;
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
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
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
    private final List<byte[]> snapshot = new ArrayList<>();
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
        return new HostSync(HOST, consumer, producer, host -> {
            assertThat(host).isEqualTo(HOST);
            return List.copyOf(snapshot);
        }, new AvroDeserializer<>(registry, HostUpdate.class), enforcer, RENDERER, Duration.ofSeconds(5), clock, meters);
    }

    // ---- fixtures --------------------------------------------------------------------------------

    static Fragment fragment(String network, int port) {
        String vm = network + "-vm1";
        return new Fragment(network, DefaultPolicy.ALLOW, List.of(new VmAddress(vm, "10.1." + port % 250 + ".11", null)),
                List.of(new CompiledRule("r-" + network + "-" + port, Action.DENY, 1000, Protocol.TCP, List.of(vm), List.of(), List.of(),
                        PortRange.single(port), null)));
    }

    static FragmentUpdate update(String host, String network, long version, Fragment f, String... changeIds) {
        return new FragmentUpdate(host, network, version, f, f == null ? "" : f.hash(), List.of(changeIds));
    }

    static HostUpdate avro(FragmentUpdate u) {
        return EventMapper.toAvro(u, Instant.parse("2024-01-01T00:00:00Z"));
    }

    /** The single-object encoding the compiler stores in the snapshot. */
    void inSnapshot(FragmentUpdate u) {
        try {
            ByteBuffer b = avro(u).toByteBuffer();
            byte[] out = new byte[b.remaining()];
            b.get(out);
            snapshot.add(out);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A record on the host's partition after the noted end offset, keyed {@code key}. */
    void inLog(String key, FragmentUpdate u) {
        consumer.addRecord(new ConsumerRecord<>(TP.topic(), TP.partition(), nextOffset++, key,
                serializer.serialize(Topics.HOST_UPDATES, avro(u))));
        consumer.updateEndOffsets(Map.of(TP, nextOffset));
    }

    static String script(Fragment... fragments) {
        SortedMap<String, Fragment> m = new TreeMap<>();
        for (Fragment f : fragments) {
            m.put(f.networkId(), f);
        }
        return RENDERER.render(HOST, m);
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

    // ---- fakes -----------------------------------------------------------------------------------

    /** The kernel as one string: apply replaces it, inSync compares with it. */
    static final class FakeEnforcer implements Enforcer {
        String kernel;
        final List<String> applies = new ArrayList<>();
        int checks;
        String failNextApply;
        String failNextCheck;
        String lastFailure;

        @Override
        public String name() {
            return "fake";
        }

        @Override
        public void apply(String script) throws EnforcementException {
            if (failNextApply != null) {
                lastFailure = failNextApply;
                failNextApply = null;
                throw new EnforcementException(lastFailure);
            }
            applies.add(script);
            kernel = script;
        }

        @Override
        public boolean inSync(String script) throws EnforcementException {
            checks++;
            if (failNextCheck != null) {
                String m = failNextCheck;
                failNextCheck = null;
                throw new EnforcementException(m);
            }
            return script.equals(kernel);
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
