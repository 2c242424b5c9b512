package io.egressctl.cli.chaos;

import io.egressctl.cli.Env;
import io.egressctl.cli.api.ApiClient;
import io.egressctl.cli.audit.AuditCommand;
import io.egressctl.events.HostUpdate;
import io.egressctl.events.VmAddress;
import io.egressctl.events.CompiledRule;
import io.egressctl.schemas.view.RedisKeys;
import redis.clients.jedis.UnifiedJedis;
import tools.jackson.databind.JsonNode;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * The fault suite: for each fault, a bounded burst of changes through the REST API (rule creates and
 * deletes, VM placements, each with an idempotency key and retried with the same key until the API
 * answers 2xx or the change's time is up) on a network of its own: a third before the fault, a third
 * while the component is killed and restarted, a third once it is back; then a bounded wait until everything accepted is in the final state and every host applied
 * what is expected of it; then {@code audit verify --all} and {@code audit replay-check}. One row per
 * fault, a check of every round again after the last fault, and the summary line
 * {@code summary: faults=N lost=L duplicated=D max_converge_s=X}.
 */
public final class ChaosSuite {

    /**
     * Settings.
     *
     * @param faults          the faults, in order
     * @param changes         changes per fault
     * @param convergeTimeout bound of the wait for convergence after each fault
     * @param changeTimeout   how long one change is retried (connection refused, 5xx, 409 in progress)
     * @param paceMillis      pause between two changes of a burst
     * @param checks          run {@code audit verify --all} and {@code audit replay-check} after each fault
     * @param ownScope        narrow those checks to the suite's hosts ({@code --host}) and its round's network
     *                        ({@code --network}), for a stack that other tests share
     */
    public record Options(List<String> faults, int changes, Duration convergeTimeout, Duration changeTimeout, long paceMillis,
                          boolean checks, boolean ownScope) {
    }

    /**
     * One fault's figures.
     *
     * @param converged false when the wait ran out ({@code convergeSeconds} is then the timeout)
     * @param error     what went wrong beside the figures (a round that could not be set up, a fault that failed), or null
     */
    public record Row(String fault, int accepted, int refused, int lost, int duplicated, double convergeSeconds, boolean converged,
                      String verify, String replay, String error) {

        boolean failed() {
            return lost > 0 || duplicated > 0 || !converged || error != null || !verify.equals("ok") && !verify.equals("-")
                    || !replay.equals("ok") && !replay.equals("-");
        }
    }

    /** The whole run: the rows, the final check over every round, and the summary. */
    public record Result(List<Row> rows, int finalLost, int finalDuplicated, int lost, int duplicated, double maxConvergeSeconds) {

        public String summary() {
            return String.format(Locale.ROOT, "summary: faults=%d lost=%d duplicated=%d max_converge_s=%.1f", rows.size(), lost,
                    duplicated, maxConvergeSeconds);
        }

        /** 0 when nothing was lost or duplicated and every check passed, else 1. */
        public int exitCode() {
            return lost > 0 || duplicated > 0 || rows.stream().anyMatch(Row::failed) ? 1 : 0;
        }
    }

    private static final String HEADER = String.format(Locale.ROOT, "%-15s %8s %7s %5s %10s %10s %-8s %-12s", "fault", "accepted",
            "refused", "lost", "duplicated", "converge_s", "verify", "replay-check");

    private final Env env;
    private final FaultInjector faults;
    private final Options o;
    private final PrintStream out;
    private final PrintStream err;
    private final ApiClient api;
    private final String run = HexFormat.of().formatHex(ByteBuffer.allocate(4).putInt(ThreadLocalRandom.current().nextInt()).array())
            .substring(0, 4);
    private final List<Round> rounds = new ArrayList<>();

    public ChaosSuite(Env env, FaultInjector faults, Options o, PrintStream out, PrintStream err) {
        this.env = env;
        this.faults = faults;
        this.o = o;
        this.out = out;
        this.err = err;
        this.api = new ApiClient(env.apiUrl());
    }

    /** Runs every fault in turn; prints the table as it goes and returns the figures. */
    public Result run() {
        out.printf(Locale.ROOT, "chaos %s: %d fault(s), %d changes each, converge timeout %d s, hosts %s%n", run, o.faults().size(),
                o.changes(), o.convergeTimeout().toSeconds(), String.join(" ", env.hosts()));
        out.println(HEADER);
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < o.faults().size(); i++) {
            Round r = new Round(i, o.faults().get(i));
            rounds.add(r);
            Row row = r.play();
            rows.add(row);
            out.println(line(row));
            r.details().forEach(d -> out.println("    " + d));
            out.flush();
        }
        // After the last fault: every round's changes again, as the state is now.
        Tally end = tally();
        List<String> since = new ArrayList<>();
        for (Ledger.Finding f : end.lost()) {
            if (countedLost.add(f.change().changeId()) && since.size() < 10) {
                since.add("lost after its row: " + f);
            }
        }
        end.duplicates().keySet().forEach(countedDuplicates::add);
        out.printf(Locale.ROOT, "final state (every round again, after the last fault): lost=%d duplicated=%d%n", end.lost().size(),
                end.duplicated());
        since.forEach(d -> out.println("    " + d));
        double max = rows.stream().mapToDouble(Row::convergeSeconds).max().orElse(0);
        int duplicated = Math.max(rows.stream().mapToInt(Row::duplicated).sum(), end.duplicated());
        Result result = new Result(rows, end.lost().size(), end.duplicated(), countedLost.size(), duplicated, max);
        out.println(result.summary());
        out.flush();
        return result;
    }

    /** Changes lost (ids) and duplicated keys already counted in a row: a row counts only what is new. */
    private final Set<String> countedLost = new TreeSet<>();
    private final Set<String> countedDuplicates = new TreeSet<>();

    /**
     * Every round so far against the state now.
     *
     * @param lost       accepted changes (of any round) whose effect is missing, each named with its round
     * @param duplicated extra copies over every round
     * @param duplicates "round/key" to the rule ids carrying that key
     * @param unacknowledged rules in the views whose request never got a 2xx
     */
    record Tally(List<Ledger.Finding> lost, int duplicated, Map<String, List<String>> duplicates, int unacknowledged) {
    }

    private Tally tally() {
        List<Ledger.Finding> lost = new ArrayList<>();
        Map<String, List<String>> dups = new TreeMap<>();
        int duplicated = 0;
        int unacknowledged = 0;
        for (Round r : rounds) {
            if (r.ledger == null) {
                continue;
            }
            Ledger.Outcome oc = r.ledger.evaluate(observe(r.network, r.ledger));
            for (Ledger.Finding f : oc.lost()) {
                lost.add(new Ledger.Finding(f.change(), f.reason() + " [round " + r.index + " " + r.fault + ", network " + r.network + "]"));
            }
            duplicated += oc.duplicated();
            oc.duplicates().forEach((k, ids) -> dups.put(k, ids));
            unacknowledged += oc.unacknowledged();
        }
        return new Tally(lost, duplicated, dups, unacknowledged);
    }

    static String line(Row r) {
        String converge = r.converged() ? String.format(Locale.ROOT, "%.1f", r.convergeSeconds())
                : String.format(Locale.ROOT, ">%.0f", r.convergeSeconds());
        String s = String.format(Locale.ROOT, "%-15s %8d %7d %5d %10d %10s %-8s %-12s", r.fault(), r.accepted(), r.refused(), r.lost(),
                r.duplicated(), converge, r.verify(), r.replay());
        return r.error() == null ? s : s + "  error: " + r.error();
    }

    // ---- one fault ---------------------------------------------------------------------------------

    private final class Round {
        final int index;
        final String fault;
        final String network;
        final String cidrPrefix;
        Ledger ledger;
        List<Ledger.Finding> lost = List.of();
        int duplicated;
        int refused;
        final List<String> refusals = new ArrayList<>();
        final List<String> notes = new ArrayList<>();
        Tally last;
        Map<String, List<String>> newDuplicates = Map.of();

        Round(int index, String fault) {
            this.index = index;
            this.fault = fault;
            this.network = "chaos-" + run + "-" + index + "-" + fault;
            int b = ThreadLocalRandom.current().nextInt(256);
            this.cidrPrefix = "10." + (200 + index % 50) + "." + b + ".";
        }

        Row play() {
            String error = null;
            double seconds;
            boolean converged = false;
            try {
                setUp();
            } catch (RuntimeException e) {
                return new Row(fault, 0, 0, 0, 0, 0, false, "-", "-", "set-up failed: " + e.getMessage());
            }
            CountDownLatch third = new CountDownLatch(1);
            CountDownLatch faultDone = new CountDownLatch(1);
            long[] burstEnd = {0};
            Thread burst = new Thread(() -> {
                try {
                    burst(third, faultDone);
                } finally {
                    third.countDown();
                    burstEnd[0] = System.nanoTime();
                }
            }, "chaos-burst-" + fault);
            burst.setDaemon(true);
            burst.start();
            long faultEnd;
            try {
                await(third);
                faults.inject(fault);
            } catch (Exception e) {
                error = "fault failed: " + e.getMessage();
            } finally {
                faultDone.countDown();
            }
            faultEnd = System.nanoTime();
            long burstBound = o.changes() * (o.paceMillis() + o.changeTimeout().toMillis()) + 60_000;
            join(burst, burstBound);
            if (burst.isAlive()) {
                error = (error == null ? "" : error + "; ") + "the burst did not end within " + burstBound / 1000 + " s";
            }
            long t0 = Math.max(faultEnd, burstEnd[0] == 0 ? System.nanoTime() : burstEnd[0]);
            long deadline = t0 + o.convergeTimeout().toNanos();
            // Converged: every accepted change of every round so far is in the final state, and every host
            // applied what its snapshot expects. A fault can lose an earlier round's state (Redis), so all count.
            Tally now;
            while (true) {
                now = tally();
                if (now.lost().isEmpty() && hostsConverged()) {
                    converged = true;
                    break;
                }
                if (System.nanoTime() > deadline) {
                    break;
                }
                sleep(1000);
            }
            seconds = converged ? (System.nanoTime() - t0) / 1e9 : o.convergeTimeout().toSeconds();
            last = now;
            lost = now.lost().stream().filter(f -> countedLost.add(f.change().changeId())).toList();
            newDuplicates = new TreeMap<>();
            for (Map.Entry<String, List<String>> e : now.duplicates().entrySet()) {
                if (countedDuplicates.add(e.getKey())) {
                    newDuplicates.put(e.getKey(), e.getValue());
                }
            }
            duplicated = newDuplicates.values().stream().mapToInt(ids -> ids.size() - 1).sum();
            String verify = "-";
            String replay = "-";
            if (o.checks() && o.ownScope()) {
                List<String> v = new ArrayList<>(List.of("verify", "--all"));
                env.hosts().forEach(h -> v.addAll(List.of("--host", h)));
                verify = check(v.toArray(String[]::new));
                replay = check("replay-check", "--network", network);
            } else if (o.checks()) {
                verify = check("verify", "--all");
                replay = check("replay-check");
            }
            try {
                faults.after(fault);
            } catch (Exception e) {
                error = (error == null ? "" : error + "; ") + "after the fault: " + e.getMessage();
            }
            return new Row(fault, ledger.accepted().size(), refused, lost.size(), duplicated, seconds, converged, verify, replay, error);
        }

        List<String> details() {
            List<String> d = new ArrayList<>(notes);
            lost.stream().limit(10).forEach(f -> d.add("lost: " + f));
            if (lost.size() > 10) {
                d.add("lost: ... and " + (lost.size() - 10) + " more");
            }
            newDuplicates.forEach((k, ids) -> d.add("duplicated: key " + k + " in rules " + ids));
            if (last != null && last.unacknowledged() > 0) {
                d.add("note: " + last.unacknowledged() + " rule(s) in the views whose request never got a 2xx (published before the answer was lost)");
            }
            refusals.stream().limit(5).forEach(r -> d.add("refused: " + r));
            return d;
        }

        private void setUp() {
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("networkId", network);
            body.put("guestCidr", cidrPrefix + "0/24");
            Sent created = send("POST", "/api/v1/networks?wait=compiled&timeout=30s", env.apiKey(), body, key("net"), false);
            if (!created.accepted()) {
                throw new IllegalStateException("create network " + network + ": " + created.detail());
            }
            Map<String, String> initial = new TreeMap<>();
            // Two VMs before the burst: one on the first host, one on the host whose agent the agent fault kills.
            List<String> hosts = new ArrayList<>(new LinkedHashSet<>(List.of(env.hosts().get(0), faults.agentHost(env.hosts()))));
            for (int v = 0; v < hosts.size(); v++) {
                String vm = "vm" + v;
                Sent p = send("PUT", "/api/v1/networks/" + network + "/placements/" + vm + "?wait=applied&timeout=30s",
                        env.operatorKey(), placement(hosts.get(v), v), key("vm" + v), true);
                if (!p.accepted()) {
                    throw new IllegalStateException("place " + vm + " on " + hosts.get(v) + ": " + p.detail());
                }
                initial.put(vm, hosts.get(v));
            }
            ledger = new Ledger(initial);
        }

        private Map<String, Object> placement(String host, int n) {
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("hostId", host);
            // At most 15 characters, unique per host: run, round and VM.
            p.put("interfaceName", "x" + run + "r" + index + "v" + n);
            p.put("ipv4", cidrPrefix + (10 + n));
            return p;
        }

        private String key(String what) {
            return "chaos-" + run + "-" + index + "-" + what;
        }

        /**
         * The changes of the round: the first third before the fault, the second while it happens (the fault
         * starts when it begins), the last third once the component is back.
         */
        private void burst(CountDownLatch third, CountDownLatch faultDone) {
            int at = Math.max(1, o.changes() / 3);
            int after = Math.max(at, 2 * o.changes() / 3);
            List<String> hosts = env.hosts();
            int placed = 2;
            for (int step = 0; step < o.changes(); step++) {
                final int i = step;
                if (i == at) {
                    third.countDown();
                }
                if (i == after) {
                    try {
                        faultDone.await(15, TimeUnit.MINUTES);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return;
                    }
                }
                String k = key("c" + i);
                List<String> live = ledger.liveRules();
                if (i % 5 == 3 && live.size() > 1) {
                    String ruleId = live.get(0);
                    Sent r = send("DELETE", "/api/v1/networks/" + network + "/egress-rules/" + ruleId, env.apiKey(), null, k, true);
                    record(r, i, k, () -> new Ledger.Change(i, Ledger.Kind.DELETE, k, ruleId, null, null, r.changeId()));
                } else if (i % 5 == 4) {
                    int n = placed++;
                    String vm = "vm" + n;
                    String host = hosts.get(i % hosts.size());
                    Sent r = send("PUT", "/api/v1/networks/" + network + "/placements/" + vm, env.operatorKey(), placement(host, n), k, true);
                    record(r, i, k, () -> new Ledger.Change(i, Ledger.Kind.PLACE, k, null, vm, host, r.changeId()));
                } else {
                    Map<String, Object> rule = new LinkedHashMap<>();
                    rule.put("protocol", i % 2 == 0 ? "tcp" : "udp");
                    rule.put("startPort", 20000 + i);
                    rule.put("description", Ledger.KEY_MARK + k);
                    Sent r = send("POST", "/api/v1/networks/" + network + "/egress-rules", env.apiKey(), rule, k, false);
                    record(r, i, k, () -> new Ledger.Change(i, Ledger.Kind.CREATE, k, r.ruleId(), null, null, r.changeId()));
                }
                sleep(o.paceMillis());
            }
        }

        private void record(Sent r, int i, String k, java.util.function.Supplier<Ledger.Change> change) {
            if (r.accepted()) {
                ledger.accept(change.get());
            } else {
                synchronized (refusals) {
                    refused++;
                    refusals.add("#" + i + " " + k + ": " + r.detail());
                }
            }
        }
    }

    // ---- the API, with retries --------------------------------------------------------------------

    /** How a change ended: accepted (2xx) with the API's answer, or not, with the last answer or error. */
    record Sent(boolean accepted, String changeId, String ruleId, String detail) {
    }

    /**
     * Sends one change with its idempotency key until the API answers 2xx or a final 4xx, or the change's
     * time is up. No answer, 5xx, 409 REQUEST_IN_PROGRESS and (for deletes and placements, whose target the
     * view may not show yet) 404 for up to 15 s are retried with the same key.
     */
    Sent send(String method, String path, String apiKey, Object body, String key, boolean retry404) {
        long deadline = System.nanoTime() + o.changeTimeout().toNanos();
        long notFoundUntil = 0;
        String last = "no attempt";
        while (true) {
            try {
                ApiClient.Response r = api.send(method, path, apiKey, body, Map.of("Idempotency-Key", key));
                int s = r.status();
                String code = r.text("code");
                if (s >= 200 && s < 300) {
                    return new Sent(true, r.text("changeId"), r.text("ruleId"), null);
                }
                last = s + " " + (code == null ? "" : code + " ") + (r.text("detail") == null ? "" : r.text("detail"));
                boolean transient_ = s >= 500 || s == 409 && "REQUEST_IN_PROGRESS".equals(code) || s == 429;
                if (s == 404 && retry404) {
                    if (notFoundUntil == 0) {
                        notFoundUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
                    }
                    transient_ = System.nanoTime() < notFoundUntil;
                }
                if (!transient_) {
                    return new Sent(false, null, null, last.strip());
                }
            } catch (IllegalStateException e) {
                last = "no answer: " + e.getMessage();
            }
            if (System.nanoTime() > deadline) {
                return new Sent(false, null, null, "gave up after " + o.changeTimeout().toSeconds() + " s: " + last.strip());
            }
            sleep(500);
        }
    }

    // ---- the final state -------------------------------------------------------------------------

    /** The network's view (API) and the network's fragment in the snapshot of every host of the ledger. */
    Ledger.Observed observe(String network, Ledger ledger) {
        Map<String, String> rules = new TreeMap<>();
        Map<String, String> vms = new TreeMap<>();
        boolean found;
        try {
            ApiClient.Response n = api.get("/api/v1/networks/" + network, env.apiKey());
            found = n.status() == 200;
            if (found) {
                JsonNode v = n.body().path("vms");
                for (String vm : v.propertyNames()) {
                    vms.put(vm, v.path(vm).path("hostId").asString());
                }
                ApiClient.Response list = api.get("/api/v1/networks/" + network + "/egress-rules", env.apiKey());
                if (list.status() == 200) {
                    for (JsonNode rule : list.body()) {
                        rules.put(rule.path("ruleId").asString(), rule.path("description").asString(""));
                    }
                } else {
                    found = false;
                }
            }
        } catch (IllegalStateException e) {
            found = false;
        }
        Map<String, Set<String>> fragmentRules = new TreeMap<>();
        Map<String, Set<String>> fragmentVms = new TreeMap<>();
        Set<String> hosts = new TreeSet<>(ledger.expectedVms().values());
        hosts.addAll(env.hosts());
        try (UnifiedJedis redis = io.egressctl.schemas.redis.RedisClients.create(env.redisUrl())) {
            for (String h : hosts) {
                byte[] raw = redis.hget(RedisKeys.hostFragments(h).getBytes(StandardCharsets.UTF_8), network.getBytes(StandardCharsets.UTF_8));
                if (raw == null) {
                    continue;
                }
                HostUpdate u = HostUpdate.fromByteBuffer(ByteBuffer.wrap(raw));
                if (u.getTombstone() || u.getFragment() == null) {
                    continue;
                }
                Set<String> r = new TreeSet<>();
                for (CompiledRule cr : u.getFragment().getRules()) {
                    r.add(cr.getRuleId());
                }
                Set<String> v = new TreeSet<>();
                for (VmAddress a : u.getFragment().getVms()) {
                    v.add(a.getVmId());
                }
                fragmentRules.put(h, r);
                fragmentVms.put(h, v);
            }
        } catch (Exception e) {
            // Redis down or emptied: no snapshot to show, which the ledger reads as missing effects.
        }
        return new Ledger.Observed(found, rules, vms, fragmentRules, fragmentVms);
    }

    /** Every demo host applied what its snapshot expects ({@code audit verify --host ...} exits 0). */
    private boolean hostsConverged() {
        List<String> args = new ArrayList<>(List.of("verify"));
        env.hosts().forEach(h -> {
            args.add("--host");
            args.add(h);
        });
        PrintStream sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        return AuditCommand.run(env, args.toArray(String[]::new), sink, sink, Clock.systemUTC(), false) == 0;
    }

    /** Runs an audit command in this JVM; "ok" on exit 0, else "FAIL" with its output shown on err. */
    private String check(String... args) {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(buf, true, StandardCharsets.UTF_8);
        int code = AuditCommand.run(env, args, ps, ps, Clock.systemUTC(), false);
        if (code == 0) {
            return "ok";
        }
        String text = buf.toString(StandardCharsets.UTF_8);
        List<String> lines = text.lines().toList();
        err.println("  audit " + String.join(" ", args) + " exited " + code + ":");
        lines.stream().limit(25).forEach(l -> err.println("    " + l));
        if (lines.size() > 25) {
            err.println("    ... (" + (lines.size() - 25) + " more lines)");
        }
        return "FAIL(" + code + ")";
    }

    private static void await(CountDownLatch latch) throws InterruptedException {
        latch.await(10, TimeUnit.MINUTES);
    }

    private static void join(Thread t, long millis) {
        try {
            t.join(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }
}
