package io.egressctl.agent.kernel;

import io.egressctl.core.nft.NftElement;
import io.egressctl.core.nft.NftRuleset;
import io.egressctl.core.nft.NftSet;
import io.egressctl.core.nft.NftTable;
import io.egressctl.agent.enforce.EnforcementException;
import io.egressctl.agent.enforce.NftablesEnforcer;
import io.egressctl.agent.enforce.ProcessNftRunner;
import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.model.Action;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.IcmpMatch;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.core.host.HostState;
import io.egressctl.core.render.HostMode;
import io.egressctl.core.render.NftRenderer;
import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.serde.Topics;
import io.egressctl.schemas.view.RedisKeys;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import redis.clients.jedis.UnifiedJedis;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Benchmark of the agent's kernel path (not a test): render plus apply with the real
 * {@link NftablesEnforcer} and nft, in a network namespace of its own, for host snapshots of 100,
 * 1,000 and 10,000 rules; one rule changed on the 10,000-rule host (the incremental transaction);
 * each in both host modes ({@code -Dbench.mode=routed|bridged|both}, default both: a bridged host's
 * script holds the bridge table too); and the same rules as a flat {@code iptables-restore} ruleset
 * for the ratio.
 *
 * <p>Host shape: 4 VMs per network, 50 rules per VM, every rule covering one VM, each VM on an
 * interface of its own ({@code vnet<n>}: 200 interfaces at 10,000 rules); every 4th VM dual-stack;
 * a rule mix of the seed's kinds (tcp port, tcp range, udp, icmp, all) with single destination
 * prefixes, "anywhere", exceptions and, for 1 rule in 10, a destination list drawn from 5 lists per
 * network; every 10th rule an ALLOW (udp 5000-5100 anywhere) after DENY rules it overlaps, so verdicts
 * are mixed and order matters. With the renderer's layered layout (see {@code NftRenderer}) N rules
 * are about N set elements keyed by the mark of the VM's interface, in a few dozen shared sets, and
 * about 30 kernel rules; the table printed per size shows kernel rules, sets and elements (every set
 * and map of the script, the ports' too).
 *
 * <p>Runs in a JVM of its own with the agent's flags ({@code -XX:+UseSerialGC -Xmx384m}, as in
 * docker/services/Dockerfile, target host-agent), so render times are those of an agent, not of Maven's JVM:
 * <pre>
 * mvn -q -pl host-agent test-compile exec:exec -Dexec.executable=java -Dexec.classpathScope=test \
 *     "-Dexec.args=-XX:+UseSerialGC -Xmx384m [-Dbench.runs=7] [-Dbench.mode=both] -classpath %classpath io.egressctl.agent.kernel.AgentApplyBench"
 * </pre>
 * Rules are rendered without per-rule counters (the agent's default); one more row, {@code 10000c},
 * is the routed 10,000-rule host with them. Each timed sample follows a pause ({@code -Dbench.settleMs},
 * 200): it measures one update on an otherwise idle host.
 *
 * <p><b>Floors, measured in the same run, sample for sample</b>: nft run as the agent runs it (a spare
 * process, see {@code ProcessNftRunner}) for (1) the full apply: as many plain IPv4 addresses as the
 * 10,000-rule script has elements, into one hash set, replacing its table; (2) one rule changed: the
 * smallest transaction that changes anything (one element added to a set and deleted again). Each
 * sample of ours is followed by one of its floor, so both see the same load; the ratios are the
 * medians' ratios. Targets (issue 11): render + full apply within 2x floor (1), one rule changed
 * within 2x floor (2). nft's CPU time (user + system, of the processes this JVM waited for; clock
 * ticks, so means of the runs) and the JVM's (render, parse, diff) are printed beside, with the
 * ratios in CPU time: they do not grow with the machine's load as wall time does.
 *
 * <p>Needs root, nft and ip; iptables-restore is optional (ratio -1 without it). Ends with one line
 * {@code summary: <mode> apply_10k_ms=<n> floor_ms=<n> apply_ratio=<r>x (cpu <r>x) incremental_ms=<n> tiny_ms=<n>
 * incremental_ratio=<r>x (cpu <r>x); ...; before: ...; iptables_ratio=<r> cold_start_ms=<n>}, one group per mode,
 * with the figures of before interface identity (README: source-address keys) beside; iptables_ratio =
 * iptables-restore median / nft full apply median for the same IPv4 rules (above 1: nft is faster).
 *
 * <p><b>Cold start</b> is end to end with the real agent: a 1,000-rule snapshot (the host shape above)
 * for a host id of the bench's own is written straight into Redis (HostUpdates in their single-object
 * encoding, as the compiler stores them), then {@code java -jar host-agent/target/host-agent-*.jar}
 * is started with the nftables enforcer in the bench's namespace against the stack given by
 * KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL and REDIS_URL ({@code ./egressctl bench agent}
 * exports them), and timed from process start until its {@code /actuator/health} is UP, which the
 * agent reports only once the first snapshot is applied (its ACK is sent right then). The kernel
 * table is deleted before each run, so every run applies; one more run with the table left in place
 * shows the restart path (snapshot found in force, nothing applied). Agent heap (jvm.memory.used,
 * area heap, from its metrics endpoint) and RSS (VmRSS of /proc/&lt;pid&gt;/status) are read once it
 * is UP. Without the stack's variables, or without the built jar or the product's topics, the line
 * says cold_start_ms=-1 and why. {@code -Dbench.coldRuns=3}, {@code -Dbench.agentJar=<path>}.
 * The namespace is {@code <-Dbench.netns, default egb><pid>}, deleted at the end.
 */
public final class AgentApplyBench {

    private static final int VMS_PER_NETWORK = 4;
    private static final int RULES_PER_VM = 50;
    /** Before interface identity (source-address keys), README's "Measured" table and issue 11. */
    private static final String BEFORE = "before (source-address keys): apply 89-91 ms, ratio 2.3-3.0x; one rule changed 16-20 ms, ratio 2.4x";

    private AgentApplyBench() {
    }

    public static void main(String[] args) throws Exception {
        String reason = reason();
        if (reason != null) {
            System.out.println("bench agent: cannot run: " + reason);
            System.out.println("summary: apply_10k_ms=-1 apply_ratio=-1 incremental_ms=-1 incremental_ratio=-1 iptables_ratio=-1 cold_start_ms=-1");
            return;
        }
        int runs = Integer.getInteger("bench.runs", 7);
        String ns = System.getProperty("bench.netns", "egb") + ProcessHandle.current().pid();
        Thread hook = new Thread(() -> NetnsTopology.exec(List.of("ip", "netns", "del", ns), ""));
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            must(List.of("ip", "netns", "add", ns));
            System.out.printf(Locale.ROOT, "bench agent: nft in namespace %s, %d runs per figure, %d cpus, load %s%n",
                    ns, runs, Runtime.getRuntime().availableProcessors(), load());
            run(ns, runs);
        } finally {
            NetnsTopology.exec(List.of("ip", "netns", "del", ns), "");
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException ignored) {
                // shutting down
            }
        }
    }

    private static List<HostMode> modes() {
        String m = System.getProperty("bench.mode", "both");
        return m.equalsIgnoreCase("both") ? List.of(HostMode.ROUTED, HostMode.BRIDGED) : List.of(HostMode.parse(m));
    }

    /** One mode's figures for the summary line. */
    private record ModeFigures(HostMode mode, Row full, Sampled incremental, Sampled tiny) {
    }

    private static void run(String ns, int runs) throws Exception {
        List<HostMode> modes = modes();
        // Warm up the JVM's renderer. The agent is a long-running process: the render is measured
        // with the JIT done compiling it, as on a host, not on its first calls.
        SortedMap<String, Fragment> warm = host(10_000, 0);
        for (int i = 0; i < 30; i++) {
            // A new renderer each time: one that remembers the networks would plan nothing after the first.
            for (HostMode mode : modes) {
                new NftRenderer(false, mode).render("bench", warm);
            }
            new NftRenderer(true, HostMode.ROUTED).render("bench", warm);
        }
        // The floors' nft, run as the agent runs it: a spare process started ahead.
        ProcessNftRunner floorRunner = new ProcessNftRunner("nft", ns, Duration.ofSeconds(120), true);
        ProcessNftRunner tinyRunner = new ProcessNftRunner("nft", ns, Duration.ofSeconds(30), true);
        mustApply(tinyRunner, "table inet egressctl_tiny {\n  set s {\n    type ipv4_addr\n  }\n}\n");
        String tiny = "add element inet egressctl_tiny s { 10.0.0.1 }\ndelete element inet egressctl_tiny s { 10.0.0.1 }\n";

        List<ModeFigures> figures = new ArrayList<>();
        Row routed10k = null;
        for (HostMode mode : modes) {
            // A fresh namespace state per mode: no table of the other mode's left behind.
            for (String t : NftablesEnforcer.TABLES) {
                NetnsTopology.exec(List.of("ip", "netns", "exec", ns, "nft", "delete", "table", t.split(" ")[0], t.split(" ")[1]), "");
            }
            // As the agent runs it: applies go to a spare nft process started ahead (see ProcessNftRunner).
            NftablesEnforcer enforcer = new NftablesEnforcer(new ProcessNftRunner("nft", ns, Duration.ofSeconds(120), true));
            NftRenderer renderer = new NftRenderer(false, mode);
            for (int i = 0; i < 3; i++) {
                enforcer.apply(renderer.ruleset("bench", host(1000, 0)));
            }
            String mode10k = renderer.render("bench", warm);
            int elements = elements(mode10k);
            String floor = floorScript(elements);
            System.out.printf(Locale.ROOT, "%n== %s host%s%n", mode.name().toLowerCase(Locale.ROOT),
                    mode == HostMode.BRIDGED ? " (table bridge egressctl too)" : "");
            System.out.println("wall clock, median / p99; cpu = render (all JVM threads) median, nft process CPU time mean (load-independent)");
            System.out.println("size   kernel_rules  sets  elements  render_ms  full_apply_ms(med/p99)  render+apply_ms(med/p99)  cpu_render_ms  cpu_nft_ms");
            Row row10k = null;
            for (int n : new int[]{100, 1_000, 10_000}) {
                Row row = sizeRow(enforcer, false, mode, String.valueOf(n), host(n, 0), runs, n == 10_000 ? floorRunner : null, floor);
                if (n == 10_000) {
                    row10k = row;
                }
            }
            if (mode == HostMode.ROUTED) {
                // The same host with per-rule counters (egress.agent.rule-counters=true): what they cost.
                sizeRow(enforcer, true, mode, "10000c", warm, runs, null, null);
                System.out.println("(10000c: the 10,000-rule host with per-rule counters on; off by default)");
                routed10k = row10k;
            }
            System.out.printf(Locale.ROOT, "floor, sample for sample with the 10,000 row: %d plain addresses (the script's element count) "
                            + "into one hash set, table replaced: %.1f ms median, %.1f ms p99, nft cpu %.1f ms -> render+apply / floor = %.2fx "
                            + "(cpu %.2fx)%n", elements, row10k.floor().median(), row10k.floor().p99(), row10k.floor().cpu(),
                    row10k.total() / row10k.floor().median(), (row10k.jvmCpu() + row10k.nftCpu()) / row10k.floor().cpu());
            System.out.printf(Locale.ROOT, "keys floor, sample for sample: the script's own %d elements (same sets, keys and map data; "
                            + "no comments, chains or rules), table replaced: %.1f ms median, %.1f ms p99, nft cpu %.1f ms -> render+apply / keys floor "
                            + "= %.2fx (cpu %.2fx); the keys alone cost nft %.2fx the plain addresses%n", elements, row10k.keysFloor().median(),
                    row10k.keysFloor().p99(), row10k.keysFloor().cpu(), row10k.total() / row10k.keysFloor().median(),
                    (row10k.jvmCpu() + row10k.nftCpu()) / row10k.keysFloor().cpu(), row10k.keysFloor().median() / row10k.floor().median());

            // One rule changed on the 10,000-rule host: render + incremental apply, alternating two
            // versions, each sample followed by one of the smallest transaction. One renderer
            // throughout, as an agent keeps one: it plans again only the network that changed.
            SortedMap<String, Fragment> a = host(10_000, 0);
            SortedMap<String, Fragment> b = oneNetworkReplaced(a, host(10_000, 1));
            enforcer.apply(renderer.ruleset("bench", a));
            // The JIT done compiling the incremental path too (plan of one network, diff, delta
            // script), as in a long-running agent; the full renders above do not exercise it.
            for (int w = 0; w < INCREMENTAL_WARMUP; w++) {
                enforcer.apply(renderer.ruleset("bench", w % 2 == 0 ? b : a));
            }
            if (INCREMENTAL_WARMUP % 2 == 1) {
                enforcer.apply(renderer.ruleset("bench", a));
            }
            List<Double> incremental = new ArrayList<>();
            List<Double> incrementalApply = new ArrayList<>();
            List<Double> incrementalNftCpu = new ArrayList<>();
            List<Double> incrementalJvmCpu = new ArrayList<>();
            List<Double> tinyMs = new ArrayList<>();
            List<Double> tinyCpu = new ArrayList<>();
            for (int r = 0; r < Math.max(runs, 9); r++) {
                SortedMap<String, Fragment> next = r % 2 == 0 ? b : a;
                settle();
                long j0 = jvmThreadsCpuNs();
                long t0 = System.nanoTime();
                NftRuleset s = renderer.ruleset("bench", next);
                long t1 = System.nanoTime();
                double k0 = childCpuMs();
                enforcer.apply(s);
                long t2 = System.nanoTime();
                incrementalNftCpu.add(childCpuMs() - k0);
                incrementalJvmCpu.add(ms(jvmThreadsCpuNs() - j0));
                incremental.add(ms(t2 - t0));
                incrementalApply.add(ms(t2 - t1));
                if (!enforcer.lastApplyIncremental()) {
                    throw new IllegalStateException("expected an incremental apply");
                }
                settle();
                double c0 = childCpuMs();
                long u0 = System.nanoTime();
                mustApply(tinyRunner, tiny);
                tinyMs.add(ms(System.nanoTime() - u0));
                tinyCpu.add(childCpuMs() - c0);
            }
            // CPU: the JVM's (plan, diff) and nft's, against the floor's nft.
            Sampled inc = new Sampled(median(incremental), p99(incremental), mean(incrementalJvmCpu) + mean(incrementalNftCpu));
            Sampled tinyFloor = new Sampled(median(tinyMs), p99(tinyMs), mean(tinyCpu));
            System.out.printf(Locale.ROOT, "one rule changed on 10,000: render+apply %.1f ms median, %.1f ms p99; apply alone (diff, nft) "
                            + "%.1f ms median; cpu: jvm %.1f ms + nft %.1f ms (%d runs, %d fallbacks)%n",
                    inc.median(), inc.p99(), median(incrementalApply), mean(incrementalJvmCpu), mean(incrementalNftCpu), incremental.size(),
                    enforcer.incrementalFallbacks());
            System.out.printf(Locale.ROOT, "floor, sample for sample: the smallest transaction (one element added and deleted, spare nft): "
                            + "%.1f ms median, %.1f ms p99, nft cpu %.1f ms -> one rule changed / floor = %.2fx (cpu %.2fx); load %s%n",
                    tinyFloor.median(), tinyFloor.p99(), tinyFloor.cpu(), inc.median() / tinyFloor.median(), inc.cpu() / tinyFloor.cpu(), load());
            figures.add(new ModeFigures(mode, row10k, inc, tinyFloor));

            // Read-back cost (the reconcile timer's drift check) on the 10,000-rule host.
            NftRuleset current = renderer.ruleset("bench", incremental.size() % 2 == 1 ? b : a);
            List<Double> check = new ArrayList<>();
            List<Double> checkCpu = new ArrayList<>();
            for (int r = 0; r < Math.min(runs, 5); r++) {
                settle();
                long t0 = System.nanoTime();
                double k0 = childCpuMs();
                boolean ok = enforcer.inSync(current);
                checkCpu.add(childCpuMs() - k0);
                check.add(ms(System.nanoTime() - t0));
                if (!ok) {
                    throw new IllegalStateException("drift in the benchmark namespace: " + enforcer.lastDriftReason());
                }
            }
            NftablesEnforcer restarted = new NftablesEnforcer(new ProcessNftRunner("nft", ns, Duration.ofSeconds(120)));
            if (!restarted.inSync(current)) {
                throw new IllegalStateException("a restarted enforcer sees drift in the benchmark namespace: " + restarted.lastDriftReason());
            }
            System.out.printf(Locale.ROOT, "inSync read-back on 10,000 rules: %.1f ms median (first: captures the listing), nft cpu %.1f ms; "
                    + "a restarted agent's check (structure alone) agrees%n", median(check), mean(checkCpu));
        }
        mustApply(tinyRunner, "delete table inet egressctl_tiny\n");
        floorRunner.run("table inet egressctl_floor\ndelete table inet egressctl_floor\n", List.of("-f", "-"));

        // The smallest transaction with nft started for it (no spare): what the spare saves.
        ProcessNftRunner noSpare = new ProcessNftRunner("nft", ns, Duration.ofSeconds(30), false);
        mustApply(noSpare, "table inet egressctl_tiny {\n  set s {\n    type ipv4_addr\n  }\n}\n");
        List<Double> started = new ArrayList<>();
        for (int r = 0; r < runs; r++) {
            settle();
            long t0 = System.nanoTime();
            mustApply(noSpare, tiny);
            started.add(ms(System.nanoTime() - t0));
        }
        mustApply(noSpare, "delete table inet egressctl_tiny\n");
        System.out.printf(Locale.ROOT, "%nthe smallest transaction with nft started for it (no spare): %.1f ms median%n", median(started));

        double ratio = -1;
        String iptables = which("iptables-restore");
        if (iptables != null && routed10k != null) {
            double nft10kApplyOnly = routed10k.apply();
            double nft10kCpu = routed10k.nftCpu();
            String flat = iptablesFlat(host(10_000, 0));
            List<Double> ipt = new ArrayList<>();
            List<Double> iptCpu = new ArrayList<>();
            for (int r = 0; r < runs; r++) {
                settle();
                long t0 = System.nanoTime();
                double k0 = childCpuMs();
                NetnsTopology.Result res = NetnsTopology.exec(List.of("ip", "netns", "exec", ns, "iptables-restore"), flat,
                        Duration.ofSeconds(300));
                iptCpu.add(childCpuMs() - k0);
                ipt.add(ms(System.nanoTime() - t0));
                if (!res.ok()) {
                    throw new IllegalStateException("iptables-restore failed: " + res.stderr());
                }
            }
            NetnsTopology.Result version = NetnsTopology.exec(List.of("iptables-restore", "--version"), "");
            ratio = median(ipt) / nft10kApplyOnly;
            System.out.printf(Locale.ROOT, "iptables-restore (%s), %d flat IPv4 rules: %.1f ms median, %.1f ms p99, cpu %.1f ms; "
                            + "nft full apply %.1f ms -> ratio %.2f (cpu ratio %.2f)%n",
                    version.stdout().strip(), count(flat, "\n-A "), median(ipt), p99(ipt), median(iptCpu), nft10kApplyOnly, ratio,
                    median(iptCpu) / nft10kCpu);
            NetnsTopology.exec(List.of("ip", "netns", "exec", ns, "iptables-restore"), "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n");
            if (which("iptables-legacy-restore") != null) {
                List<Double> legacy = new ArrayList<>();
                for (int r = 0; r < runs; r++) {
                    settle();
                    long t0 = System.nanoTime();
                    NetnsTopology.Result res = NetnsTopology.exec(List.of("ip", "netns", "exec", ns, "iptables-legacy-restore"),
                            flat, Duration.ofSeconds(300));
                    legacy.add(ms(System.nanoTime() - t0));
                    if (!res.ok()) {
                        System.out.println("iptables-legacy-restore unavailable here: " + res.stderr().strip());
                        legacy.clear();
                        break;
                    }
                }
                if (!legacy.isEmpty()) {
                    System.out.printf(Locale.ROOT, "iptables-legacy-restore, same rules: %.1f ms median (ratio to nft %.2f)%n",
                            median(legacy), median(legacy) / nft10kApplyOnly);
                }
            }
        } else {
            System.out.println("iptables-restore not installed (apt-get install iptables): ratio -1");
        }
        long coldStart = ColdStart.measure(ns);
        System.out.printf(Locale.ROOT, "load at the end: %s%n", load());
        StringBuilder summary = new StringBuilder("summary:");
        for (ModeFigures f : figures) {
            summary.append(String.format(Locale.ROOT, " %s apply_10k_ms=%.1f floor_ms=%.1f apply_ratio=%.2fx (cpu %.2fx) keys_floor_ms=%.1f "
                            + "keys_ratio=%.2fx incremental_ms=%.1f tiny_ms=%.1f incremental_ratio=%.2fx (cpu %.2fx);",
                    f.mode().name().toLowerCase(Locale.ROOT), f.full().total(),
                    f.full().floor().median(), f.full().total() / f.full().floor().median(),
                    (f.full().jvmCpu() + f.full().nftCpu()) / f.full().floor().cpu(), f.full().keysFloor().median(),
                    f.full().total() / f.full().keysFloor().median(), f.incremental().median(), f.tiny().median(),
                    f.incremental().median() / f.tiny().median(), f.incremental().cpu() / f.tiny().cpu()));
        }
        summary.append(' ').append(BEFORE).append(String.format(Locale.ROOT, "; iptables_ratio=%.2f cold_start_ms=%d", ratio, coldStart));
        System.out.println(summary);
    }

    /** A figure's median and p99 (wall, ms) and nft's CPU time (a mean, ms). */
    private record Sampled(double median, double p99, double cpu) {
    }

    /**
     * One row of the size table: wall medians, CPU (the JVM's for render and apply, a median; nft's, a
     * mean) and the floor sampled beside it, or null.
     */
    private record Row(double total, double apply, double jvmCpu, double nftCpu, Sampled floor, Sampled keysFloor) {
    }

    /**
     * Renders and fully applies one host {@code runs} times, prints its row of the size table. Each
     * run renders with a new renderer, which remembers no network: the render of content the agent
     * has not seen (a cold start, a host given a new snapshot), in the JVM warmed up before. With a
     * {@code floorRunner}, each sample is followed by one of the floor script on it.
     */
    private static Row sizeRow(NftablesEnforcer enforcer, boolean ruleCounters, HostMode mode, String label, SortedMap<String, Fragment> state,
                               int runs, ProcessNftRunner floorRunner, String floor) throws EnforcementException {
        String script = new NftRenderer(ruleCounters, mode).render("bench", state);
        List<Double> render = new ArrayList<>();
        List<Double> apply = new ArrayList<>();
        List<Double> total = new ArrayList<>();
        List<Double> renderCpu = new ArrayList<>();
        List<Double> jvmCpu = new ArrayList<>();
        List<Double> nftCpu = new ArrayList<>();
        List<Double> floorMs = new ArrayList<>();
        List<Double> floorCpu = new ArrayList<>();
        List<Double> keysMs = new ArrayList<>();
        List<Double> keysCpu = new ArrayList<>();
        String keys = floorRunner == null ? null : keysFloorScript(new NftRenderer(ruleCounters, mode).ruleset("bench", state));
        for (int r = 0; r < runs; r++) {
            NftRenderer renderer = new NftRenderer(ruleCounters, mode);
            settle();
            long c0 = jvmThreadsCpuNs();
            long t0 = System.nanoTime();
            NftRuleset s = renderer.ruleset("bench", state);
            long t1 = System.nanoTime();
            long c1 = jvmThreadsCpuNs();
            double k0 = childCpuMs();
            enforcer.apply(s); // same script again: always a full, table-replacing transaction
            long t2 = System.nanoTime();
            jvmCpu.add(ms(jvmThreadsCpuNs() - c0));
            nftCpu.add(childCpuMs() - k0);
            render.add(ms(t1 - t0));
            renderCpu.add(ms(c1 - c0));
            apply.add(ms(t2 - t1));
            total.add(ms(t2 - t0));
            if (floorRunner != null) {
                settle();
                double f0 = childCpuMs();
                long u0 = System.nanoTime();
                mustApply(floorRunner, floor);
                floorMs.add(ms(System.nanoTime() - u0));
                floorCpu.add(childCpuMs() - f0);
                settle();
                double g0 = childCpuMs();
                long v0 = System.nanoTime();
                mustApply(floorRunner, keys);
                keysMs.add(ms(System.nanoTime() - v0));
                keysCpu.add(childCpuMs() - g0);
            }
        }
        System.out.printf(Locale.ROOT, "%-6s %12d %5d %9d %10.1f %12.1f / %-9.1f %13.1f / %-9.1f %13.1f %11.1f%n", label, kernelRules(script),
                count(script, "\n  set ") + count(script, "\n  map "), elements(script), median(render), median(apply), p99(apply),
                median(total), p99(total), median(renderCpu), mean(nftCpu));
        return new Row(median(total), median(apply), median(jvmCpu), mean(nftCpu),
                floorRunner == null ? null : new Sampled(median(floorMs), p99(floorMs), mean(floorCpu)),
                floorRunner == null ? null : new Sampled(median(keysMs), p99(keysMs), mean(keysCpu)));
    }

    /**
     * nft's floor for the script's own elements: every set and map of {@code ruleset} with the same
     * declaration and the same keys (and map data), without comments, chains or rules, into a table
     * of its own that it replaces like a full apply does. What nft itself pays for these keys (a
     * concatenation of mark, address, protocol and port costs nft more per element than a plain
     * address), so the ratio to it is what the product adds: render, rules, comments.
     */
    static String keysFloorScript(NftRuleset ruleset) {
        StringBuilder sb = new StringBuilder(1 << 16).append("table inet egressctl_keys\ndelete table inet egressctl_keys\ntable inet egressctl_keys {\n");
        for (NftTable t : ruleset.tables()) {
            for (NftSet set : t.sets()) {
                sb.append("  ").append(set.map() ? "map " : "set ").append(t.family()).append('_').append(set.name()).append(" {\n");
                set.header().forEach(h -> sb.append("    ").append(h).append('\n'));
                if (!set.elements().isEmpty()) {
                    sb.append("    elements = {\n");
                    for (NftElement e : set.elements()) {
                        sb.append("      ").append(new NftElement(e.key(), null, e.data()).text()).append(",\n");
                    }
                    sb.append("    }\n");
                }
                sb.append("  }\n");
            }
        }
        return sb.append("}\n").toString();
    }

    /** {@code n} plain IPv4 addresses into one hash set, replacing its table like a full apply does: nft's floor for n elements. */
    static String floorScript(int n) {
        StringBuilder floor = new StringBuilder(16 * n + 200).append("table inet egressctl_floor\ndelete table inet egressctl_floor\n"
                + "table inet egressctl_floor {\n  set s {\n    type ipv4_addr\n    elements = { ");
        for (int i = 0; i < n; i++) {
            floor.append(i == 0 ? "" : ", ").append("10.").append(i >> 16).append('.').append((i >> 8) & 255).append('.').append(i & 255);
        }
        return floor.append(" }\n  }\n}\n").toString();
    }

    private static void mustApply(ProcessNftRunner runner, String input) throws EnforcementException {
        var res = runner.run(input, List.of("-f", "-"));
        if (!res.ok()) {
            throw new IllegalStateException("nft refused " + input.lines().findFirst().orElse("") + "...: " + res.errorText());
        }
    }

    /**
     * A pause before each timed sample, so that it measures one update on an otherwise idle host, as
     * the target means: the kernel frees a replaced table in the background after the commit, and
     * the agent starts its next spare nft; back to back, the next sample would compete with both.
     */
    static void settle() {
        try {
            Thread.sleep(SETTLE_MS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static final long SETTLE_MS = Long.getLong("bench.settleMs", 200);

    private static final java.lang.management.ThreadMXBean THREADS = java.lang.management.ManagementFactory.getThreadMXBean();

    /**
     * CPU time of every live thread of this JVM (the render's pool threads included), in ns: the
     * process's own CPU time is kept in clock ticks, too coarse for a render of a few ms.
     */
    private static long jvmThreadsCpuNs() {
        long sum = 0;
        for (long id : THREADS.getAllThreadIds()) {
            sum += Math.max(0, THREADS.getThreadCpuTime(id));
        }
        return sum;
    }

    /** Agent cold start to its first applied snapshot, end to end with the real jar (see the class comment). */
    static final class ColdStart {

        static final int RULES = 1_000;
        private static final java.net.http.HttpClient HTTP = java.net.http.HttpClient.newBuilder()
                .connectTimeout(Duration.ofSeconds(1)).build();
        private static final Pattern STARTED = Pattern.compile("Started \\w+ in ([0-9.]+) seconds \\(process running for ([0-9.]+)\\)");

        /** One agent start. */
        record Run(double ms, double springStartedS, double heapMb, double rssMb, double rssPeakMb, String bootstrap) {
        }

        /** Median cold start in ms, or -1 (with the reason printed) when it cannot be measured here. */
        static long measure(String ns) {
            Map<String, String> stack = new LinkedHashMap<>();
            for (String k : List.of("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL", "REDIS_URL")) {
                String v = System.getenv(k);
                if (v == null || v.isBlank()) {
                    System.out.println("cold start: not measured: " + k + " is not set; run ./egressctl bench agent "
                            + "(it exports the running stack's KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL and REDIS_URL)");
                    return -1;
                }
                stack.put(k, v);
            }
            Path jar = agentJar();
            if (jar == null) {
                System.out.println("cold start: not measured: host-agent/target/host-agent-0.1.0-SNAPSHOT.jar is missing "
                        + "(mvn -pl host-agent -am -DskipTests package), or give -Dbench.agentJar=<path>");
                return -1;
            }
            String missing = missingTopics(stack.get("KAFKA_BOOTSTRAP_SERVERS"));
            if (missing != null) {
                System.out.println("cold start: not measured: " + missing);
                return -1;
            }
            String hostId = "bench-cold-" + ProcessHandle.current().pid();
            SortedMap<String, Fragment> snapshot = host(RULES, 0);
            String expectedHash = HostState.hashOf(snapshot);
            int runs = Math.max(1, Integer.getInteger("bench.coldRuns", 3));
            try (UnifiedJedis redis = new UnifiedJedis(URI.create(stack.get("REDIS_URL")))) {
                try {
                    writeSnapshot(redis, hostId, snapshot);
                    System.out.printf(Locale.ROOT, "cold start: %s, host %s with a %d-rule snapshot (%d networks) in Redis, "
                            + "nftables enforcer in %s, %d runs + 1 restart%n", jar, hostId, RULES, snapshot.size(), ns, runs);
                    System.out.println("run        to_health_UP_ms  spring_started_s  heap_used_mb  rss_mb  rss_peak_mb  bootstrap");
                    List<Double> times = new ArrayList<>();
                    List<Run> all = new ArrayList<>();
                    for (int i = 0; i <= runs; i++) {
                        boolean restart = i == runs;
                        if (!restart) {
                            NetnsTopology.exec(List.of("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "egressctl"), "");
                        }
                        Run r = startOnce(jar, stack, hostId, ns, expectedHash);
                        System.out.printf(Locale.ROOT, "%-10s %15.0f %17.2f %13.1f %7.1f %12.1f  %s%n", restart ? "restart" : "cold " + (i + 1),
                                r.ms(), r.springStartedS(), r.heapMb(), r.rssMb(), r.rssPeakMb(), r.bootstrap());
                        if (!restart) {
                            times.add(r.ms());
                            all.add(r);
                        }
                    }
                    double med = median(times);
                    System.out.printf(Locale.ROOT, "cold start to first applied snapshot (%d rules): %.0f ms median of %d; "
                                    + "agent heap used %.1f MB, RSS %.1f MB (peak %.1f MB) once UP (medians)%n",
                            RULES, med, times.size(), median(all.stream().map(Run::heapMb).toList()),
                            median(all.stream().map(Run::rssMb).toList()), median(all.stream().map(Run::rssPeakMb).toList()));
                    return Math.round(med);
                } finally {
                    retire(stack, hostId);
                    redis.del(RedisKeys.hostFragments(hostId), RedisKeys.hostVersions(hostId), RedisKeys.hostApplied(hostId));
                }
            } catch (RuntimeException | IOException e) {
                System.out.println("cold start: failed: " + e);
                return -1;
            }
        }

        private static Path agentJar() {
            String given = System.getProperty("bench.agentJar");
            List<Path> candidates = given != null ? List.of(Path.of(given))
                    : List.of(Path.of("host-agent/target/host-agent-0.1.0-SNAPSHOT.jar"), Path.of("target/host-agent-0.1.0-SNAPSHOT.jar"),
                    Path.of("../host-agent/target/host-agent-0.1.0-SNAPSHOT.jar"));
            return candidates.stream().filter(Files::isRegularFile).map(Path::toAbsolutePath).findFirst().orElse(null);
        }

        /** Null when the topics the agent reads and writes exist (created by compiler-service), else why not. */
        private static String missingTopics(String bootstrap) {
            // Kafka's clients print their whole configuration at INFO; keep the bench's output readable.
            if (org.slf4j.LoggerFactory.getLogger("org.apache.kafka") instanceof ch.qos.logback.classic.Logger l) {
                l.setLevel(ch.qos.logback.classic.Level.WARN);
            }
            try (Admin admin = Admin.create(Map.<String, Object>of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                    AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 5000, AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 10000))) {
                Set<String> names = admin.listTopics().names().get(15, TimeUnit.SECONDS);
                List<String> missing = List.of(Topics.HOST_UPDATES, Topics.ENFORCEMENT_REPORTS).stream()
                        .filter(t -> !names.contains(t)).toList();
                return missing.isEmpty() ? null
                        : "topics " + missing + " do not exist yet; start the services once (./egressctl up) so compiler-service creates them";
            } catch (Exception e) {
                return "cannot list the topics at " + bootstrap + ": " + e;
            }
        }

        /** The snapshot as the compiler stores it: one HostUpdate per network, single-object encoding, plus versions. */
        /**
         * The bench host's agents reported to the live stack's egress.enforcement-reports; its last word
         * there would be a host enforcing 1,000 rules that the log never placed, which an audit after a
         * Redis refill (reports folded again) shows as a silent host. A closing report says it holds
         * nothing, which is true once the bench has gone.
         */
        private static void retire(Map<String, String> stack, String hostId) {
            io.egressctl.events.EnforcementReport r = io.egressctl.events.EnforcementReport.newBuilder().setHostId(hostId)
                    .setStatus(io.egressctl.events.EnforcementStatus.ACK).setTrigger(io.egressctl.events.EnforcementTrigger.BOOTSTRAP)
                    .setFragments(List.of()).setAppliedHash(HostState.hashOf(new java.util.TreeMap<>())).setChangeIds(List.of())
                    .setApplyMicros(0).setEnforcer("bench-retired").setDriftRepairs(0).setReportedAt(Instant.now())
                    .setUnenforced(List.of()).setRefused(List.of()).build();
            try (org.apache.kafka.clients.producer.KafkaProducer<String, org.apache.avro.specific.SpecificRecord> p =
                         new org.apache.kafka.clients.producer.KafkaProducer<>(Map.of(
                                 org.apache.kafka.clients.producer.ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, stack.get("KAFKA_BOOTSTRAP_SERVERS"),
                                 org.apache.kafka.clients.producer.ProducerConfig.ACKS_CONFIG, "all"),
                         new org.apache.kafka.common.serialization.StringSerializer(),
                         new io.egressctl.schemas.serde.AvroSerializer<>(
                                 new io.egressctl.schemas.registry.HttpSchemaRegistryClient(stack.get("SCHEMA_REGISTRY_URL"))))) {
                p.send(new org.apache.kafka.clients.producer.ProducerRecord<>(io.egressctl.schemas.serde.Topics.ENFORCEMENT_REPORTS,
                        hostId, new io.egressctl.schemas.integrity.ReportMac(MAC.keys()).sign(r)))
                        .get(10, java.util.concurrent.TimeUnit.SECONDS);
                Thread.sleep(1_500); // the compiler folds it; the keys are deleted after
            } catch (Exception e) {
                System.out.println("cold start: could not publish the bench host's closing report: " + e);
            }
        }

        /** The stack's host-update keys ({@code EGRESS_UPDATE_KEYS}): the snapshot is signed as the compiler would. */
        private static final io.egressctl.schemas.integrity.UpdateMac MAC = new io.egressctl.schemas.integrity.UpdateMac(
                io.egressctl.schemas.integrity.UpdateKeys.fromEnvironment());

        private static void writeSnapshot(UnifiedJedis redis, String hostId, SortedMap<String, Fragment> snapshot) throws IOException {
            byte[] fragmentsKey = RedisKeys.hostFragments(hostId).getBytes(StandardCharsets.UTF_8);
            redis.del(RedisKeys.hostFragments(hostId), RedisKeys.hostVersions(hostId), RedisKeys.hostApplied(hostId));
            Map<byte[], byte[]> fragments = new LinkedHashMap<>();
            Map<String, String> versions = new LinkedHashMap<>();
            for (Fragment f : snapshot.values()) {
                HostUpdate u = MAC.sign(EventMapper.toAvro(new FragmentUpdate(hostId, f.networkId(), 1, f, f.hash(), List.of()),
                        Instant.EPOCH));
                ByteBuffer b = u.toByteBuffer();
                byte[] bytes = new byte[b.remaining()];
                b.get(bytes);
                fragments.put(f.networkId().getBytes(StandardCharsets.UTF_8), bytes);
                versions.put(f.networkId(), "1");
            }
            redis.hset(fragmentsKey, fragments);
            redis.hset(RedisKeys.hostVersions(hostId), versions);
        }

        private static Run startOnce(Path jar, Map<String, String> stack, String hostId, String ns, String expectedHash)
                throws IOException {
            int port;
            try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
                port = s.getLocalPort();
            }
            Path log = Files.createTempFile("bench-agent-", ".log");
            // The flags of the agent image (docker/services/Dockerfile, target host-agent).
            ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-XX:+UseSerialGC", "-Xmx384m", "-jar", jar.toString())
                    .redirectErrorStream(true).redirectOutput(log.toFile());
            pb.environment().putAll(stack);
            pb.environment().put("EGRESS_HOST_ID", hostId);
            pb.environment().put("EGRESS_AGENT_PORT", Integer.toString(port));
            pb.environment().put("EGRESS_ENFORCER", "nftables");
            pb.environment().put("EGRESS_NETNS", ns);
            pb.environment().put("EGRESS_RECONCILE_INTERVAL", "60s");
            long t0 = System.nanoTime();
            Process p = pb.start();
            try {
                URI health = URI.create("http://127.0.0.1:" + port + "/actuator/health");
                long deadline = t0 + TimeUnit.SECONDS.toNanos(180);
                String body = null;
                double ms = -1;
                while (System.nanoTime() < deadline) {
                    if (!p.isAlive()) {
                        throw new IllegalStateException("the agent exited (" + p.exitValue() + "): " + tail(log));
                    }
                    body = get(health);
                    if (body != null && body.contains("\"UP\"")) {
                        ms = (System.nanoTime() - t0) / 1e6;
                        break;
                    }
                    sleep(10);
                }
                if (ms < 0) {
                    throw new IllegalStateException("the agent was not UP within 180 s: " + tail(log));
                }
                if (!body.contains(expectedHash)) {
                    throw new IllegalStateException("the agent is UP with another hash than the snapshot's " + expectedHash + ": " + body);
                }
                double heap = -1;
                String heapJson = get(URI.create("http://127.0.0.1:" + port + "/actuator/metrics/jvm.memory.used?tag=area:heap"));
                if (heapJson != null) {
                    Matcher m = Pattern.compile("\"value\"\\s*:\\s*([0-9.E+]+)").matcher(heapJson);
                    if (m.find()) {
                        heap = Double.parseDouble(m.group(1)) / (1024 * 1024);
                    }
                }
                double rss = procStatusKb(p.pid(), "VmRSS") / 1024.0;
                double peak = procStatusKb(p.pid(), "VmHWM") / 1024.0;
                String out = Files.readString(log);
                Matcher started = STARTED.matcher(out);
                double springStarted = started.find() ? Double.parseDouble(started.group(2)) : -1;
                String bootstrap = out.contains("bootstrap found the snapshot") ? "found in force, nothing applied"
                        : out.contains("bootstrap applies the snapshot") ? "applied" : "?";
                return new Run(ms, springStarted, heap, rss, peak, bootstrap);
            } finally {
                p.destroy();
                try {
                    if (!p.waitFor(15, TimeUnit.SECONDS)) {
                        p.destroyForcibly();
                        p.waitFor(5, TimeUnit.SECONDS);
                    }
                } catch (InterruptedException e) {
                    p.destroyForcibly();
                    Thread.currentThread().interrupt();
                }
                Files.deleteIfExists(log);
            }
        }

        private static String get(URI uri) {
            try {
                java.net.http.HttpResponse<String> r = HTTP.send(java.net.http.HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(2)).build(),
                        java.net.http.HttpResponse.BodyHandlers.ofString());
                return r.statusCode() == 200 ? r.body() : null; // health answers 503 while DOWN
            } catch (IOException e) {
                return null;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }

        private static long procStatusKb(long pid, String field) {
            try {
                for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
                    if (line.startsWith(field + ":")) {
                        return Long.parseLong(line.replaceAll("[^0-9]", ""));
                    }
                }
            } catch (IOException | NumberFormatException e) {
                return -1;
            }
            return -1;
        }

        private static String tail(Path log) {
            try {
                List<String> lines = Files.readAllLines(log);
                return String.join("\n", lines.subList(Math.max(0, lines.size() - 15), lines.size()));
            } catch (IOException e) {
                return "(no log)";
            }
        }

        private static void sleep(long ms) {
            try {
                Thread.sleep(ms);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
    }

    /**
     * A host with {@code rules} rules (see the class comment). {@code variant} 1 changes the port of one
     * rule of one VM, nothing else.
     */
    static SortedMap<String, Fragment> host(int rules, int variant) {
        int vms = Math.max(1, rules / RULES_PER_VM);
        int networks = (vms + VMS_PER_NETWORK - 1) / VMS_PER_NETWORK;
        SortedMap<String, Fragment> out = new TreeMap<>();
        int made = 0;
        for (int n = 0; n < networks; n++) {
            String net = String.format(Locale.ROOT, "net-%04d", n);
            List<VmAddress> addresses = new ArrayList<>();
            List<CompiledRule> list = new ArrayList<>();
            for (int v = 0; v < VMS_PER_NETWORK && n * VMS_PER_NETWORK + v < vms; v++) {
                int id = n * VMS_PER_NETWORK + v;
                String vm = net + "-vm" + v;
                addresses.add(new VmAddress(vm, String.format(Locale.ROOT, "vnet%d", id), null, "10.200." + (id / 250) + "." + (id % 250 + 1),
                        id % 4 == 0 ? "fd00:200::" + Integer.toHexString(id + 1) : null));
                for (int r = 0; r < RULES_PER_VM && made < rules; r++, made++) {
                    boolean changed = variant == 1 && n == networks / 2 && v == 0 && r == 1;
                    list.add(rule(String.format(Locale.ROOT, "%s-r%02d", vm, r), vm, r, n, changed));
                }
            }
            list.sort(java.util.Comparator.comparingInt(CompiledRule::priority).thenComparing(CompiledRule::ruleId));
            out.put(net, new Fragment(net, n % 5 == 4 ? DefaultPolicy.DENY : DefaultPolicy.ALLOW, addresses, list));
        }
        return out;
    }

    private static CompiledRule rule(String id, String vm, int r, int net, boolean changed) {
        Action deny = Action.DENY;
        List<String> vms = List.of(vm);
        IntFunction<List<Cidr>> one = k -> List.of(Cidr.parse("198.18." + (k % 256) + ".0/24"));
        return switch (r % 10) {
            case 0, 1, 2 -> new CompiledRule(id, deny, 1000, Protocol.TCP, vms, one.apply(r + net), List.of(),
                    PortRange.single(changed ? 9999 : 1 + r), null);
            case 3, 4 -> new CompiledRule(id, deny, 1000, Protocol.TCP, vms, List.of(), List.of(), new PortRange(8000 + r, 8010 + r), null);
            case 5 -> new CompiledRule(id, deny, 1000, Protocol.UDP, vms,
                    List.of(Cidr.parse("203.0.113.0/24"), Cidr.parse("198.51." + (net * 5 + r % 5) % 256 + ".0/24")),
                    List.of(), PortRange.single(53), null);
            case 6 -> new CompiledRule(id, deny, 1000, Protocol.ICMP, vms, List.of(), List.of(), null, new IcmpMatch(8, -1));
            case 7 -> new CompiledRule(id, deny, 1000, Protocol.ALL, vms, one.apply(r * 3 + net), List.of(), null, null);
            case 8 -> new CompiledRule(id, deny, 1000, Protocol.TCP, vms, List.of(Cidr.parse("100.64.0.0/10")),
                    List.of(Cidr.parse("100.64." + (r % 256) + ".0/24")), PortRange.single(443), null);
            default -> new CompiledRule(id, Action.ALLOW, 1000, Protocol.UDP, vms, List.of(), List.of(), new PortRange(5000, 5100), null);
        };
    }

    /** Untimed incremental applies before the timed ones ({@code -Dbench.incrementalWarmup}). */
    private static final int INCREMENTAL_WARMUP = Integer.getInteger("bench.incrementalWarmup", 40);

    /**
     * {@code host} with the networks whose fragment differs in {@code changed} replaced, the others
     * the same objects: what an agent's host state holds after an update of one network (it replaces
     * that network's fragment and keeps the rest), so the renderer finds them unchanged by identity.
     */
    static SortedMap<String, Fragment> oneNetworkReplaced(SortedMap<String, Fragment> host, SortedMap<String, Fragment> changed) {
        SortedMap<String, Fragment> out = new TreeMap<>(host);
        changed.forEach((n, f) -> {
            if (!f.equals(host.get(n))) {
                out.put(n, f);
            }
        });
        return out;
    }

    /** The same IPv4 rules as one flat iptables-restore ruleset: no sets, one line per rule and destination. */
    static String iptablesFlat(SortedMap<String, Fragment> host) {
        StringBuilder sb = new StringBuilder("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:EGRESS - [0:0]\n");
        sb.append("-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -j EGRESS\n");
        for (Fragment f : host.values()) {
            for (VmAddress vm : f.vms()) {
                for (CompiledRule r : f.rules()) {
                    if (!r.vmIds().contains(vm.vmId()) || r.protocol() == Protocol.ICMPV6) {
                        continue;
                    }
                    List<Cidr> dst = r.destinationCidrs().stream().filter(Cidr::isIpv4).toList();
                    if (!r.destinationCidrs().isEmpty() && dst.isEmpty()) {
                        continue;
                    }
                    List<String> targets = dst.isEmpty() ? Collections.singletonList(null) : dst.stream().map(Cidr::toString).toList();
                    String match = match(r);
                    for (String d : targets) {
                        // iptables takes one -d per rule: an exception becomes a RETURN rule in front
                        // (same load; the same meaning in ALLOW networks).
                        for (Cidr ex : r.destinationExceptCidrs()) {
                            if (ex.isIpv4()) {
                                sb.append("-A EGRESS -s ").append(vm.ipv4()).append("/32 -d ").append(ex).append(match)
                                        .append(" -j RETURN\n");
                            }
                        }
                        sb.append("-A EGRESS -s ").append(vm.ipv4()).append("/32");
                        if (d != null) {
                            sb.append(" -d ").append(d);
                        }
                        sb.append(match).append(" -m comment --comment \"r=").append(r.ruleId()).append("\" -j ")
                                .append(r.action() == Action.DENY ? "DROP" : "ACCEPT").append('\n');
                    }
                }
                sb.append("-A EGRESS -s ").append(vm.ipv4()).append("/32 -j ")
                        .append(f.defaultPolicy() == DefaultPolicy.DENY ? "DROP" : "ACCEPT").append('\n');
            }
        }
        return sb.append("COMMIT\n").toString();
    }

    private static String match(CompiledRule r) {
        StringBuilder sb = new StringBuilder();
        switch (r.protocol()) {
            case TCP, UDP -> {
                sb.append(" -p ").append(r.protocol().apiName());
                if (r.ports() != null) {
                    sb.append(" --dport ").append(r.ports().start());
                    if (!r.ports().isSingle()) {
                        sb.append(':').append(r.ports().end());
                    }
                }
            }
            case ICMP -> {
                sb.append(" -p icmp");
                if (r.icmp() != null && !r.icmp().anyType()) {
                    sb.append(" --icmp-type ").append(r.icmp().type());
                    if (!r.icmp().anyCode()) {
                        sb.append('/').append(r.icmp().code());
                    }
                }
            }
            default -> {
            }
        }
        return sb.toString();
    }

    private static int kernelRules(String script) {
        int n = 0;
        boolean inChain = false;
        for (String line : script.split("\n")) {
            String l = line.strip();
            if (line.startsWith("  chain ")) {
                inChain = true;
            } else if (line.equals("  }")) {
                inChain = false;
            } else if (inChain && !l.startsWith("comment ") && !l.startsWith("type ")) {
                n++;
            }
        }
        return n;
    }

    /** Elements of every set and map of a script (both tables'). */
    static int elements(String script) {
        int n = 0;
        boolean inObject = false;
        boolean inElements = false;
        for (String line : script.split("\n")) {
            if (line.startsWith("  set ") || line.startsWith("  map ")) {
                inObject = true;
            } else if (line.equals("  }")) {
                inObject = false;
                inElements = false;
            } else if (inObject && line.equals("    elements = {")) {
                inElements = true;
            } else if (inElements && line.equals("    }")) {
                inElements = false;
            } else if (inElements) {
                n++;
            }
        }
        return n;
    }

    private static int count(String s, String needle) {
        int n = 0;
        for (int i = s.indexOf(needle); i >= 0; i = s.indexOf(needle, i + 1)) {
            n++;
        }
        return n;
    }

    private static final double MS_PER_TICK = 1000.0 / clockTicks();

    /** CPU time (user + system) of this JVM's finished child processes, from /proc/self/stat (cutime, cstime). */
    private static double childCpuMs() {
        try {
            String stat = Files.readString(Path.of("/proc/self/stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return (Long.parseLong(f[13]) + Long.parseLong(f[14])) * MS_PER_TICK;
        } catch (Exception e) {
            return Double.NaN;
        }
    }

    private static long clockTicks() {
        NetnsTopology.Result r = NetnsTopology.exec(List.of("getconf", "CLK_TCK"), "");
        try {
            return Long.parseLong(r.stdout().strip());
        } catch (NumberFormatException e) {
            return 100;
        }
    }

    private static double ms(long nanos) {
        return nanos / 1e6;
    }

    private static double mean(List<Double> xs) {
        double sum = 0;
        for (double x : xs) {
            sum += x;
        }
        return xs.isEmpty() ? Double.NaN : sum / xs.size();
    }

    private static double median(List<Double> xs) {
        List<Double> s = new ArrayList<>(xs);
        Collections.sort(s);
        int n = s.size();
        return n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
    }

    /** Nearest-rank 99th percentile (with few runs: the slowest). */
    private static double p99(List<Double> xs) {
        List<Double> s = new ArrayList<>(xs);
        Collections.sort(s);
        return s.get(Math.min(s.size() - 1, (int) Math.ceil(0.99 * s.size()) - 1));
    }

    private static String load() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).strip();
        } catch (Exception e) {
            return "?";
        }
    }

    private static String reason() {
        String r = NetnsTopology.unavailableReason();
        if (r != null && (r.contains("root") || r.contains("'ip'") || r.contains("'nft'"))) {
            return r;
        }
        return null;
    }

    private static String which(String tool) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(dir, tool))) {
                return dir + "/" + tool;
            }
        }
        return null;
    }

    private static void must(List<String> cmd) throws EnforcementException {
        NetnsTopology.Result r = NetnsTopology.exec(cmd, "");
        if (!r.ok()) {
            throw new EnforcementException(String.join(" ", cmd) + ": " + r.stderr().strip());
        }
    }
}
