package io.egressctl.compiler.bench;

import io.egressctl.compiler.compile.CompilerPipeline;
import io.egressctl.compiler.snapshot.RedisSnapshotStore;
import io.egressctl.core.event.Audit;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.NetworkKind;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.KafkaDefaults;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import redis.clients.jedis.UnifiedJedis;

import java.net.URI;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * Compiler benchmark (a program, not a test): a synthetic cloud (hosts, networks, VMs spread over
 * hosts, rules per network) is written to bench topics of its own, the real {@link CompilerPipeline}
 * (real Redis store, real Kafka producer, real schema registry) builds it, then a stream of rule
 * changes is timed end to end into Redis and Kafka, at 1x and 10x cloud size. The timed stream is
 * the same at both sizes (half creates, half deletes, over 200 networks: {@code -Dbench.activeNetworks}),
 * so the ratio measures what the size of the cloud costs a change and nothing else; a consumer
 * batch coalesces changes of one network, and a stream spread over ten times as many networks
 * coalesces less, which is a property of the stream, not of the cloud. That spread stream (all
 * 2,000 networks at 10x, "10x*") is measured in every round too and printed beside. An untimed 1x run
 * warms the JIT up first; then the sizes alternate for {@code -Dbench.rounds} rounds (default 3)
 * and the median round of each size is reported. Prints throughput, per-change cost (overall and
 * per consumer batch, p50/p99), the cost ratio between the sizes and Redis memory per host
 * snapshot, ending with
 * {@code summary: changes_per_s=<n> cost_ratio_10x=<r> redis_bytes_per_host=<n>}.
 *
 * <p>Environment: KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL, REDIS_URL (the bench uses Redis
 * database 2 and flushes it). Bounded: fixed event counts; topics are deleted at the end.
 */
public final class CompilerBench {

    static final int VMS_PER_NETWORK = 10;
    static final int RULES_PER_NETWORK = 25;
    static final int HOSTS_PER_NETWORK = 5;

    /** A cloud size: 1x = 100 hosts, 200 networks, 2,000 VMs, 5,000 rules. */
    /**
     * A cloud size and the networks its change stream touches: {@code active} networks (n0 ..
     * n{active-1}) receive the timed changes; the rest of the cloud is built and stays in the state.
     */
    record Size(String name, int hosts, int networks, int active) {
        int vms() {
            return networks * VMS_PER_NETWORK;
        }

        int rules() {
            return networks * RULES_PER_NETWORK;
        }
    }

    record Result(Size size, int changes, double seconds, long redisBytes, int hostsWithSnapshots, double setupSeconds,
                  double batchP50, double batchP99, double networksPerBatch, double fragmentsPerBatch, double kafkaFloorPerSecond) {
        double perSecond() {
            return changes / seconds;
        }

        double microsPerChange() {
            return seconds * 1e6 / changes;
        }
    }

    private final String bootstrap = env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092");
    private final String registryUrl = env("SCHEMA_REGISTRY_URL", "http://127.0.0.1:18081/apis/ccompat/v7");
    private final String redisUrl = env("REDIS_URL", "redis://127.0.0.1:16379") + "/2";
    private final int changes = Integer.getInteger("bench.changes", 30_000);
    private final SchemaRegistryClient registry = new HttpSchemaRegistryClient(registryUrl);
    private final String run = Long.toHexString(System.nanoTime() & 0xffffff);
    private SimpleMeterRegistry meters = new SimpleMeterRegistry();
    /** Distinct networks per consumer batch in the last {@link #consume}: how much a batch can coalesce. */
    private double lastNetworksPerBatch;
    private int measurements;

    public static void main(String[] args) throws Exception {
        new CompilerBench().run();
    }

    void run() throws Exception {
        int rounds = Math.max(1, Integer.getInteger("bench.rounds", 3));
        System.out.printf("compiler bench: %d rule changes per size and round, %d rounds after a warm-up, %d VMs and %d rules per network "
                + "over %d hosts; %d cpus, load %s%n", changes, rounds, VMS_PER_NETWORK, RULES_PER_NETWORK, HOSTS_PER_NETWORK,
                Runtime.getRuntime().availableProcessors(), load());
        // The same change stream at both sizes: changes to the 1x cloud's 200 networks' worth of
        // networks, so a consumer batch can coalesce equally and the ratio shows what cloud size alone
        // costs. The stream over all 2,000 networks at 10x is measured once more below.
        int active = Integer.getInteger("bench.activeNetworks", 200);
        Size one = new Size("1x", 100, 200, Math.min(200, active));
        Size ten = new Size("10x", 1000, 2000, Math.min(2000, active));
        Size tenSpread = new Size("10x*", 1000, 2000, 2000);
        if (Boolean.parseBoolean(System.getProperty("bench.only10x", "false"))) {
            measure(ten);
            return;
        }
        // Warm-up, untimed: the JIT compiles the pipeline's paths before either size is measured, so
        // the first size measured does not pay for it.
        System.out.println("warm-up (1x, not counted):");
        measure(one);
        List<Result> small = new ArrayList<>();
        List<Result> large = new ArrayList<>();
        List<Result> spreads = new ArrayList<>();
        for (int r = 0; r < rounds; r++) {
            // Sizes alternate, so drift in the machine's load hits all alike.
            small.add(measure(one));
            large.add(measure(ten));
            spreads.add(measure(tenSpread));
        }
        Result spread = medianRun(spreads);
        Result s1 = medianRun(small);
        Result s10 = medianRun(large);
        double ratio = s10.microsPerChange() / s1.microsPerChange();
        System.out.println();
        System.out.println("size  hosts  networks    VMs   rules   setup_s  changes/s  us/change  batch_us/change(p50/p99)  redis_bytes/host  redis_total");
        for (Result r : List.of(s1, s10, spread)) {
            System.out.printf("%-4s %6d %9d %7d %7d %8.1f %10.0f %10.1f %13.1f / %-9.1f %17d %12d%n", r.size().name(), r.size().hosts(),
                    r.size().networks(), r.size().vms(), r.size().rules(), r.setupSeconds(), r.perSecond(), r.microsPerChange(),
                    r.batchP50(), r.batchP99(), r.redisBytes() / Math.max(1, r.hostsWithSnapshots()), r.redisBytes());
        }
        System.out.printf("changes go to %d networks at 1x and 10x; 10x* spreads them over all 2,000 (not in the summary)%n",
                s1.size().active());
        System.out.printf("coalescing per 1,000-record batch: 1x %.0f networks, %.0f fragments written; 10x %.0f, %.0f; 10x* %.0f, %.0f%n",
                s1.networksPerBatch(), s1.fragmentsPerBatch(), s10.networksPerBatch(), s10.fragmentsPerBatch(),
                spread.networksPerBatch(), spread.fragmentsPerBatch());
        System.out.printf("10x* per-change cost / 1x: %.2f (no coalescing advantage left to the small cloud)%n",
                spread.microsPerChange() / s1.microsPerChange());
        System.out.printf("rounds: 1x %s changes/s; 10x %s; 10x* %s (the median round of each is shown above)%n",
                small.stream().map(r -> String.format("%.0f", r.perSecond())).toList(),
                large.stream().map(r -> String.format("%.0f", r.perSecond())).toList(),
                spreads.stream().map(r -> String.format("%.0f", r.perSecond())).toList());
        System.out.printf("floor: Kafka alone (a fresh consumer polling the same records, no processing): 1x %.0f, 10x %.0f, 10x* %.0f records/s%n",
                s1.kafkaFloorPerSecond(), s10.kafkaFloorPerSecond(), spread.kafkaFloorPerSecond());
        System.out.printf("per-change cost ratio 10x/1x: %.2f (target <= 1.3); throughput target >= 10000 changes/s%n", ratio);
        System.out.printf("summary: changes_per_s=%.0f cost_ratio_10x=%.2f redis_bytes_per_host=%d%n",
                Math.min(s1.perSecond(), s10.perSecond()), ratio, s10.redisBytes() / Math.max(1, s10.hostsWithSnapshots()));
    }

    /** The run with the median throughput (the lower middle one for an even count). */
    static Result medianRun(List<Result> runs) {
        List<Result> sorted = new ArrayList<>(runs);
        sorted.sort(java.util.Comparator.comparingDouble(Result::perSecond));
        return sorted.get((sorted.size() - 1) / 2);
    }

    private static String load() {
        try {
            return java.nio.file.Files.readString(java.nio.file.Path.of("/proc/loadavg")).split(" ")[0];
        } catch (java.io.IOException | RuntimeException e) {
            return "?";
        }
    }

    Result measure(Size size) throws Exception {
        // Topics of their own per measurement: re-creating a name just deleted races the deletion
        // (NOT_LEADER, then an idempotent producer stuck on OUT_OF_ORDER_SEQUENCE_NUMBER).
        String prefix = "bench." + run + "." + (++measurements) + "." + size.name().replace("*", "-spread");
        CompilerPipeline.TopicNames topics = new CompilerPipeline.TopicNames(prefix + ".network-events", prefix + ".host-updates");
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap));
             UnifiedJedis redis = new UnifiedJedis(URI.create(redisUrl));
             Producer<String, SpecificRecord> producer = producer();
             // The pipeline's own producer has the service's settings (KafkaDefaults), not the loader's.
             Producer<String, SpecificRecord> compilerProducer = new KafkaProducer<>(KafkaDefaults.orderedProducer(bootstrap, "bench-compiler"),
                     new StringSerializer(), new AvroSerializer<>(registry))) {
            admin.createTopics(List.of(new NewTopic(topics.networkEvents(), 6, (short) 1),
                    new NewTopic(topics.hostUpdates(), 6, (short) 1))).all().get();
            awaitLeaders(producer, topics);
            awaitLeaders(compilerProducer, topics);
            redis.flushDB();
            try {
                Random random = new Random(42);
                List<String[]> rules = new ArrayList<>();
                // Setup: networks, placements, initial rules.
                for (int n = 0; n < size.networks(); n++) {
                    String net = "n" + n;
                    Cidr guest = Cidr.parse("10." + (n / 256) + "." + (n % 256) + ".0/24");
                    send(producer, topics.networkEvents(), net, EventMapper.toAvro(new RuleChange(id("c"), RuleChange.Operation.NETWORK_CREATED,
                            net, null, null, new Network(net, "t" + (n % 50), NetworkKind.BASIC, guest, null, DefaultPolicy.ALLOW, false, 10_000),
                            null, null, audit())));
                    int firstHost = random.nextInt(size.hosts());
                    for (int v = 0; v < VMS_PER_NETWORK; v++) {
                        String host = "h" + ((firstHost + v % HOSTS_PER_NETWORK) % size.hosts());
                        // Interface names unique across the cloud (so across every host), as a hypervisor numbers its vnets.
                        String iface = "vnet" + Integer.toString(n * VMS_PER_NETWORK + v, 36);
                        send(producer, topics.networkEvents(), net, EventMapper.toAvro(new WorkloadChange(id("w"), WorkloadChange.Operation.VM_PLACED,
                                net, net + "-vm" + v, host, null, iface, null, guest.addressText().replaceAll("\\.0$", "." + (10 + v)), null,
                                audit())));
                    }
                    for (int r = 0; r < RULES_PER_NETWORK; r++) {
                        String ruleId = id("r");
                        if (n < size.active()) {
                            rules.add(new String[] {net, ruleId, guest.addressText()});
                        }
                        send(producer, topics.networkEvents(), net, EventMapper.toAvro(ruleCreated(net, ruleId, guest, r, random)));
                    }
                }
                producer.flush();
                long setupStart = System.nanoTime();
                CompilerPipeline pipeline = pipeline(redis, compilerProducer, topics);
                int setupEvents = size.networks() * (1 + VMS_PER_NETWORK + RULES_PER_NETWORK);
                Map<TopicPartition, Long> afterSetup = consume(pipeline, topics, setupEvents, null, new ArrayList<>());
                double setupSeconds = (System.nanoTime() - setupStart) / 1e9;

                // The timed stream: rule changes (half creates, half deletes of existing rules), pre-produced.
                for (int i = 0; i < changes; i++) {
                    if (i % 2 == 0) {
                        int n = random.nextInt(size.active());
                        String net = "n" + n;
                        Cidr guest = Cidr.parse("10." + (n / 256) + "." + (n % 256) + ".0/24");
                        String ruleId = id("r");
                        rules.add(new String[] {net, ruleId, guest.addressText()});
                        send(producer, topics.networkEvents(), net, EventMapper.toAvro(ruleCreated(net, ruleId, guest, RULES_PER_NETWORK + i, random)));
                    } else {
                        String[] victim = rules.remove(random.nextInt(rules.size()));
                        EgressRule before = new EgressRule(victim[1], Protocol.TCP, null, EgressRule.DEFAULT_PRIORITY, List.of(), List.of(),
                                List.of(), List.of(), PortRange.single(1), null, null);
                        send(producer, topics.networkEvents(), victim[0], EventMapper.toAvro(new RuleChange(id("c"), RuleChange.Operation.RULE_DELETED,
                                victim[0], null, null, null, before, null, audit())));
                    }
                }
                producer.flush();
                Map<String, double[]> before = new HashMap<>();
                for (String t : List.of("egress.compiler.batch", "egress.compiler.store", "egress.compiler.flush")) {
                    var timer = meters.find(t).timer();
                    before.put(t, new double[] {timer.count(), timer.totalTime(java.util.concurrent.TimeUnit.MILLISECONDS)});
                }
                long start = System.nanoTime();
                List<Double> perChange = new ArrayList<>();
                double fragmentsBefore = meters.find("egress.compiler.fragments.written").counter().count();
                consume(pipeline, topics, changes, afterSetup, perChange);
                double fragmentsPerBatch = (meters.find("egress.compiler.fragments.written").counter().count() - fragmentsBefore)
                        / Math.max(1, perChange.size());
                double seconds = (System.nanoTime() - start) / 1e9;
                perChange.sort(null);
                // The floor: the same records polled again by a fresh consumer, nothing done with them.
                long floorStart = System.nanoTime();
                consume(null, topics, changes, afterSetup, new ArrayList<>());
                double kafkaFloor = changes / ((System.nanoTime() - floorStart) / 1e9);
                for (String t : List.of("egress.compiler.batch", "egress.compiler.store", "egress.compiler.flush")) {
                    var timer = meters.find(t).timer();
                    if (timer != null) {
                        double n = timer.count() - before.get(t)[0];
                        double ms = timer.totalTime(java.util.concurrent.TimeUnit.MILLISECONDS) - before.get(t)[1];
                        System.out.printf("  %-24s batches=%.0f total=%.0f ms mean=%.2f ms%n", t, n, ms, ms / Math.max(1, n));
                    }
                }

                long bytes = 0;
                Set<String> hostKeys = redis.keys("egress:host:*");
                Set<String> hosts = new java.util.HashSet<>();
                for (String k : hostKeys) {
                    Long usage = redis.memoryUsage(k);
                    bytes += usage == null ? 0 : usage;
                    hosts.add(k.substring(k.indexOf('{') + 1, k.indexOf('}')));
                }
                Result result = new Result(size, changes, seconds, bytes, hosts.size(), setupSeconds,
                        perChange.get((perChange.size() - 1) / 2), perChange.get((int) Math.ceil(perChange.size() * 0.99) - 1),
                        lastNetworksPerBatch, fragmentsPerBatch, kafkaFloor);
                System.out.printf("%s: setup %d events in %.1f s; %d changes in %.2f s = %.0f changes/s (%.1f us each); %d host snapshots, %d bytes%n",
                        size.name(), setupEvents, setupSeconds, changes, seconds, result.perSecond(), result.microsPerChange(), hosts.size(), bytes);
                return result;
            } finally {
                admin.deleteTopics(List.of(topics.networkEvents(), topics.hostUpdates())).all().get();
                redis.flushDB();
            }
        }
    }

    private RuleChange ruleCreated(String net, String ruleId, Cidr guest, int r, Random random) {
        String vmIp = guest.addressText().replaceAll("\\.0$", "." + (10 + random.nextInt(VMS_PER_NETWORK)));
        EgressRule rule = new EgressRule(ruleId, Protocol.TCP, null, EgressRule.DEFAULT_PRIORITY, List.of(Cidr.parse(vmIp + "/32")), List.of(),
                List.of(Cidr.parse("198.51.100.0/24")), List.of(), PortRange.single(1 + (r % 60000)), null, null);
        return new RuleChange(id("c"), RuleChange.Operation.RULE_CREATED, net, null, null, null, null, rule, audit());
    }

    private CompilerPipeline pipeline(UnifiedJedis redis, Producer<String, SpecificRecord> producer, CompilerPipeline.TopicNames topics) {
        Producer<String, byte[]> dlt = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap),
                new StringSerializer(), new ByteArraySerializer());
        return new CompilerPipeline(new RedisSnapshotStore(redis), producer, dlt, CompilerPipeline.eventDeserializer(registry),
                topics, Long.MAX_VALUE, meters);
    }

    /**
     * Reads the network events topic from {@code from} (null: the beginning) until {@code count} records were
     * processed ({@code pipeline} null: only polled, for the floor); returns the offsets reached,
     * where the next run starts.
     */
    private Map<TopicPartition, Long> consume(CompilerPipeline pipeline, CompilerPipeline.TopicNames topics, int count,
                                              Map<TopicPartition, Long> from, List<Double> microsPerChangeByBatch) {
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(Map.of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 1000,
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false), new StringDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < 6; p++) {
                tps.add(new TopicPartition(topics.networkEvents(), p));
            }
            consumer.assign(tps);
            if (from == null) {
                consumer.seekToBeginning(tps);
            } else {
                from.forEach(consumer::seek);
            }
            int done = 0;
            long networksSeen = 0;
            long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
            while (done < count && System.nanoTime() < deadline) {
                ConsumerRecords<String, byte[]> records = consumer.poll(Duration.ofMillis(200));
                if (records.isEmpty()) {
                    continue;
                }
                List<ConsumerRecord<String, byte[]>> batch = new ArrayList<>(records.count());
                records.forEach(batch::add);
                networksSeen += batch.stream().map(ConsumerRecord::key).distinct().count();
                long t0 = System.nanoTime();
                if (pipeline != null) {
                    pipeline.process(batch);
                }
                microsPerChangeByBatch.add((System.nanoTime() - t0) / 1e3 / batch.size());
                done += batch.size();
            }
            if (done < count) {
                throw new IllegalStateException("only " + done + " of " + count + " events arrived");
            }
            lastNetworksPerBatch = (double) networksSeen / Math.max(1, microsPerChangeByBatch.size());
            Map<TopicPartition, Long> reached = new HashMap<>();
            for (TopicPartition tp : tps) {
                reached.put(tp, consumer.position(tp));
            }
            return reached;
        }
    }

    /**
     * Waits until every partition of the new topics has a leader in the producer's metadata: an
     * idempotent producer whose first batch to a partition fails while the topic is still being
     * created can get stuck on OUT_OF_ORDER_SEQUENCE_NUMBER retries (seen on a loaded machine).
     */
    private static void awaitLeaders(Producer<String, SpecificRecord> producer, CompilerPipeline.TopicNames topics) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        for (String t : List.of(topics.networkEvents(), topics.hostUpdates())) {
            while (producer.partitionsFor(t).size() < 6 || producer.partitionsFor(t).stream().anyMatch(p -> p.leader() == null)) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("topic " + t + " has no leader for every partition after 60 s");
                }
                Thread.sleep(50);
            }
        }
    }

    private Producer<String, SpecificRecord> producer() {
        return new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap, ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.LINGER_MS_CONFIG, 5, ProducerConfig.BATCH_SIZE_CONFIG, 262144, ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true,
                // One request in flight: a first batch refused with NOT_LEADER while a new topic's
                // leadership settles cannot leave later batches out of sequence (seen to stick).
                ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 1),
                new StringSerializer(), new AvroSerializer<>(registry));
    }

    private static void send(Producer<String, SpecificRecord> p, String topic, String key, SpecificRecord value) {
        p.send(new ProducerRecord<>(topic, key, value));
    }

    private static final Map<String, Integer> counters = new HashMap<>();

    private static String id(String prefix) {
        return prefix + counters.merge(prefix, 1, Integer::sum);
    }

    private static Audit audit() {
        return new Audit("bench", "bench", "bench", Instant.now(), "bench", "0");
    }

    private static String env(String name, String fallback) {
        String v = System.getenv(name);
        return v == null || v.isBlank() ? fallback : v;
    }
}
