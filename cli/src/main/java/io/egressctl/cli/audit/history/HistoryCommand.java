package io.egressctl.cli.audit.history;

import io.egressctl.cli.audit.AuditContext;
import io.egressctl.cli.audit.Json;
import io.egressctl.cli.audit.Options;
import io.egressctl.cli.audit.Table;
import io.egressctl.cli.audit.Times;
import io.egressctl.cli.audit.UsageException;
import io.egressctl.cli.audit.log.AvroJson;
import io.egressctl.cli.audit.log.EventDecoder;
import io.egressctl.cli.audit.log.LogReader;
import io.egressctl.cli.audit.replay.Replay;
import io.egressctl.cli.audit.replay.ViewItems;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.Network;
import io.egressctl.core.state.Decision;
import io.egressctl.core.state.NetworkState;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.RuleSpec;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.serde.Topics;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.SerializationException;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code audit history}: every change of a network, a VM, a rule or a tenant between two times, with time,
 * actor, tenant, request id, operation and the rule before and after. Filters combine (all must hold).
 *
 * <ul>
 *   <li>{@code --network N} reads only the partition N's key maps to;</li>
 *   <li>{@code --vm V} first reads the VM's placements from the log's workload events (networks and addresses
 *       it ever had), then lists those placements and every rule change of its networks whose rule covers
 *       it (by VM id, by a source CIDR holding one of its addresses, or as a whole-network rule), and the
 *       network changes;</li>
 *   <li>{@code --rule R}: events whose rule before or after is R; {@code --tenant T}: events by tenant T.</li>
 * </ul>
 * Times are the events' log timestamps, both bounds inclusive; the range is found with the time index.
 * With {@code --decisions} the partitions are replayed from their start so every event also shows how
 * the log decided it (accepted, or rejected with the reason code).
 */
public final class HistoryCommand {

    /** The options of this command besides the common ones. */
    public static final Set<String> OPTIONS = Set.of("network", "vm", "rule", "tenant", "from", "to", "decisions");

    /** One line of history. */
    record Row(long logTime, String topic, int partition, long offset, Instant time, String networkId, String operation,
               String ruleId, String actor, String tenantId, String requestId, String before, String after,
               String outcome, Map<String, Object> json) {
    }

    private final AuditContext ctx;
    private final String network;
    private final String vm;
    private final String rule;
    private final String tenant;
    private final Instant from;
    private final Instant to;
    private final boolean decisions;
    /** VM id filter: network -> addresses the VM had there. */
    private final Map<String, Set<String>> vmAddresses = new LinkedHashMap<>();
    /** Decodes without folding (no --decisions). */
    private EventDecoder<SpecificRecord> eventDecoder;

    /** Reads the command's options; a {@code UsageException} names one it cannot use. */
    public HistoryCommand(AuditContext ctx, Options o) {
        this.ctx = ctx;
        this.network = o.get("network");
        this.vm = o.get("vm");
        this.rule = o.get("rule");
        this.tenant = o.get("tenant");
        this.from = ctx.time(o, "from");
        this.to = ctx.time(o, "to");
        this.decisions = o.has("decisions");
        if (from != null && to != null && to.isBefore(from)) {
            throw new UsageException("--to " + Times.format(to) + " is before --from " + Times.format(from));
        }
    }

    /** Runs the command and prints its result; returns the exit code, 0. */
    public int run() {
        List<Row> rows = new ArrayList<>();
        Replay replay = new Replay(ctx.registry());
        try (KafkaConsumer<byte[], byte[]> consumer = ctx.consumer()) {
            LogReader log = new LogReader(consumer);
            if (vm != null) {
                readPlacements(log, rows);
                if (vmAddresses.isEmpty()) {
                    print(rows);
                    return 0;
                }
            }
            List<TopicPartition> tps = partitions(log, ctx.eventTopic());
            List<LogReader.Range> ranges = log.ranges(tps, decisions ? null : from, to);
            long total = ranges.stream().mapToLong(LogReader.Range::size).sum();
            log.read(ranges, r -> onRecord(r, replay, rows), ctx.progress("history ", total));
        }
        rows.sort(Comparator.comparingLong(Row::logTime).thenComparing(Row::topic).thenComparingInt(Row::partition)
                .thenComparingLong(Row::offset));
        print(rows);
        return 0;
    }

    private List<TopicPartition> partitions(LogReader log, String topic) {
        List<TopicPartition> all = log.partitions(topic);
        Set<String> networks = new LinkedHashSet<>();
        if (network != null) {
            networks.add(network);
        } else if (vm != null) {
            networks.addAll(vmAddresses.keySet());
        }
        if (networks.isEmpty()) {
            return all;
        }
        Set<TopicPartition> out = new LinkedHashSet<>();
        for (String n : networks) {
            out.add(all.get(Topics.partitionFor(n, all.size())));
        }
        return out.stream().sorted(Comparator.comparingInt(TopicPartition::partition)).toList();
    }

    private boolean inRange(long ts) {
        return (from == null || ts >= from.toEpochMilli()) && (to == null || ts <= to.toEpochMilli());
    }

    private void readPlacements(LogReader log, List<Row> rows) {
        List<TopicPartition> tps = partitions(log, ctx.eventTopic());
        List<LogReader.Range> ranges = log.ranges(tps, null, to);
        EventDecoder<SpecificRecord> decoder = EventDecoder.networkEvents(ctx.registry());
        log.read(ranges, r -> {
            WorkloadEvent e;
            try {
                if (!(decoder.decode(r.topic(), r.value()) instanceof WorkloadEvent w)) {
                    return;
                }
                e = w;
            } catch (SerializationException ex) {
                return;
            }
            if (!vm.equals(e.getVmId()) || (network != null && !network.equals(e.getNetworkId()))) {
                return;
            }
            Set<String> ips = vmAddresses.computeIfAbsent(e.getNetworkId(), k -> new LinkedHashSet<>());
            if (e.getIpv4() != null) {
                ips.add(e.getIpv4());
            }
            if (e.getIpv6() != null) {
                ips.add(e.getIpv6());
            }
            if (inRange(r.timestamp()) && (tenant == null || tenant.equals(e.getSource().getTenantId())) && rule == null) {
                rows.add(workloadRow(r, e));
            }
        }, ctx.progress("placements ", ranges.stream().mapToLong(LogReader.Range::size).sum()));
    }

    private Row workloadRow(ConsumerRecord<byte[], byte[]> r, WorkloadEvent e) {
        String where = ViewItems.placementText(e.getHostId(), e.getInterfaceName(), e.getMac(), e.getIpv4(), e.getIpv6());
        String before = e.getPreviousHostId() == null ? null : e.getPreviousHostId();
        boolean leaves = e.getOperation().name().equals("VM_REMOVED") || e.getOperation().name().equals("HOST_DRAINED");
        Map<String, Object> json = base(r, e.getSource().getEventTime());
        json.putAll(AvroJson.of(e));
        json.remove("source");
        json.putAll(AvroJson.of(e.getSource()));
        json.put("time", Times.format(e.getSource().getEventTime()));
        return new Row(r.timestamp(), r.topic(), r.partition(), r.offset(), e.getSource().getEventTime(), e.getNetworkId(),
                e.getOperation().name() + " " + e.getVmId(), null, e.getSource().getActor(), e.getSource().getTenantId(),
                e.getSource().getRequestId(), leaves ? where : before, leaves ? null : where, null, json);
    }

    private static Map<String, Object> base(ConsumerRecord<byte[], byte[]> r, Instant time) {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("time", Times.format(time));
        json.put("logTime", Times.format(r.timestamp()));
        json.put("topic", r.topic());
        json.put("partition", r.partition());
        json.put("offset", r.offset());
        return json;
    }

    /**
     * One record of the log: folded (with --decisions, placements too, as the compiler folds them) and,
     * for a network or rule event that passes the filters, listed. Placements are listed by the --vm pass.
     */
    private void onRecord(ConsumerRecord<byte[], byte[]> r, Replay replay, List<Row> rows) {
        String key = r.key() == null ? null : new String(r.key(), StandardCharsets.UTF_8);
        if (network != null && !network.equals(key)) {
            return;
        }
        boolean wanted = inRange(r.timestamp());
        if (!decisions && !wanted) {
            return;
        }
        Network before = null;
        Replay.Step step;
        if (decisions) {
            NetworkState s = key == null ? null : replay.state(key);
            before = s == null ? null : s.network();
            step = replay.event(r.topic(), r.key(), r.value(), r.offset());
        } else {
            step = decodeOnly(r);
        }
        if (!wanted || step.event() instanceof WorkloadEvent) {
            return;
        }
        RuleEvent e = (RuleEvent) step.event();
        if (e == null) {
            if (vm == null && rule == null && tenant == null) {
                Map<String, Object> json = base(r, null);
                json.put("networkId", key);
                json.put("outcome", "skipped");
                json.put("reason", step.skipped());
                rows.add(new Row(r.timestamp(), r.topic(), r.partition(), r.offset(), null, key, "(undecodable)", null, null,
                        null, null, null, null, decisions ? "skipped: undecodable" : null, json));
            }
            return;
        }
        if (!matches(e)) {
            return;
        }
        rows.add(ruleRow(r, e, step, before));
    }

    private Replay.Step decodeOnly(ConsumerRecord<byte[], byte[]> r) {
        try {
            SpecificRecord e = decoder().decode(r.topic(), r.value());
            return new Replay.Step(e, null, null, e == null ? "undecodable: null value" : null);
        } catch (SerializationException ex) {
            return new Replay.Step(null, null, null, "undecodable: " + ex.getMessage());
        }
    }

    private EventDecoder<SpecificRecord> decoder() {
        if (eventDecoder == null) {
            eventDecoder = EventDecoder.networkEvents(ctx.registry());
        }
        return eventDecoder;
    }

    private boolean matches(RuleEvent e) {
        if (network != null && !network.equals(e.getNetworkId())) {
            return false;
        }
        if (tenant != null && !tenant.equals(e.getSource().getTenantId())
                && !(e.getNetwork() != null && tenant.equals(e.getNetwork().getTenantId()))) {
            return false;
        }
        if (rule != null && !(isRule(e.getRuleBefore(), rule) || isRule(e.getRuleAfter(), rule))) {
            return false;
        }
        if (vm != null) {
            Set<String> ips = vmAddresses.get(e.getNetworkId());
            if (ips == null) {
                return false;
            }
            boolean networkOp = e.getRuleBefore() == null && e.getRuleAfter() == null;
            return networkOp || covers(e.getRuleBefore(), ips) || covers(e.getRuleAfter(), ips);
        }
        return true;
    }

    private static boolean isRule(RuleSpec r, String id) {
        return r != null && id.equals(r.getRuleId());
    }

    /** True when the rule applies to the VM: by id, by a source CIDR holding one of its addresses, or to all VMs. */
    boolean covers(RuleSpec r, Set<String> ips) {
        if (r == null) {
            return false;
        }
        if (r.getSourceCidrs().isEmpty() && r.getSourceVmIds().isEmpty()) {
            return true;
        }
        if (r.getSourceVmIds().contains(vm)) {
            return true;
        }
        for (String c : r.getSourceCidrs()) {
            for (String ip : ips) {
                try {
                    Cidr cidr = Cidr.parse(c);
                    Cidr addr = Cidr.parse(ip);
                    if (cidr.isIpv4() == addr.isIpv4() && cidr.contains(addr)) {
                        return true;
                    }
                } catch (IllegalArgumentException ex) {
                    // an unparsable CIDR covers nothing
                }
            }
        }
        return false;
    }

    private Row ruleRow(ConsumerRecord<byte[], byte[]> r, RuleEvent e, Replay.Step step, Network networkBefore) {
        String op = e.getOperation().name();
        boolean networkOp = op.startsWith("NETWORK_");
        String before;
        String after;
        if (networkOp) {
            before = decisions && !op.equals("NETWORK_CREATED") ? RuleText.of(networkBefore) : null;
            after = op.equals("NETWORK_DELETED") ? null : RuleText.of(e.getNetwork());
        } else {
            before = RuleText.of(e.getRuleBefore());
            after = RuleText.of(e.getRuleAfter());
        }
        String ruleId = e.getRuleAfter() != null ? e.getRuleAfter().getRuleId()
                : e.getRuleBefore() != null ? e.getRuleBefore().getRuleId() : null;
        String outcome = decisions ? outcome(step) : null;
        Map<String, Object> json = base(r, e.getSource().getEventTime());
        json.put("networkId", e.getNetworkId());
        json.put("operation", op);
        json.put("eventId", e.getEventId());
        json.put("ruleId", ruleId);
        json.put("actor", e.getSource().getActor());
        json.put("tenantId", e.getSource().getTenantId());
        json.put("requestId", e.getSource().getRequestId());
        json.put("service", e.getSource().getService());
        json.put("expectedVersion", e.getExpectedVersion());
        json.put("idempotencyKey", e.getIdempotencyKey());
        if (networkOp) {
            json.put("networkBefore", decisions && networkBefore != null ? AvroJson.of(EventMapper.toAvro(networkBefore)) : null);
            json.put("network", AvroJson.of(e.getNetwork()));
        } else {
            json.put("ruleBefore", AvroJson.of(e.getRuleBefore()));
            json.put("ruleAfter", AvroJson.of(e.getRuleAfter()));
        }
        if (decisions) {
            json.put("outcome", step.decision() == null ? "skipped" : step.decision().outcome().name().toLowerCase());
            json.put("code", step.decision() == null ? null : step.decision().code());
            json.put("reason", step.decision() == null ? step.skipped() : step.decision().reason());
        }
        return new Row(r.timestamp(), r.topic(), r.partition(), r.offset(), e.getSource().getEventTime(), e.getNetworkId(), op,
                ruleId, e.getSource().getActor(), e.getSource().getTenantId(), e.getSource().getRequestId(), before, after,
                outcome, json);
    }

    static String outcome(Replay.Step step) {
        Decision d = step.decision();
        if (d == null) {
            String why = step.skipped() == null ? "" : step.skipped();
            int colon = why.indexOf(':');
            return "skipped " + (colon > 0 ? why.substring(0, colon) : why);
        }
        return switch (d.outcome()) {
            case ACCEPTED -> "accepted";
            case REJECTED -> "rejected " + d.code();
            case ALREADY_APPLIED -> "already applied";
        };
    }

    private void print(List<Row> rows) {
        if (ctx.json()) {
            Map<String, Object> doc = new LinkedHashMap<>();
            Map<String, Object> filter = new LinkedHashMap<>();
            filter.put("network", network);
            filter.put("vm", vm);
            filter.put("rule", rule);
            filter.put("tenant", tenant);
            doc.put("filter", filter);
            doc.put("from", from == null ? null : Times.format(from));
            doc.put("to", to == null ? null : Times.format(to));
            doc.put("count", rows.size());
            doc.put("events", rows.stream().map(Row::json).toList());
            ctx.out().print(Json.pretty(doc));
            return;
        }
        Table t = decisions
                ? new Table("time", "position", "network", "operation", "rule", "actor", "tenant", "request", "before", "after", "outcome")
                : new Table("time", "position", "network", "operation", "rule", "actor", "tenant", "request", "before", "after");
        for (Row r : rows) {
            String pos = "p" + r.partition() + "@" + r.offset();
            if (decisions) {
                t.row(Times.format(r.time()), pos, r.networkId(), r.operation(), r.ruleId(), r.actor(), r.tenantId(),
                        r.requestId(), r.before(), r.after(), r.outcome() == null ? "-" : r.outcome());
            } else {
                t.row(Times.format(r.time()), pos, r.networkId(), r.operation(), r.ruleId(), r.actor(), r.tenantId(),
                        r.requestId(), r.before(), r.after());
            }
        }
        ctx.out().print(t.render());
        ctx.out().println(rows.size() + (rows.size() == 1 ? " event" : " events"));
    }
}
