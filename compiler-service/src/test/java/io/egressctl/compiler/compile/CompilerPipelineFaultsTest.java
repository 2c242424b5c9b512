package io.egressctl.compiler.compile;

import io.egressctl.compiler.snapshot.FencedException;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
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
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static io.egressctl.compiler.compile.CompilerPipelineTest.AUDIT;
import static io.egressctl.compiler.compile.CompilerPipelineTest.create;
import static io.egressctl.compiler.compile.CompilerPipelineTest.network;
import static io.egressctl.compiler.compile.CompilerPipelineTest.placed;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Infrastructure faults at the pipeline's seams (Kafka sends that throw or whose futures fail, dead
 * letters not acknowledged, a registry that cannot be reached, a writer fenced by a new owner): the
 * batch fails, no checkpoint moves past it, nothing is dead-lettered for an outage, and the retry
 * publishes exactly what the failed attempt should have. Fakes of the pipeline's own seams
 * ({@link CompilerPipelineTest.FakeStore} with the Redis scripts' fence, Kafka's MockProducer).
 */
class CompilerPipelineFaultsTest {

    final InMemorySchemaRegistryClient registry = new InMemorySchemaRegistryClient();
    final AvroSerializer<SpecificRecord> serializer = new AvroSerializer<>(registry);
    final CompilerPipelineTest.FakeStore store = new CompilerPipelineTest.FakeStore();
    final FlakyProducer<SpecificRecord> producer = new FlakyProducer<>(new AvroSerializer<>(registry));
    final FlakyProducer<byte[]> dlt = new FlakyProducer<>(new ByteArraySerializer());
    final SimpleMeterRegistry meters = new SimpleMeterRegistry();
    long offset;

    /** A MockProducer whose sends complete at flush(), or fail there when told to, as a broker that times out would. */
    static final class FlakyProducer<V> extends MockProducer<String, V> {
        int failFlushes;
        int acknowledged;

        FlakyProducer(org.apache.kafka.common.serialization.Serializer<V> values) {
            super(false, null, new StringSerializer(), values);
        }

        @Override
        public synchronized void flush() {
            if (failFlushes > 0) {
                failFlushes--;
                while (errorNext(new TimeoutException("Expiring 1 record(s): delivery.timeout.ms has passed"))) {
                    // every send of this flush fails
                }
                return;
            }
            while (completeNext()) {
                acknowledged++;
            }
        }
    }

    CompilerPipeline newPipeline(InMemorySchemaRegistryClient reader) {
        return newPipeline(reader, 0);
    }

    CompilerPipeline newPipeline(InMemorySchemaRegistryClient reader, long checkpointIntervalMillis) {
        return new CompilerPipeline(store, producer, dlt, CompilerPipeline.eventDeserializer(reader),
                CompilerPipeline.TopicNames.defaults(), checkpointIntervalMillis, meters);
    }

    ConsumerRecord<String, byte[]> rule(RuleChange c) {
        return new ConsumerRecord<>(Topics.NETWORK_EVENTS, 0, offset++, c.networkId(), serializer.serialize(Topics.NETWORK_EVENTS, EventMapper.toAvro(c)));
    }

    ConsumerRecord<String, byte[]> workload(WorkloadChange c) {
        return new ConsumerRecord<>(Topics.NETWORK_EVENTS, 0, offset++, c.networkId(), serializer.serialize(Topics.NETWORK_EVENTS, EventMapper.toAvro(c)));
    }

    List<ConsumerRecord<String, byte[]>> setup() {
        return List.of(rule(new RuleChange("c-net", RuleChange.Operation.NETWORK_CREATED, "n1", null, null, network(), null, null, AUDIT)),
                workload(placed("w1", "n1", "vm1", "h1", "tap-vm1", "10.0.0.11")));
    }

    long checkpointOffset() {
        String json = store.checkpoints.get(0);
        return json == null ? -1 : Checkpoint.fromJson(json, Topics.NETWORK_EVENTS).orElseThrow().offset();
    }

    List<String> acknowledgedUpdates() {
        // MockProducer's history holds every send; the acknowledged ones are those whose futures completed normally.
        return producer.history().stream().map(r -> r.key() + "@" + ((HostUpdate) r.value()).getVersion()).toList();
    }

    @Test
    void aSendThatThrowsFailsTheBatchNoCheckpointMovesAndTheRetryPublishesIt() {
        CompilerPipeline pipeline = newPipeline(registry);
        pipeline.assign(List.of(new TopicPartition(Topics.NETWORK_EVENTS, 0)));
        pipeline.process(setup());
        pipeline.maybeCheckpoint(true);
        long before = checkpointOffset();
        List<ConsumerRecord<String, byte[]>> batch = List.of(rule(create("r1", "10.0.0.11/32", 80)));
        producer.clear();
        producer.sendException = new KafkaException("the broker cannot be reached (send threw)");

        assertThatThrownBy(() -> pipeline.process(batch)).hasMessageContaining("send threw");
        pipeline.maybeCheckpoint(true);
        assertThat(checkpointOffset()).as("no checkpoint past a batch whose HostUpdates were not sent").isEqualTo(before);

        producer.sendException = null;
        pipeline.process(batch); // the error handler's retry: the same records again
        assertThat(acknowledgedUpdates()).containsExactly("h1@3");
        pipeline.maybeCheckpoint(true);
        assertThat(checkpointOffset()).isEqualTo(offset);
    }

    @Test
    void aFailedSendFutureFailsTheBatchAlthoughFlushReturnedAndTheRetryPublishesIt() {
        CompilerPipeline pipeline = newPipeline(registry);
        pipeline.assign(List.of(new TopicPartition(Topics.NETWORK_EVENTS, 0)));
        pipeline.process(setup());
        pipeline.maybeCheckpoint(true);
        long before = checkpointOffset();
        List<ConsumerRecord<String, byte[]>> batch = List.of(rule(create("r1", "10.0.0.11/32", 80)),
                workload(placed("w2", "n1", "vm2", "h2", "tap-vm2", "10.0.0.12")));
        producer.failFlushes = 1;

        assertThatThrownBy(() -> pipeline.process(batch)).isInstanceOf(KafkaException.class).hasMessageContaining("delivery.timeout.ms");
        pipeline.maybeCheckpoint(true);
        assertThat(checkpointOffset()).as("flush() returned, but the futures failed").isEqualTo(before);

        int acknowledged = producer.acknowledged;
        pipeline.process(batch);
        assertThat(producer.acknowledged - acknowledged).as("both HostUpdates sent again and acknowledged").isEqualTo(2);
        assertThat(producer.history().subList(producer.history().size() - 2, producer.history().size()))
                .extracting(r -> r.key() + "@" + ((HostUpdate) r.value()).getVersion()).containsExactly("h1@3", "h2@4");
        pipeline.maybeCheckpoint(true);
        assertThat(checkpointOffset()).isEqualTo(offset);
    }

    @Test
    void aDeadLetterIsAwaitedBeforeTheBatchCompletesAndSentAgainUntilAcknowledged() {
        CompilerPipeline pipeline = newPipeline(registry);
        pipeline.assign(List.of(new TopicPartition(Topics.NETWORK_EVENTS, 0)));
        pipeline.process(setup());
        pipeline.maybeCheckpoint(true);
        long before = checkpointOffset();
        List<ConsumerRecord<String, byte[]>> batch = new ArrayList<>();
        batch.add(new ConsumerRecord<>(Topics.NETWORK_EVENTS, 0, offset++, "n1", new byte[] {0, 0, 0, 0, 1, 2}));
        batch.add(rule(create("r1", "10.0.0.11/32", 80)));
        dlt.failFlushes = 1;

        assertThatThrownBy(() -> pipeline.process(batch)).hasMessageContaining("delivery.timeout.ms");
        pipeline.maybeCheckpoint(true);
        assertThat(checkpointOffset()).isEqualTo(before);
        assertThat(dlt.acknowledged).isZero();

        pipeline.process(batch);
        assertThat(dlt.acknowledged).as("the dead letter, sent again, once").isEqualTo(1);
        assertThat(dlt.history()).last().satisfies(r -> assertThat(r.topic()).isEqualTo("egress.network-events.DLT"));
        pipeline.maybeCheckpoint(true);
        assertThat(checkpointOffset()).isEqualTo(offset);
        pipeline.process(batch);
        assertThat(dlt.acknowledged).as("a redelivered batch does not dead-letter again").isEqualTo(1);
    }

    @Test
    void anUnreachableRegistryIsNotPoisonTheRecordIsRetriedUntilItAnswers() {
        List<ConsumerRecord<String, byte[]>> batch = new ArrayList<>(setup());
        batch.add(rule(create("r1", "10.0.0.11/32", 80)));
        // A fresh instance has fetched no writer schema yet; the registry goes away before it does.
        InMemorySchemaRegistryClient reader = registry;
        CompilerPipeline pipeline = newPipeline(reader);
        pipeline.assign(List.of(new TopicPartition(Topics.NETWORK_EVENTS, 0)));
        registry.setUnreachable(true);

        for (int attempt = 0; attempt < 3; attempt++) {
            assertThatThrownBy(() -> pipeline.process(batch)).isInstanceOf(SerializationException.class)
                    .hasMessageContaining("cannot fetch the writer schema");
        }
        assertThat(dlt.history()).as("an outage is not poison").isEmpty();
        pipeline.maybeCheckpoint(true);
        assertThat(store.checkpoints).isEmpty();
        assertThat(Failures.classify(new SerializationException("x", new io.egressctl.schemas.registry.SchemaRegistryUnreachableException("down", null))).kind())
                .isEqualTo("schema-registry");

        registry.setUnreachable(false);
        pipeline.process(batch);
        assertThat(dlt.history()).isEmpty();
        assertThat(NetworkView.fromHash(store.views.get("n1")).version()).isEqualTo(3);
        assertThat(store.changes).containsKeys("c-net", "w1", "c-r1");
    }

    @Test
    void anUnknownSchemaIdIsPoisonWhileTheRegistryAnswers() {
        CompilerPipeline pipeline = newPipeline(registry);
        pipeline.process(List.of(new ConsumerRecord<>(Topics.NETWORK_EVENTS, 0, offset++, "n1", new byte[] {0, 0, 0, 0x7f, 1, 2})));
        assertThat(dlt.history()).hasSize(1);
        assertThat(new String(dlt.history().get(0).headers().lastHeader("egress.dlt.reason").value())).contains("unknown schema id");
    }

    @Test
    void aWriterWhosePartitionWasTakenOverIsRefusedWritesNothingAndForgetsThePartition() {
        TopicPartition p0 = new TopicPartition(Topics.NETWORK_EVENTS, 0);
        CompilerPipeline old = newPipeline(registry);
        old.assign(List.of(p0));
        old.process(setup());
        old.maybeCheckpoint(true);
        // The old owner is paused past its session timeout; the group gives partition 0 to a new instance.
        CompilerPipeline owner = newPipeline(registry);
        owner.assign(List.of(p0));
        ConsumerRecord<String, byte[]> r1 = rule(create("r1", "10.0.0.11/32", 80));
        owner.process(List.of(r1));
        owner.maybeCheckpoint(true);
        String ownersCheckpoint = store.checkpoints.get(0);
        var view = new java.util.HashMap<>(store.views.get("n1"));
        int published = producer.history().size();

        // The old owner wakes up with a batch it had polled: nothing of it may land.
        ConsumerRecord<String, byte[]> r2 = rule(create("r2", "10.0.0.11/32", 81));
        assertThatThrownBy(() -> old.process(List.of(r1, r2))).isInstanceOf(FencedException.class).hasMessageContaining("[0]");
        assertThat(store.views.get("n1")).isEqualTo(view);
        assertThat(store.changes).doesNotContainKey("c-r2");
        assertThat(producer.history()).hasSize(published);
        assertThat(old.owned()).isEmpty();
        assertThat(old.needsClaim(0)).as("only the group gives a fenced partition back").isFalse();
        old.maybeCheckpoint(true);
        assertThat(store.checkpoints.get(0)).as("the new owner's checkpoint stands").isEqualTo(ownersCheckpoint);
        old.process(List.of(r2)); // records of a fenced partition are ignored
        assertThat(store.changes).doesNotContainKey("c-r2");
        assertThat(meters.counter("egress.compiler.fenced").count()).isEqualTo(1);

        // Assigned again by the group: claimed anew, restored from the owner's checkpoint.
        owner.maybeCheckpoint(true);
        assertThat(old.assign(List.of(p0))).containsEntry(p0, r1.offset() + 1);
        old.process(List.of(r2));
        assertThat(store.changes).containsKey("c-r2");
        assertThatThrownBy(() -> owner.process(List.of(rule(create("r3", "10.0.0.11/32", 82))))).isInstanceOf(FencedException.class);
    }

    @Test
    void aCheckpointRefusedAtRevocationDoesNotLand() {
        TopicPartition p0 = new TopicPartition(Topics.NETWORK_EVENTS, 0);
        // Its interval not elapsed: it holds state not checkpointed yet when it is paused.
        CompilerPipeline old = newPipeline(registry, Long.MAX_VALUE);
        old.assign(List.of(p0));
        old.process(setup());
        CompilerPipeline owner = newPipeline(registry);
        owner.assign(List.of(p0));
        owner.process(List.of(rule(create("r1", "10.0.0.11/32", 80))));
        owner.maybeCheckpoint(true);
        long ownersOffset = checkpointOffset();
        // The old owner's revocation (its partitions were lost while it was paused) writes a checkpoint at an older offset.
        assertThatThrownBy(() -> old.maybeCheckpoint(true)).isInstanceOf(FencedException.class);
        assertThat(checkpointOffset()).isEqualTo(ownersOffset);
    }
}
