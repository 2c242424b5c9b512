package io.egressctl.cli.audit.log;

import io.egressctl.cli.audit.Progress;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads offset ranges of topic partitions with a manually assigned consumer (no group, no commits), and
 * finds range bounds with the broker's indexes: log start and end offsets, and the time index
 * ({@code offsetsForTimes}) for a bound in time, so a time bound never costs a scan.
 */
public final class LogReader {

    /** Offsets [start, end) of one partition. */
    public record Range(TopicPartition partition, long start, long end) {

        public long size() {
            return Math.max(0, end - start);
        }
    }

    /** Receives records in offset order per partition (partitions interleave). */
    public interface Handler {
        void accept(ConsumerRecord<byte[], byte[]> record);
    }

    /** Receives the records of one partition from one poll, in offset order, already cut at the range end. */
    public interface BatchHandler {
        void accept(TopicPartition partition, List<ConsumerRecord<byte[], byte[]>> records);
    }

    private static final Duration POLL = Duration.ofMillis(200);
    private static final Duration STALL = Duration.ofSeconds(60);

    private final KafkaConsumer<byte[], byte[]> consumer;

    public LogReader(KafkaConsumer<byte[], byte[]> consumer) {
        this.consumer = consumer;
    }

    /** The topic's partitions in order. @throws IllegalStateException when the topic does not exist */
    public List<TopicPartition> partitions(String topic) {
        List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(30));
        if (infos == null || infos.isEmpty()) {
            throw new IllegalStateException("topic " + topic + " does not exist (or this client may not describe it)");
        }
        List<TopicPartition> out = new ArrayList<>();
        for (PartitionInfo i : infos) {
            out.add(new TopicPartition(topic, i.partition()));
        }
        out.sort(Comparator.comparingInt(TopicPartition::partition));
        return out;
    }

    public Map<TopicPartition, Long> beginning(List<TopicPartition> tps) {
        return new HashMap<>(consumer.beginningOffsets(tps, Duration.ofSeconds(30)));
    }

    public Map<TopicPartition, Long> end(List<TopicPartition> tps) {
        return new HashMap<>(consumer.endOffsets(tps, Duration.ofSeconds(30)));
    }

    /**
     * The first offset of each partition whose record timestamp is at or after {@code t}, from the time
     * index; where no record is that late, the partition's value from {@code otherwise}.
     */
    public Map<TopicPartition, Long> offsetsAt(List<TopicPartition> tps, Instant t, Map<TopicPartition, Long> otherwise) {
        Map<TopicPartition, Long> query = new HashMap<>();
        for (TopicPartition tp : tps) {
            query.put(tp, Math.max(0, t.toEpochMilli()));
        }
        Map<TopicPartition, OffsetAndTimestamp> found = consumer.offsetsForTimes(query, Duration.ofSeconds(30));
        Map<TopicPartition, Long> out = new HashMap<>();
        for (TopicPartition tp : tps) {
            OffsetAndTimestamp o = found.get(tp);
            out.put(tp, o != null ? o.offset() : otherwise.get(tp));
        }
        return out;
    }

    /**
     * Ranges of {@code tps} between time bounds: from the first record at or after {@code from} (log start
     * when null) to just before the first record after {@code to} (the current end when null). The end
     * offsets are noted once, so records written while reading are not read.
     */
    public List<Range> ranges(List<TopicPartition> tps, Instant from, Instant to) {
        Map<TopicPartition, Long> end = end(tps);
        Map<TopicPartition, Long> start = from == null ? beginning(tps) : offsetsAt(tps, from, end);
        Map<TopicPartition, Long> stop = to == null ? end : offsetsAt(tps, to.plusMillis(1), end);
        List<Range> out = new ArrayList<>();
        for (TopicPartition tp : tps) {
            long s = start.get(tp);
            out.add(new Range(tp, s, Math.max(s, stop.get(tp))));
        }
        return out;
    }

    /** Reads every range to its end, handing each record to {@code handler}; returns the number read. */
    public long read(List<Range> ranges, Handler handler, Progress progress) {
        return readBatches(ranges, (tp, records) -> {
            for (ConsumerRecord<byte[], byte[]> r : records) {
                handler.accept(r);
            }
        }, progress);
    }

    /** Reads every range to its end, handing the records batch by batch to {@code handler}; returns the number read. */
    public long readBatches(List<Range> ranges, BatchHandler handler, Progress progress) {
        Map<TopicPartition, Long> ends = new LinkedHashMap<>();
        for (Range r : ranges) {
            if (r.size() > 0) {
                ends.put(r.partition(), r.end());
            }
        }
        if (ends.isEmpty()) {
            return 0;
        }
        consumer.assign(ends.keySet());
        for (Range r : ranges) {
            if (r.size() > 0) {
                consumer.seek(r.partition(), r.start());
            }
        }
        Set<TopicPartition> active = new HashSet<>(ends.keySet());
        long count = 0;
        long lastProgress = System.nanoTime();
        try {
            while (!active.isEmpty()) {
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(POLL);
                if (!batch.isEmpty()) {
                    lastProgress = System.nanoTime();
                }
                for (TopicPartition tp : batch.partitions()) {
                    long end = ends.get(tp);
                    List<ConsumerRecord<byte[], byte[]>> records = batch.records(tp);
                    int n = records.size();
                    while (n > 0 && records.get(n - 1).offset() >= end) {
                        n--;
                    }
                    if (n == 0) {
                        continue;
                    }
                    handler.accept(tp, n == records.size() ? records : records.subList(0, n));
                    count += n;
                    progress.advance(n, tp.topic() + " p" + tp.partition() + "@" + records.get(n - 1).offset());
                }
                List<TopicPartition> finished = new ArrayList<>();
                for (TopicPartition tp : active) {
                    if (consumer.position(tp) >= ends.get(tp)) {
                        finished.add(tp);
                    }
                }
                if (!finished.isEmpty()) {
                    finished.forEach(active::remove);
                    consumer.pause(finished);
                }
                if (!active.isEmpty() && System.nanoTime() - lastProgress > STALL.toNanos()) {
                    throw new IllegalStateException("no records for " + STALL.toSeconds() + " s while reading " + active
                            + " (positions short of their noted end offsets)");
                }
            }
        } finally {
            progress.done();
            consumer.unsubscribe();
        }
        return count;
    }
}
