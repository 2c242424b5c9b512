package io.egressctl.cli.audit.history;

import io.egressctl.cli.audit.AuditContext;
import io.egressctl.cli.audit.Json;
import io.egressctl.cli.audit.Options;
import io.egressctl.cli.audit.Table;
import io.egressctl.cli.audit.Times;
import io.egressctl.cli.audit.UsageException;
import io.egressctl.cli.audit.log.AvroJson;
import io.egressctl.cli.audit.log.LogReader;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.state.NetworkState;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.view.RuleView;
import org.apache.kafka.clients.consumer.KafkaConsumer;

import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * {@code audit diff --network N --from T1 --to T2}: rules added, removed and changed (and changes of the
 * network definition) between the state at T1 and the state at T2, both rebuilt in one replay of the
 * network's partition.
 */
public final class DiffCommand {

    /** The options of this command besides the common ones. */
    public static final Set<String> OPTIONS = Set.of("network", "from", "to");

    private final AuditContext ctx;
    private final String network;
    private final Instant from;
    private final Instant to;

    /** Reads the command's options; a {@code UsageException} names one it cannot use. */
    public DiffCommand(AuditContext ctx, Options o) {
        this.ctx = ctx;
        this.network = o.require("network");
        this.from = Times.parse("from", o.require("from"), ctx.now());
        this.to = o.has("to") ? ctx.time(o, "to") : ctx.now();
        if (to.isBefore(from)) {
            throw new UsageException("--to " + Times.format(to) + " is before --from " + Times.format(from));
        }
    }

    /** Runs the command and prints its result; returns the exit code, 0. */
    public int run() {
        try (KafkaConsumer<byte[], byte[]> consumer = ctx.consumer()) {
            NetworkReplay replay = new NetworkReplay(ctx, new LogReader(consumer), List.of(network));
            replay.upTo(from);
            NetworkState s = replay.state(network);
            Network n1 = s.network();
            Map<String, EgressRule> r1 = new TreeMap<>(s.rules());
            long v1 = s.configVersion();
            replay.upTo(to);
            Network n2 = replay.state(network).network();
            Map<String, EgressRule> r2 = new TreeMap<>(replay.state(network).rules());
            long v2 = replay.state(network).configVersion();
            List<RuleDiff.Change> changes = RuleDiff.between(n1, r1, n2, r2);
            ctx.out().print(ctx.json() ? json(network, from, v1, to, v2, n1, n2, changes) : table(network, from, v1, to, v2, changes));
        }
        return 0;
    }

    static String table(String networkId, Instant from, long v1, Instant to, long v2, List<RuleDiff.Change> changes) {
        StringBuilder sb = new StringBuilder();
        sb.append("network: ").append(networkId).append('\n');
        sb.append("from: ").append(Times.format(from)).append(" (config version ").append(v1).append(")\n");
        sb.append("to: ").append(Times.format(to)).append(" (config version ").append(v2).append(")\n");
        if (!changes.isEmpty()) {
            Table t = new Table("change", "rule", "fields", "before", "after");
            for (RuleDiff.Change c : changes) {
                t.row(c.kind().label(), c.ruleId(), String.join(",", c.fields()), text(c.before()), text(c.after()));
            }
            sb.append(t.render());
        }
        sb.append(changes.size()).append(changes.size() == 1 ? " change" : " changes").append('\n');
        return sb.toString();
    }

    private static String text(Object o) {
        if (o instanceof EgressRule r) {
            return RuleText.of(r);
        }
        if (o instanceof Network n) {
            return RuleText.of(n);
        }
        return null;
    }

    static String json(String networkId, Instant from, long v1, Instant to, long v2, Network n1, Network n2,
                       List<RuleDiff.Change> changes) {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("networkId", networkId);
        doc.put("from", Times.format(from));
        doc.put("fromConfigVersion", v1);
        doc.put("to", Times.format(to));
        doc.put("toConfigVersion", v2);
        doc.put("changes", changes.stream().map(c -> {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("change", c.kind().name().toLowerCase());
            m.put("ruleId", c.ruleId());
            m.put("fields", c.fields());
            m.put("before", view(c.before(), n1));
            m.put("after", view(c.after(), n2));
            return m;
        }).toList());
        return Json.pretty(doc);
    }

    private static Object view(Object o, Network n) {
        if (o instanceof EgressRule r) {
            return n == null ? AvroJson.of(EventMapper.toAvro(r)) : RuleView.of(r, n.defaultPolicy());
        }
        if (o instanceof Network net) {
            return AvroJson.of(EventMapper.toAvro(net));
        }
        return null;
    }
}
