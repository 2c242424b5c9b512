package io.egressctl.cli.audit.history;

import io.egressctl.cli.audit.AuditContext;
import io.egressctl.cli.audit.Json;
import io.egressctl.cli.audit.Options;
import io.egressctl.cli.audit.Table;
import io.egressctl.cli.audit.Times;
import io.egressctl.cli.audit.log.AvroJson;
import io.egressctl.cli.audit.log.LogReader;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.state.NetworkState;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.view.RuleView;
import org.apache.kafka.clients.consumer.KafkaConsumer;

import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code audit state --network N [--network N2 ...] --at T}: the exact definition and rule set of a network
 * at time T, rebuilt by replaying its partition of the rule events with the core's {@link NetworkState} from
 * the start of the partition up to the first record stamped after T (found with the time index). Several
 * networks are rebuilt in one pass; their JSON is then an array.
 */
public final class StateCommand {

    /** The options of this command besides the common ones. */
    public static final Set<String> OPTIONS = Set.of("network", "at");

    /** Where a replay stopped and what it met on the way. */
    record Replayed(String topic, int partition, long startOffset, long endOffset, long events, long rejected, long skipped) {
    }

    private final AuditContext ctx;
    private final List<String> networks;
    private final Instant at;

    /** Reads the command's options; a {@code UsageException} names one it cannot use. */
    public StateCommand(AuditContext ctx, Options o) {
        this.ctx = ctx;
        o.require("network");
        this.networks = o.all("network").stream().distinct().toList();
        this.at = o.has("at") ? ctx.time(o, "at") : ctx.now();
    }

    /** Runs the command and prints its result; returns the exit code, 0. */
    public int run() {
        try (KafkaConsumer<byte[], byte[]> consumer = ctx.consumer()) {
            NetworkReplay replay = new NetworkReplay(ctx, new LogReader(consumer), networks);
            replay.upTo(at);
            if (ctx.json() && networks.size() > 1) {
                List<Object> docs = new ArrayList<>();
                for (String n : networks) {
                    docs.add(Json.PRETTY.readTree(json(n, at, replay.state(n), replay.replayed(n))));
                }
                ctx.out().print(Json.pretty(docs));
                return 0;
            }
            for (int i = 0; i < networks.size(); i++) {
                String n = networks.get(i);
                if (i > 0) {
                    ctx.out().println();
                }
                ctx.out().print(ctx.json() ? json(n, at, replay.state(n), replay.replayed(n)) : table(n, at, replay.state(n), replay.replayed(n)));
            }
        }
        return 0;
    }

    static String table(String networkId, Instant at, NetworkState s, Replayed r) {
        StringBuilder sb = new StringBuilder();
        Network n = s.network();
        sb.append("network: ").append(networkId).append('\n');
        sb.append("at: ").append(Times.format(at)).append('\n');
        sb.append("definition: ").append(n == null ? "(none: the network does not exist at this time)" : RuleText.of(n)).append('\n');
        sb.append("config version: ").append(s.configVersion()).append('\n');
        sb.append("replayed: ").append(describe(r)).append('\n');
        sb.append("rules: ").append(s.rules().size()).append('\n');
        if (n != null && !s.rules().isEmpty()) {
            sb.append(rulesTable(n, s.rules().values()).render());
        }
        return sb.toString();
    }

    static String describe(Replayed r) {
        return r.events() + (r.events() == 1 ? " event" : " events") + " of " + r.topic() + " partition " + r.partition()
                + " offsets " + r.startOffset() + ".." + r.endOffset() + " (" + r.rejected() + " rejected, " + r.skipped()
                + " skipped)";
    }

    static Table rulesTable(Network n, Iterable<EgressRule> rules) {
        Table t = new Table("rule", "action", "match", "description");
        for (EgressRule rule : rules) {
            t.row(rule.ruleId(), rule.effectiveAction(n.defaultPolicy()).name().toLowerCase(), RuleText.of(rule),
                    rule.description());
        }
        return t;
    }

    static String json(String networkId, Instant at, NetworkState s, Replayed r) {
        Map<String, Object> doc = new LinkedHashMap<>();
        Network n = s.network();
        doc.put("networkId", networkId);
        doc.put("at", Times.format(at));
        doc.put("exists", n != null);
        doc.put("network", n == null ? null : AvroJson.of(EventMapper.toAvro(n)));
        doc.put("configVersion", s.configVersion());
        doc.put("replayed", replayedJson(r));
        List<RuleView> rules = new ArrayList<>();
        if (n != null) {
            s.rules().values().forEach(rule -> rules.add(RuleView.of(rule, n.defaultPolicy())));
        }
        doc.put("rules", rules);
        return Json.pretty(doc);
    }

    static Map<String, Object> replayedJson(Replayed r) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("topic", r.topic());
        m.put("partition", r.partition());
        m.put("startOffset", r.startOffset());
        m.put("endOffset", r.endOffset());
        m.put("events", r.events());
        m.put("rejected", r.rejected());
        m.put("skipped", r.skipped());
        return m;
    }
}
