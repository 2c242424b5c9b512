package io.egressctl.cli.audit.verify;

import io.egressctl.cli.audit.AuditContext;
import io.egressctl.cli.audit.Json;
import io.egressctl.cli.audit.Options;
import io.egressctl.cli.audit.Table;
import io.egressctl.cli.audit.Times;
import io.egressctl.cli.audit.log.LogReader;
import io.egressctl.cli.audit.replay.Replay;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.FragmentCompiler;
import io.egressctl.core.host.HostState;
import io.egressctl.core.state.NetworkState;
import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.view.RedisKeys;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import redis.clients.jedis.UnifiedJedis;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * {@code audit verify}: every host's last applied hash ({@code egress:host:{H}:applied} field {@code hash})
 * against the hash expected from its fragments in Redis ({@code egress:host:{H}:fragments}, HostUpdates
 * in single-object encoding, tombstones excluded, hashed with {@link HostState#hashOf}); lists the hosts
 * that are lagging, drifted, silent or missing ({@code --all}: every host). Hosts are those of
 * {@code egress:hosts}, of every {@code applied} key and of the log, or the ones given with {@code --host}.
 *
 * <p>Expected state that is missing fails loudly, never "0 hosts ... ok": the log is folded (unless
 * {@code --no-log-check}) and every host it places VMs of an existing network on must have that
 * network's fragment in Redis (else the host is {@code missing}); without {@code --host}, Redis must
 * hold the generation marker (absent: Redis lost its state and no compiler rebuilt it yet) and no
 * partition may be marked as rebuilding. Exit code 1 when anything differs or is missing.
 */
public final class VerifyCommand {

    /** The options of this command besides the common ones. */
    public static final Set<String> OPTIONS = Set.of("host", "all", "silent-after", "no-log-check");

    private final AuditContext ctx;
    private final List<String> hosts;
    private final boolean all;
    private final Duration silentAfter;
    private final boolean logCheck;

    /** Reads the command's options; a {@code UsageException} names one it cannot use. */
    public VerifyCommand(AuditContext ctx, Options o) {
        this.ctx = ctx;
        this.hosts = o.all("host");
        this.all = o.has("all");
        this.silentAfter = Times.duration(o.get("silent-after", "5m"));
        this.logCheck = !o.has("no-log-check");
    }

    /** Runs the command and prints its result; returns the exit code: 0 when every host converged, 1 when any differs or is missing. */
    public int run() {
        UnifiedJedis redis = ctx.redis();
        TreeSet<String> ids = new TreeSet<>(hosts);
        boolean whole = ids.isEmpty();
        List<String> failures = whole ? stateFailures(redis) : new ArrayList<>();
        Map<String, Set<String>> expectedByLog = logCheck ? hostsFromLog(whole ? null : Set.copyOf(hosts)) : Map.of();
        if (whole) {
            ids.addAll(redis.smembers(RedisKeys.hosts()));
            ids.addAll(reportingHosts(redis));
            ids.addAll(expectedByLog.keySet());
        }
        List<HostCheck> checks = new ArrayList<>();
        for (String h : ids) {
            checks.add(check(redis, h, expectedByLog.getOrDefault(h, Set.of())));
        }
        ctx.out().print(ctx.json() ? json(checks, failures) : table(checks, all) + failures(failures));
        return failures.isEmpty() && checks.stream().allMatch(c -> c.state() == HostCheck.State.OK) ? 0 : 1;
    }

    /** Whole-state problems: Redis lost its state (no generation marker) or the compiler is rebuilding it. */
    static List<String> stateFailures(UnifiedJedis redis) {
        List<String> out = new ArrayList<>();
        if (redis.get(RedisKeys.generation()) == null) {
            out.add("Redis holds no generation marker (" + RedisKeys.generation() + "): it lost its state (emptied or restarted"
                    + " empty) and no compiler-service has rebuilt it yet; expected state is missing");
        }
        Map<String, String> rebuilding = redis.hgetAll(RedisKeys.rebuilding());
        if (!rebuilding.isEmpty()) {
            out.add("the compiler is rebuilding the state of partitions " + new TreeSet<>(rebuilding.keySet())
                    + " from the log; expected state is incomplete: " + new TreeMap<>(rebuilding));
        }
        return out;
    }

    static String failures(List<String> failures) {
        StringBuilder sb = new StringBuilder();
        failures.forEach(f -> sb.append("FAILED: ").append(f).append('\n'));
        return sb.toString();
    }

    /**
     * The hosts the log places VMs of existing networks on, with those networks (what the compiler
     * compiles a fragment for: {@link FragmentCompiler}); only {@code only}'s hosts when given.
     */
    private Map<String, Set<String>> hostsFromLog(Set<String> only) {
        Replay replay = new Replay(ctx.registry());
        try (KafkaConsumer<byte[], byte[]> consumer = ctx.consumer()) {
            LogReader log = new LogReader(consumer);
            List<LogReader.Range> ranges = log.ranges(log.partitions(ctx.eventTopic()), null, null);
            long total = ranges.stream().mapToLong(LogReader.Range::size).sum();
            log.read(ranges, r -> replay.event(r.topic(), r.key(), r.value(), r.offset()), ctx.progress("log ", total));
        }
        Map<String, Set<String>> out = new TreeMap<>();
        FragmentCompiler compiler = new FragmentCompiler();
        for (NetworkState s : replay.states().values()) {
            if (s.network() == null) {
                continue;
            }
            for (String host : compiler.compile(s).keySet()) {
                if (only == null || only.contains(host)) {
                    out.computeIfAbsent(host, h -> new TreeSet<>()).add(s.networkId());
                }
            }
        }
        return out;
    }

    /**
     * Hosts with an applied key (a host may report before or without any fragment): the index the
     * compiler writes with each applied state, one SMEMBERS, never a SCAN of the keyspace.
     */
    private static Set<String> reportingHosts(UnifiedJedis redis) {
        return redis.smembers(RedisKeys.appliedHosts());
    }

    private HostCheck check(UnifiedJedis redis, String host, Set<String> expectedByLog) {
        Map<byte[], byte[]> raw = redis.hgetAll(RedisKeys.hostFragments(host).getBytes(StandardCharsets.UTF_8));
        TreeMap<String, Fragment> live = new TreeMap<>();
        TreeMap<String, Long> versions = new TreeMap<>();
        List<String> problems = new ArrayList<>();
        TreeMap<String, byte[]> sorted = new TreeMap<>();
        raw.forEach((k, v) -> sorted.put(new String(k, StandardCharsets.UTF_8), v));
        for (Map.Entry<String, byte[]> e : sorted.entrySet()) {
            String network = e.getKey();
            try {
                HostUpdate u = HostUpdate.fromByteBuffer(ByteBuffer.wrap(e.getValue()));
                if (u.getTombstone() || u.getFragment() == null) {
                    continue;
                }
                Fragment f = EventMapper.fromAvro(network, u.getFragment());
                String hash = f.hash();
                if (!u.getFragmentHash().isEmpty() && !u.getFragmentHash().equals(hash)) {
                    problems.add("fragment " + network + " v" + u.getVersion() + " stored hash does not match its content");
                }
                live.put(network, f);
                versions.put(network, u.getVersion());
            } catch (Exception ex) {
                problems.add("fragment " + network + " unreadable: " + ex.getMessage());
            }
        }
        List<String> missing = new ArrayList<>();
        for (String network : expectedByLog) {
            if (!live.containsKey(network)) {
                missing.add("no snapshot of " + network + " in Redis although the log places its VMs on this host");
            }
        }
        String expected = HostState.hashOf(live);
        Map<String, String> applied = redis.hgetAll(RedisKeys.hostApplied(host));
        return HostCheck.classify(host, expected, versions, problems, missing, applied, ctx.now(), silentAfter);
    }

    static String table(List<HostCheck> checks, boolean all) {
        StringBuilder sb = new StringBuilder();
        Table t = new Table("host", "state", "expected", "applied", "last report", "detail");
        for (HostCheck c : checks) {
            if (all || c.state() != HostCheck.State.OK) {
                t.row(c.hostId(), c.state().name().toLowerCase(), EnforcementCommand.shortHash(c.expectedHash()),
                        EnforcementCommand.shortHash(c.appliedHash()), c.lastReport(), c.detail());
            }
        }
        if (!t.isEmpty()) {
            sb.append(t.render());
        }
        sb.append(summary(checks)).append('\n');
        return sb.toString();
    }

    static String summary(List<HostCheck> checks) {
        Map<HostCheck.State, Integer> n = new EnumMap<>(HostCheck.State.class);
        for (HostCheck.State s : HostCheck.State.values()) {
            n.put(s, 0);
        }
        checks.forEach(c -> n.merge(c.state(), 1, Integer::sum));
        return checks.size() + (checks.size() == 1 ? " host: " : " hosts: ") + n.get(HostCheck.State.OK) + " ok, "
                + n.get(HostCheck.State.LAGGING) + " lagging, " + n.get(HostCheck.State.DRIFTED) + " drifted, "
                + n.get(HostCheck.State.SILENT) + " silent"
                + (n.get(HostCheck.State.MISSING) > 0 ? ", " + n.get(HostCheck.State.MISSING) + " missing" : "");
    }

    static String json(List<HostCheck> checks, List<String> failures) {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("summary", summary(checks));
        doc.put("converged", failures.isEmpty() && checks.stream().allMatch(c -> c.state() == HostCheck.State.OK));
        doc.put("failures", failures);
        doc.put("hosts", checks.stream().map(c -> {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("hostId", c.hostId());
            m.put("state", c.state().name().toLowerCase());
            m.put("expectedHash", c.expectedHash());
            m.put("appliedHash", c.appliedHash());
            m.put("lastReport", c.lastReport());
            m.put("status", c.status());
            m.put("detail", c.detail());
            m.put("expectedVersions", c.expectedVersions());
            m.put("appliedVersions", c.appliedVersions());
            return m;
        }).toList());
        return Json.pretty(doc);
    }
}
