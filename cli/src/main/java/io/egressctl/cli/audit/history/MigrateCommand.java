package io.egressctl.cli.audit.history;

import io.egressctl.cli.audit.AuditContext;
import io.egressctl.cli.audit.Options;
import io.egressctl.cli.audit.log.LogReader;
import io.egressctl.schemas.serde.KafkaDefaults;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

/**
 * {@code audit migrate-0.1 [--dry-run] [--from-prefix P]}: copies a 0.1 history (network and rule events
 * on {@code egress.rule-events}, placements on {@code egress.workload-events}) into the one log 0.2 reads,
 * {@code egress.network-events}. Both old topics are read to the end offsets noted at start; the events of
 * each network are merged by log time, each topic's own order kept (a rule event first on a tie), and
 * appended with their keys, values (schema ids stay valid) and timestamps unchanged, and a header
 * {@code egress.migrated.from} naming where each came from. Refuses to write into a non-empty target.
 * Holds the history in memory: for histories of millions of events, give the JVM the heap it needs.
 */
public final class MigrateCommand {

    /** The options of this command besides the common ones. */
    public static final Set<String> OPTIONS = Set.of("dry-run", "from-prefix");

    /** One record of the old log. */
    record Old(String topic, int partition, long offset, long timestamp, String key, byte[] value) {
    }

    private final AuditContext ctx;
    private final boolean dryRun;
    private final String ruleTopic;
    private final String workloadTopic;

    /** Reads the command's options; a {@code UsageException} names one it cannot use. */
    public MigrateCommand(AuditContext ctx, Options o) {
        this.ctx = ctx;
        this.dryRun = o.has("dry-run");
        String prefix = o.get("from-prefix", "egress.");
        this.ruleTopic = prefix + "rule-events";
        this.workloadTopic = prefix + "workload-events";
    }

    /** Runs the command and prints its result; returns the exit code, 0. */
    public int run() {
        Map<String, List<Old>> rules = new LinkedHashMap<>();
        Map<String, List<Old>> workloads = new LinkedHashMap<>();
        long targetRecords;
        try (KafkaConsumer<byte[], byte[]> consumer = ctx.consumer()) {
            LogReader log = new LogReader(consumer);
            List<TopicPartition> target;
            try {
                target = log.partitions(ctx.eventTopic());
            } catch (IllegalStateException e) {
                throw new IllegalStateException(e.getMessage() + ": start the 0.2 compiler-service first, it creates the topic"
                        + " (with the partitions and settings the services check)", e);
            }
            Map<TopicPartition, Long> begin = log.beginning(target);
            Map<TopicPartition, Long> end = log.end(target);
            targetRecords = target.stream().mapToLong(tp -> end.get(tp) - begin.get(tp)).sum();
            read(log, ruleTopic, rules);
            read(log, workloadTopic, workloads);
        }
        List<Old> merged = merge(rules, workloads);
        long ruleCount = rules.values().stream().mapToLong(List::size).sum();
        long workloadCount = workloads.values().stream().mapToLong(List::size).sum();
        ctx.out().printf(Locale.ROOT, "read %,d events of %s and %,d of %s (%,d networks)%n", ruleCount, ruleTopic, workloadCount,
                workloadTopic, merged.stream().map(Old::key).distinct().count());
        if (targetRecords > 0) {
            throw new IllegalStateException(ctx.eventTopic() + " already holds " + targetRecords + " records: nothing copied"
                    + " (migrate into an empty topic, once)");
        }
        if (dryRun) {
            ctx.out().printf(Locale.ROOT, "dry run: would append %,d events to %s%n", merged.size(), ctx.eventTopic());
            return 0;
        }
        try (Producer<String, byte[]> producer = new KafkaProducer<>(producerConfig(), new StringSerializer(), new ByteArraySerializer())) {
            List<Future<?>> sent = new ArrayList<>(merged.size());
            for (Old r : merged) {
                RecordHeaders headers = new RecordHeaders();
                headers.add("egress.migrated.from", (r.topic() + "-" + r.partition() + "@" + r.offset()).getBytes(StandardCharsets.UTF_8));
                sent.add(producer.send(new ProducerRecord<>(ctx.eventTopic(), null, r.timestamp(), r.key(), r.value(), headers)));
            }
            producer.flush();
            for (Future<?> f : sent) {
                f.get();
            }
        } catch (ExecutionException e) {
            throw new IllegalStateException("appending to " + ctx.eventTopic() + " failed: " + e.getCause(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
        ctx.out().printf(Locale.ROOT, "appended %,d events to %s; next: start the 0.2 compiler, ./egressctl rebuild, restart the agents"
                + " (docs/operations.md, \"Upgrading from 0.1\")%n", merged.size(), ctx.eventTopic());
        return 0;
    }

    private Map<String, Object> producerConfig() {
        Map<String, Object> p = new LinkedHashMap<>(KafkaDefaults.orderedProducer(ctx.bootstrap(), "egressctl-migrate"));
        ctx.clientProperties().forEach((k, v) -> {
            if (k.startsWith("ssl.") || k.startsWith("sasl.") || k.equals("security.protocol")) {
                p.put(k, v);
            }
        });
        return p;
    }

    private void read(LogReader log, String topic, Map<String, List<Old>> byNetwork) {
        List<LogReader.Range> ranges = log.ranges(log.partitions(topic), null, null);
        long total = ranges.stream().mapToLong(LogReader.Range::size).sum();
        log.read(ranges, r -> add(byNetwork, r), ctx.progress("read " + topic + " ", total));
    }

    private static void add(Map<String, List<Old>> byNetwork, ConsumerRecord<byte[], byte[]> r) {
        String key = r.key() == null ? "" : new String(r.key(), StandardCharsets.UTF_8);
        byNetwork.computeIfAbsent(key, k -> new ArrayList<>())
                .add(new Old(r.topic(), r.partition(), r.offset(), r.timestamp(), r.key() == null ? null : key, r.value()));
    }

    /**
     * Per network (key), the rule events and the placements merged by timestamp, each list's own order
     * kept (a skewed timestamp never reorders one topic's events), a rule event first on a tie. Networks
     * follow one another in key order; their relative order does not matter, as each is its own log.
     */
    static List<Old> merge(Map<String, List<Old>> rules, Map<String, List<Old>> workloads) {
        Map<String, Boolean> keys = new TreeMap<>();
        rules.keySet().forEach(k -> keys.put(k, true));
        workloads.keySet().forEach(k -> keys.put(k, true));
        List<Old> out = new ArrayList<>();
        for (String key : keys.keySet()) {
            Deque<Old> a = new ArrayDeque<>(rules.getOrDefault(key, List.of()));
            Deque<Old> b = new ArrayDeque<>(workloads.getOrDefault(key, List.of()));
            while (!a.isEmpty() || !b.isEmpty()) {
                boolean takeRule = b.isEmpty() || (!a.isEmpty() && a.peekFirst().timestamp() <= b.peekFirst().timestamp());
                out.add(takeRule ? a.pollFirst() : b.pollFirst());
            }
        }
        return out;
    }
}
