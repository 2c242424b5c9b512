package io.egressctl.compiler.compile;

import io.egressctl.compiler.heal.RedisLossWatch;
import io.egressctl.compiler.snapshot.SnapshotStore;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.Topics;
import io.micrometer.core.instrument.MeterRegistry;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.kafka.listener.ConsumerSeekAware;
import org.springframework.stereotype.Component;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The Spring Kafka adapter of the {@link CompilerPipeline}: one listener thread, batches of the
 * network events log, offsets committed only after a batch's effects are durable (stored, published
 * and acknowledged, dead letters acknowledged). On assignment a partition is claimed (its fencing
 * epoch bumped) and resumes from its checkpoint, or from the beginning of the log when it has none.
 * A batch that fails is retried by {@link NeverSkipErrorHandler}, never skipped.
 */
@Component
class CompilerListener implements ConsumerSeekAware {

    private static final Logger log = LoggerFactory.getLogger(CompilerListener.class);
    static final String ID = "compiler";

    private final CompilerPipeline pipeline;
    private final PipelineHealth health;
    private final RedisLossWatch redisLoss;

    CompilerListener(SnapshotStore store, Producer<String, SpecificRecord> avroProducer, Producer<String, byte[]> dltProducer,
                     SchemaRegistryClient registry, MeterRegistry meters, PipelineHealth health, RedisLossWatch redisLoss,
                     @Value("${egress.compiler.checkpoint-interval-ms:5000}") long checkpointIntervalMillis,
                     io.egressctl.core.state.Limits limits, io.egressctl.schemas.integrity.UpdateMac mac,
                     @Value("${egress.compiler.delta-updates:true}") boolean deltaUpdates,
                     @Value("${egress.compiler.delta-min-rules:16}") int deltaMinRules) {
        // Deltas on the log (docs/architecture.md, "Host updates as rule-keyed deltas"); off: every update whole.
        this.pipeline = new CompilerPipeline(store, avroProducer, dltProducer, CompilerPipeline.eventDeserializer(registry),
                CompilerPipeline.TopicNames.defaults(), checkpointIntervalMillis, meters, limits, mac).deltaUpdates(deltaUpdates)
                .deltaMinRules(deltaMinRules);
        this.health = health;
        this.redisLoss = redisLoss;
        redisLoss.attach(this::healAfterRedisLoss);
    }

    /** Redis lost what this instance wrote: write it again (no batch runs meanwhile); see {@link RedisLossWatch}. */
    synchronized void healAfterRedisLoss() {
        redisLoss.heal(pipeline.ownedPositions(), pipeline.ownedNetworks(), pipeline.ownedEpochs());
    }

    /**
     * Not a failure: partitions whose claim failed at assignment were claimed now and their positions
     * set (as were the other partitions of the batch, back to its first record); the next poll reads them.
     */
    static final class ReadAgain extends RuntimeException {
        private static final long serialVersionUID = 1L;

        ReadAgain(Set<TopicPartition> claimed) {
            super("claimed " + claimed + " late; reading again from their checkpoints", null, false, false);
        }
    }

    @Override
    public synchronized void onPartitionsAssigned(Map<TopicPartition, Long> assignments, ConsumerSeekCallback callback) {
        health.succeeded(ID);
        Map<TopicPartition, Long> seeks;
        try {
            seeks = pipeline.assign(assignments.keySet());
        } catch (RuntimeException e) {
            // Redis cannot be reached: the partitions stay unclaimed, and the first batch that holds a record
            // of one claims it (retried until Redis answers) and seeks it to its checkpoint.
            log.warn("cannot claim {} now ({}); claiming them when their first records arrive", assignments.keySet(), e.toString());
            return;
        }
        redisLoss.assigned(assignments.keySet(), seeks);
        for (TopicPartition tp : assignments.keySet()) {
            Long offset = seeks.get(tp);
            if (offset == null) {
                callback.seekToBeginning(List.of(tp));
            } else {
                callback.seek(tp.topic(), tp.partition(), offset);
            }
        }
        log.info("assigned {}", assignments.keySet());
    }

    @Override
    public synchronized void onPartitionsRevoked(Collection<TopicPartition> partitions) {
        try {
            pipeline.maybeCheckpoint(true);
        } catch (RuntimeException e) {
            // Fenced (the partitions were lost to another instance) or Redis is down: the next owner starts
            // from the previous checkpoint, which only costs a longer replay.
            log.warn("no checkpoint on revocation of {}: {}", partitions, e.getMessage());
        }
        pipeline.revoke(partitions);
        redisLoss.revoked(partitions);
        log.info("revoked {}; stopped writing for their networks", partitions);
    }

    @KafkaListener(id = ID, topics = Topics.NETWORK_EVENTS,
            groupId = "${egress.compiler.group:egress-compiler}", batch = "true")
    synchronized void onBatch(List<ConsumerRecord<String, byte[]>> records, Consumer<?, ?> consumer) {
        Map<TopicPartition, Long> firsts = new LinkedHashMap<>();
        Set<TopicPartition> unclaimed = new LinkedHashSet<>();
        for (ConsumerRecord<String, byte[]> r : records) {
            TopicPartition tp = new TopicPartition(r.topic(), r.partition());
            firsts.putIfAbsent(tp, r.offset());
            if (pipeline.needsClaim(r.partition())) {
                unclaimed.add(tp);
            }
        }
        if (!unclaimed.isEmpty()) {
            Map<TopicPartition, Long> seeks = pipeline.assign(unclaimed);
            redisLoss.assigned(unclaimed, seeks);
            firsts.forEach((tp, first) -> {
                if (!unclaimed.contains(tp)) {
                    consumer.seek(tp, first);
                } else if (seeks.get(tp) == null) {
                    consumer.seekToBeginning(List.of(tp));
                } else {
                    consumer.seek(tp, seeks.get(tp));
                }
            });
            throw new ReadAgain(unclaimed);
        }
        try {
            pipeline.process(records);
        } catch (RuntimeException e) {
            redisLoss.writeFailed();
            throw e;
        }
        health.succeeded(ID);
        redisLoss.afterBatch(records);
    }
}
