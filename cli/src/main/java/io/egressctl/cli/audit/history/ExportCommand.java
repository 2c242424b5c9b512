package io.egressctl.cli.audit.history;

import io.egressctl.cli.audit.AuditContext;
import io.egressctl.cli.audit.Json;
import io.egressctl.cli.audit.Options;
import io.egressctl.cli.audit.Progress;
import io.egressctl.cli.audit.Table;
import io.egressctl.cli.audit.Times;
import io.egressctl.cli.audit.UsageException;
import io.egressctl.cli.audit.log.AvroJson;
import io.egressctl.cli.audit.log.EventDecoder;
import io.egressctl.cli.audit.log.LogReader;
import io.egressctl.events.EnforcementReport;
import io.egressctl.events.HostUpdate;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.schemas.serde.Topics;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.SerializationException;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code audit export --from T1 --to T2 --file F [--topic network-events]}: the events of a topic stamped
 * between T1 and T2 (both inclusive, range found with the time index) as JSON Lines for a SIEM, partition
 * by partition in offset order, each line with topic, partition, offset, timestamp, key and the decoded
 * value (an undecodable value is kept as base64 with the reason). The sha256 of the file is printed and
 * written to {@code F.sha256}.
 */
public final class ExportCommand {

    /** The options of this command besides the common ones. */
    public static final Set<String> OPTIONS = Set.of("from", "to", "file", "topic");

    private final AuditContext ctx;
    private final Instant from;
    private final Instant to;
    private final Path file;
    private final String topic;
    /** The value types the topic carries (network events: two). */
    private final List<Class<? extends SpecificRecord>> types;

    /** Reads the command's options; a {@code UsageException} names one it cannot use. */
    public ExportCommand(AuditContext ctx, Options o) {
        this.ctx = ctx;
        this.from = ctx.time(o, "from");
        this.to = ctx.time(o, "to");
        this.file = Path.of(o.require("file"));
        if (from != null && to != null && to.isBefore(from)) {
            throw new UsageException("--to " + Times.format(to) + " is before --from " + Times.format(from));
        }
        String t = o.get("topic", ctx.eventTopic());
        this.topic = switch (t) {
            case "network-events" -> ctx.eventTopic();
            case "enforcement-reports" -> ctx.reportTopic();
            case "host-updates" -> Topics.HOST_UPDATES;
            default -> t;
        };
        this.types = typesOf(topic);
    }

    static List<Class<? extends SpecificRecord>> typesOf(String topic) {
        if (topic.endsWith("network-events")) {
            return List.of(RuleEvent.class, WorkloadEvent.class);
        }
        // 0.1's topics, for exporting an old log before it is migrated
        if (topic.endsWith("rule-events")) {
            return List.of(RuleEvent.class);
        }
        if (topic.endsWith("workload-events")) {
            return List.of(WorkloadEvent.class);
        }
        if (topic.endsWith("enforcement-reports")) {
            return List.of(EnforcementReport.class);
        }
        if (topic.endsWith("host-updates")) {
            return List.of(HostUpdate.class);
        }
        throw new UsageException("--topic " + topic + ": cannot tell its value type (names end with network-events,"
                + " enforcement-reports or host-updates)");
    }

    /** Runs the command and prints its result; returns the exit code, 0. */
    public int run() {
        ExportWriter writer;
        try (KafkaConsumer<byte[], byte[]> consumer = ctx.consumer()) {
            LogReader log = new LogReader(consumer);
            List<TopicPartition> tps = log.partitions(topic);
            List<LogReader.Range> ranges = log.ranges(tps, from, to);
            long total = ranges.stream().mapToLong(LogReader.Range::size).sum();
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            @SuppressWarnings("unchecked")
            EventDecoder<SpecificRecord> decoder = EventDecoder.ofTypes(ctx.registry(), types.toArray(new Class[0]));
            long fromMs = from == null ? Long.MIN_VALUE : from.toEpochMilli();
            long toMs = to == null ? Long.MAX_VALUE : to.toEpochMilli();
            Progress progress = ctx.progress("export ", total);
            try (OutputStream os = Files.newOutputStream(file); ExportWriter w = new ExportWriter(os)) {
                writer = w;
                for (LogReader.Range range : ranges) {
                    log.read(List.of(range), r -> {
                        if (r.timestamp() < fromMs || r.timestamp() > toMs) {
                            return;
                        }
                        String key = r.key() == null ? null : new String(r.key(), StandardCharsets.UTF_8);
                        Object value;
                        String error = null;
                        String signed = null;
                        try {
                            SpecificRecord v = decoder.decode(r.topic(), r.value());
                            value = v == null ? null : AvroJson.value(v);
                            signed = v == null ? null : ctx.signatures().mark(v);
                        } catch (SerializationException e) {
                            value = r.value() == null ? null : Base64.getEncoder().encodeToString(r.value());
                            error = e.getMessage();
                        }
                        w.write(r.topic(), r.partition(), r.offset(), r.timestamp(), key, value, error, signed);
                    }, progress.continuing());
                }
                progress.done();
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
        }
        Path sum = ExportWriter.writeChecksum(file, writer.sha256());
        ctx.out().print(ctx.json() ? json(writer, sum) : text(writer, sum));
        return 0;
    }

    private String text(ExportWriter w, Path sum) {
        StringBuilder sb = new StringBuilder();
        sb.append("exported ").append(w.lines()).append(w.lines() == 1 ? " event" : " events").append(" of ").append(topic)
                .append(" to ").append(file).append('\n');
        sb.append("range: ").append(from == null ? "log start" : Times.format(from)).append(" .. ")
                .append(to == null ? "log end" : Times.format(to)).append('\n');
        if (!w.spans().isEmpty()) {
            Table t = new Table("partition", "first offset", "last offset", "events");
            w.spans().values().forEach(s -> t.row(s.partition(), s.firstOffset(), s.lastOffset(), s.count()));
            sb.append(t.render());
        }
        sb.append("sha256: ").append(w.sha256()).append(" (").append(sum).append(")\n");
        return sb.toString();
    }

    private String json(ExportWriter w, Path sum) {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("file", file.toString());
        doc.put("topic", topic);
        doc.put("from", from == null ? null : Times.format(from));
        doc.put("to", to == null ? null : Times.format(to));
        doc.put("events", w.lines());
        doc.put("partitions", List.copyOf(w.spans().values()));
        doc.put("sha256", w.sha256());
        doc.put("checksumFile", sum.toString());
        return Json.pretty(doc);
    }
}
