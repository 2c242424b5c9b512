package io.egressctl.cli.audit;

import io.egressctl.core.compile.Fragment;
import io.egressctl.core.host.HostState;
import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.view.RedisKeys;
import redis.clients.jedis.UnifiedJedis;
import redis.clients.jedis.params.ScanParams;
import redis.clients.jedis.resps.ScanResult;

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
 * that are lagging, drifted or silent ({@code --all}: every host). Hosts are those of {@code egress:hosts}
 * and of every {@code applied} key, or the ones given with {@code --host}. Exit code 1 when any differs.
 */
final class VerifyCommand {

    static final Set<String> OPTIONS = Set.of("host", "all", "silent-after");

    private final AuditContext ctx;
    private final List<String> hosts;
    private final boolean all;
    private final Duration silentAfter;

    VerifyCommand(AuditContext ctx, Options o) {
        this.ctx = ctx;
        this.hosts = o.all("host");
        this.all = o.has("all");
        this.silentAfter = Times.duration(o.get("silent-after", "5m"));
    }

    int run() {
        UnifiedJedis redis = ctx.redis();
        TreeSet<String> ids = new TreeSet<>(hosts);
        if (ids.isEmpty()) {
            ids.addAll(redis.smembers(RedisKeys.hosts()));
            ids.addAll(reportingHosts(redis));
        }
        List<HostCheck> checks = new ArrayList<>();
        for (String h : ids) {
            checks.add(check(redis, h));
        }
        ctx.out.print(ctx.json ? json(checks) : table(checks, all));
        return checks.stream().allMatch(c -> c.state() == HostCheck.State.OK) ? 0 : 1;
    }

    /** Hosts with an applied key (a host may report before or without any fragment). */
    private static Set<String> reportingHosts(UnifiedJedis redis) {
        Set<String> out = new TreeSet<>();
        String prefix = "egress:host:{";
        String suffix = "}:applied";
        ScanParams params = new ScanParams().match(prefix + "*" + suffix).count(1000);
        String cursor = ScanParams.SCAN_POINTER_START;
        try {
            do {
                ScanResult<String> page = redis.scan(cursor, params);
                for (String key : page.getResult()) {
                    if (key.startsWith(prefix) && key.endsWith(suffix)) {
                        out.add(key.substring(prefix.length(), key.length() - suffix.length()));
                    }
                }
                cursor = page.getCursor();
            } while (!cursor.equals(ScanParams.SCAN_POINTER_START));
        } catch (RuntimeException e) {
            // a cluster without a global SCAN: egress:hosts alone
        }
        return out;
    }

    private HostCheck check(UnifiedJedis redis, String host) {
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
        String expected = HostState.hashOf(live);
        Map<String, String> applied = redis.hgetAll(RedisKeys.hostApplied(host));
        return HostCheck.classify(host, expected, versions, problems, applied, ctx.now(), silentAfter);
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
                + n.get(HostCheck.State.SILENT) + " silent";
    }

    static String json(List<HostCheck> checks) {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("summary", summary(checks));
        doc.put("converged", checks.stream().allMatch(c -> c.state() == HostCheck.State.OK));
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
