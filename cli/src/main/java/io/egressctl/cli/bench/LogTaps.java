package io.egressctl.cli.bench;

import io.egressctl.events.EnforcementReport;
import io.egressctl.events.EnforcementStatus;
import io.egressctl.events.HostUpdate;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.Topics;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What the three logs of one change say, read back after a scenario (never while it is measured, so the
 * reading costs the measured changes nothing): the rule event's record timestamp, each host update's
 * (host, partition, offset, timestamp, bytes) and each host's first report naming the change. Record
 * timestamps are the producers' (CreateTime, milliseconds): rule-service's, the compiler's, the agent's.
 */
final class LogTaps implements AutoCloseable {

    /** A host update as the log holds it; {@code changeIds} empty for a tombstone or another change. */
    record Update(String hostId, int partition, long offset, long timestamp, int bytes, List<String> changeIds) {
    }

    /** Where each topic ends now: the start of a scenario's range. */
    record Mark(Map<TopicPartition, Long> ends) {
    }

    /** What one range of the logs holds, by change id. */
    static final class Range {
        final Map<String, Long> eventTime = new HashMap<>();
        final List<Update> updates = new ArrayList<>();
        final Map<String, List<Update>> updatesByChange = new HashMap<>();
        /** change id → host → the first report's timestamp. */
        final Map<String, Map<String, Long>> acks = new HashMap<>();
    }

    private static final List<String> TOPICS = List.of(Topics.NETWORK_EVENTS, Topics.HOST_UPDATES, Topics.ENFORCEMENT_REPORTS);

    private final KafkaConsumer<String, byte[]> consumer;
    private final SchemaRegistryClient registry;
    private final List<TopicPartition> partitions = new ArrayList<>();

    LogTaps(String bootstrap, String registryUrl) {
        Map<String, Object> c = io.egressctl.schemas.serde.KafkaDefaults.client(bootstrap, ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false,
                ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 5000, ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, false);
        this.consumer = new KafkaConsumer<>(c, new StringDeserializer(), new ByteArrayDeserializer());
        this.registry = new HttpSchemaRegistryClient(registryUrl);
        for (String t : TOPICS) {
            for (PartitionInfo p : consumer.partitionsFor(t, Duration.ofSeconds(10))) {
                partitions.add(new TopicPartition(t, p.partition()));
            }
        }
        consumer.assign(partitions);
    }

    /** Partitions of egress.host-updates. */
    int hostUpdatePartitions() {
        return (int) partitions.stream().filter(p -> p.topic().equals(Topics.HOST_UPDATES)).count();
    }

    Mark mark() {
        return new Mark(consumer.endOffsets(partitions, Duration.ofSeconds(10)));
    }

    /** Reads every topic from {@code from} to {@code to}. */
    Range read(Mark from, Mark to) {
        AvroDeserializer<SpecificRecord> events = AvroDeserializer.ofTypes(registry, RuleEvent.class, WorkloadEvent.class);
        AvroDeserializer<HostUpdate> updates = new AvroDeserializer<>(registry, HostUpdate.class);
        AvroDeserializer<EnforcementReport> reports = new AvroDeserializer<>(registry, EnforcementReport.class);
        Range range = new Range();
        Map<TopicPartition, Long> left = new HashMap<>();
        for (TopicPartition tp : partitions) {
            long start = from.ends().get(tp);
            long end = to.ends().get(tp);
            consumer.seek(tp, start);
            if (end > start) {
                left.put(tp, end);
            }
        }
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (!left.isEmpty()) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("reading the logs back took over 120 s; left: " + left.keySet());
            }
            for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                Long end = left.get(tp);
                if (end == null || r.offset() >= end) {
                    continue;
                }
                if (r.offset() == end - 1) {
                    left.remove(tp);
                }
                if (r.value() == null) {
                    continue;
                }
                switch (r.topic()) {
                    case Topics.NETWORK_EVENTS -> {
                        if (events.deserialize(r.topic(), r.value()) instanceof RuleEvent e) {
                            range.eventTime.put(e.getEventId(), r.timestamp());
                        }
                    }
                    case Topics.HOST_UPDATES -> {
                        HostUpdate u = updates.deserialize(r.topic(), r.value());
                        List<String> ids = u.getChangeIds() == null ? List.of() : List.copyOf(u.getChangeIds());
                        Update up = new Update(r.key(), r.partition(), r.offset(), r.timestamp(),
                                Math.max(0, r.serializedKeySize()) + r.serializedValueSize(), ids);
                        range.updates.add(up);
                        ids.forEach(id -> range.updatesByChange.computeIfAbsent(id, k -> new ArrayList<>()).add(up));
                    }
                    default -> {
                        EnforcementReport rep = reports.deserialize(r.topic(), r.value());
                        if (rep.getStatus() == EnforcementStatus.ACK && rep.getChangeIds() != null) {
                            for (String id : rep.getChangeIds()) {
                                range.acks.computeIfAbsent(id, k -> new HashMap<>()).putIfAbsent(r.key(), r.timestamp());
                            }
                        }
                    }
                }
            }
        }
        return range;
    }

    @Override
    public void close() {
        consumer.close();
    }
}
