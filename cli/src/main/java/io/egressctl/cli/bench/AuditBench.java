package io.egressctl.cli.bench;

import io.egressctl.cli.Env;
import io.egressctl.cli.audit.AuditContext;
import io.egressctl.cli.audit.Logs;
import io.egressctl.cli.audit.Options;
import io.egressctl.cli.audit.Progress;
import io.egressctl.cli.audit.UsageException;
import io.egressctl.cli.audit.log.EventDecoder;
import io.egressctl.cli.audit.log.LogReader;
import io.egressctl.cli.audit.replay.ParallelFold;
import io.egressctl.cli.audit.replay.Replay;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.state.NetworkState;
import io.egressctl.events.RuleEvent;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.SubjectNameStrategy;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

import java.io.PrintStream;
import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * {@code egressctl bench audit}: writes a synthetic rule-event topic of its own (default 1,000,000 events,
 * 6 partitions, created with the admin client and deleted at the end), then times a full replay of it as
 * the audit commands do it (fetch, decode with a cached reader per schema id, fold into
 * {@link NetworkState}s), checks the rebuilt state against the generator's, and ends with
 * {@code summary: replay_events_per_s=<n>}.
 */
public final class AuditBench {

    static final Set<String> OPTIONS = Set.of("events", "partitions", "networks", "max-rules", "placements-every", "topic", "keep",
            "runs", "threads");

    private AuditBench() {
    }

    public static int run(Env env, String[] args) {
        return run(env, args, System.out, System.err, System.console() != null);
    }

    public static int run(Env env, String[] args, PrintStream out, PrintStream err, boolean terminal) {
        Logs.quiet();
        Options o;
        AuditContext ctx;
        try {
            Set<String> flags = new java.util.HashSet<>(AuditContext.FLAGS);
            flags.add("keep");
            o = Options.parse(args, flags);
            Set<String> allowed = new java.util.HashSet<>(AuditContext.COMMON);
            allowed.addAll(OPTIONS);
            o.check(allowed);
            ctx = new AuditContext(env, o, out, err, Clock.systemUTC(), terminal);
        } catch (UsageException e) {
            err.println("bench audit: " + e.getMessage());
            err.println("usage: egressctl bench audit [--events 1000000] [--partitions 6] [--networks 2000] [--max-rules 12]"
                    + " [--placements-every 5] [--topic egress.audit-bench.network-events] [--runs 1] [--keep]"
                    + " [connection options of egressctl audit]");
            return 2;
        }
        try (ctx) {
            return new Runner(ctx, o).run();
        } catch (RuntimeException e) {
            err.println("bench audit: error: " + e);
            return 4;
        }
    }

    private static final class Runner {
        private final AuditContext ctx;
        private final int events;
        private final int partitions;
        private final int networks;
        private final int maxRules;
        private final int runs;
        private final String topic;
        private final boolean keep;
        private final int threads;
        /** Every n-th event of a network is a VM placement (the one log carries both kinds); 0: none. */
        private final int placementsEvery;

        Runner(AuditContext ctx, Options o) {
            this.ctx = ctx;
            this.events = o.intValue("events", 1_000_000);
            this.partitions = o.intValue("partitions", 6);
            this.networks = o.intValue("networks", 2_000);
            this.maxRules = o.intValue("max-rules", 12);
            this.runs = o.intValue("runs", 2);
            this.topic = o.get("topic", "egress.audit-bench.network-events");
            this.placementsEvery = o.intValue("placements-every", 5);
            this.keep = o.has("keep");
            this.threads = o.intValue("threads", Runtime.getRuntime().availableProcessors());
        }

        int run() {
            PrintStream out = ctx.out();
            out.printf(Locale.ROOT, "bench audit: %,d network events (%s), %d partitions, %,d networks, topic %s on %s%n", events,
                    placementsEvery > 0 ? "every " + placementsEvery + "th event of a network a placement" : "rule events only", partitions,
                    networks, topic, ctx.bootstrap());
            try (Admin admin = ctx.admin()) {
                recreate(admin);
                try {
                    SyntheticHistory history = produce();
                    double best = 0;
                    for (int i = 1; i <= runs; i++) {
                        best = Math.max(best, replay(history, i));
                    }
                    decodeOnly();
                    out.printf(Locale.ROOT, "best of %d full replays: %,.0f events/s%n", runs, best);
                    out.printf(Locale.ROOT, "summary: replay_events_per_s=%d%n", Math.round(best));
                    return 0;
                } finally {
                    if (!keep) {
                        delete(admin);
                        out.println("deleted topic " + topic);
                    }
                }
            }
        }

        private void recreate(Admin admin) {
            delete(admin);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (true) {
                try {
                    admin.createTopics(List.of(new NewTopic(topic, Optional.of(partitions), Optional.empty())
                            .configs(Map.of("retention.ms", "-1")))).all()
                            .get(30, TimeUnit.SECONDS);
                    return;
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException) || System.nanoTime() > deadline) {
                        throw new IllegalStateException("cannot create topic " + topic + ": " + e.getCause(), e.getCause());
                    }
                    sleep(200); // the deletion of a previous run is still under way
                } catch (Exception e) {
                    throw new IllegalStateException("cannot create topic " + topic + ": " + e, e);
                }
            }
        }

        private void delete(Admin admin) {
            try {
                admin.deleteTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) {
                    throw new IllegalStateException("cannot delete topic " + topic + ": " + e.getCause(), e.getCause());
                }
            } catch (Exception e) {
                throw new IllegalStateException("cannot delete topic " + topic + ": " + e, e);
            }
        }

        private SyntheticHistory produce() {
            SyntheticHistory history = new SyntheticHistory("bench-", networks, maxRules,
                    Instant.now().minusSeconds(events / 1000 + 3600), 1).withPlacements(placementsEvery);
            // RuleEvent and WorkloadEvent each under their own subject (TopicRecordNameStrategy), as rule-service writes them.
            AvroSerializer<SpecificRecord> serializer = new AvroSerializer<>(ctx.registry(), true, SubjectNameStrategy.TOPIC_RECORD_NAME);
            AtomicReference<Exception> failure = new AtomicReference<>();
            long t0 = System.nanoTime();
            long bytes = 0;
            Progress progress = ctx.progress("produce ", events);
            try (KafkaProducer<String, byte[]> producer = ctx.producer()) {
                for (int i = 0; i < events; i++) {
                    long ts = history.time(history.index()).toEpochMilli();
                    SpecificRecord e = history.nextEvent();
                    byte[] value = serializer.serialize(topic, e);
                    bytes += value.length;
                    String key = e instanceof RuleEvent r ? r.getNetworkId() : ((io.egressctl.events.WorkloadEvent) e).getNetworkId();
                    producer.send(new ProducerRecord<>(topic, null, ts, key, value), (m, ex) -> {
                        if (ex != null) {
                            failure.compareAndSet(null, ex);
                        }
                    });
                    if ((i & 1023) == 1023) {
                        progress.advance(1024, "event " + (i + 1));
                        if (failure.get() != null) {
                            break;
                        }
                    }
                }
                producer.flush();
            } finally {
                progress.done();
            }
            if (failure.get() != null) {
                throw new IllegalStateException("producing to " + topic + " failed: " + failure.get(), failure.get());
            }
            double s = (System.nanoTime() - t0) / 1e9;
            ctx.out().printf(Locale.ROOT, "produced %,d events (%,.1f MB, avg %d bytes) in %.1f s (%,.0f events/s)%n", events,
                    bytes / 1e6, bytes / Math.max(1, events), s, events / s);
            return history;
        }

        /** One timed replay of the whole topic; returns events/s. */
        private double replay(SyntheticHistory history, int run) {
            List<Replay> parts = new java.util.ArrayList<>();
            long read;
            double s;
            double cpu;
            int workers;
            try (KafkaConsumer<byte[], byte[]> consumer = ctx.consumer()) {
                LogReader log = new LogReader(consumer);
                List<TopicPartition> tps = log.partitions(topic);
                List<LogReader.Range> ranges = log.ranges(tps, null, null);
                long total = ranges.stream().mapToLong(LogReader.Range::size).sum();
                if (total != events) {
                    throw new IllegalStateException("topic " + topic + " holds " + total + " events, expected " + events);
                }
                long cpu0 = processCpuNanos();
                long t0 = System.nanoTime();
                try (ParallelFold fold = new ParallelFold(threads, i -> {
                    Replay part = new Replay(ctx.registry());
                    synchronized (parts) {
                        parts.add(part);
                    }
                    return r -> part.event(r.topic(), r.key(), r.value(), r.offset());
                })) {
                    workers = fold.workers();
                    read = log.readBatches(ranges, fold, ctx.progress("replay ", total));
                    fold.finish();
                }
                s = (System.nanoTime() - t0) / 1e9;
                cpu = (processCpuNanos() - cpu0) / 1e9;
            }
            Replay replay = new Replay(ctx.registry());
            parts.forEach(replay::absorb);
            double rate = read / s;
            String check = check(replay, history.expected(), history.expectedVms());
            ctx.out().printf(Locale.ROOT, "replay %d: %,d events in %.2f s = %,.0f events/s (fetch + decode + fold into %,d network"
                    + " states on %d fold thread%s; %d rejected, %d skipped; process cpu %.2f s = %,.0f events per cpu-second);"
                    + " state %s%n", run, read, s, rate, replay.states().size(), workers, workers == 1 ? "" : "s",
                    replay.rejected(), replay.skipped(), cpu, read / Math.max(cpu, 1e-9), check);
            if (!check.startsWith("ok")) {
                throw new IllegalStateException("the replayed state differs from the generated history: " + check);
            }
            return rate;
        }

        /** The same read without the fold: what fetching and decoding alone cost (for the breakdown). */
        private void decodeOnly() {
            long read;
            double s;
            double cpu;
            try (KafkaConsumer<byte[], byte[]> consumer = ctx.consumer()) {
                LogReader log = new LogReader(consumer);
                List<LogReader.Range> ranges = log.ranges(log.partitions(topic), null, null);
                long cpu0 = processCpuNanos();
                long t0 = System.nanoTime();
                try (ParallelFold fold = new ParallelFold(threads, i -> {
                    EventDecoder<SpecificRecord> decoder = EventDecoder.networkEvents(ctx.registry());
                    return r -> decoder.decode(r.topic(), r.value());
                })) {
                    read = log.readBatches(ranges, fold, ctx.progress("decode ", events));
                    fold.finish();
                }
                s = (System.nanoTime() - t0) / 1e9;
                cpu = (processCpuNanos() - cpu0) / 1e9;
            }
            ctx.out().printf(Locale.ROOT, "breakdown: fetch + decode alone: %,d events in %.2f s = %,.0f events/s (process cpu %.2f s);"
                    + " the fold into NetworkState takes the rest%n", read, s, read / s, cpu);
        }

        private static long processCpuNanos() {
            java.lang.management.OperatingSystemMXBean os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
            if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
                return sun.getProcessCpuTime();
            }
            return 0;
        }

        private static String check(Replay replay, Map<String, Map<String, Integer>> expected,
                                    Map<String, Map<String, String>> expectedVms) {
            if (replay.states().size() != expected.size()) {
                return "has " + replay.states().size() + " networks, expected " + expected.size();
            }
            long rules = 0;
            for (Map.Entry<String, Map<String, Integer>> e : expected.entrySet()) {
                NetworkState s = replay.state(e.getKey());
                if (s == null || s.network() == null) {
                    return "network " + e.getKey() + " missing";
                }
                if (!s.rules().keySet().equals(e.getValue().keySet())) {
                    return "network " + e.getKey() + " has rules " + s.rules().keySet() + ", expected " + e.getValue().keySet();
                }
                Map<String, String> vms = new java.util.TreeMap<>();
                s.vms().forEach((id, p) -> vms.put(id, p.hostId()));
                if (!vms.equals(expectedVms.getOrDefault(e.getKey(), Map.of()))) {
                    return "network " + e.getKey() + " has VMs " + vms + ", expected " + expectedVms.get(e.getKey());
                }
                for (EgressRule r : s.rules().values()) {
                    if (r.ports() == null || r.ports().start() != e.getValue().get(r.ruleId())) {
                        return "rule " + r.ruleId() + " of " + e.getKey() + " has ports " + r.ports();
                    }
                }
                rules += e.getValue().size();
            }
            return "ok (" + expected.size() + " networks, " + rules + " rules)";
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
}
