package io.egressctl.cli.bench;

import io.egressctl.cli.Env;
import io.egressctl.cli.audit.Logs;
import io.egressctl.cli.api.ApiClient;
import tools.jackson.databind.JsonNode;

import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/**
 * {@code egressctl bench api}: end-to-end latency of a rule create on the running local stack, from
 * the API call to the agents' ACK ({@code ?wait=applied}), next to the floor set by Kafka itself.
 *
 * <ol>
 *   <li>Creates a bench network with a few VMs on the demo hosts (whose agents {@code ./egressctl up}
 *       started) and waits until every host has applied them.</li>
 *   <li>Creates {@code --rules} (default 1,000) distinct rules one after another, each with
 *       {@code wait=applied}; each rule covers every VM, so each create waits for an ACK from every
 *       demo host. The time of one create is the HTTP round trip: publish, compile, Redis snapshot,
 *       host update, apply, enforcement report, status. The warm-up creates are deleted before the
 *       measured ones, so create k finds the network holding k rules: the latency by network size
 *       (p50 of the 20 creates around 10, 100 and 1,000 rules) and the ratio of the largest to the
 *       smallest ({@code size_ratio}; NaN when {@code --rules} is too small for two sizes). Beside it,
 *       what the compiler published for those creates: the bytes of each host update on
 *       egress.host-updates (a rule-keyed delta once the fragment is large enough) by network size,
 *       and their ratio ({@code update_bytes_ratio}).</li>
 *   <li>In the same run, Kafka's own produce-to-consume latency on a fresh topic (1 partition,
 *       acks=all, linger.ms=0, one record at a time, a consumer polling in another thread): the
 *       cost of one hop, which the pipeline pays at least three times (rule event, host update,
 *       enforcement report).</li>
 *   <li>Deletes the bench network and the topic (also after a failure), prints p50/p90/p99/max of
 *       both, and ends with {@code summary: applied_p50_ms=<n> applied_p99_ms=<n> kafka_floor_p50_ms=<n> size_ratio=<r>
 *       update_bytes_ratio=<r>}.</li>
 * </ol>
 *
 * Options: {@code --rules N} (1000), {@code --records N} (1000, Kafka floor), {@code --vms-per-host N}
 * (2), {@code --warmup N} (20, not counted, for both measurements).
 */
public final class ApiBench {

    private ApiBench() {
    }

    /** For manual runs: {@code java -cp cli-exec.jar -Dloader.main=io.egressctl.cli.bench.ApiBench ... PropertiesLauncher}. */
    public static void main(String[] args) {
        System.exit(run(Env.fromSystem(), args));
    }

    public static int run(Env env, String[] args) {
        return run(env, args, System.out, System.err);
    }

    static int run(Env env, String[] args, PrintStream out, PrintStream err) {
        Logs.quietKafka();
        Map<String, Integer> o;
        try {
            o = options(args);
        } catch (IllegalArgumentException e) {
            err.println("bench api: " + e.getMessage());
            err.println("usage: egressctl bench api [--rules 1000] [--records 1000] [--vms-per-host 2] [--warmup 20]");
            return 2;
        }
        if (env.apiKey() == null || env.operatorKey() == null) {
            err.println("bench api: EGRESS_API_KEY and EGRESS_OPERATOR_KEY are not set: run ./egressctl up, then eval \"$(./egressctl env)\"");
            return 2;
        }
        try {
            return new ApiBench.Runner(env, o, out, err).run();
        } catch (RuntimeException e) {
            err.println("bench api: error: " + e.getMessage());
            return 4;
        }
    }

    static Map<String, Integer> options(String[] args) {
        Map<String, Integer> o = BenchOptions.parse(args, Map.of("rules", 1000, "records", 1000, "vms-per-host", 2, "warmup", 20));
        if (o.get("rules") + o.get("warmup") > 60_000) {
            throw new IllegalArgumentException("--rules plus --warmup must stay below 60000 (one tcp port each)");
        }
        return o;
    }

    /** Percentiles (nearest rank) of a sample in milliseconds. */
    record Stats(int n, double p50, double p90, double p99, double max, double mean) {

        static Stats of(double[] ms) {
            double[] s = ms.clone();
            Arrays.sort(s);
            if (s.length == 0) {
                return new Stats(0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
            }
            return new Stats(s.length, rank(s, 50), rank(s, 90), rank(s, 99), s[s.length - 1], Arrays.stream(s).average().orElse(0));
        }

        static double rank(double[] sorted, double p) {
            int i = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
            return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
        }

        String line() {
            return String.format(Locale.ROOT, "n=%d  p50=%.1f ms  p90=%.1f ms  p99=%.1f ms  max=%.1f ms  mean=%.1f ms", n, p50, p90, p99, max, mean);
        }
    }

    private static final class Runner {
        private final Env env;
        private final Map<String, Integer> o;
        private final PrintStream out;
        private final PrintStream err;
        private final ApiClient api;
        private final String suffix = HexFormat.of().formatHex(ByteBuffer.allocate(4).putInt(ThreadLocalRandom.current().nextInt()).array());
        private final String network = "bench-api-" + suffix;
        private final List<String> placed = new ArrayList<>();
        private boolean networkCreated;
        /** Each measured create's latency by the number of rules the network held before it (NaN: failed). */
        private double[] bySize;
        /** Each measured create's change id (null: failed). */
        private String[] changeIds;
        /** End offsets of egress.host-updates before the measured creates. */
        private Map<org.apache.kafka.common.TopicPartition, Long> updatesFrom;
        /** Creates per by-size figure. */
        private static final int WINDOW = 20;
        /** The network sizes the by-size figures are taken at (issue: 10, 100 and 1,000 rules). */
        private static final int[] SIZES = {10, 100, 1000};

        Runner(Env env, Map<String, Integer> o, PrintStream out, PrintStream err) {
            this.env = env;
            this.o = o;
            this.out = out;
            this.err = err;
            this.api = new ApiClient(env.apiUrl());
        }

        private HostUpdateSizes updateSizes;

        int run() {
            Stats applied;
            int failures;
            Stats floor;
            Stats firstTenth = null;
            Stats lastTenth = null;
            try {
                setUp();
                double[][] result = createRules();
                applied = Stats.of(result[0]);
                int tenth = result[0].length / 10;
                if (tenth > 0) {
                    firstTenth = Stats.of(Arrays.copyOfRange(result[0], 0, tenth));
                    lastTenth = Stats.of(Arrays.copyOfRange(result[0], result[0].length - tenth, result[0].length));
                }
                failures = (int) result[1][0];
                updateSizes = HostUpdateSizes.read(env.kafkaBootstrap(), env.schemaRegistryUrl(), updatesFrom, env.hosts());
                floor = kafkaFloor();
            } finally {
                try {
                    cleanUp();
                } catch (RuntimeException e) {
                    err.println("bench api: cleanup failed (network " + network + " may be left behind): " + e.getMessage());
                }
            }
            int n = o.get("rules");
            out.printf(Locale.ROOT, "%nrule create, API call to agent ACK (wait=applied), %d hosts each:%n  %s%n", env.hosts().size(), applied.line());
            if (failures > 0) {
                out.printf(Locale.ROOT, "  %d of %d creates did not reach APPLIED (left out of the percentiles)%n", failures, n);
            }
            if (firstTenth != null) {
                // Every create recompiles and re-renders the network on its hosts, so the cost grows with its rule count.
                out.printf(Locale.ROOT, "  as the network grows: first %d creates p50=%.1f ms, last %d p50=%.1f ms%n",
                        firstTenth.n(), firstTenth.p50(), lastTenth.n(), lastTenth.p50());
            }
            Stats smallest = null;
            Stats largest = null;
            int largestSize = 0;
            for (int size : SIZES) {
                Stats at = atSize(size);
                if (at == null || at.n() == 0) {
                    continue;
                }
                out.printf(Locale.ROOT, "  by network size, %d creates while it held about %,d rules: %s%n", at.n(), size, at.line());
                smallest = smallest == null ? at : smallest;
                largest = at;
                largestSize = size;
            }
            double sizeRatio = smallest != null && largest != smallest ? largest.p50() / smallest.p50() : Double.NaN;
            if (!Double.isNaN(sizeRatio)) {
                out.printf(Locale.ROOT, "  p50 at %,d rules / p50 at %d rules = %.2fx%n", largestSize, SIZES[0], sizeRatio);
            }
            // What the compiler published for the same creates: bytes per host update on the log.
            double bytesSmallest = Double.NaN;
            double bytesLargest = Double.NaN;
            for (int size : SIZES) {
                HostUpdateSizes.Window w = window(size);
                if (w == null || w.updates() == 0) {
                    continue;
                }
                out.printf(Locale.ROOT, "  host updates on the log for those %d creates at about %,d rules: %d, %.0f bytes each on average "
                        + "(%d of them deltas)%n", w.creates(), size, w.updates(), w.meanBytes(), w.deltas());
                bytesSmallest = Double.isNaN(bytesSmallest) ? w.meanBytes() : bytesSmallest;
                bytesLargest = w.meanBytes();
            }
            double bytesRatio = bytesLargest / bytesSmallest;
            if (!Double.isNaN(bytesRatio)) {
                out.printf(Locale.ROOT, "  bytes per host update at %,d rules / at %d rules = %.2fx%n", largestSize, SIZES[0], bytesRatio);
            }
            out.printf(Locale.ROOT, "kafka produce->consume floor (acks=all, linger.ms=0, one record at a time):%n  %s%n", floor.line());
            out.printf(Locale.ROOT, "machine: %d cores, load average %.2f%n", Runtime.getRuntime().availableProcessors(),
                    ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
            out.printf(Locale.ROOT, "summary: applied_p50_ms=%.1f applied_p99_ms=%.1f kafka_floor_p50_ms=%.1f size_ratio=%.2f update_bytes_ratio=%.2f%n",
                    applied.p50(), applied.p99(), floor.p50(), sizeRatio, bytesRatio);
            return failures == 0 ? 0 : 1;
        }

        private void setUp() {
            int quota = o.get("rules") + o.get("warmup") + 10;
            ApiClient.Response r = api.post("/api/v1/networks?wait=compiled&timeout=30s", env.apiKey(),
                    Map.of("networkId", network, "guestCidr", "10.250.0.0/20", "ruleQuota", quota));
            require(r, 201, "create network " + network);
            networkCreated = true;
            int perHost = o.get("vms-per-host");
            int ip = 10;
            for (String host : env.hosts()) {
                for (int v = 0; v < perHost; v++) {
                    String vm = "bench-vm-" + host + "-" + v;
                    int n = ip++;
                    // An interface name of this run's own (b<suffix>-<v>, at most 15 characters): the demo's
                    // VMs, or a bench run that was killed before it cleaned up, hold others on these hosts.
                    ApiClient.Response p = api.put("/api/v1/networks/" + network + "/placements/" + vm + "?wait=applied&timeout=30s",
                            env.operatorKey(), Map.of("hostId", host, "interfaceName", "b" + suffix + "-" + v,
                                    "ipv4", "10.250." + n / 256 + "." + n % 256));
                    require(p, 200, "place " + vm + " on " + host);
                    placed.add(vm);
                    if (!"APPLIED".equals(p.body().path("status").path("status").asString())) {
                        throw new IllegalStateException("host " + host + " did not ACK the placement of " + vm
                                + " within 30 s: is its agent running (./egressctl up)?");
                    }
                }
            }
            out.printf(Locale.ROOT, "bench api: network %s with %d VMs on %s%n", network, placed.size(), String.join(" ", env.hosts()));
        }

        /** Returns the latencies of the measured creates (ms) and, in [1][0], how many failed. */
        private double[][] createRules() {
            int warmup = o.get("warmup");
            int n = o.get("rules");
            String path = "/api/v1/networks/" + network + "/egress-rules?wait=applied&timeout=30s";
            out.printf(Locale.ROOT, "creating %d rules one after another with wait=applied (after %d warm-up creates) ...%n", n, warmup);
            double[] ms = new double[n];
            bySize = new double[n];
            changeIds = new String[n];
            int ok = 0;
            int failures = 0;
            String firstFailure = null;
            long started = System.nanoTime();
            List<String> warmRules = new ArrayList<>();
            for (int i = 0; i < warmup + n; i++) {
                if (i == warmup) {
                    // The warm-up rules go again, so that measured create k finds the network holding k
                    // rules: the by-size figures start from an empty network.
                    removeWarmUpRules(warmRules);
                    updatesFrom = HostUpdateSizes.endOffsets(env.kafkaBootstrap());
                    started = System.nanoTime();
                }
                Map<String, Object> rule = Map.of("protocol", i % 2 == 0 ? "tcp" : "udp", "startPort", 1024 + i,
                        "description", "bench api rule " + i);
                long t0 = System.nanoTime();
                ApiClient.Response r = api.post(path, env.apiKey(), rule);
                double took = (System.nanoTime() - t0) / 1e6;
                if (i < warmup) {
                    if (r.status() == 201) {
                        warmRules.add(r.body().path("ruleId").asString());
                    }
                    continue;
                }
                JsonNode status = r.body() == null ? null : r.body().path("status");
                if (r.status() == 201 && status != null && "APPLIED".equals(status.path("status").asString())) {
                    ms[ok++] = took;
                } else {
                    failures++;
                    if (firstFailure == null) {
                        firstFailure = r.status() + " " + r.body();
                    }
                }
                bySize[i - warmup] = r.status() == 201 && status != null && "APPLIED".equals(status.path("status").asString()) ? took : Double.NaN;
                changeIds[i - warmup] = r.status() == 201 ? r.body().path("changeId").asString(null) : null;
                int done = i - warmup + 1;
                if (done % 250 == 0) {
                    out.printf(Locale.ROOT, "  %d/%d (%.0f creates/s)%n", done, n, done / ((System.nanoTime() - started) / 1e9));
                }
            }
            if (firstFailure != null) {
                err.println("bench api: first failed create: " + firstFailure);
            }
            return new double[][] {Arrays.copyOf(ms, ok), {failures}};
        }

        /** Deletes the warm-up rules, the last with {@code wait=applied}, so the hosts hold none of them. */
        private void removeWarmUpRules(List<String> ruleIds) {
            for (int i = 0; i < ruleIds.size(); i++) {
                String wait = i == ruleIds.size() - 1 ? "?wait=applied&timeout=30s" : "";
                ApiClient.Response r = api.delete("/api/v1/networks/" + network + "/egress-rules/" + ruleIds.get(i) + wait, env.apiKey());
                if (r.status() != 200 && r.status() != 202) {
                    throw new IllegalStateException("delete warm-up rule " + ruleIds.get(i) + ": " + r.status() + " " + r.body());
                }
            }
        }

        /**
         * The measured creates made while the network held about {@code size} rules: the window of
         * {@link #WINDOW} creates centred on create {@code size} (create k finds k rules), or the
         * run's last ones when it ends there; failed ones left out; null when the run is too short.
         */
        private Stats atSize(int size) {
            if (bySize == null || bySize.length < WINDOW || size > bySize.length) {
                return null;
            }
            // Centred on size, or the last creates of the run when it ends at size (--rules 1000).
            int from = Math.max(0, Math.min(size - WINDOW / 2, bySize.length - WINDOW));
            int to = from + WINDOW;
            return Stats.of(Arrays.stream(bySize, from, to).filter(d -> !Double.isNaN(d)).toArray());
        }

        /** The host updates of the creates {@link #atSize} takes for {@code size}, or null. */
        private HostUpdateSizes.Window window(int size) {
            if (updateSizes == null || changeIds == null || changeIds.length < WINDOW || size > changeIds.length) {
                return null;
            }
            int from = Math.max(0, Math.min(size - WINDOW / 2, changeIds.length - WINDOW));
            return updateSizes.window(Arrays.asList(changeIds).subList(from, from + WINDOW));
        }

        private Stats kafkaFloor() {
            return KafkaFloor.measure(env.kafkaBootstrap(), suffix, o.get("records"), o.get("warmup"), out);
        }

        private void cleanUp() {
            for (String vm : placed) {
                ApiClient.Response r = api.delete("/api/v1/networks/" + network + "/placements/" + vm + "?wait=applied&timeout=30s", env.operatorKey());
                if (r.status() != 200) {
                    err.println("bench api: cleanup: removing " + vm + " answered " + r.status() + " " + r.body());
                }
            }
            if (networkCreated) {
                ApiClient.Response r = api.delete("/api/v1/networks/" + network + "?wait=applied&timeout=30s", env.apiKey());
                if (r.status() != 200) {
                    err.println("bench api: cleanup: deleting " + network + " answered " + r.status() + " " + r.body());
                } else {
                    out.printf(Locale.ROOT, "deleted bench network %s%n", network);
                }
            }
        }

        private static void require(ApiClient.Response r, int status, String what) {
            if (r.status() != status) {
                throw new IllegalStateException(what + ": " + r.status() + " " + r.body());
            }
        }
    }
}
