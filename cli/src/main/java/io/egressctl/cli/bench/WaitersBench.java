package io.egressctl.cli.bench;

import io.egressctl.cli.Env;
import io.egressctl.cli.audit.Logs;
import io.egressctl.cli.api.ApiClient;
import io.egressctl.cli.bench.ApiBench.Stats;
import io.egressctl.core.host.HostState;
import io.egressctl.events.AppliedFragment;
import io.egressctl.events.EnforcementReport;
import io.egressctl.events.EnforcementStatus;
import io.egressctl.events.EnforcementTrigger;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.Topics;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;
import tools.jackson.databind.JsonNode;

import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * {@code egressctl bench waiters}: what callers waiting on a change ({@code ?wait=applied}) cost the
 * rule-service, and how soon they hear once the change is applied.
 *
 * <ol>
 *   <li>Creates a bench network and places a VM on a host that has no agent, so the placement stays
 *       COMPILED: nothing will apply it.</li>
 *   <li>Opens {@code --waiters} (10,000) connections to the API on 127.0.0.1, at most
 *       {@code --connect-batch} (500) connecting at once, each a
 *       {@code GET /api/v1/changes/{id}?wait=applied&timeout=60s}, and waits until the rule-service's
 *       gauge {@code egress.change.waiters} counts them all.</li>
 *   <li>For {@code --idle-seconds} (10) samples the rule-service's CPU time from {@code /proc/<pid>/stat}
 *       (pid from the actuator's info, else {@code $EGRESS_HOME/pids/rule-service.pid}) and its heap and
 *       live threads from the actuator's metrics, against the same sample taken before the waiters came.</li>
 *   <li>Publishes an ACK of the placement's version for that host to {@code egress.enforcement-reports},
 *       as the host's agent would, and measures from just before the publish to each waiter's answer
 *       (p50/p99/max), then Kafka's own produce-to-consume latency in the same run as the floor (the
 *       ACK crosses Kafka once before the compiler folds it).</li>
 *   <li>Removes the placement and the network, prints the figures and ends with
 *       {@code summary: waiters=<n> answered=<n> cpu_idle_waiting_pct=<x> heap_waiting_mb=<x>
 *       after_ack_p50_ms=<x> after_ack_p99_ms=<x> after_ack_max_ms=<x> kafka_floor_p50_ms=<x>}.</li>
 * </ol>
 *
 * Everything stays on this machine: the API's address must be a loopback one.
 */
public final class WaitersBench {

    private WaitersBench() {
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
            err.println("bench waiters: " + e.getMessage());
            err.println("usage: egressctl bench waiters [--waiters 10000] [--connect-batch 500] [--idle-seconds 10] [--records 1000] "
                    + "[--warmup 20]");
            return 2;
        }
        if (env.apiKey() == null || env.operatorKey() == null) {
            err.println("bench waiters: EGRESS_API_KEY and EGRESS_OPERATOR_KEY are not set: run ./egressctl up, then eval \"$(./egressctl env)\"");
            return 2;
        }
        URI api = URI.create(env.apiUrl());
        if (!List.of("127.0.0.1", "localhost", "[::1]").contains(api.getHost())) {
            err.println("bench waiters: the API must be on this machine (127.0.0.1), not " + api.getHost());
            return 2;
        }
        try {
            return new Runner(env, o, out, err).run();
        } catch (RuntimeException e) {
            err.println("bench waiters: error: " + e.getMessage());
            return 4;
        }
    }

    static Map<String, Integer> options(String[] args) {
        Map<String, Integer> o = BenchOptions.parse(args, Map.of("waiters", 10_000, "connect-batch", 500, "idle-seconds", 10,
                "records", 1000, "warmup", 20));
        if (o.get("waiters") > 20_000) {
            throw new IllegalArgumentException("--waiters is at most 20000 (one connection and one local port each)");
        }
        if (o.get("idle-seconds") > 30) {
            throw new IllegalArgumentException("--idle-seconds is at most 30 (the waiters time out after 60 s)");
        }
        return o;
    }

    /** CPU seconds (user + system) of a process so far, from {@code /proc/<pid>/stat} at 100 ticks a second. */
    static double cpuSeconds(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            // Fields after the command name, which is in parentheses and may hold blanks: state is field 3.
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).trim().split("\\s+");
            long utime = Long.parseLong(f[11]);
            long stime = Long.parseLong(f[12]);
            return (utime + stime) / 100.0;
        } catch (IOException | RuntimeException e) {
            throw new IllegalStateException("cannot read the CPU time of process " + pid + ": " + e.getMessage(), e);
        }
    }

    /** What the rule-service's actuator says of one moment. */
    record Sample(double heapMb, int threads, int waiters) {
    }

    /** Signs the reports this bench writes as its host's agent, with the stack's update keys (the compiler folds only signed ones). */
    static final io.egressctl.schemas.integrity.ReportMac REPORTS =
            new io.egressctl.schemas.integrity.ReportMac(io.egressctl.schemas.integrity.UpdateKeys.fromEnvironment());

    /** An agent's ACK of holding nothing: no fragment, the hash of an empty host. */
    static EnforcementReport emptyReport(String host, Instant at) {
        return EnforcementReport.newBuilder().setHostId(host).setStatus(EnforcementStatus.ACK)
                .setTrigger(EnforcementTrigger.UPDATE).setFragments(List.of())
                .setAppliedHash(HostState.hashOf(new TreeMap<>())).setChangeIds(List.of()).setError(null).setApplyMicros(0)
                .setEnforcer("bench").setDriftRepairs(0).setReportedAt(at).setUnenforced(List.of()).build();
    }

    private static final class Runner {
        private final Env env;
        private final Map<String, Integer> o;
        private final PrintStream out;
        private final PrintStream err;
        private final ApiClient api;
        private final String suffix = HexFormat.of().formatHex(java.nio.ByteBuffer.allocate(4).putInt(ThreadLocalRandom.current().nextInt()).array());
        private final String network = "bench-waiters-" + suffix;
        private final String host = "bench-waiters-h-" + suffix;
        private final String vm = "bench-waiters-vm";
        private boolean networkCreated;
        private boolean placed;

        Runner(Env env, Map<String, Integer> o, PrintStream out, PrintStream err) {
            this.env = env;
            this.o = o;
            this.out = out;
            this.err = err;
            this.api = new ApiClient(env.apiUrl());
        }

        int run() {
            int n = o.get("waiters");
            int idle = o.get("idle-seconds");
            long pid = pid();
            Sample before;
            Sample during;
            double cpuBefore;
            double cpuDuring;
            double cpuAnswering;
            double[] latencies;
            int answered;
            String firstOdd;
            Stats floor;
            try {
                String[] change = setUp();
                String changeId = change[0];
                long version = Long.parseLong(change[1]);

                // The same window before the waiters come: what the service spends idle.
                before = sample();
                double c0 = cpuSeconds(pid);
                sleep(idle * 1000L);
                cpuBefore = 100 * (cpuSeconds(pid) - c0) / idle;

                try (Producer<String, SpecificRecord> reports = reportProducer(version);
                     Waiters waiters = new Waiters(URI.create(env.apiUrl()), changeId, env.apiKey(), n)) {
                    long opened = System.nanoTime();
                    waiters.open(o.get("connect-batch"));
                    waitForRegistry(n, waiters);
                    out.printf(Locale.ROOT, "%d waiters on change %s (host %s has no agent) in %.1f s%n", n, changeId, host,
                            (System.nanoTime() - opened) / 1e9);

                    double c1 = cpuSeconds(pid);
                    long t1 = System.nanoTime();
                    sleep(idle * 1000L);
                    during = sample();
                    cpuDuring = 100 * (cpuSeconds(pid) - c1) / ((System.nanoTime() - t1) / 1e9);
                    if (waiters.answered() > 0) {
                        throw new IllegalStateException(waiters.answered() + " waiters were answered before the ACK: " + waiters.firstOdd());
                    }

                    double c2 = cpuSeconds(pid);
                    long acked = System.nanoTime();
                    ack(reports, version);
                    double ackMs = (System.nanoTime() - acked) / 1e6;
                    waiters.awaitAll(TimeUnit.SECONDS.toNanos(30));
                    cpuAnswering = cpuSeconds(pid) - c2;
                    latencies = waiters.latenciesSince(acked);
                    answered = waiters.applied();
                    firstOdd = waiters.firstOdd();
                    out.printf(Locale.ROOT, "ACK published (acks=all) in %.1f ms; %d of %d waiters answered 200 APPLIED%n", ackMs, answered, n);
                }
                floor = KafkaFloor.measure(env.kafkaBootstrap(), suffix, o.get("records"), o.get("warmup"), out);
            } finally {
                try {
                    cleanUp();
                } catch (RuntimeException e) {
                    err.println("bench waiters: cleanup failed (network " + network + " may be left behind): " + e.getMessage());
                }
            }
            Stats after = Stats.of(latencies);
            out.printf(Locale.ROOT, "%nrule-service (pid %d) with no waiter: cpu %.1f%% of a core, heap %.0f MB, %d live threads%n",
                    pid, cpuBefore, before.heapMb(), before.threads());
            out.printf(Locale.ROOT, "with %d waiters idle (%d s): cpu %.1f%% of a core, heap %.0f MB, %d live threads (gauge: %d waiting)%n",
                    n, idle, cpuDuring, during.heapMb(), during.threads(), during.waiters());
            out.printf(Locale.ROOT, "from the ACK's publish to each waiter's answer (first after %.1f ms):%n  %s%n",
                    Arrays.stream(latencies).min().orElse(Double.NaN), after.line());
            out.printf(Locale.ROOT, "answering them cost the rule-service %.2f s of CPU (%.0f us a waiter)%n", cpuAnswering,
                    answered == 0 ? Double.NaN : cpuAnswering * 1e6 / answered);
            if (firstOdd != null) {
                out.printf(Locale.ROOT, "  %d waiters answered otherwise, first: %s%n", n - answered, firstOdd);
            }
            out.printf(Locale.ROOT, "kafka produce->consume floor (acks=all, linger.ms=0, one record at a time):%n  %s%n", floor.line());
            out.printf(Locale.ROOT, "machine: %d cores, load average %.2f%n", Runtime.getRuntime().availableProcessors(),
                    ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
            out.printf(Locale.ROOT, "summary: waiters=%d answered=%d cpu_idle_waiting_pct=%.1f heap_waiting_mb=%.0f after_ack_p50_ms=%.1f "
                            + "after_ack_p99_ms=%.1f after_ack_max_ms=%.1f kafka_floor_p50_ms=%.1f%n",
                    n, answered, cpuDuring, during.heapMb(), after.p50(), after.p99(), after.max(), floor.p50());
            return answered == n ? 0 : 1;
        }

        /** Network, and a placement on a host without an agent; returns its change id and version. */
        private String[] setUp() {
            ApiClient.Response r = api.post("/api/v1/networks?wait=compiled&timeout=30s", env.apiKey(),
                    Map.of("networkId", network, "guestCidr", "10.251.0.0/24"));
            require(r, 201, "create network " + network);
            networkCreated = true;
            ApiClient.Response p = api.put("/api/v1/networks/" + network + "/placements/" + vm + "?wait=compiled&timeout=30s",
                    env.operatorKey(), Map.of("hostId", host, "interfaceName", "w" + suffix, "ipv4", "10.251.0.10"));
            require(p, 200, "place " + vm + " on " + host);
            placed = true;
            JsonNode s = p.body().path("status");
            if (!"COMPILED".equals(s.path("status").asString())) {
                throw new IllegalStateException("the placement is " + s.path("status").asString() + ", not COMPILED: " + p.body());
            }
            out.printf(Locale.ROOT, "bench waiters: network %s, %s placed on %s (no agent there): change %s COMPILED at version %d%n",
                    network, vm, host, s.path("changeId").asString(), s.path("version").asLong());
            return new String[] {s.path("changeId").asString(), Long.toString(s.path("version").asLong())};
        }

        /** The rule-service's pid: from its actuator info, else from the pid file of ./egressctl up. */
        private long pid() {
            try {
                JsonNode info = actuator("/actuator/info");
                if (info.path("process").path("pid").isNumber()) {
                    return info.path("process").path("pid").asLong();
                }
            } catch (RuntimeException e) {
                // The pid file next.
            }
            String home = System.getenv("EGRESS_HOME");
            Path file = Path.of(home == null ? "target/egressctl" : home, "pids", "rule-service.pid");
            try {
                return Long.parseLong(Files.readString(file).trim());
            } catch (IOException | NumberFormatException e) {
                throw new IllegalStateException("no pid of the rule-service: not in /actuator/info, nor in " + file);
            }
        }

        private JsonNode actuator(String path) {
            ApiClient.Response r = api.get(path, null);
            if (r.status() != 200 || r.body() == null) {
                throw new IllegalStateException(path + ": " + r.status());
            }
            return r.body();
        }

        private double metric(String name, String tag) {
            JsonNode m = actuator("/actuator/metrics/" + name + (tag == null ? "" : "?tag=" + tag));
            return m.path("measurements").path(0).path("value").asDouble();
        }

        private Sample sample() {
            return new Sample(metric("jvm.memory.used", "area:heap") / (1024 * 1024), (int) metric("jvm.threads.live", null),
                    (int) metric("egress.change.waiters", null));
        }

        private void waitForRegistry(int n, Waiters waiters) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(40);
            int seen = 0;
            while (System.nanoTime() < deadline) {
                seen = (int) metric("egress.change.waiters", null);
                if (seen >= n) {
                    return;
                }
                if (waiters.answered() > 0) {
                    throw new IllegalStateException(waiters.answered() + " waiters were answered before the ACK: " + waiters.firstOdd());
                }
                sleep(200);
            }
            throw new IllegalStateException("only " + seen + " of " + n + " waiters registered within 40 s");
        }

        /** The host's ACK of {@code version}, as its agent would report it. */
        private EnforcementReport ackReport(long version) {
            return EnforcementReport.newBuilder().setHostId(host).setStatus(EnforcementStatus.ACK)
                    .setTrigger(EnforcementTrigger.UPDATE)
                    .setFragments(List.of(AppliedFragment.newBuilder().setNetworkId(network).setVersion(version).build()))
                    .setAppliedHash("bench").setChangeIds(List.of()).setError(null).setApplyMicros(0).setEnforcer("bench")
                    .setDriftRepairs(0).setReportedAt(Instant.now()).setUnenforced(List.of()).build();
        }

        /**
         * A producer of reports, connected and with the report's schema id known, so that the measured
         * publish is one record's and nothing else.
         */
        private Producer<String, SpecificRecord> reportProducer(long version) {
            AvroSerializer<SpecificRecord> serializer = new AvroSerializer<>(new HttpSchemaRegistryClient(env.schemaRegistryUrl()));
            serializer.serialize(Topics.ENFORCEMENT_REPORTS, ackReport(version));
            Producer<String, SpecificRecord> p = new KafkaProducer<>(io.egressctl.schemas.serde.KafkaDefaults.client(env.kafkaBootstrap(),
                    ProducerConfig.ACKS_CONFIG, "all", ProducerConfig.LINGER_MS_CONFIG, 0), new StringSerializer(), serializer);
            p.partitionsFor(Topics.ENFORCEMENT_REPORTS);
            return p;
        }

        private void ack(Producer<String, SpecificRecord> p, long version) {
            try {
                p.send(new ProducerRecord<>(Topics.ENFORCEMENT_REPORTS, host, REPORTS.sign(ackReport(version)))).get(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted", e);
            } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
                throw new IllegalStateException("publishing the ACK: " + e.getMessage(), e);
            }
        }

        private void cleanUp() {
            if (placed) {
                ApiClient.Response r = api.delete("/api/v1/networks/" + network + "/placements/" + vm + "?wait=compiled&timeout=30s",
                        env.operatorKey());
                if (r.status() != 200) {
                    err.println("bench waiters: cleanup: removing " + vm + " answered " + r.status() + " " + r.body());
                } else {
                    // The host has no agent: it reports, as one would, that it holds nothing now. Its last report
                    // would otherwise keep the bench's version, and audit verify (and chaos) list it as drifted.
                    try (Producer<String, SpecificRecord> p = reportProducer(0)) {
                        p.send(new ProducerRecord<>(Topics.ENFORCEMENT_REPORTS, host, REPORTS.sign(emptyReport(host, Instant.now())))).get(30, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
                        err.println("bench waiters: cleanup: the host's last report could not be published: " + e.getMessage());
                    }
                }
            }
            if (networkCreated) {
                ApiClient.Response r = api.delete("/api/v1/networks/" + network + "?wait=compiled&timeout=30s", env.apiKey());
                if (r.status() != 200) {
                    err.println("bench waiters: cleanup: deleting " + network + " answered " + r.status() + " " + r.body());
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

        private static void sleep(long millis) {
            try {
                Thread.sleep(millis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted", e);
            }
        }
    }

    /**
     * N long-polling HTTP/1.1 requests on N connections, driven by one selector thread (no thread per
     * request, as on the server side). Each request asks the server to close the connection after its
     * answer, so an answer is complete at end of stream; the moment of that end is kept per waiter.
     * Also what the end-to-end test of many waiters drives its callers with.
     */
    public static final class Waiters implements AutoCloseable {
        private final InetSocketAddress address;
        private final byte[] request;
        private final int n;
        private final Selector selector;
        private final SocketChannel[] channels;
        private final long[] answeredAt;
        private final StringBuilder[] heads;
        private final AtomicInteger answered = new AtomicInteger();
        private final AtomicInteger applied = new AtomicInteger();
        private volatile String firstOdd;
        private volatile IOException failure;
        private final Thread loop;
        private volatile boolean running = true;
        /** Connections asked for by {@link #open} and not yet handed to the loop. */
        private final java.util.concurrent.ConcurrentLinkedQueue<Integer> toConnect = new java.util.concurrent.ConcurrentLinkedQueue<>();
        private final AtomicInteger sent = new AtomicInteger();

        /** {@code n} callers of {@code GET /api/v1/changes/{changeId}?wait=applied&timeout=60s} on the API at {@code api}. */
        public Waiters(URI api, String changeId, String apiKey, int n) {
            int port = api.getPort() < 0 ? 80 : api.getPort();
            this.address = new InetSocketAddress(api.getHost().replace("[", "").replace("]", ""), port);
            this.request = ("GET /api/v1/changes/" + changeId + "?wait=applied&timeout=60s HTTP/1.1\r\nHost: " + api.getHost() + ":" + port
                    + "\r\nX-API-Key: " + apiKey + "\r\nAccept: application/json\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
            this.n = n;
            this.channels = new SocketChannel[n];
            this.answeredAt = new long[n];
            this.heads = new StringBuilder[n];
            try {
                this.selector = Selector.open();
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
            this.loop = new Thread(this::loop, "bench-waiters-io");
            this.loop.setDaemon(true);
            this.loop.start();
        }

        /** Opens every connection, at most {@code batch} of them connecting or sending at once; returns once all requests are sent. */
        public void open(int batch) {
            int next = 0;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (sent.get() < n) {
                if (failure != null) {
                    throw new IllegalStateException("connecting: " + failure.getMessage(), failure);
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("only " + sent.get() + " of " + n + " requests sent within 60 s");
                }
                while (next < n && next - sent.get() < batch) {
                    toConnect.add(next++);
                }
                selector.wakeup();
                try {
                    Thread.sleep(5);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted", e);
                }
            }
        }

        private void loop() {
            ByteBuffer buf = ByteBuffer.allocate(16 * 1024);
            try {
                while (running) {
                    Integer i;
                    while ((i = toConnect.poll()) != null) {
                        SocketChannel c = SocketChannel.open();
                        c.configureBlocking(false);
                        channels[i] = c;
                        heads[i] = new StringBuilder();
                        c.connect(address);
                        c.register(selector, SelectionKey.OP_CONNECT, new int[] {i, 0});
                    }
                    selector.select(50);
                    for (SelectionKey k : selector.selectedKeys()) {
                        int[] att = (int[]) k.attachment();
                        int w = att[0];
                        SocketChannel c = (SocketChannel) k.channel();
                        try {
                            if (k.isConnectable()) {
                                c.finishConnect();
                                k.interestOps(SelectionKey.OP_WRITE);
                            } else if (k.isWritable()) {
                                att[1] += c.write(ByteBuffer.wrap(request, att[1], request.length - att[1]));
                                if (att[1] == request.length) {
                                    k.interestOps(SelectionKey.OP_READ);
                                    sent.incrementAndGet();
                                }
                            } else if (k.isReadable()) {
                                buf.clear();
                                int r = c.read(buf);
                                if (r > 0) {
                                    if (heads[w].length() < 4096) {
                                        heads[w].append(new String(buf.array(), 0, r, StandardCharsets.ISO_8859_1));
                                    }
                                } else if (r < 0) {
                                    finish(w, k, c);
                                }
                            }
                        } catch (IOException e) {
                            heads[w].append(" [").append(e.getMessage()).append(']');
                            if (att[1] < request.length) {
                                failure = e;
                            }
                            finish(w, k, c);
                        }
                    }
                    selector.selectedKeys().clear();
                }
            } catch (IOException e) {
                failure = e;
            }
        }

        private void finish(int w, SelectionKey k, SocketChannel c) {
            answeredAt[w] = System.nanoTime();
            k.cancel();
            try {
                c.close();
            } catch (IOException e) {
                // Closed either way.
            }
            String text = heads[w].toString();
            if (text.startsWith("HTTP/1.1 200") && text.contains("\"status\":\"APPLIED\"")) {
                applied.incrementAndGet();
            } else if (firstOdd == null) {
                firstOdd = text.length() > 300 ? text.substring(0, 300) : text;
            }
            heads[w] = null;
            answered.incrementAndGet();
        }

        public int answered() {
            return answered.get();
        }

        /** Answers that were 200 with status APPLIED. */
        public int applied() {
            return applied.get();
        }

        /** The start of the first answer that was not 200 APPLIED, or null. */
        public String firstOdd() {
            return firstOdd;
        }

        /** Until every caller is answered or {@code nanos} passed. */
        public void awaitAll(long nanos) {
            long deadline = System.nanoTime() + nanos;
            while (answered.get() < n && System.nanoTime() < deadline) {
                try {
                    Thread.sleep(10);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }

        /** Milliseconds from {@code since} to each answer, of the waiters answered. */
        public double[] latenciesSince(long since) {
            double[] ms = new double[n];
            int k = 0;
            for (long at : answeredAt) {
                if (at != 0) {
                    ms[k++] = (at - since) / 1e6;
                }
            }
            return Arrays.copyOf(ms, k);
        }

        @Override
        public void close() {
            running = false;
            selector.wakeup();
            try {
                loop.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            for (SocketChannel c : channels) {
                if (c != null) {
                    try {
                        c.close();
                    } catch (IOException e) {
                        // Best effort.
                    }
                }
            }
            try {
                selector.close();
            } catch (IOException e) {
                // Best effort.
            }
        }
    }
}
