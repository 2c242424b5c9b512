package io.egressctl.cli.audit.verify;

import io.egressctl.cli.audit.AuditContext;
import io.egressctl.cli.audit.Json;
import io.egressctl.cli.audit.Options;
import io.egressctl.cli.audit.Signatures;
import io.egressctl.cli.audit.Table;
import io.egressctl.cli.audit.Times;
import io.egressctl.cli.audit.UsageException;
import io.egressctl.cli.audit.log.AvroJson;
import io.egressctl.cli.audit.log.EventDecoder;
import io.egressctl.cli.audit.log.LogReader;
import io.egressctl.events.AppliedFragment;
import io.egressctl.events.EnforcementReport;
import io.egressctl.schemas.serde.Topics;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.SerializationException;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * {@code audit enforcement --host H [--from T1] [--at T]}: which versions the host acknowledged when, from
 * its partition of the enforcement reports (up to the first report stamped after T, found with the time
 * index), and what the host held at T (or now): the last report's status, versions and applied hash.
 *
 * <p>With the stack's update keys ({@code EGRESS_UPDATE_KEYS}, as {@code ./egressctl env} exports them)
 * each report's signature is checked as the compiler checks it: {@code signed} is {@code yes},
 * {@code no} (unsigned) or {@code FORGED} (a MAC that does not verify), and only signed reports count
 * for what the host held; the others are listed, and counted apart. Without keys, {@code -}: nothing is
 * checked and every report counts.
 */
public final class EnforcementCommand {

    /** The options of this command besides the common ones. */
    public static final Set<String> OPTIONS = Set.of("host", "at", "from");

    /** One report as listed; {@code signed}: yes, no, FORGED, or - (not checked: no keys). */
    record Report(long logTime, int partition, long offset, EnforcementReport report, String signed) {

        Report(long logTime, int partition, long offset, EnforcementReport report) {
            this(logTime, partition, offset, report, "-");
        }

        /** Whether the compiler takes it into the host's applied state (signed, or nothing checked). */
        boolean counts() {
            return Signatures.counts(signed);
        }
    }

    private final AuditContext ctx;
    private final String host;
    private final Instant at;
    private final Instant from;

    /** Reads the command's options; a {@code UsageException} names one it cannot use. */
    public EnforcementCommand(AuditContext ctx, Options o) {
        this.ctx = ctx;
        this.host = o.require("host");
        this.at = ctx.time(o, "at");
        this.from = ctx.time(o, "from");
        if (from != null && at != null && at.isBefore(from)) {
            throw new UsageException("--at " + Times.format(at) + " is before --from " + Times.format(from));
        }
    }

    /** Runs the command and prints its result; returns the exit code, 0. */
    public int run() {
        List<Report> reports = new ArrayList<>();
        long[] undecodable = {0};
        try (KafkaConsumer<byte[], byte[]> consumer = ctx.consumer()) {
            LogReader log = new LogReader(consumer);
            List<TopicPartition> all = log.partitions(ctx.reportTopic());
            TopicPartition tp = all.get(Topics.partitionFor(host, all.size()));
            List<LogReader.Range> ranges = log.ranges(List.of(tp), from, at);
            byte[] key = host.getBytes(StandardCharsets.UTF_8);
            EventDecoder<EnforcementReport> decoder = new EventDecoder<>(ctx.registry(), EnforcementReport.class);
            log.read(ranges, r -> {
                if (r.key() == null || !Arrays.equals(r.key(), key)) {
                    return;
                }
                try {
                    EnforcementReport e = decoder.decode(r.topic(), r.value());
                    if (e != null && host.equals(e.getHostId())) {
                        reports.add(new Report(r.timestamp(), r.partition(), r.offset(), e, ctx.signatures().mark(e)));
                    }
                } catch (SerializationException ex) {
                    undecodable[0]++;
                }
            }, ctx.progress("reports ", ranges.get(0).size()));
        }
        ctx.out().print(ctx.json() ? json(host, at, reports, undecodable[0]) : table(host, at, reports, undecodable[0]));
        return 0;
    }

    static String versions(EnforcementReport r) {
        TreeMap<String, Long> v = new TreeMap<>();
        for (AppliedFragment f : r.getFragments()) {
            v.put(f.getNetworkId(), f.getVersion());
        }
        StringBuilder sb = new StringBuilder();
        v.forEach((n, x) -> sb.append(sb.length() == 0 ? "" : ",").append(n).append('=').append(x));
        return sb.toString();
    }

    static String shortHash(String h) {
        return h == null ? null : h.length() > 16 ? h.substring(0, 16) : h;
    }

    static String table(String host, Instant at, List<Report> reports, long undecodable) {
        StringBuilder sb = new StringBuilder();
        sb.append("host: ").append(host).append('\n');
        if (at != null) {
            sb.append("at: ").append(Times.format(at)).append('\n');
        }
        if (!reports.isEmpty()) {
            Table t = new Table("reported", "position", "status", "trigger", "versions", "hash", "changes", "error", "signed");
            for (Report r : reports) {
                EnforcementReport e = r.report();
                t.row(Times.format(e.getReportedAt()), "p" + r.partition() + "@" + r.offset(), e.getStatus(), e.getTrigger(),
                        versions(e), shortHash(e.getAppliedHash()), e.getChangeIds().size(), e.getError(), r.signed());
            }
            sb.append(t.render());
        }
        sb.append(reports.size()).append(reports.size() == 1 ? " report" : " reports");
        if (undecodable > 0) {
            sb.append(" (").append(undecodable).append(" undecodable skipped)");
        }
        long notCounted = reports.stream().filter(r -> !r.counts()).count();
        if (notCounted > 0) {
            sb.append("; ").append(notCounted).append(" not signed with the update keys: listed, not counted");
        }
        sb.append('\n');
        sb.append(at == null ? "latest: " : "at " + Times.format(at) + ": ").append(summary(reports)).append('\n');
        return sb.toString();
    }

    /** What the host held after the last report: the kernel keeps the last good state on a NACK. */
    static String summary(List<Report> all) {
        List<Report> reports = all.stream().filter(Report::counts).toList();
        if (reports.isEmpty()) {
            return all.isEmpty() ? "no report" : "no signed report";
        }
        EnforcementReport last = reports.get(reports.size() - 1).report();
        EnforcementReport lastAck = null;
        for (Report r : reports) {
            if (r.report().getStatus().name().equals("ACK")) {
                lastAck = r.report();
            }
        }
        StringBuilder sb = new StringBuilder();
        sb.append(last.getStatus()).append(" reported ").append(Times.format(last.getReportedAt()));
        if (last.getStatus().name().equals("NACK")) {
            sb.append(" (").append(last.getError()).append(")");
        }
        sb.append("; holds ").append(versions(last).isEmpty() ? "no fragment" : versions(last));
        sb.append("; applied hash ").append(last.getAppliedHash());
        if (lastAck != last) {
            sb.append("; last ACK ").append(lastAck == null ? "none" : Times.format(lastAck.getReportedAt()));
        }
        return sb.toString();
    }

    static String json(String host, Instant at, List<Report> reports, long undecodable) {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("hostId", host);
        doc.put("at", at == null ? null : Times.format(at));
        doc.put("count", reports.size());
        doc.put("undecodable", undecodable);
        List<Object> list = new ArrayList<>();
        for (Report r : reports) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("logTime", Times.format(r.logTime()));
            m.put("partition", r.partition());
            m.put("offset", r.offset());
            m.putAll(AvroJson.of(r.report()));
            m.put("signed", r.signed());
            list.add(m);
        }
        doc.put("reports", list);
        List<Report> counted = reports.stream().filter(Report::counts).toList();
        doc.put("notCounted", reports.size() - counted.size());
        if (!counted.isEmpty()) {
            EnforcementReport last = counted.get(counted.size() - 1).report();
            Map<String, Object> held = new LinkedHashMap<>();
            held.put("status", last.getStatus().name());
            held.put("reportedAt", Times.format(last.getReportedAt()));
            held.put("appliedHash", last.getAppliedHash());
            Map<String, Long> v = new TreeMap<>();
            last.getFragments().forEach(f -> v.put(f.getNetworkId(), f.getVersion()));
            held.put("versions", v);
            doc.put("held", held);
        } else {
            doc.put("held", null);
        }
        return Json.pretty(doc);
    }
}
