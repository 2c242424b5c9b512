package io.egressctl.cli.bench;

import io.egressctl.cli.Env;
import io.egressctl.cli.audit.Logs;
import io.egressctl.cli.api.ApiClient;
import io.egressctl.cli.bench.ApiBench.Stats;
import io.egressctl.schemas.serde.Topics;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import tools.jackson.databind.JsonNode;

import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * {@code egressctl bench propagation}: how soon a change made through the API is enforced on a fleet of
 * hosts, on the running control plane (rule-service, compiler-service, Kafka, the schema registry and
 * Redis of {@code ./egressctl up}).
 *
 * <ol>
 *   <li>Builds a cloud of {@code --hosts} hosts ({@link FleetCloud}: {@code --vms-per-host} VMs each,
 *       {@code --networks} networks of {@code --rules-per-network} rules, and three networks the measured
 *       changes go to) straight into the network events log, as upstream producers write it, and waits
 *       for the compiler.</li>
 *   <li>Starts the fleet ({@link FleetProcesses}): {@code --fleet-jvms} JVMs running one real agent sync
 *       loop per host (bootstrap from Redis, its own partition, version and signature checks, reports),
 *       each with its own consumer and report producer, enforcing with the dry-run enforcer; waits until
 *       every host has enforced its snapshot.</li>
 *   <li>Three scenarios, each {@code --warmup} uncounted changes then {@code --changes} measured ones,
 *       one at a time, each a rule create through the API with {@code wait=applied}: a change touching
 *       one host, one touching 10% of the hosts, one to a network with a VM on every host.</li>
 *   <li>For each change, from the API call: the last affected host's ACK (its report's record
 *       timestamp) and the answer to the waiting caller; the stages of the last host's path from the
 *       records' timestamps (API call, rule event in the log, the compiler's host update in the log, the
 *       agent's poll handing it over, the agent's ACK in the log, the answer); bytes each agent fetched
 *       per change (its consumer's {@code bytes-consumed-total}) and how much of it was its own; CPU per
 *       change of every process; and, from the host updates the run wrote, what each agent would fetch
 *       at other partition counts of egress.host-updates.</li>
 *   <li>Kafka's produce-to-consume floor in the same run ({@link KafkaFloor}); then the cloud's
 *       networks are deleted (through the log) and the fleet stopped.</li>
 * </ol>
 *
 * With {@code --baseline B} smaller than {@code --hosts} the whole run is made at B hosts first, and the
 * figures at {@code --hosts} are divided by those at B. Ends with
 * {@code summary: one_host_p50_ms=… one_host_p99_ms=… all_hosts_p99_ms=… ratio_1000_100=…} (the figures
 * of the largest fleet, API call to the last ACK; the ratio is the one-host change's p50 at
 * {@code --hosts} over its p50 at the baseline).
 */
public final class PropagationBench {

    private PropagationBench() {
    }

    static final String USAGE = "usage: egressctl bench propagation [--hosts 1000] [--baseline 100] [--vms-per-host 20] [--networks 2000] "
            + "[--rules-per-network 25] [--changes 30] [--warmup 5] [--records 500] [--fleet-jvms 1] [--reconcile-seconds 60] "
            + "[--idle-seconds 5]";

    public static int run(Env env, String[] args) {
        return run(env, args, System.out, System.err);
    }

    static int run(Env env, String[] args, PrintStream out, PrintStream err) {
        Logs.quietKafka();
        Map<String, Integer> o;
        try {
            o = options(args);
        } catch (IllegalArgumentException e) {
            err.println("bench propagation: " + e.getMessage());
            err.println(USAGE);
            return 2;
        }
        String classpath = System.getenv("EGRESS_FLEET_CLASSPATH");
        if (classpath == null || classpath.isBlank()) {
            err.println("bench propagation: EGRESS_FLEET_CLASSPATH is not set (the host-agent classpath the fleet runs on): "
                    + "run it as ./egressctl bench propagation");
            return 2;
        }
        if (env.apiKey() == null || env.operatorKey() == null) {
            err.println("bench propagation: EGRESS_API_KEY and EGRESS_OPERATOR_KEY are not set: run ./egressctl up, then "
                    + "./egressctl bench propagation");
            return 2;
        }
        String down = notRunning(env);
        if (down != null) {
            err.println("bench propagation: the control plane is not running (" + down + "): ./egressctl up first");
            return 2;
        }
        try {
            List<Integer> sizes = o.get("baseline") < o.get("hosts") ? List.of(o.get("baseline"), o.get("hosts")) : List.of(o.get("hosts"));
            List<SizeResult> results = new ArrayList<>();
            for (int n : sizes) {
                results.add(new SizeRun(env, o, n, classpath, out).run());
            }
            return report(results, out);
        } catch (RuntimeException | IOException e) {
            err.println("bench propagation: error: " + e.getMessage());
            return 4;
        }
    }

    static Map<String, Integer> options(String[] args) {
        Map<String, Integer> d = new LinkedHashMap<>();
        d.put("hosts", 1000);
        d.put("baseline", 100);
        d.put("vms-per-host", 20);
        d.put("networks", 2000);
        d.put("rules-per-network", 25);
        d.put("changes", 30);
        d.put("warmup", 5);
        d.put("records", 500);
        d.put("fleet-jvms", 1);
        // The drift check (egress.agent.reconcile-interval, 5 s deployed) is off the change path and runs on
        // each host's own CPU; a fleet of 1,000 in one machine would pay 200 of them a second.
        d.put("reconcile-seconds", 60);
        d.put("idle-seconds", 5);
        Map<String, Integer> o = BenchOptions.parse(args, d);
        if (o.get("hosts") > 5000) {
            throw new IllegalArgumentException("--hosts is at most 5000 on one machine");
        }
        if (o.get("changes") > 500) {
            throw new IllegalArgumentException("--changes is at most 500 per scenario");
        }
        if (o.get("warmup") > 100) {
            throw new IllegalArgumentException("--warmup is at most 100");
        }
        if (o.get("vms-per-host") < 3 || o.get("vms-per-host") > 100) {
            throw new IllegalArgumentException("--vms-per-host must be between 3 and 100");
        }
        if (o.get("rules-per-network") > 500) {
            throw new IllegalArgumentException("--rules-per-network is at most 500");
        }
        if (o.get("networks") > 20_000) {
            throw new IllegalArgumentException("--networks is at most 20000");
        }
        if (o.get("fleet-jvms") > 16) {
            throw new IllegalArgumentException("--fleet-jvms is at most 16");
        }
        if (o.get("idle-seconds") > 60 || o.get("reconcile-seconds") > 3600) {
            throw new IllegalArgumentException("--idle-seconds is at most 60, --reconcile-seconds at most 3600");
        }
        return o;
    }

    /** Why the control plane cannot be used (the API's health, Kafka, the compiler's pid), or null. */
    private static String notRunning(Env env) {
        try {
            ApiClient.Response r = new ApiClient(env.apiUrl()).get("/actuator/health", null);
            if (r.status() != 200) {
                return "rule-service at " + env.apiUrl() + " answers " + r.status();
            }
        } catch (RuntimeException e) {
            return "rule-service at " + env.apiUrl() + ": " + e.getMessage();
        }
        try (Admin admin = Admin.create(io.egressctl.schemas.serde.KafkaDefaults.client(env.kafkaBootstrap(),
                AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 20_000, AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 20_000))) {
            admin.describeCluster().nodes().get(25, TimeUnit.SECONDS);
        } catch (Exception e) {
            return "Kafka at " + env.kafkaBootstrap() + " does not answer within 25 s: " + e;
        }
        Long compiler = pid("compiler-service");
        if (compiler == null || ProcessHandle.of(compiler).map(ProcessHandle::isAlive).orElse(false) == Boolean.FALSE) {
            return "compiler-service has no live process in " + home().resolve("pids");
        }
        return null;
    }

    static Path home() {
        String h = System.getenv("EGRESS_HOME");
        return Path.of(h == null ? "target/egressctl" : h);
    }

    /** The pid in {@code $EGRESS_HOME/pids/<name>.pid}, or null. */
    static Long pid(String name) {
        try {
            return Long.parseLong(Files.readString(home().resolve("pids").resolve(name + ".pid")).trim());
        } catch (IOException | NumberFormatException e) {
            return null;
        }
    }

    /** The figures of one scenario at one fleet size. */
    record ScenarioResult(String name, int hosts, Stats lastAck, Stats answered, int incomplete, Map<String, Stats> stages,
                          Stats updateSpread, Stats ackSpread, double fetchedPerAgent, double ownPerAgent,
                          Map<String, Double> cpuMsPerChange, List<String> fanout) {
    }

    /** The figures of one fleet size. */
    record SizeResult(int hosts, int partitions, List<ScenarioResult> scenarios, Stats floor, Map<String, Double> idleCpuPct,
                      double load) {

        ScenarioResult scenario(String name) {
            return scenarios.stream().filter(s -> s.name().equals(name)).findFirst().orElseThrow();
        }
    }

    static final List<String> STAGES = List.of("api->event", "event->update", "update->received", "received->ack", "ack->answer");

    private static int report(List<SizeResult> results, PrintStream out) {
        SizeResult big = results.get(results.size() - 1);
        SizeResult small = results.size() > 1 ? results.get(0) : null;
        int incomplete = 0;
        for (SizeResult r : results) {
            for (ScenarioResult s : r.scenarios()) {
                incomplete += s.incomplete();
            }
        }
        double ratio = Double.NaN;
        if (small != null) {
            out.printf(Locale.ROOT, "%n=== %d hosts over %d hosts (API call -> last ACK) ===%n", big.hosts(), small.hosts());
            for (ScenarioResult s : big.scenarios()) {
                ScenarioResult b = small.scenario(s.name());
                out.printf(Locale.ROOT, "  %-9s p50 %7.1f / %7.1f ms = %5.2f   p99 %7.1f / %7.1f ms = %5.2f%n", s.name(),
                        s.lastAck().p50(), b.lastAck().p50(), s.lastAck().p50() / b.lastAck().p50(),
                        s.lastAck().p99(), b.lastAck().p99(), s.lastAck().p99() / b.lastAck().p99());
            }
            ratio = big.scenario("one-host").lastAck().p50() / small.scenario("one-host").lastAck().p50();
            out.printf(Locale.ROOT, "  ratio_1000_100 below: the one-host change's p50 at %d hosts over its p50 at %d hosts%n",
                    big.hosts(), small.hosts());
        }
        out.printf(Locale.ROOT, "machine: %d cores, load average %.2f at the end%n", Runtime.getRuntime().availableProcessors(),
                ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
        out.printf(Locale.ROOT, "summary: one_host_p50_ms=%.1f one_host_p99_ms=%.1f all_hosts_p99_ms=%.1f ratio_1000_100=%s%n",
                big.scenario("one-host").lastAck().p50(), big.scenario("one-host").lastAck().p99(),
                big.scenario("all-hosts").lastAck().p99(), Double.isNaN(ratio) ? "n/a" : String.format(Locale.ROOT, "%.2f", ratio));
        return incomplete == 0 ? 0 : 1;
    }

    /** One fleet size: the cloud, the fleet, the three scenarios, the floor. */
    private static final class SizeRun {
        private final Env env;
        private final Map<String, Integer> o;
        private final int hosts;
        private final String classpath;
        private final PrintStream out;
        private final ApiClient api;
        private final String suffix = HexFormat.of().formatHex(ByteBuffer.allocate(3).put((byte) ThreadLocalRandom.current().nextInt())
                .putShort((short) ThreadLocalRandom.current().nextInt()).array());
        private final Path dir;

        SizeRun(Env env, Map<String, Integer> o, int hosts, String classpath, PrintStream out) {
            this.env = env;
            this.o = o;
            this.hosts = hosts;
            this.classpath = classpath;
            this.out = out;
            this.api = new ApiClient(env.apiUrl());
            this.dir = home().resolve("bench").resolve("propagation-" + suffix);
        }

        SizeResult run() throws IOException {
            FleetCloud cloud = new FleetCloud("pb" + suffix + "x" + hosts, "demo", hosts, o.get("vms-per-host"), o.get("networks"),
                    o.get("rules-per-network"));
            out.printf(Locale.ROOT, "%n=== bench propagation: %d hosts x %d VMs, %d networks x %d rules (cloud %s) ===%n", hosts,
                    o.get("vms-per-host"), o.get("networks"), o.get("rules-per-network"), cloud.prefix);
            try {
                cloud.load(env.kafkaBootstrap(), env.schemaRegistryUrl(), env.redisUrl(), 900, out);
                return measure(cloud);
            } finally {
                if (!unloaded) {
                    unload(cloud);
                }
            }
        }

        private boolean unloaded;

        private void unload(FleetCloud cloud) {
            unloaded = true;
            try {
                cloud.unload(env.kafkaBootstrap(), env.schemaRegistryUrl());
                out.printf(Locale.ROOT, "  deleted the cloud's %d networks (NETWORK_DELETED through the log)%n", cloud.networks.size() + 3);
            } catch (RuntimeException e) {
                out.println("  cleanup: could not delete the cloud's networks: " + e.getMessage());
            }
        }

        private SizeResult measure(FleetCloud cloud) throws IOException {
            List<String> javaOpts = List.of(System.getenv().getOrDefault("EGRESS_FLEET_JAVA_OPTS",
                    "-XX:+UseSerialGC -Xms256m -Xmx3g -Xss512k").split("\\s+"));
            List<String> opts = new ArrayList<>(javaOpts);
            String logback = System.getenv("EGRESS_FLEET_LOGBACK");
            if (logback != null) {
                opts.add("-Dlogback.configurationFile=" + logback);
            }
            long t0 = System.nanoTime();
            try (FleetProcesses fleet = new FleetProcesses(classpath, opts, cloud.hosts, o.get("fleet-jvms"), dir,
                    o.get("reconcile-seconds"), 600);
                 LogTaps taps = new LogTaps(env.kafkaBootstrap(), env.schemaRegistryUrl())) {
                out.printf(Locale.ROOT, "  fleet: %d agents in %d JVM(s) enforced their snapshots in %.1f s; egress.host-updates has %d "
                        + "partitions (%.1f hosts each on average)%n", hosts, o.get("fleet-jvms"), (System.nanoTime() - t0) / 1e9,
                        taps.hostUpdatePartitions(), hosts / (double) taps.hostUpdatePartitions());
                FleetCloud.sleep(3000); // the compiler folds the bootstrap reports
                Map<String, Long> pids = pids(fleet);
                Map<String, Double> c0 = cpu(pids);
                long w0 = System.nanoTime();
                FleetCloud.sleep(o.get("idle-seconds") * 1000L);
                Map<String, Double> idle = rate(c0, cpu(pids), (System.nanoTime() - w0) / 1e9);
                out.printf(Locale.ROOT, "  idle, %% of one core: %s%n", format(idle, "%.1f"));
                List<ScenarioResult> scenarios = new ArrayList<>();
                for (String name : List.of("one-host", "10%-hosts", "all-hosts")) {
                    ScenarioResult r = scenario(name, cloud, fleet, taps, pids);
                    scenarios.add(r);
                    // At once, so that a run cut short keeps what it measured.
                    out.printf(Locale.ROOT, "    API call -> last ACK: %s (load average %.2f)%n", r.lastAck().line(),
                            ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
                }
                Stats floor = KafkaFloor.measure(env.kafkaBootstrap(), suffix, o.get("records"), Math.min(o.get("warmup") * 10, 100), out);
                out.printf(Locale.ROOT, "  kafka produce->consume floor (acks=all, linger.ms=0, one record at a time): %s%n", floor.line());
                double load = ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
                printSize(scenarios, floor, load);
                SizeResult result = new SizeResult(hosts, taps.hostUpdatePartitions(), scenarios, floor, idle, load);
                // The networks go while the fleet still runs, so each host reports holding nothing before it stops.
                unload(cloud);
                long u0 = System.nanoTime();
                List<String> holding = cloud.awaitEmpty(env.redisUrl(), 120);
                if (holding.isEmpty()) {
                    out.printf(Locale.ROOT, "  every host acknowledged the deletion (an empty ruleset) in %.1f s%n", (System.nanoTime() - u0) / 1e9);
                } else {
                    out.printf(Locale.ROOT, "  cleanup: %d of %d hosts did not report an empty ruleset within 120 s (%s%s): audit verify lists them%n",
                            holding.size(), hosts, String.join(", ", holding.subList(0, Math.min(5, holding.size()))),
                            holding.size() > 5 ? ", ..." : "");
                }
                return result;
            }
        }

        private Map<String, Long> pids(FleetProcesses fleet) {
            Map<String, Long> pids = new LinkedHashMap<>();
            for (String name : List.of("rule-service", "compiler-service", "kafka", "registry", "redis")) {
                Long p = pid(name);
                if (p != null) {
                    pids.put(name, p);
                }
            }
            List<Long> f = fleet.pids();
            for (int k = 0; k < f.size(); k++) {
                pids.put("fleet" + (f.size() > 1 ? "-" + k : ""), f.get(k));
            }
            pids.put("bench", ProcessHandle.current().pid());
            return pids;
        }

        private static Map<String, Double> cpu(Map<String, Long> pids) {
            Map<String, Double> c = new LinkedHashMap<>();
            pids.forEach((n, p) -> c.put(n, WaitersBench.cpuSeconds(p)));
            return c;
        }

        /** CPU between two samples, per {@code per} (seconds of wall time or changes), in % or ms. */
        private static Map<String, Double> rate(Map<String, Double> before, Map<String, Double> after, double per) {
            Map<String, Double> r = new LinkedHashMap<>();
            double total = 0;
            for (String n : before.keySet()) {
                double v = 100 * (after.get(n) - before.get(n)) / per;
                r.put(n, v);
                total += v;
            }
            r.put("total", total);
            return r;
        }

        private static String format(Map<String, Double> m, String f) {
            StringBuilder b = new StringBuilder();
            m.forEach((n, v) -> b.append(n).append(' ').append(String.format(Locale.ROOT, f, v)).append("  "));
            return b.toString().trim();
        }

        /** One measured change: when it was made and answered, its id and the answer's status. */
        private record Change(long startMicros, long answerMicros, String changeId, String status, int expectedHosts) {
        }

        private ScenarioResult scenario(String name, FleetCloud cloud, FleetProcesses fleet, LogTaps taps, Map<String, Long> pids)
                throws IOException {
            String network = switch (name) {
                case "one-host" -> cloud.one();
                case "10%-hosts" -> cloud.tenth();
                default -> cloud.all();
            };
            int warmup = o.get("warmup");
            int n = o.get("changes");
            out.printf(Locale.ROOT, "  %s: %d changes to %s (after %d warm-up) ...%n", name, n, network, warmup);
            for (int i = 0; i < warmup; i++) {
                change(cloud, network, name, 30_000 + i);
            }
            FleetProcesses.Counts k0 = fleet.counts();
            Map<String, Double> c0 = cpu(pids);
            LogTaps.Mark m0 = taps.mark();
            List<Change> changes = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                changes.add(change(cloud, network, name, 20_000 + i));
            }
            FleetCloud.sleep(200); // the last reports' records are in the log before the answer; the marks need the broker's ends
            Map<String, Double> cpuPerChange = rate(c0, cpu(pids), n / 10.0); // 100 * s / (n/10) = ms per change
            FleetProcesses.Counts k = fleet.counts().minus(k0);
            LogTaps.Mark m1 = taps.mark();
            Map<String, Long> received = new HashMap<>();
            for (String l : fleet.receipts(dir)) {
                String[] f = l.split(" ");
                received.put(f[0] + "/" + f[1] + "/" + f[2], Long.parseLong(f[3]));
            }
            LogTaps.Range range = taps.read(m0, m1);
            return analyse(name, changes, range, received, k, cpuPerChange, taps.hostUpdatePartitions(), cloud);
        }

        private Change change(FleetCloud cloud, String network, String scenario, int port) {
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("protocol", "tcp");
            body.put("startPort", port);
            body.put("destinationCidrs", List.of("198.51.100.0/24"));
            body.put("description", "bench propagation " + scenario);
            int expected;
            if (scenario.equals("one-host")) {
                FleetCloud.Vm vm = cloud.oneVms.get(port % cloud.oneVms.size());
                body.put("sourceCidrs", List.of(vm.ipv4() + "/32"));
                expected = 1;
            } else {
                expected = cloud.hostsOf(network);
            }
            // The API's longest wait; a change not applied by then is counted as not complete.
            String path = "/api/v1/networks/" + network + "/egress-rules?wait=applied&timeout=60s";
            long t0 = TimeMicros.now();
            ApiClient.Response r = api.post(path, env.apiKey(), body);
            long t1 = TimeMicros.now();
            JsonNode b = r.body();
            String status = b == null ? "HTTP " + r.status() : b.path("status").path("status").asString();
            String id = b == null ? null : b.path("changeId").asString();
            if ((r.status() != 201 && r.status() != 202) || id == null || id.isEmpty()) {
                throw new IllegalStateException("POST " + path + " answered " + r.status() + " " + b);
            }
            return new Change(t0, t1, id, status, expected);
        }

        private ScenarioResult analyse(String name, List<Change> changes, LogTaps.Range range, Map<String, Long> received,
                                       FleetProcesses.Counts k, Map<String, Double> cpuPerChange, int partitions, FleetCloud cloud) {
            List<Double> lastAck = new ArrayList<>();
            List<Double> answered = new ArrayList<>();
            Map<String, List<Double>> stages = new LinkedHashMap<>();
            STAGES.forEach(s -> stages.put(s, new ArrayList<>()));
            List<Double> updateSpread = new ArrayList<>();
            List<Double> ackSpread = new ArrayList<>();
            int incomplete = 0;
            String firstIncomplete = null;
            for (Change c : changes) {
                Long event = range.eventTime.get(c.changeId());
                List<LogTaps.Update> ups = range.updatesByChange.getOrDefault(c.changeId(), List.of());
                Map<String, Long> acks = range.acks.getOrDefault(c.changeId(), Map.of());
                if (!"APPLIED".equals(c.status()) || event == null || acks.size() < c.expectedHosts()) {
                    incomplete++;
                    if (firstIncomplete == null) {
                        firstIncomplete = c.changeId() + ": " + c.status() + ", event " + (event != null) + ", " + ups.size()
                                + " updates, " + acks.size() + " of " + c.expectedHosts() + " ACKs";
                    }
                    continue;
                }
                String last = null;
                long lastAt = Long.MIN_VALUE;
                long firstAck = Long.MAX_VALUE;
                for (Map.Entry<String, Long> a : acks.entrySet()) {
                    if (a.getValue() > lastAt) {
                        lastAt = a.getValue();
                        last = a.getKey();
                    }
                    firstAck = Math.min(firstAck, a.getValue());
                }
                lastAck.add((lastAt * 1000 - c.startMicros()) / 1000.0);
                answered.add((c.answerMicros() - c.startMicros()) / 1000.0);
                ackSpread.add((double) (lastAt - firstAck));
                long firstUp = Long.MAX_VALUE;
                long lastUp = Long.MIN_VALUE;
                LogTaps.Update mine = null;
                for (LogTaps.Update u : ups) {
                    firstUp = Math.min(firstUp, u.timestamp());
                    lastUp = Math.max(lastUp, u.timestamp());
                    if (u.hostId().equals(last)) {
                        mine = u;
                    }
                }
                if (!ups.isEmpty()) {
                    updateSpread.add((double) (lastUp - firstUp));
                }
                Long got = mine == null ? null : received.get(mine.hostId() + "/" + mine.partition() + "/" + mine.offset());
                stages.get("api->event").add((event * 1000 - c.startMicros()) / 1000.0);
                stages.get("ack->answer").add((c.answerMicros() - lastAt * 1000) / 1000.0);
                if (mine != null && got != null) {
                    stages.get("event->update").add((double) (mine.timestamp() - event));
                    stages.get("update->received").add((got - mine.timestamp() * 1000) / 1000.0);
                    stages.get("received->ack").add((lastAt * 1000 - got) / 1000.0);
                }
            }
            if (firstIncomplete != null) {
                out.printf(Locale.ROOT, "    %d change(s) not complete, left out; the first: %s%n", incomplete, firstIncomplete);
            }
            Map<String, Stats> stageStats = new LinkedHashMap<>();
            stages.forEach((s, v) -> stageStats.put(s, Stats.of(v.stream().mapToDouble(Double::doubleValue).toArray())));
            int n = changes.size();
            double fetched = k.fetchedBytes() / (double) hosts / n;
            double own = k.ownBytes() / (double) hosts / n;
            return new ScenarioResult(name, changes.isEmpty() ? 0 : changes.get(0).expectedHosts(), stats(lastAck), stats(answered),
                    incomplete, stageStats, stats(updateSpread), stats(ackSpread), fetched, own, cpuPerChange,
                    fanout(range.updates, cloud.hosts, partitions, n));
        }

        private static Stats stats(List<Double> v) {
            return Stats.of(v.stream().mapToDouble(Double::doubleValue).toArray());
        }

        /**
         * What each agent fetches at other partition counts, from the host updates this scenario wrote:
         * an agent fetches every record of its partition, its own and those of every other host there.
         */
        private static List<String> fanout(List<LogTaps.Update> updates, List<String> hosts, int partitions, int changes) {
            TreeSet<Integer> counts = new TreeSet<>(List.of(partitions, 6, 12, 24, 48, 64, 96, 192));
            List<String> lines = new ArrayList<>();
            Map<String, Long> ownBytes = new HashMap<>();
            updates.forEach(u -> ownBytes.merge(u.hostId(), (long) u.bytes(), Long::sum));
            long own = hosts.stream().mapToLong(h -> ownBytes.getOrDefault(h, 0L)).sum();
            for (int p : counts) {
                long[] bytes = new long[p];
                int[] members = new int[p];
                for (LogTaps.Update u : updates) {
                    bytes[Topics.partitionFor(u.hostId(), p)] += u.bytes();
                }
                for (String h : hosts) {
                    members[Topics.partitionFor(h, p)]++;
                }
                long total = 0;
                for (int i = 0; i < p; i++) {
                    total += members[i] * bytes[i];
                }
                int max = Arrays.stream(members).max().orElse(0);
                lines.add(String.format(Locale.ROOT, "%4d partitions: %6.1f hosts each (max %4d); per agent per change %,10.0f B of "
                                + "others' updates, fleet-wide %,12.0f B fetched per change%s", p, hosts.size() / (double) p, max,
                        (total - own) / (double) hosts.size() / changes, total / (double) changes, p == partitions ? "  <- this run" : ""));
            }
            return lines;
        }

        private void printSize(List<ScenarioResult> scenarios, Stats floor, double load) {
            out.printf(Locale.ROOT, "%n--- %d hosts: API call -> last affected host's ACK in the log (load average %.2f) ---%n", hosts, load);
            out.printf(Locale.ROOT, "  %-9s %6s  %-72s%n", "scenario", "hosts", "API call -> last ACK");
            for (ScenarioResult s : scenarios) {
                out.printf(Locale.ROOT, "  %-9s %6d  %s%n", s.name(), s.hosts(), s.lastAck().line());
                out.printf(Locale.ROOT, "  %-9s %6s  answer to the waiting caller: p50=%.1f ms p99=%.1f ms%n", "", "", s.answered().p50(),
                        s.answered().p99());
            }
            out.printf(Locale.ROOT, "  kafka floor        %s%n", floor.line());
            out.printf(Locale.ROOT, "%n  stages on the last host's path, p50 / p99 ms (record timestamps: ms resolution)%n  %-9s", "scenario");
            STAGES.forEach(s -> out.printf(Locale.ROOT, " %17s", s));
            out.printf(Locale.ROOT, " %17s %17s%n", "updates first-last", "ACKs first-last");
            for (ScenarioResult s : scenarios) {
                out.printf(Locale.ROOT, "  %-9s", s.name());
                s.stages().forEach((k, v) -> out.printf(Locale.ROOT, " %8.1f /%7.1f", v.p50(), v.p99()));
                out.printf(Locale.ROOT, " %8.1f /%7.1f %8.1f /%7.1f%n", s.updateSpread().p50(), s.updateSpread().p99(), s.ackSpread().p50(),
                        s.ackSpread().p99());
            }
            out.printf(Locale.ROOT, "%n  bytes fetched per agent per change (consumer fetch metric) and CPU per change (ms, all processes)%n");
            for (ScenarioResult s : scenarios) {
                out.printf(Locale.ROOT, "  %-9s fetched %,9.0f B, own %,7.0f B, others' %,9.0f B | cpu %s%n", s.name(), s.fetchedPerAgent(),
                        s.ownPerAgent(), s.fetchedPerAgent() - s.ownPerAgent(), format(s.cpuMsPerChange(), "%.1f"));
            }
            out.printf(Locale.ROOT, "%n  partitions of egress.host-updates, from the updates each scenario wrote:%n");
            for (ScenarioResult s : scenarios) {
                out.printf(Locale.ROOT, "  %s%n", s.name());
                s.fanout().forEach(l -> out.printf(Locale.ROOT, "    %s%n", l));
            }
        }
    }

    /** The wall clock in microseconds since the epoch (the fleet's receipts use the same). */
    static final class TimeMicros {
        private TimeMicros() {
        }

        static long now() {
            java.time.Instant i = java.time.Instant.now();
            return i.getEpochSecond() * 1_000_000L + i.getNano() / 1_000;
        }
    }
}
