package io.egressctl.cli.audit.replay;

import io.egressctl.cli.audit.AuditContext;
import io.egressctl.cli.audit.Json;
import io.egressctl.cli.audit.Options;
import io.egressctl.cli.audit.Table;
import io.egressctl.cli.audit.Times;
import io.egressctl.cli.audit.log.LogReader;
import io.egressctl.core.state.NetworkState;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.schemas.serde.Topics;
import io.egressctl.schemas.view.NetworkView;
import io.egressctl.schemas.view.RedisKeys;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import redis.clients.jedis.UnifiedJedis;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * {@code audit replay-check [--network N ...]}: rebuilds every network from the log alone (the network
 * events log from the start of every partition up to the end offsets noted at start, folded like the
 * compiler folds them) and compares the result with the compiler's current state in Redis (the
 * {@code egress:network:{N}} view: definition, config version, rules, VMs, and the view version, which
 * is the position of the network's last decided event). Each
 * difference is listed with the first event where the two part: the event after which the log no longer
 * holds what Redis holds (Redis lags or was left behind), or, when the log never held Redis's value (an
 * edit by hand), the event that first set the item in the log. Exit code 1 when anything differs.
 */
public final class ReplayCheckCommand {

    /** The options of this command besides the common ones. */
    public static final Set<String> OPTIONS = Set.of("network", "threads");

    /** An event of the log, as shown next to a difference. */
    record EventRef(String topic, int partition, long offset, String operation, String eventId, Instant time, String actor,
                    String requestId) {
    }

    /** One differing item of one network; {@code log}/{@code redis} null when the side lacks it. */
    record Difference(String networkId, String item, String log, String redis, EventRef partedAt) {
    }

    private final AuditContext ctx;
    private final Set<String> only;
    /** Networks with a decided event: the compiler wrote a view for them. */
    private final Set<String> decided = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private int partitionCount;
    private final java.util.concurrent.atomic.LongAdder ruleEvents = new java.util.concurrent.atomic.LongAdder();
    private final java.util.concurrent.atomic.LongAdder workloadEvents = new java.util.concurrent.atomic.LongAdder();
    private final int threads;

    /** Reads the command's options; a {@code UsageException} names one it cannot use. */
    public ReplayCheckCommand(AuditContext ctx, Options o) {
        this.ctx = ctx;
        this.only = new TreeSet<>(o.all("network"));
        this.threads = o.intValue("threads", Runtime.getRuntime().availableProcessors());
    }

    /** Runs the command and prints its result; returns the exit code: 0 when the log and Redis agree, 1 when anything differs. */
    public int run() {
        List<Difference> differences = new ArrayList<>();
        int checked;
        Replay replay = new Replay(ctx.registry());
        try (KafkaConsumer<byte[], byte[]> consumer = ctx.consumer()) {
            LogReader log = new LogReader(consumer);
            List<LogReader.Range> ranges = ranges(log, ctx.eventTopic());
            long total = ranges.stream().mapToLong(LogReader.Range::size).sum();
            // Every network is folded by one worker (records go by key), so the states need no sharing.
            List<Replay> parts = new ArrayList<>();
            Set<String> filter = only.isEmpty() ? null : only;
            try (ParallelFold fold = new ParallelFold(total < 50_000 ? 1 : threads, i -> {
                Replay part = new Replay(ctx.registry());
                synchronized (parts) {
                    parts.add(part);
                }
                return r -> fold(part, r, filter, true);
            })) {
                log.readBatches(ranges, fold, ctx.progress("replay ", total));
                fold.finish();
            }
            parts.forEach(replay::absorb);

            UnifiedJedis redis = ctx.redis();
            Set<String> networks = new TreeSet<>(only);
            if (only.isEmpty()) {
                networks.addAll(decided);
                networks.addAll(redisNetworks(redis));
            }
            checked = networks.size();
            Map<String, Map<String, ViewItems.Item>> redisItemsOf = new LinkedHashMap<>();
            Map<String, List<String>> itemsToTrace = new LinkedHashMap<>();
            for (String n : networks) {
                compare(n, replay.state(n), redis.hgetAll(RedisKeys.network(n)), differences, redisItemsOf, itemsToTrace);
            }
            if (!itemsToTrace.isEmpty()) {
                Map<String, EventRef> partings = trace(log, ranges, itemsToTrace, redisItemsOf);
                differences.replaceAll(d -> d.partedAt() == null && partings.containsKey(d.networkId() + "\n" + d.item())
                        ? new Difference(d.networkId(), d.item(), d.log(), d.redis(), partings.get(d.networkId() + "\n" + d.item()))
                        : d);
            }
        }
        long differing = differences.stream().map(Difference::networkId).distinct().count();
        String summary = "checked " + checked + (checked == 1 ? " network" : " networks") + " against Redis: "
                + (checked - differing) + " match, " + differing + " differ; replayed " + ruleEvents.sum() + " rule events and "
                + workloadEvents.sum() + " workload events (" + replay.skipped() + " skipped as undecodable or invalid)";
        ctx.out().print(ctx.json() ? json(differences, checked, differing, summary) : table(differences, summary));
        return differences.isEmpty() ? 0 : 1;
    }

    private List<LogReader.Range> ranges(LogReader log, String topic) {
        List<TopicPartition> tps = log.partitions(topic);
        partitionCount = tps.size();
        if (!only.isEmpty()) {
            Set<TopicPartition> wanted = new LinkedHashSet<>();
            for (String n : only) {
                wanted.add(tps.get(Topics.partitionFor(n, tps.size())));
            }
            tps = new ArrayList<>(wanted);
        }
        return log.ranges(tps, null, null);
    }

    /** Folds one record; returns the step, or null when the record is not of a network of interest. */
    private Replay.Step fold(Replay replay, ConsumerRecord<byte[], byte[]> r, Set<String> networks, boolean count) {
        String key = r.key() == null ? null : new String(r.key(), StandardCharsets.UTF_8);
        if (networks != null && !networks.contains(key)) {
            return null;
        }
        Replay.Step step = replay.event(r.topic(), r.key(), r.value(), r.offset());
        if (count) {
            if (step.event() instanceof WorkloadEvent) {
                workloadEvents.increment();
            } else if (step.event() instanceof RuleEvent) {
                ruleEvents.increment();
            }
            if (step.decision() != null) {
                decided.add(key);
            }
        }
        return step;
    }

    /**
     * The networks with a view in Redis, from the compiler's indexes (live views, and every view hash
     * written, deleted networks' too), never a SCAN of the keyspace.
     */
    private static Set<String> redisNetworks(UnifiedJedis redis) {
        Set<String> out = new TreeSet<>(redis.smembers(RedisKeys.networks()));
        out.addAll(redis.smembers(RedisKeys.views()));
        return out;
    }

    private void compare(String n, NetworkState s, Map<String, String> hash, List<Difference> out,
                         Map<String, Map<String, ViewItems.Item>> redisItemsOf, Map<String, List<String>> itemsToTrace) {
        boolean logHasView = decided.contains(n);
        boolean redisHasView = hash != null && !hash.isEmpty();
        if (!logHasView && !redisHasView) {
            return;
        }
        NetworkView view = null;
        if (redisHasView) {
            try {
                view = NetworkView.fromHash(hash);
            } catch (RuntimeException e) {
                out.add(new Difference(n, "view", "-", "unreadable JSON: " + e.getMessage(), null));
                return;
            }
        }
        SortedMap<String, ViewItems.Item> logItems = s == null ? new TreeMap<>() : ViewItems.of(s);
        SortedMap<String, ViewItems.Item> redisItems = ViewItems.of(view);
        List<String> keys = ViewItems.differing(logItems, redisItems);
        for (String k : keys) {
            ViewItems.Item a = logItems.get(k);
            ViewItems.Item b = redisItems.get(k);
            out.add(new Difference(n, k, a == null ? null : a.display(), b == null ? null : b.display(), null));
        }
        if (!keys.isEmpty() && logHasView) {
            redisItemsOf.put(n, redisItems);
            itemsToTrace.put(n, keys);
        }
        // The compiler writes the view for every decided event (accepted or rejected) with the network's
        // version, its position in the log: the last write has the replayed version, whatever the batching.
        long lo = s == null ? 0 : s.version();
        long hi = lo;
        String rv = redisHasView ? hash.get("version") : null;
        Long redisVersion = null;
        try {
            redisVersion = rv == null ? null : Long.parseLong(rv.trim());
        } catch (NumberFormatException e) {
            // shown as is
        }
        if (redisVersion == null || redisVersion < lo || redisVersion > hi) {
            out.add(new Difference(n, "version", lo == hi ? Long.toString(lo) : lo + ".." + hi,
                    redisHasView ? String.valueOf(rv) : null, null));
        }
    }

    /** Second pass over the partitions of the differing networks only: where each item parts. */
    private Map<String, EventRef> trace(LogReader log, List<LogReader.Range> pass1, Map<String, List<String>> items,
                                        Map<String, Map<String, ViewItems.Item>> redisItemsOf) {
        Map<String, Tracker> trackers = new HashMap<>();
        for (Map.Entry<String, List<String>> e : items.entrySet()) {
            for (String k : e.getValue()) {
                ViewItems.Item redisValue = redisItemsOf.get(e.getKey()).get(k);
                trackers.put(e.getKey() + "\n" + k, new Tracker(redisValue == null ? null : redisValue.canonical()));
            }
        }
        List<LogReader.Range> ranges = new ArrayList<>();
        for (LogReader.Range r : pass1) {
            int count = partitionCount;
            if (items.keySet().stream().anyMatch(n -> Topics.partitionFor(n, count) == r.partition().partition())) {
                ranges.add(r);
            }
        }
        Replay replay = new Replay(ctx.registry());
        long total = ranges.stream().mapToLong(LogReader.Range::size).sum();
        log.read(ranges, r -> {
            Replay.Step step = fold(replay, r, items.keySet(), false);
            if (step == null || !step.accepted()) {
                return;
            }
            String n = new String(r.key(), StandardCharsets.UTF_8);
            NetworkState s = replay.state(n);
            EventRef ref = null;
            for (String k : items.get(n)) {
                ViewItems.Item cur = ViewItems.item(s, k);
                if (ref == null) {
                    ref = ref(r, step);
                }
                trackers.get(n + "\n" + k).see(cur == null ? null : cur.canonical(), ref);
            }
        }, ctx.progress("trace ", total));
        Map<String, EventRef> out = new HashMap<>();
        trackers.forEach((k, t) -> {
            EventRef p = t.parting();
            if (p != null) {
                out.put(k, p);
            }
        });
        return out;
    }

    private static EventRef ref(ConsumerRecord<byte[], byte[]> r, Replay.Step step) {
        if (step.event() instanceof RuleEvent e) {
            return new EventRef(r.topic(), r.partition(), r.offset(), e.getOperation().name(), e.getEventId(),
                    e.getSource().getEventTime(), e.getSource().getActor(), e.getSource().getRequestId());
        }
        WorkloadEvent e = (WorkloadEvent) step.event();
        return new EventRef(r.topic(), r.partition(), r.offset(), e.getOperation().name() + " " + e.getVmId(), e.getEventId(),
                e.getSource().getEventTime(), e.getSource().getActor(), e.getSource().getRequestId());
    }

    /**
     * Follows one item through the log: whether the log's value equals Redis's, the event after which it
     * last stopped being equal, and the first event that changed it.
     */
    static final class Tracker {
        private final String redisValue;
        private String current;
        private boolean equal;
        private EventRef partAt;
        private EventRef firstChange;

        Tracker(String redisValue) {
            this.redisValue = redisValue;
            this.equal = redisValue == null;
        }

        void see(String value, EventRef event) {
            if (Objects.equals(value, current)) {
                return;
            }
            current = value;
            if (firstChange == null) {
                firstChange = event;
            }
            if (Objects.equals(value, redisValue)) {
                equal = true;
                partAt = null;
            } else if (equal) {
                equal = false;
                partAt = event;
            }
        }

        /**
         * Where log and Redis part: the first change after the log last held Redis's value; when the log
         * never held it, the first event that set the item; null when they end equal or the log never had it.
         */
        EventRef parting() {
            if (equal) {
                return null;
            }
            return partAt != null ? partAt : firstChange;
        }
    }

    static String describe(EventRef e) {
        if (e == null) {
            return null;
        }
        return "p" + e.partition() + "@" + e.offset() + " " + e.operation()
                + " " + Times.format(e.time()) + " " + e.actor() + " " + e.requestId();
    }

    static String table(List<Difference> differences, String summary) {
        StringBuilder sb = new StringBuilder();
        if (!differences.isEmpty()) {
            Table t = new Table("network", "item", "log", "redis", "parted at");
            for (Difference d : differences) {
                t.row(d.networkId(), d.item(), d.log() == null ? "(absent)" : d.log(), d.redis() == null ? "(absent)" : d.redis(),
                        describe(d.partedAt()));
            }
            sb.append(t.render());
        }
        sb.append(summary).append('\n');
        return sb.toString();
    }

    static String json(List<Difference> differences, int checked, long differing, String summary) {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("checked", checked);
        doc.put("matching", checked - differing);
        doc.put("differing", differing);
        doc.put("summary", summary);
        doc.put("differences", differences.stream().map(d -> {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("networkId", d.networkId());
            m.put("item", d.item());
            m.put("log", d.log());
            m.put("redis", d.redis());
            if (d.partedAt() == null) {
                m.put("partedAt", null);
            } else {
                EventRef e = d.partedAt();
                Map<String, Object> p = new LinkedHashMap<>();
                p.put("topic", e.topic());
                p.put("partition", e.partition());
                p.put("offset", e.offset());
                p.put("operation", e.operation());
                p.put("eventId", e.eventId());
                p.put("time", Times.format(e.time()));
                p.put("actor", e.actor());
                p.put("requestId", e.requestId());
                m.put("partedAt", p);
            }
            return m;
        }).toList());
        return Json.pretty(doc);
    }
}
