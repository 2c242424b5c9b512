package io.egressctl.compiler.compile;

import io.egressctl.core.compile.FragmentDelta;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.registry.InMemorySchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.Topics;
import io.egressctl.schemas.view.NetworkView;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.Future;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Versions are a function of the log (invariants 2 and 3), end to end through the compiler's batch
 * adapter: one generated log of network, rule and workload events on three partitions of
 * egress.network-events (with rejections and poison records) is replayed with different poll sizes,
 * different interleavings of the partitions within a poll, checkpoints taken at different points,
 * crashes at different points (before the store write, half way through publishing, after a batch,
 * each followed by a new instance that restores from the last checkpoint), a failed batch retried
 * in place, and partitions moving between two instances. Every HostUpdate any run publishes is
 * compared byte for byte (Confluent wire format) with the HostUpdate the reference run (one record
 * per poll, nothing coalesced) published for the same (host, network, version); what the hosts end
 * up holding, the snapshots, the network views and the change statuses are the reference's too.
 *
 * <p>Fakes stand for the seams (an in-memory store with Redis's version guard, Kafka's MockProducer,
 * an in-memory registry, a consumer over in-memory partitions); the pipeline is the real one.
 */
class ReplayDeterminismTest {

    static final int PARTITIONS = GeneratedLog.PARTITIONS;

    final InMemorySchemaRegistryClient registry = new InMemorySchemaRegistryClient();
    final AvroSerializer<SpecificRecord> wire = new AvroSerializer<>(registry);
    GeneratedLog generated;
    /** Partition by partition, the records of egress.network-events. */
    List<List<ConsumerRecord<String, byte[]>>> log;

    void generate(long seed, int events) {
        generated = new GeneratedLog(registry, Topics.NETWORK_EVENTS).generate(seed, events);
        log = generated.log;
    }

    int events() {
        return log.stream().mapToInt(List::size).sum();
    }

    // ---- a consumer over the in-memory partitions -----------------------------------------------------

    /** Assigned partitions and their positions; a poll takes up to {@code chunk} records per partition in turn. */
    final class Consumer {
        final TreeMap<Integer, Long> positions = new TreeMap<>();
        int next;

        void assign(int partition, Long seek) {
            positions.put(partition, seek == null ? 0L : seek);
        }

        void revoke(int partition) {
            positions.remove(partition);
        }

        boolean caughtUp() {
            return positions.entrySet().stream().allMatch(e -> e.getValue() >= log.get(e.getKey()).size());
        }

        List<ConsumerRecord<String, byte[]>> poll(int max, int chunk) {
            List<ConsumerRecord<String, byte[]>> out = new ArrayList<>();
            List<Integer> order = new ArrayList<>(positions.keySet());
            if (order.isEmpty()) {
                return out;
            }
            java.util.Collections.rotate(order, -(next++ % order.size()));
            boolean progress = true;
            while (out.size() < max && progress) {
                progress = false;
                for (int p : order) {
                    long at = positions.get(p);
                    int take = (int) Math.min(Math.min(chunk, max - out.size()), log.get(p).size() - at);
                    for (int i = 0; i < take; i++) {
                        out.add(log.get(p).get((int) at + i));
                    }
                    positions.put(p, at + take);
                    progress |= take > 0;
                }
            }
            return out;
        }
    }

    // ---- runs ---------------------------------------------------------------------------------------

    enum Fault {
        /** The store write fails; the instance dies; a new one restores from the last checkpoint. */
        CRASH_BEFORE_STORE,
        /** Stored, then the instance dies after publishing part of the batch. */
        CRASH_MID_PUBLISH,
        /** The batch completes; the instance dies before its next checkpoint. */
        CRASH_AFTER_BATCH,
        /** The store write fails once; the listener retries the same batch on the same instance. */
        RETRY_IN_PLACE,
        /**
         * The store write fails; before a retry the partitions are revoked (the listener forces a
         * checkpoint, which must not cover the failed batch) and go to a new instance.
         */
        FAIL_THEN_REBALANCE,
        /** Partitions 1 and 2 move to the other instance (revoked with a checkpoint, then assigned). */
        MOVE_PARTITIONS,
        /** A checkpoint of every owned partition (the interval elapsed, or a revocation). */
        CHECKPOINT
    }

    /** How one run polls and where it breaks: {@code faults} by poll number (1-based, over all instances). */
    record Variant(String name, int pollSize, int chunk, Map<Integer, List<Fault>> faults) {

        static Variant of(String name, int pollSize, int chunk, Object... pollAndFault) {
            Map<Integer, List<Fault>> faults = new TreeMap<>();
            for (int i = 0; i < pollAndFault.length; i += 2) {
                faults.computeIfAbsent((Integer) pollAndFault[i], k -> new ArrayList<>()).add((Fault) pollAndFault[i + 1]);
            }
            return new Variant(name, pollSize, chunk, faults);
        }
    }

    /** A producer that can die after a number of sends, as a process killed half way through a batch would. */
    static final class DyingProducer extends MockProducer<String, SpecificRecord> {
        int sendsLeft = Integer.MAX_VALUE;

        DyingProducer(AvroSerializer<SpecificRecord> serializer) {
            super(true, null, new StringSerializer(), serializer);
        }

        @Override
        public synchronized Future<RecordMetadata> send(ProducerRecord<String, SpecificRecord> record, Callback callback) {
            if (sendsLeft-- <= 0) {
                throw new KafkaException("killed");
            }
            return super.send(record, callback);
        }
    }

    /** What a run published and left in the store. */
    record Outcome(List<HostUpdate> published, CompilerPipelineTest.FakeStore store, int instances, int restores, int faults) {
    }

    final class Instance {
        final DyingProducer producer = new DyingProducer(wire);
        final MockProducer<String, byte[]> dlt = new MockProducer<>(true, null, new StringSerializer(), new ByteArraySerializer());
        final CompilerPipeline pipeline;
        final Consumer consumer = new Consumer();

        Instance(CompilerPipelineTest.FakeStore store) {
            // Deltas on every fragment they make smaller, so that they are published here too.
            pipeline = new CompilerPipeline(store, producer, dlt, CompilerPipeline.eventDeserializer(registry),
                    CompilerPipeline.TopicNames.defaults(), Long.MAX_VALUE, new SimpleMeterRegistry()).deltaMinRules(1);
        }

        /** Rebalance: takes the partitions, restoring each from its checkpoint, and seeks as the listener does. */
        int assign(List<Integer> partitions) {
            List<TopicPartition> tps = partitions.stream().map(p -> new TopicPartition(Topics.NETWORK_EVENTS, p)).toList();
            Map<TopicPartition, Long> seeks = pipeline.assign(tps);
            tps.forEach(tp -> consumer.assign(tp.partition(), seeks.get(tp)));
            return seeks.size();
        }

        List<HostUpdate> published() {
            return producer.history().stream().map(r -> (HostUpdate) r.value()).toList();
        }
    }

    Outcome run(Variant v) {
        CompilerPipelineTest.FakeStore store = new CompilerPipelineTest.FakeStore();
        List<HostUpdate> published = new ArrayList<>();
        List<Instance> live = new ArrayList<>();
        int instances = 1;
        int restores = 0;
        int faults = 0;
        Instance first = new Instance(store);
        restores += first.assign(List.of(0, 1, 2));
        live.add(first);
        int polls = 0;
        int turn = 0;
        while (live.stream().anyMatch(i -> !i.consumer.caughtUp())) {
            Instance inst = live.get(turn++ % live.size());
            List<ConsumerRecord<String, byte[]>> batch = inst.consumer.poll(v.pollSize(), v.chunk());
            if (batch.isEmpty()) {
                continue;
            }
            polls++;
            List<Fault> here = v.faults().getOrDefault(polls, List.of());
            faults += here.size();
            Instance replacement = null;
            if (here.contains(Fault.CRASH_BEFORE_STORE) || here.contains(Fault.RETRY_IN_PLACE) || here.contains(Fault.FAIL_THEN_REBALANCE)) {
                store.failWrites = 1;
                try {
                    inst.pipeline.process(batch);
                    throw new AssertionError("the store write should have failed");
                } catch (IllegalStateException expected) {
                    // the batch failed after the engine took its events
                }
                if (here.contains(Fault.RETRY_IN_PLACE)) {
                    inst.pipeline.process(batch);
                } else if (here.contains(Fault.FAIL_THEN_REBALANCE)) {
                    List<TopicPartition> owned = inst.consumer.positions.keySet().stream()
                            .map(p -> new TopicPartition(Topics.NETWORK_EVENTS, p)).toList();
                    inst.pipeline.maybeCheckpoint(true); // CompilerListener.onPartitionsRevoked
                    inst.pipeline.revoke(owned);
                    replacement = new Instance(store);
                } else {
                    replacement = new Instance(store);
                }
            } else if (here.contains(Fault.CRASH_MID_PUBLISH)) {
                inst.producer.sendsLeft = 1;
                try {
                    inst.pipeline.process(batch);
                } catch (KafkaException killed) {
                    // died half way through publishing
                }
                replacement = new Instance(store);
            } else {
                inst.pipeline.process(batch);
                if (here.contains(Fault.CRASH_AFTER_BATCH)) {
                    replacement = new Instance(store);
                }
            }
            published.addAll(inst.published());
            inst.producer.clear();
            if (replacement != null) {
                instances++;
                restores += replacement.assign(List.copyOf(inst.consumer.positions.keySet()));
                live.set(live.indexOf(inst), replacement);
                continue;
            }
            if (here.contains(Fault.CHECKPOINT)) {
                live.forEach(i -> i.pipeline.maybeCheckpoint(true));
            }
            if (here.contains(Fault.MOVE_PARTITIONS)) {
                Instance from = live.get(0);
                List<Integer> moving = from.consumer.positions.keySet().stream().filter(p -> p > 0).toList();
                List<TopicPartition> tps = moving.stream().map(p -> new TopicPartition(Topics.NETWORK_EVENTS, p)).toList();
                from.pipeline.maybeCheckpoint(true);
                from.pipeline.revoke(tps);
                moving.forEach(from.consumer::revoke);
                Instance to = live.size() > 1 ? live.get(1) : new Instance(store);
                if (live.size() == 1) {
                    live.add(to);
                    instances++;
                }
                restores += to.assign(moving);
            }
        }
        return new Outcome(published, store, instances, restores, faults);
    }

    // ---- comparison ---------------------------------------------------------------------------------

    static String key(HostUpdate h) {
        return h.getHostId() + "/" + h.getNetworkId();
    }

    String bytes(HostUpdate h) {
        return HexFormat.of().formatHex(wire.serialize(Topics.HOST_UPDATES, h));
    }

    /**
     * The run's HostUpdates in the order they were published, each delta made whole against its base,
     * a version of the same (host, network) published before it; the result must hash to the signed
     * fragment hash. Counts the deltas into {@link #deltas}, and into {@link #gaps} those a reader of
     * the log in that order could not apply because it holds another version than the base (it then
     * reads the snapshot): none while no instance fails over.
     */
    List<HostUpdate> whole(List<HostUpdate> published) {
        Map<String, Map<Long, FragmentUpdate>> seen = new TreeMap<>();
        Map<String, Long> held = new TreeMap<>();
        List<HostUpdate> out = new ArrayList<>(published.size());
        for (HostUpdate h : published) {
            FragmentUpdate u;
            Map<Long, FragmentUpdate> versions = seen.computeIfAbsent(key(h), k -> new TreeMap<>());
            if (EventMapper.isDelta(h)) {
                FragmentDelta d = EventMapper.deltaFromAvro(h);
                FragmentUpdate base = versions.get(d.baseVersion());
                assertThat(base).as("%s v%d: the delta's base v%d was published before it", key(h), h.getVersion(), d.baseVersion())
                        .isNotNull();
                u = EventMapper.resolve(h, d, base.fragment());
                assertThat(u.fragment().hash()).as("%s v%d: made whole, it hashes to the signed hash", key(h), h.getVersion())
                        .isEqualTo(h.getFragmentHash());
                deltas++;
                Long holds = held.get(key(h));
                if (holds != null && holds < h.getVersion() && holds != d.baseVersion()) {
                    gaps++;
                }
                HostUpdate w = EventMapper.toAvro(u, h.getCompiledAt());
                w.setMac(h.getMac());
                out.add(w);
            } else {
                u = EventMapper.fromAvro(h);
                out.add(h);
            }
            versions.put(u.version(), u);
            held.merge(key(h), u.version(), Math::max);
        }
        return out;
    }

    int gaps;
    int deltas;

    /** Every published HostUpdate by (host, network, version), checking that one run never published two contents for one. */
    Map<String, String> byVersion(List<HostUpdate> published) {
        Map<String, String> out = new TreeMap<>();
        for (HostUpdate h : published) {
            String k = key(h) + "@" + h.getVersion();
            String previous = out.putIfAbsent(k, bytes(h));
            assertThat(previous == null || previous.equals(out.get(k))).as("one run published %s twice with other bytes", k).isTrue();
        }
        return out;
    }

    /** What the hosts hold after folding the updates in arrival order, newest version wins (as agents do). */
    Map<String, String> folded(List<HostUpdate> published) {
        Map<String, HostUpdate> newest = new TreeMap<>();
        for (HostUpdate h : published) {
            newest.merge(key(h), h, (a, b) -> b.getVersion() > a.getVersion() ? b : a);
        }
        Map<String, String> out = new TreeMap<>();
        newest.forEach((k, h) -> out.put(k, bytes(h)));
        return out;
    }

    static Map<String, Map<String, String>> changesWithoutWallClock(CompilerPipelineTest.FakeStore store) {
        Map<String, Map<String, String>> out = new TreeMap<>();
        store.changes.forEach((id, fields) -> {
            Map<String, String> f = new TreeMap<>(fields);
            f.remove("compiledAt"); // the wall clock of the batch that wrote it, by design
            out.put(id, f);
        });
        return out;
    }

    /**
     * The network views as readers get them ({@link NetworkView#fromHash}: the hash's version, the
     * definition, VMs and rules), and each view's fields but for the version inside its JSON, which is
     * when the writing instance last rendered it (by design a cache detail that readers never see).
     */
    static Map<String, Object> views(CompilerPipelineTest.FakeStore store) {
        Map<String, Object> out = new TreeMap<>();
        store.views.forEach((networkId, hash) -> {
            out.put(networkId + " as read", String.valueOf(NetworkView.fromHash(hash)));
            Map<String, String> fields = new TreeMap<>(hash);
            fields.computeIfPresent("json", (f, json) -> json.replaceAll(",\"version\":[0-9]+,", ",\"version\":_,"));
            out.put(networkId + " fields", fields);
        });
        return out;
    }

    static Map<String, String> snapshots(CompilerPipelineTest.FakeStore store) {
        Map<String, String> out = new TreeMap<>();
        store.fragments.forEach((host, byNetwork) -> byNetwork.forEach((n, b) -> out.put(host + "/" + n, HexFormat.of().formatHex(b))));
        return out;
    }

    static List<Variant> variants() {
        return List.of(
                Variant.of("poll 2", 2, 2),
                Variant.of("poll 7, one record per partition in turn", 7, 1),
                Variant.of("poll 50", 50, 50),
                Variant.of("poll 500 (everything at once)", 500, 500),
                Variant.of("poll 13, checkpoints, crash after a batch", 13, 5,
                        3, Fault.CHECKPOINT, 9, Fault.CHECKPOINT, 14, Fault.CRASH_AFTER_BATCH, 30, Fault.CHECKPOINT),
                Variant.of("poll 3, crash before any checkpoint", 3, 3, 40, Fault.CRASH_AFTER_BATCH),
                Variant.of("poll 11, crash before the store write", 11, 4,
                        5, Fault.CHECKPOINT, 12, Fault.CRASH_BEFORE_STORE, 25, Fault.CHECKPOINT, 31, Fault.CRASH_BEFORE_STORE),
                Variant.of("poll 17, crash half way through publishing", 17, 17,
                        4, Fault.CHECKPOINT, 8, Fault.CRASH_MID_PUBLISH, 12, Fault.CHECKPOINT, 20, Fault.CRASH_MID_PUBLISH),
                Variant.of("poll 9, failed batches retried in place", 9, 2,
                        2, Fault.RETRY_IN_PLACE, 6, Fault.CHECKPOINT, 7, Fault.RETRY_IN_PLACE, 30, Fault.RETRY_IN_PLACE),
                Variant.of("poll 6, a failed batch, then its partitions move on", 6, 3,
                        3, Fault.CHECKPOINT, 9, Fault.FAIL_THEN_REBALANCE, 15, Fault.CHECKPOINT, 22, Fault.FAIL_THEN_REBALANCE),
                Variant.of("poll 5, checkpoint every poll then crashes", 5, 5,
                        1, Fault.CHECKPOINT, 2, Fault.CHECKPOINT, 3, Fault.CHECKPOINT, 4, Fault.CRASH_MID_PUBLISH,
                        20, Fault.CHECKPOINT, 21, Fault.CRASH_AFTER_BATCH, 60, Fault.CRASH_BEFORE_STORE),
                Variant.of("poll 8, partitions move to a second instance, which then crashes", 8, 3,
                        4, Fault.CHECKPOINT, 10, Fault.MOVE_PARTITIONS, 16, Fault.CHECKPOINT, 23, Fault.CRASH_MID_PUBLISH,
                        40, Fault.CRASH_AFTER_BATCH),
                Variant.of("poll 1 with everything", 1, 1,
                        50, Fault.CHECKPOINT, 120, Fault.CRASH_MID_PUBLISH, 200, Fault.RETRY_IN_PLACE, 260, Fault.CHECKPOINT,
                        300, Fault.MOVE_PARTITIONS, 330, Fault.CRASH_BEFORE_STORE, 400, Fault.CRASH_AFTER_BATCH));
    }

    @ParameterizedTest(name = "log seed {0}: every published HostUpdate is byte-identical across batchings, polls and crashes")
    @ValueSource(longs = {1, 2, 3})
    void everyPublishedHostUpdateIsAFunctionOfTheLog(long seed) {
        generate(seed, 420);
        Outcome reference = run(Variant.of("reference: one record per poll", 1, 1));
        List<HostUpdate> referenceWhole = whole(reference.published());
        assertThat(gaps).as("the reference: a reader of the log meets no delta it cannot apply").isZero();
        assertThat(deltas).as("the reference published deltas").isGreaterThan(10);
        Map<String, String> expected = byVersion(referenceWhole);
        Map<String, String> expectedHosts = folded(referenceWhole);

        // In the reference nothing is coalesced: every update carries the position of the event that made it.
        for (HostUpdate h : referenceWhole) {
            assertThat(h.getChangeIds()).hasSize(1);
            assertThat(h.getVersion()).as("%s: the version is the position of event %s", key(h), h.getChangeIds().get(0))
                    .isEqualTo(generated.positionOf.get(h.getChangeIds().get(0)));
        }
        assertThat(expected).as("the log touches hosts").hasSizeGreaterThan(100);

        int compared = 0;
        int variants = 0;
        int restores = 0;
        int faults = 0;
        int instances = 0;
        for (Variant v : variants()) {
            Outcome run = run(v);
            gaps = 0;
            List<HostUpdate> runWhole = whole(run.published());
            if (v.faults().isEmpty()) {
                assertThat(gaps).as("%s: a reader of the log meets no delta it cannot apply", v.name()).isZero();
            }
            for (HostUpdate h : runWhole) {
                String k = key(h) + "@" + h.getVersion();
                assertThat(expected).as("%s: %s was published by the reference", v.name(), k).containsKey(k);
                assertThat(bytes(h)).as("%s: %s byte for byte (made whole)", v.name(), k).isEqualTo(expected.get(k));
                compared++;
            }
            byVersion(runWhole);
            assertThat(folded(runWhole)).as("%s: what the hosts hold", v.name()).isEqualTo(expectedHosts);
            assertThat(snapshots(run.store())).as("%s: snapshots", v.name()).isEqualTo(snapshots(reference.store()));
            assertThat(run.store().versions).as("%s: snapshot versions", v.name()).isEqualTo(reference.store().versions);
            assertThat(views(run.store())).as("%s: network views", v.name()).isEqualTo(views(reference.store()));
            assertThat(changesWithoutWallClock(run.store())).as("%s: change statuses", v.name())
                    .isEqualTo(changesWithoutWallClock(reference.store()));
            variants++;
            restores += run.restores();
            faults += run.faults();
            instances += run.instances();
        }
        System.out.printf("replay determinism, log seed %d: %d records on %d partitions (%d poison), %d networks, %d hosts;"
                        + " the reference published %d HostUpdates (%d (host, network) keys); %d variants (%d instances, %d faults,"
                        + " %d partitions restored from checkpoints) published %d HostUpdates (%d deltas in all), each, made whole,"
                        + " byte-identical to the reference's at its (host, network, version)%n",
                seed, events(), PARTITIONS, generated.poisonRecords, GeneratedLog.NETWORKS, GeneratedLog.HOSTS, reference.published().size(), expectedHosts.size(),
                variants, instances, faults, restores, compared, deltas);
        assertThat(restores).as("crashes restored from checkpoints").isGreaterThan(5);
        assertThat(new TreeSet<>(reference.published().stream().map(ReplayDeterminismTest::key).toList())).hasSizeGreaterThan(20);
    }
}
