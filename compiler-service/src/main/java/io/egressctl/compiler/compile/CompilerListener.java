package io.egressctl.compiler.compile;

import io.egressctl.compiler.heal.RedisLossWatch;
import io.egressctl.compiler.snapshot.SnapshotStore;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.Topics;
import io.micrometer.core.instrument.MeterRegistry;
import org.apache.avro.specific.SpecificRecord;
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
import java.util.List;
import java.util.Map;

/**
 * The Spring Kafka adapter of the {@link CompilerPipeline}: one listener thread, batches of the
 * network events log, offsets committed after each batch was stored and published. On assignment a
 * partition resumes from its checkpoint, or from the beginning of the log when it has none.
 */
@Component
class CompilerListener implements ConsumerSeekAware {

    private static final Logger log = LoggerFactory.getLogger(CompilerListener.class);

    private final CompilerPipeline pipeline;
    private final RedisLossWatch redisLoss;

    CompilerListener(SnapshotStore store, Producer<String, SpecificRecord> avroProducer, Producer<String, byte[]> dltProducer,
                     SchemaRegistryClient registry, MeterRegistry meters, RedisLossWatch redisLoss,
                     @Value("${egress.compiler.checkpoint-interval-ms:5000}") long checkpointIntervalMillis) {
        this.pipeline = new CompilerPipeline(store, avroProducer, dltProducer, CompilerPipeline.eventDeserializer(registry),
                CompilerPipeline.TopicNames.defaults(), checkpointIntervalMillis, meters);
        this.redisLoss = redisLoss;
        redisLoss.attach(this::healAfterRedisLoss);
    }

    /** Redis lost what this instance wrote: write it again (no batch runs meanwhile); see {@link RedisLossWatch}. */
    synchronized void healAfterRedisLoss() {
        redisLoss.heal(pipeline.ownedPositions(), pipeline.ownedNetworks());
    }

    @Override
    public synchronized void onPartitionsAssigned(Map<TopicPartition, Long> assignments, ConsumerSeekCallback callback) {
        Map<TopicPartition, Long> seeks = pipeline.assign(assignments.keySet());
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
        pipeline.maybeCheckpoint(true);
        pipeline.revoke(partitions);
        redisLoss.revoked(partitions);
        log.info("revoked {}; stopped writing for their networks", partitions);
    }

    @KafkaListener(id = "compiler", topics = Topics.NETWORK_EVENTS,
            groupId = "${egress.compiler.group:egress-compiler}", batch = "true")
    synchronized void onBatch(List<ConsumerRecord<String, byte[]>> records) {
        try {
            pipeline.process(records);
        } catch (RuntimeException e) {
            redisLoss.writeFailed();
            throw e;
        }
        redisLoss.afterBatch(records);
    }
}
