package io.egressctl.compiler.compile;

import io.egressctl.compiler.snapshot.SnapshotStore;
import io.egressctl.core.event.Audit;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.NetworkKind;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.registry.InMemorySchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.Topics;
import io.egressctl.schemas.view.NetworkView;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The compiler's batch adapter with fakes of its own seams (an in-memory {@link SnapshotStore}, an
 * in-memory schema registry, Kafka's MockProducer): coalescing, guarded publication, dead letters,
 * the read model and checkpoints.
 */
class CompilerPipelineTest {

    static final Audit AUDIT = new Audit("alice", "acme", "req", Instant.parse("2026-01-01T00:00:00Z"), "test", "0");

    final InMemorySchemaRegistryClient registry = new InMemorySchemaRegistryClient();
    final AvroSerializer<SpecificRecord> serializer = new AvroSerializer<>(registry);
    final FakeStore store = new FakeStore();
    final MockProducer<String, SpecificRecord> producer = new MockProducer<>(true, null, new StringSerializer(), new AvroSerializer<>(registry));
    final MockProducer<String, byte[]> dlt = new MockProducer<>(true, null, new StringSerializer(), new ByteArraySerializer());
    final SimpleMeterRegistry meters = new SimpleMeterRegistry();
    final CompilerPipeline pipeline = newPipeline();
    /** Next offset of partition 0 of egress.network-events. */
    long offset;

    CompilerPipeline newPipeline() {
        return new CompilerPipeline(store, producer, dlt, CompilerPipeline.eventDeserializer(registry),
                CompilerPipeline.TopicNames.defaults(), 0, meters);
    }

    @Test
    void updatesOfOneHostAndNetworkInOneBatchAreCoalescedToTheNewest() {
        List<ConsumerRecord<String, byte[]>> batch = new ArrayList<>(setup());
        batch.add(rule(create("r1", "10.0.0.11/32", 80)));
        batch.add(rule(create("r2", "10.0.0.11/32", 81)));
        pipeline.process(batch);
        List<HostUpdate> h1 = published("h1");
        assertThat(h1).hasSize(1);
        assertThat(h1.get(0).getFragment().getRules()).extracting(r -> r.getRuleId()).containsExactly("r1", "r2");
        assertThat(store.changes).containsKeys("c-r1", "c-r2");
        assertThat(store.changes.get("c-r1").get("targets")).contains("h1");
    }

    @Test
    void snapshotBytesAreAvrosSingleObjectEncodingOfTheUpdateWithoutIdsAndTime() throws Exception {
        pipeline.process(setup());
        pipeline.process(List.of(rule(create("r1", "10.0.0.11/32", 80))));
        HostUpdate logged = published("h1").get(published("h1").size() - 1);
        assertThat(logged.getChangeIds()).containsExactly("c-r1");
        byte[] stored = store.fragments.get("h1").get("n1");
        HostUpdate expected = HostUpdate.newBuilder(logged).setChangeIds(List.of()).setCompiledAt(Instant.EPOCH).build();
        java.nio.ByteBuffer reference = expected.toByteBuffer();
        byte[] referenceBytes = new byte[reference.remaining()];
        reference.get(referenceBytes);
        assertThat(stored).isEqualTo(referenceBytes);
        assertThat(HostUpdate.fromByteBuffer(java.nio.ByteBuffer.wrap(stored))).isEqualTo(expected);
        // The record sent to the log kept its ids and time.
        assertThat(logged.getCompiledAt()).isNotEqualTo(Instant.EPOCH);
    }

    @Test
    void withUpdateKeysTheLoggedAndTheSnapshotFormAreEachSignedAndVerify() throws Exception {
        String key = java.util.Base64.getEncoder().encodeToString("0123456789abcdef0123456789abcdef".getBytes());
        io.egressctl.schemas.integrity.UpdateMac mac =
                new io.egressctl.schemas.integrity.UpdateMac(io.egressctl.schemas.integrity.UpdateKeys.parse("k1:" + key, null));
        CompilerPipeline signing = new CompilerPipeline(store, producer, dlt, CompilerPipeline.eventDeserializer(registry),
                CompilerPipeline.TopicNames.defaults(), 0, new SimpleMeterRegistry(), io.egressctl.core.state.Limits.defaults(), mac);
        signing.process(setup());
        signing.process(List.of(rule(create("r1", "10.0.0.11/32", 80))));
        HostUpdate logged = published("h1").get(published("h1").size() - 1);
        assertThat(logged.getMac()).startsWith("hmac-sha256:k1:");
        mac.verify(logged, io.egressctl.schemas.mapping.EventMapper.fromAvro(logged));
        HostUpdate stored = HostUpdate.fromByteBuffer(java.nio.ByteBuffer.wrap(store.fragments.get("h1").get("n1")));
        assertThat(stored.getMac()).startsWith("hmac-sha256:k1:").isNotEqualTo(logged.getMac());
        mac.verify(stored, io.egressctl.schemas.mapping.EventMapper.fromAvro(stored));
        // Every update this pipeline wrote is signed.
        assertThat(published("h1").get(0).getMac()).isNotNull();
        HostUpdate tampered = HostUpdate.newBuilder(logged).setVersion(logged.getVersion() + 1).build();
        org.assertj.core.api.Assertions.assertThatThrownBy(
                () -> mac.verify(tampered, io.egressctl.schemas.mapping.EventMapper.fromAvro(tampered))).hasMessageContaining("does not match");
    }

    @Test
    void aStaleWriteIsNotPublished() {
        pipeline.process(setup());
        store.staleFrom = 0;
        producer.clear();
        pipeline.process(List.of(rule(create("r1", "10.0.0.11/32", 80))));
        assertThat(producer.history()).isEmpty();
    }

    @Test
    void undecodableAndInvalidRecordsAreDeadLetteredAndTheBatchGoesOn() {
        List<ConsumerRecord<String, byte[]>> batch = new ArrayList<>(setup());
        batch.add(new ConsumerRecord<>(Topics.NETWORK_EVENTS, 0, offset++, "n1", new byte[] {1, 2, 3}));
        batch.add(rule(create("r1", "10.0.0.11/32", 80)));
        pipeline.process(batch);
        assertThat(dlt.history()).hasSize(1);
        assertThat(new String(dlt.history().get(0).headers().lastHeader("egress.dlt.kind").value())).isEqualTo("undecodable");
        assertThat(published("h1")).isNotEmpty();
    }

    @Test
    void theIncrementalReadModelReadsBackAsTheFullViewAfterEveryChange() {
        pipeline.process(setup());
        // Rule changes interleaved with VM changes: the cached network JSON must follow the VMs.
        List<ConsumerRecord<String, byte[]>> changes = List.of(rule(create("r1", "10.0.0.11/32", 80)),
                workload(placed("w3", "n1", "vm3", "h3", "tap-vm3", "10.0.0.13")),
                rule(create("r2", "10.0.0.12/32", 81)), rule(delete("r1")),
                workload(new WorkloadChange("w4", WorkloadChange.Operation.VM_REMOVED, "n1", "vm2", "h2", null, null, null, AUDIT)),
                rule(create("r3", "10.0.0.0/24", 82)));
        for (ConsumerRecord<String, byte[]> c : changes) {
            pipeline.process(List.of(c));
            NetworkView expected = NetworkView.of(pipeline.engine().state("n1"));
            assertThat(NetworkView.fromHash(store.views.get("n1"))).isEqualTo(expected);
        }
        pipeline.process(List.of(rule(new RuleChange("c-policy", RuleChange.Operation.NETWORK_UPDATED, "n1", null, null,
                network().withDefaultPolicy(DefaultPolicy.DENY), null, null, AUDIT))));
        NetworkView afterPolicy = NetworkView.fromHash(store.views.get("n1"));
        assertThat(afterPolicy).isEqualTo(NetworkView.of(pipeline.engine().state("n1")));
        assertThat(afterPolicy.rules().values()).allMatch(r -> r.action().equals("allow"));
    }

    @Test
    void aCheckpointRestoresTheSameStateAndOffsets() {
        pipeline.process(setup());
        pipeline.process(List.of(rule(create("r1", "10.0.0.11/32", 80))));
        pipeline.maybeCheckpoint(true);
        CompilerPipeline other = newPipeline();
        var seeks = other.assign(List.of(new TopicPartition(Topics.NETWORK_EVENTS, 0)));
        assertThat(seeks).containsExactly(Map.entry(new TopicPartition(Topics.NETWORK_EVENTS, 0), offset));
        assertThat(other.engine().fragments("n1")).isEqualTo(pipeline.engine().fragments("n1"));
        assertThat(other.engine().state("n1").version()).isEqualTo(pipeline.engine().state("n1").version()).isEqualTo(offset);
    }

    @Test
    void aCheckpointBuiltFromKeptEntriesIsTheDocumentAFullEncodingWrites() {
        pipeline.process(setup());
        pipeline.process(List.of(rule(create("r1", "10.0.0.11/32", 80)), rule(new RuleChange("c-net2", RuleChange.Operation.NETWORK_CREATED, "n2",
                null, null, network().withNetworkId("n2"), null, null, AUDIT))));
        pipeline.maybeCheckpoint(true);
        // n1 changes, n2 does not: n2's entry is the one kept from the first checkpoint.
        pipeline.process(List.of(rule(create("r2", "10.0.0.12/32", 81))));
        pipeline.maybeCheckpoint(true);
        List<Checkpoint.NetworkEntry> fresh = new ArrayList<>();
        for (String n : List.of("n1", "n2")) {
            fresh.add(Checkpoint.of(pipeline.engine().state(n)));
        }
        String full = new Checkpoint(Topics.NETWORK_EVENTS, offset, fresh).toJson();
        assertThat(tools.jackson.databind.json.JsonMapper.builder().build().readTree(store.checkpoints.get(0)))
                .isEqualTo(tools.jackson.databind.json.JsonMapper.builder().build().readTree(full));
        assertThat(store.checkpoints.get(0)).contains("\"offset\":" + offset);
        CompilerPipeline other = newPipeline();
        other.assign(List.of(new TopicPartition(Topics.NETWORK_EVENTS, 0)));
        assertThat(other.engine().state("n1").rules()).containsOnlyKeys("r1", "r2");
        assertThat(other.engine().state("n2").network()).isEqualTo(pipeline.engine().state("n2").network());
    }

    @Test
    void aPartitionWhoseOffsetDidNotMoveIsNotWrittenAgainButOneThatMovedIs() {
        pipeline.process(setup());
        pipeline.process(List.of(new ConsumerRecord<>(Topics.NETWORK_EVENTS, 1, 0L, "m1", serializer.serialize(Topics.NETWORK_EVENTS,
                EventMapper.toAvro(new RuleChange("c-m1", RuleChange.Operation.NETWORK_CREATED, "m1", null, null,
                        network().withNetworkId("m1"), null, null, AUDIT))))));
        pipeline.maybeCheckpoint(true);
        assertThat(store.checkpoints).containsOnlyKeys(0, 1);
        String partition1 = store.checkpoints.get(1);
        store.checkpoints.remove(1);
        pipeline.process(List.of(rule(create("r1", "10.0.0.11/32", 80))));
        pipeline.maybeCheckpoint(true);
        assertThat(store.checkpoints).as("only partition 0 moved").containsOnlyKeys(0);
        assertThat(store.checkpoints.get(0)).contains("\"offset\":" + offset);
        pipeline.process(List.of(new ConsumerRecord<>(Topics.NETWORK_EVENTS, 1, 1L, "m1", serializer.serialize(Topics.NETWORK_EVENTS,
                EventMapper.toAvro(new RuleChange("c-m1-r", RuleChange.Operation.RULE_CREATED, "m1", null, null, null, null,
                        new EgressRule("q1", Protocol.TCP, null, EgressRule.DEFAULT_PRIORITY, List.of(), List.of(), List.of(), List.of(),
                                PortRange.single(22), null, null), AUDIT))))));
        pipeline.maybeCheckpoint(true);
        assertThat(store.checkpoints.get(1)).isNotEqualTo(partition1).contains("\"offset\":2");
    }

    @Test
    void versionsArePositionsInTheOneLogWhateverTheEventsType() {
        pipeline.process(setup());
        assertThat(pipeline.engine().state("n1").version()).as("network at 1, two placements at 2 and 3").isEqualTo(3);
        assertThat(published("h2")).extracting(HostUpdate::getVersion).containsExactly(3L);
        pipeline.process(List.of(rule(create("r1", "10.0.0.11/32", 80))));
        assertThat(published("h1")).extracting(HostUpdate::getVersion).containsExactly(2L, 4L);
        assertThat(NetworkView.fromHash(store.views.get("n1")).version()).isEqualTo(4);
        assertThat(store.changes.get("c-r1").get("version")).isEqualTo("4");
    }

    @Test
    void aCheckpointOfAnotherTopicOrOf01sTwoTopicsIsNotRestored() {
        store.checkpoints.put(0, "{\"ruleOffset\":12,\"workloadOffset\":5,\"networks\":[]}");
        assertThat(newPipeline().assign(List.of(new TopicPartition(Topics.NETWORK_EVENTS, 0)))).as("0.1's format").isEmpty();
        store.checkpoints.put(0, "{\"topic\":\"other.network-events\",\"offset\":12,\"networks\":[],\"format\":2}");
        assertThat(newPipeline().assign(List.of(new TopicPartition(Topics.NETWORK_EVENTS, 0)))).as("another topic").isEmpty();
    }

    @Test
    void aCheckpointWrittenBeforeDeletesClearedPlacementsIsNotRestoredSoThePartitionReplays() {
        store.checkpoints.put(0, "{\"topic\":\"" + Topics.NETWORK_EVENTS + "\",\"offset\":12,\"networks\":[]}");
        assertThat(newPipeline().assign(List.of(new TopicPartition(Topics.NETWORK_EVENTS, 0)))).as("no format: before").isEmpty();
        pipeline.process(List.of(rule(createNetwork("na"))));
        pipeline.maybeCheckpoint(true);
        assertThat(store.checkpoints.get(0)).contains("\"format\":" + Checkpoint.FORMAT);
        assertThat(newPipeline().assign(List.of(new TopicPartition(Topics.NETWORK_EVENTS, 0)))).as("the current format").isNotEmpty();
    }

    @Test
    void aRecordOfAnotherTypeOnTheLogIsDeadLetteredAsUndecodable() {
        List<ConsumerRecord<String, byte[]>> batch = new ArrayList<>(setup());
        batch.add(new ConsumerRecord<>(Topics.NETWORK_EVENTS, 0, offset++, "n1",
                serializer.serialize(Topics.NETWORK_EVENTS, HostUpdate.newBuilder().setHostId("h1").setNetworkId("n1").setVersion(1)
                        .setTombstone(true).setFragment(null).setFragmentHash("").setChangeIds(List.of()).setCompiledAt(Instant.EPOCH).build())));
        batch.add(rule(create("r1", "10.0.0.11/32", 80)));

        pipeline.process(batch);

        assertThat(dlt.history()).hasSize(1);
        assertThat(dlt.history().get(0).topic()).isEqualTo("egress.network-events.DLT");
        assertThat(new String(dlt.history().get(0).headers().lastHeader("egress.dlt.reason").value()))
                .contains("io.egressctl.events.HostUpdate, not one of the record types of topic egress.network-events");
        assertThat(published("h1")).extracting(HostUpdate::getVersion).containsExactly(5L);
    }

    @Test
    void whatABatchThatFailedHalfWayProducedIsPublishedWithTheNextAndNoCheckpointMovesPastItMeanwhile() {
        pipeline.process(setup());
        pipeline.maybeCheckpoint(true);
        String checkpoint = store.checkpoints.get(0);
        List<ConsumerRecord<String, byte[]>> batch = List.of(rule(create("r1", "10.0.0.11/32", 80)),
                workload(new WorkloadChange("w3", WorkloadChange.Operation.VM_MOVED, "n1", "vm2", "h3", "h2", "10.0.0.12", null, AUDIT)));
        producer.clear();
        store.failWrites = 1;

        org.assertj.core.api.Assertions.assertThatThrownBy(() -> pipeline.process(batch)).hasMessageContaining("store down");
        pipeline.maybeCheckpoint(true);
        assertThat(store.checkpoints.get(0)).as("no checkpoint past an unfinished batch").isEqualTo(checkpoint);
        assertThat(producer.history()).isEmpty();

        pipeline.process(batch); // the listener's retry: every event already applied
        assertThat(producer.history()).extracting(r -> r.key() + "@" + ((HostUpdate) r.value()).getVersion())
                .containsExactly("h1@4", "h3@5", "h2@5");
        assertThat(published("h1").get(0).getChangeIds()).containsExactly("c-r1");
        assertThat(store.changes).containsKeys("c-r1", "w3");
        assertThat(NetworkView.fromHash(store.views.get("n1"))).isEqualTo(NetworkView.of(pipeline.engine().state("n1")));
        pipeline.maybeCheckpoint(true);
        assertThat(store.checkpoints.get(0)).isNotEqualTo(checkpoint);
    }

    // ---- the tenant index ----

    @Test
    void aDeletedNetworkLeavesItsTenantsIndexAlsoWhenRestoredFromACheckpointJustBefore() {
        pipeline.process(setup());
        assertThat(store.tenantNetworks.get("acme")).containsExactly("n1");
        pipeline.process(List.of(rule(new RuleChange("d-net", RuleChange.Operation.NETWORK_DELETED, "n1", null, null, null, null, null, AUDIT))));
        assertThat(store.tenantNetworks.get("acme")).as("a deleted network no longer counts as the tenant's").isEmpty();

        // Created, checkpointed; a new instance restores it and deletes it as its first change.
        pipeline.process(List.of(rule(new RuleChange("c-n2", RuleChange.Operation.NETWORK_CREATED, "n2", null, null,
                new Network("n2", "acme", NetworkKind.BASIC, Cidr.parse("10.0.1.0/24"), null, DefaultPolicy.ALLOW, false, 100), null, null, AUDIT))));
        pipeline.maybeCheckpoint(true);
        assertThat(store.tenantNetworks.get("acme")).containsExactly("n2");
        CompilerPipeline next = newPipeline();
        next.assign(List.of(new TopicPartition(Topics.NETWORK_EVENTS, 0)));
        next.process(List.of(rule(new RuleChange("d-n2", RuleChange.Operation.NETWORK_DELETED, "n2", null, null, null, null, null, AUDIT))));
        assertThat(store.tenantNetworks.get("acme")).isEmpty();
    }

    // ---- rule-keyed deltas on the log ----

    /** The network with {@code n} rules for vm1 (h1), each in a batch of its own. */
    void rulesForVm1(int n) {
        pipeline.process(setup());
        for (int i = 0; i < n; i++) {
            pipeline.process(List.of(rule(create("r" + i, "10.0.0.11/32", 1000 + i))));
        }
    }

    /** The whole fragment the snapshot holds for (host, n1). */
    io.egressctl.core.compile.Fragment snapshotFragment(String host) throws Exception {
        HostUpdate stored = HostUpdate.fromByteBuffer(java.nio.ByteBuffer.wrap(store.fragments.get(host).get("n1")));
        assertThat(stored.getDelta()).as("a snapshot is always whole").isNull();
        return EventMapper.fromAvro(stored).fragment();
    }

    @Test
    void aChangeToALargeFragmentIsPublishedAsARuleKeyedDeltaAgainstTheLastPublishedVersion_theSnapshotStaysWhole() throws Exception {
        rulesForVm1(CompilerPipeline.DELTA_MIN_RULES + 4);
        List<HostUpdate> before = published("h1");
        HostUpdate base = before.get(before.size() - 1);
        io.egressctl.core.compile.Fragment baseFragment = snapshotFragment("h1");

        pipeline.process(List.of(rule(create("r-new", "10.0.0.11/32", 443))));

        HostUpdate delta = published("h1").get(published("h1").size() - 1);
        assertThat(EventMapper.isDelta(delta)).isTrue();
        assertThat(delta.getFragment()).isNull();
        io.egressctl.core.compile.FragmentDelta d = EventMapper.deltaFromAvro(delta);
        assertThat(d.baseVersion()).isEqualTo(base.getVersion());
        assertThat(d.upserts()).extracting(io.egressctl.core.compile.CompiledRule::ruleId).containsExactly("r-new");
        assertThat(d.removedRuleIds()).isEmpty();
        // Made whole against the base, it is what the snapshot holds, and hashes to the signed hash.
        io.egressctl.core.compile.Fragment whole = EventMapper.resolve(delta, d, baseFragment).fragment();
        assertThat(whole).isEqualTo(snapshotFragment("h1"));
        assertThat(whole.hash()).isEqualTo(delta.getFragmentHash());

        assertThat(meters.counter("egress.compiler.updates.deltas").count()).as("deltas counted").isGreaterThanOrEqualTo(5.0);
        assertThat(meters.get("egress.compiler.delta.held-rules").gauge().value()).as("the bases held: h1's fragment")
                .isEqualTo(CompilerPipeline.DELTA_MIN_RULES + 5);

        pipeline.process(List.of(rule(delete("r3"))));
        HostUpdate removal = published("h1").get(published("h1").size() - 1);
        assertThat(EventMapper.deltaFromAvro(removal).removedRuleIds()).containsExactly("r3");
        assertThat(EventMapper.deltaFromAvro(removal).baseVersion()).isEqualTo(delta.getVersion());
    }

    @Test
    void smallFragmentsTombstonesAndDeltasOfHalfTheRulesArePublishedWhole() {
        rulesForVm1(CompilerPipeline.DELTA_MIN_RULES - 2);
        assertThat(published("h1")).noneMatch(EventMapper::isDelta);

        // Above the size, a change to every rule at once is not smaller than the whole.
        pipeline.process(List.of(rule(create("a", "10.0.0.11/32", 1)), rule(create("b", "10.0.0.11/32", 2)),
                rule(create("c", "10.0.0.11/32", 3)), rule(create("d", "10.0.0.11/32", 4))));
        assertThat(published("h1").get(published("h1").size() - 1).getDelta()).isNull();
        pipeline.process(List.of(rule(create("e", "10.0.0.11/32", 5))));
        assertThat(published("h1").get(published("h1").size() - 1).getDelta()).isNotNull();

        // The VM leaves the host: a removal, whole.
        pipeline.process(List.of(workload(new WorkloadChange("w9", WorkloadChange.Operation.VM_REMOVED, "n1", "vm1", "h1", null, null, null,
                null, null, AUDIT))));
        HostUpdate last = published("h1").get(published("h1").size() - 1);
        assertThat(last.getTombstone()).isTrue();
        assertThat(last.getDelta()).isNull();
    }

    @Test
    void withDeltasOffOrAfterTheNetworksPartitionMovedEveryUpdateIsWhole() {
        pipeline.deltaUpdates(false);
        rulesForVm1(CompilerPipeline.DELTA_MIN_RULES + 4);
        assertThat(published("h1")).noneMatch(EventMapper::isDelta);

        pipeline.deltaUpdates(true);
        pipeline.process(List.of(rule(create("x1", "10.0.0.11/32", 1))));
        assertThat(published("h1").get(published("h1").size() - 1).getDelta()).as("nothing published as a base yet").isNull();
        pipeline.process(List.of(rule(create("x2", "10.0.0.11/32", 2))));
        assertThat(published("h1").get(published("h1").size() - 1).getDelta()).isNotNull();

        // Partition 0 goes and comes back: the bases were forgotten with it.
        TopicPartition p0 = new TopicPartition(Topics.NETWORK_EVENTS, 0);
        pipeline.revoke(List.of(p0));
        pipeline.assign(List.of(p0));
        pipeline.process(List.of(rule(create("x3", "10.0.0.11/32", 3))));
        assertThat(published("h1").get(published("h1").size() - 1).getDelta()).isNull();
    }

    // ---- the host interface index ----

    static WorkloadChange placed(String id, String network, String vm, String host, String iface, String ipv4) {
        return new WorkloadChange(id, WorkloadChange.Operation.VM_PLACED, network, vm, host, null, iface, null, ipv4, null, AUDIT);
    }

    static RuleChange createNetwork(String id) {
        return new RuleChange("c-" + id, RuleChange.Operation.NETWORK_CREATED, id, null, null,
                new Network(id, "acme", NetworkKind.BASIC, Cidr.parse("10.0.0.0/24"), null, DefaultPolicy.ALLOW, false, 100), null, null, AUDIT);
    }

    Map<String, String> index(String host) {
        return store.interfaces.getOrDefault(host, Map.of());
    }

    @Test
    void aPlacementClaimsItsHostInterfaceAndAnotherNetworkCannotTakeIt() {
        pipeline.process(List.of(rule(createNetwork("na")), rule(createNetwork("nb")),
                workload(placed("w1", "na", "vm-1", "h1", "tap-a1", "10.0.0.11")),
                workload(placed("w2", "na", "vm-legacy", "h1", null, "10.0.0.12"))));
        assertThat(index("h1")).isEqualTo(Map.of("tap-a1", "na/vm-1"));
        // A VM of another network claiming the same interface (past the rule-service): the first claim stands.
        pipeline.process(List.of(workload(placed("w3", "nb", "vm-9", "h1", "tap-a1", "10.0.0.11"))));
        assertThat(index("h1")).isEqualTo(Map.of("tap-a1", "na/vm-1"));
        // nb's VM leaving does not free what na's VM holds.
        pipeline.process(List.of(workload(new WorkloadChange("w4", WorkloadChange.Operation.VM_REMOVED, "nb", "vm-9", "h1", null, null, null, AUDIT))));
        assertThat(index("h1")).isEqualTo(Map.of("tap-a1", "na/vm-1"));
    }

    @Test
    void aVmPlacedAgainOnItsInterfaceWritesNothingAndARuleChangeNeither() {
        pipeline.process(List.of(rule(createNetwork("na")), workload(placed("w1", "na", "vm-1", "h1", "tap-a1", "10.0.0.11"))));
        store.interfaceWrites.clear();
        pipeline.process(List.of(workload(placed("w2", "na", "vm-1", "h1", "tap-a1", "10.0.0.21"))));
        pipeline.process(List.of(rule(new RuleChange("c-r1", RuleChange.Operation.RULE_CREATED, "na", null, null, null, null,
                new EgressRule("r1", Protocol.TCP, null, EgressRule.DEFAULT_PRIORITY, List.of(), List.of(), List.of(), List.of(),
                        PortRange.single(80), null, null), AUDIT))));
        assertThat(store.interfaceWrites).isEmpty();
        assertThat(index("h1")).isEqualTo(Map.of("tap-a1", "na/vm-1"));
    }

    @Test
    void aMovedRemovedOrDrainedVmFreesItsInterface() {
        pipeline.process(List.of(rule(createNetwork("na")),
                workload(placed("w1", "na", "vm-1", "h1", "tap-a1", "10.0.0.11")),
                workload(placed("w2", "na", "vm-2", "h1", "tap-a2", "10.0.0.12")),
                workload(placed("w3", "na", "vm-3", "h2", "tap-a3", "10.0.0.13"))));
        assertThat(index("h1")).isEqualTo(Map.of("tap-a1", "na/vm-1", "tap-a2", "na/vm-2"));
        // Moved to another host, and to another interface of the same host.
        pipeline.process(List.of(workload(new WorkloadChange("w4", WorkloadChange.Operation.VM_MOVED, "na", "vm-1", "h2", "h1", "tap-b1", null,
                "10.0.0.11", null, AUDIT)), workload(placed("w5", "na", "vm-2", "h1", "tap-b2", "10.0.0.12"))));
        assertThat(index("h1")).isEqualTo(Map.of("tap-b2", "na/vm-2"));
        assertThat(index("h2")).isEqualTo(Map.of("tap-a3", "na/vm-3", "tap-b1", "na/vm-1"));
        pipeline.process(List.of(workload(new WorkloadChange("w6", WorkloadChange.Operation.VM_REMOVED, "na", "vm-3", "h2", null, null, null, AUDIT))));
        assertThat(index("h2")).isEqualTo(Map.of("tap-b1", "na/vm-1"));
        pipeline.process(List.of(workload(new WorkloadChange("w7", WorkloadChange.Operation.HOST_DRAINED, "na", null, "h2", null, null, null, AUDIT))));
        assertThat(index("h2")).isEmpty();
        assertThat(index("h1")).isEqualTo(Map.of("tap-b2", "na/vm-2"));
    }

    @Test
    void anInterfaceOneNetworkLeavesAndAnotherTakesInOneBatchEndsWithTheNewHolder() {
        pipeline.process(List.of(rule(createNetwork("na")), rule(createNetwork("nb")), workload(placed("w1", "na", "vm-1", "h1", "tap-x", "10.0.0.11"))));
        pipeline.process(List.of(workload(placed("w2", "nb", "vm-9", "h1", "tap-x", "10.0.0.11")),
                workload(new WorkloadChange("w3", WorkloadChange.Operation.VM_REMOVED, "na", "vm-1", "h1", null, null, null, AUDIT))));
        assertThat(index("h1")).isEqualTo(Map.of("tap-x", "nb/vm-9"));
    }

    @Test
    void aDeletedNetworkFreesItsInterfacesAndACreatedOneClaimsThem() {
        // VMs may be placed before their network exists: they hold nothing until it does.
        pipeline.process(List.of(workload(placed("w1", "na", "vm-1", "h1", "tap-a1", "10.0.0.11"))));
        assertThat(index("h1")).isEmpty();
        pipeline.process(List.of(rule(createNetwork("na"))));
        assertThat(index("h1")).isEqualTo(Map.of("tap-a1", "na/vm-1"));
        pipeline.process(List.of(rule(new RuleChange("c-del", RuleChange.Operation.NETWORK_DELETED, "na", null, null, null, null, null, AUDIT))));
        assertThat(index("h1")).isEmpty();
    }

    @Test
    void aPlacementBoundToAnotherTenantIsRejectedInLogOrderWithItsReasonAndClaimsNothing() {
        // createNetwork's networks belong to acme.
        pipeline.process(List.of(rule(createNetwork("na")),
                workload(placed("w1", "na", "vm-1", "h1", "tap-a1", "10.0.0.11").boundTo("intruder")),
                workload(placed("w2", "na", "vm-2", "h1", "tap-a2", "10.0.0.12").boundTo("acme"))));
        assertThat(store.changes.get("w1")).containsEntry("status", "REJECTED").containsEntry("code", "TENANT_MISMATCH");
        assertThat(store.changes.get("w1").get("reason")).contains("names tenant intruder").doesNotContain("acme");
        assertThat(store.changes.get("w1").get("version")).isEqualTo("2");
        assertThat(store.changes.get("w2")).containsEntry("status", "COMPILED").containsEntry("version", "3");
        assertThat(index("h1")).isEqualTo(Map.of("tap-a2", "na/vm-2"));
        assertThat(NetworkView.fromHash(store.views.get("na")).vms()).containsOnlyKeys("vm-2");
    }

    @Test
    void aBoundPlacementOnANetworkThatDoesNotExistIsRejectedAsNetworkNotFound() {
        pipeline.process(List.of(workload(placed("w1", "na", "vm-1", "h1", "tap-a1", "10.0.0.11").boundTo("acme"))));
        assertThat(store.changes.get("w1")).containsEntry("status", "REJECTED").containsEntry("code", "NETWORK_NOT_FOUND");
        pipeline.process(List.of(rule(createNetwork("na"))));
        assertThat(index("h1")).isEmpty();
    }

    @Test
    void aNetworkDeletedAndCreatedAgainDoesNotInheritTheOldVmsOrTheirInterfaces() {
        pipeline.process(List.of(rule(createNetwork("na")), workload(placed("w1", "na", "vm-1", "h1", "tap-a1", "10.0.0.11").boundTo("acme"))));
        pipeline.process(List.of(rule(new RuleChange("c-del", RuleChange.Operation.NETWORK_DELETED, "na", null, null, null, null, null, AUDIT))));
        List<HostUpdate> sent = new ArrayList<>();
        producer.history().forEach(r -> sent.add((HostUpdate) r.value()));
        assertThat(sent.get(sent.size() - 1).getTombstone()).as("the VM's host is told the network left").isTrue();
        producer.clear();
        pipeline.process(List.of(rule(new RuleChange("c-na2", RuleChange.Operation.NETWORK_CREATED, "na", null, null,
                new Network("na", "other", NetworkKind.BASIC, Cidr.parse("10.0.0.0/24"), null, DefaultPolicy.ALLOW, false, 100, false),
                null, null, AUDIT))));
        assertThat(NetworkView.fromHash(store.views.get("na")).vms()).isEmpty();
        assertThat(index("h1")).isEmpty();
        assertThat(producer.history()).as("no host gets the old VMs under the new network").isEmpty();
    }

    @Test
    void aRestoredInstanceReleasesWhatItsPredecessorClaimed() {
        pipeline.process(List.of(rule(createNetwork("na")), workload(placed("w1", "na", "vm-1", "h1", "tap-a1", "10.0.0.11"))));
        pipeline.maybeCheckpoint(true);
        CompilerPipeline other = newPipeline();
        other.assign(List.of(new TopicPartition(Topics.NETWORK_EVENTS, 0)));
        other.process(List.of(workload(new WorkloadChange("w2", WorkloadChange.Operation.VM_REMOVED, "na", "vm-1", "h1", null, null, null, AUDIT))));
        assertThat(index("h1")).isEmpty();
    }

    @Test
    void aBatchWhoseWriteFailedReleasesOnRedelivery() {
        List<ConsumerRecord<String, byte[]>> first = List.of(rule(createNetwork("na")), workload(placed("w1", "na", "vm-1", "h1", "tap-a1", "10.0.0.11")));
        pipeline.process(first);
        ConsumerRecord<String, byte[]> move = workload(new WorkloadChange("w2", WorkloadChange.Operation.VM_MOVED, "na", "vm-1", "h2", "h1",
                "tap-b1", null, "10.0.0.11", null, AUDIT));
        store.failWrites = 1;
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> pipeline.process(List.of(move))).hasMessageContaining("Redis is down");
        assertThat(index("h1")).isEqualTo(Map.of("tap-a1", "na/vm-1"));
        // Redelivered (ALREADY_APPLIED): the failed batch's output goes with this one, its networks written whole, releases too.
        pipeline.process(List.of(move));
        assertThat(index("h1")).isEmpty();
        assertThat(index("h2")).isEqualTo(Map.of("tap-b1", "na/vm-1"));
    }

    @Test
    void theViewShowsInterfacesMacsAndKeepEstablished() {
        pipeline.process(List.of(rule(new RuleChange("c-na", RuleChange.Operation.NETWORK_CREATED, "na", null, null,
                        new Network("na", "acme", NetworkKind.BASIC, Cidr.parse("10.0.0.0/24"), null, DefaultPolicy.ALLOW, false, 100, true),
                        null, null, AUDIT)),
                workload(new WorkloadChange("w1", WorkloadChange.Operation.VM_PLACED, "na", "vm-1", "h1", null, "tap-a1", "52:54:00:AA:BB:CC",
                        "10.0.0.11", null, AUDIT))));
        NetworkView v = NetworkView.fromHash(store.views.get("na"));
        assertThat(v.keepEstablished()).isTrue();
        assertThat(v.vms().get("vm-1")).isEqualTo(new NetworkView.VmView("h1", "10.0.0.11", null, "tap-a1", "52:54:00:aa:bb:cc"));
        assertThat(v).isEqualTo(NetworkView.of(pipeline.engine().state("na")));
    }

    // ---- helpers ----

    List<ConsumerRecord<String, byte[]>> setup() {
        List<ConsumerRecord<String, byte[]>> out = new ArrayList<>();
        out.add(rule(new RuleChange("c-net", RuleChange.Operation.NETWORK_CREATED, "n1", null, null, network(), null, null, AUDIT)));
        out.add(workload(placed("w1", "n1", "vm1", "h1", "tap-vm1", "10.0.0.11")));
        out.add(workload(placed("w2", "n1", "vm2", "h2", "tap-vm2", "10.0.0.12")));
        return out;
    }

    static Network network() {
        return new Network("n1", "acme", NetworkKind.BASIC, Cidr.parse("10.0.0.0/24"), null, DefaultPolicy.ALLOW, false, 100);
    }

    static RuleChange create(String id, String source, int port) {
        return new RuleChange("c-" + id, RuleChange.Operation.RULE_CREATED, "n1", null, null, null, null,
                new EgressRule(id, Protocol.TCP, null, EgressRule.DEFAULT_PRIORITY, List.of(Cidr.parse(source)), List.of(), List.of(),
                        List.of(), PortRange.single(port), null, null), AUDIT);
    }

    static RuleChange delete(String id) {
        return new RuleChange("d-" + id, RuleChange.Operation.RULE_DELETED, "n1", null, null, null,
                new EgressRule(id, Protocol.TCP, null, EgressRule.DEFAULT_PRIORITY, List.of(), List.of(), List.of(), List.of(),
                        PortRange.single(1), null, null), null, AUDIT);
    }

    ConsumerRecord<String, byte[]> rule(RuleChange c) {
        return new ConsumerRecord<>(Topics.NETWORK_EVENTS, 0, offset++, c.networkId(), serializer.serialize(Topics.NETWORK_EVENTS, EventMapper.toAvro(c)));
    }

    ConsumerRecord<String, byte[]> workload(WorkloadChange c) {
        return new ConsumerRecord<>(Topics.NETWORK_EVENTS, 0, offset++, c.networkId(),
                serializer.serialize(Topics.NETWORK_EVENTS, EventMapper.toAvro(c)));
    }

    List<HostUpdate> published(String host) {
        return producer.history().stream().filter(r -> r.key().equals(host)).map(r -> (HostUpdate) r.value()).toList();
    }

    /** An in-memory store with the same version guard as Redis. */
    static final class FakeStore implements SnapshotStore {
        final Map<String, Long> versions = new HashMap<>();
        /** Stored snapshot bytes by host, then network. */
        final Map<String, Map<String, byte[]>> fragments = new HashMap<>();
        final Map<String, Map<String, String>> views = new HashMap<>();
        /** egress:tenant:T:networks. */
        final Map<String, java.util.Set<String>> tenantNetworks = new HashMap<>();
        final Map<String, Map<String, String>> changes = new HashMap<>();
        final Map<Integer, String> checkpoints = new HashMap<>();
        /** The host interface index, with the same guards as the Redis script: host, interface -> holder. */
        final Map<String, Map<String, String>> interfaces = new HashMap<>();
        final List<InterfaceWrite> interfaceWrites = new ArrayList<>();
        long staleFrom = Long.MAX_VALUE;
        /** The next this many batch writes fail as an unreachable Redis would. */
        int failWrites;
        /** The next this many checkpoint writes fail as an unreachable Redis would. */
        int failCheckpoints;

        @Override
        public BatchResult write(Batch batch) {
            if (failWrites > 0) {
                failWrites--;
                throw new IllegalStateException("store down (Redis is down)");
            }
            fence(batch.epochs());
            List<WriteOutcome> out = new ArrayList<>();
            for (FragmentWrite w : batch.fragments()) {
                String key = w.update().hostId() + "/" + w.update().networkId();
                Long cur = versions.get(key);
                if (w.update().version() >= staleFrom || cur != null && cur > w.update().version()) {
                    out.add(WriteOutcome.STALE);
                } else if (cur != null && cur == w.update().version()) {
                    out.add(WriteOutcome.SAME);
                } else {
                    versions.put(key, w.update().version());
                    fragments.computeIfAbsent(w.update().hostId(), h -> new HashMap<>()).put(w.update().networkId(), w.encodedHostUpdate());
                    out.add(WriteOutcome.WRITTEN);
                }
            }
            List<Boolean> viewsWritten = new ArrayList<>();
            for (ViewWrite v : batch.views()) {
                Map<String, String> hash = v.full() ? new HashMap<>() : views.computeIfAbsent(v.networkId(), n -> new HashMap<>());
                hash.put("version", Long.toString(v.version()));
                hash.put("json", v.json());
                hash.putAll(v.ruleFields());
                v.removedFields().forEach(hash::remove);
                views.put(v.networkId(), hash);
                viewsWritten.add(true);
                // The tenant index as RedisSnapshotStore keeps it: a deleted network's view (no JSON) leaves it.
                if (v.tenantId() != null) {
                    if (v.json().isEmpty()) {
                        tenantNetworks.getOrDefault(v.tenantId(), new java.util.TreeSet<>()).remove(v.networkId());
                    } else {
                        tenantNetworks.computeIfAbsent(v.tenantId(), t -> new java.util.TreeSet<>()).add(v.networkId());
                    }
                }
            }
            batch.changes().forEach(c -> changes.put(c.changeId(), c.fields()));
            for (InterfaceWrite w : batch.interfaces()) {
                interfaceWrites.add(w);
                Map<String, String> hash = interfaces.computeIfAbsent(w.hostId(), h -> new HashMap<>());
                String cur = hash.get(w.interfaceName());
                String network = w.holder().substring(0, w.holder().indexOf('/') + 1);
                if (!w.claim()) {
                    hash.remove(w.interfaceName(), w.holder());
                } else if (cur == null || cur.startsWith(network)) {
                    hash.put(w.interfaceName(), w.holder());
                }
            }
            return new BatchResult(out, viewsWritten);
        }

        @Override
        public void writeApplied(String hostId, Map<String, String> fields) {
        }

        @Override
        public void replaceApplied(String hostId, Map<String, String> fields, String replacedPrefix) {
        }

        @Override
        public Optional<String> readCheckpoint(int partition) {
            return Optional.ofNullable(checkpoints.get(partition));
        }

        @Override
        public void writeCheckpoint(int partition, String checkpoint, long epoch) {
            if (failCheckpoints > 0) {
                failCheckpoints--;
                throw new IllegalStateException("store down (Redis is down)");
            }
            fence(epoch > 0 ? Map.of(partition, epoch) : Map.of());
            checkpoints.put(partition, checkpoint);
        }

        @Override
        public long claim(int partition) {
            return epochs.merge(partition, 1L, Long::sum);
        }

        /** The fencing epoch of each partition, as the Redis scripts check it. */
        final Map<Integer, Long> epochs = new HashMap<>();

        /** Refuses a write whose epochs are older than the store's, as the Redis scripts' prelude does. */
        void fence(Map<Integer, Long> writer) {
            java.util.Set<Integer> stale = new java.util.TreeSet<>();
            writer.forEach((p, e) -> {
                if (epochs.getOrDefault(p, 0L) > e) {
                    stale.add(p);
                }
            });
            if (!stale.isEmpty()) {
                throw new io.egressctl.compiler.snapshot.FencedException(stale);
            }
            writer.forEach((p, e) -> epochs.merge(p, e, Math::max));
        }
    }
}
