package io.egressctl.agent.fleet;

import io.egressctl.agent.config.AgentClients;
import io.egressctl.agent.enforce.DryRunEnforcer;
import io.egressctl.agent.enforce.FlowTable;
import io.egressctl.agent.sync.HostSync;
import io.egressctl.agent.sync.SnapshotSource;
import io.egressctl.agent.sync.Snapshots;
import io.egressctl.core.render.HostMode;
import io.egressctl.core.render.NftRenderer;
import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.integrity.UpdateKeys;
import io.egressctl.schemas.integrity.UpdateMac;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.AvroSerializer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.common.serialization.StringSerializer;
import redis.clients.jedis.UnifiedJedis;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * A fleet of host agents in one JVM for {@code ./egressctl bench propagation}: one real
 * {@link HostSync} per host, each with its own consumer assigned to the one partition its host id maps
 * to, its own report producer (the agent's settings, {@link AgentClients}), the dry-run enforcer
 * writing {@code <dir>/<host>.nft}, and the update keys of {@code EGRESS_UPDATE_KEYS} checked as a
 * deployed agent checks them. Shared within the JVM, where a deployed agent has its own: the Redis
 * connection pool (read at bootstrap only) and the schema registry client (a cache of schema ids).
 *
 * <p>Driven by the bench over standard input, one command a line, each answered on standard output:
 * {@code stats} (fetched bytes, own bytes, records, own records, agents not ready), {@code dump FILE}
 * (the receipts of own records since the last dump, {@code host partition offset micros}), {@code stop}.
 * The end of standard input stops it too: the fleet never outlives its bench.
 *
 * <p>Arguments: {@code HOSTS_FILE DIR RECONCILE_SECONDS READY_TIMEOUT_SECONDS}. Connections from the
 * environment: {@code KAFKA_BOOTSTRAP_SERVERS}, {@code SCHEMA_REGISTRY_URL}, {@code REDIS_URL}.
 */
public final class Fleet {

    /** Agents started at once; the next wave starts when these have enforced their snapshots (or after 30 s). */
    private static final int WAVE = 50;

    private Fleet() {
    }

    private record Agent(String hostId, HostSync sync, TimedConsumer consumer, Thread thread) {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: Fleet HOSTS_FILE DIR RECONCILE_SECONDS READY_TIMEOUT_SECONDS");
            System.exit(2);
        }
        List<String> hosts = Files.readAllLines(Path.of(args[0])).stream().map(String::trim).filter(s -> !s.isEmpty()).toList();
        Path dir = Path.of(args[1]);
        Duration reconcile = Duration.ofSeconds(Long.parseLong(args[2]));
        long readyTimeout = Long.parseLong(args[3]);
        String bootstrap = require("KAFKA_BOOTSTRAP_SERVERS");
        SchemaRegistryClient registry = new HttpSchemaRegistryClient(require("SCHEMA_REGISTRY_URL"));
        UpdateKeys keys = UpdateKeys.parse(System.getenv("EGRESS_UPDATE_KEYS"), null);
        PrintWriter out = new PrintWriter(System.out, true, StandardCharsets.UTF_8);
        Queue<TimedConsumer.Receipt> receipts = new ConcurrentLinkedQueue<>();
        List<Agent> agents = new ArrayList<>();
        try (UnifiedJedis redis = new UnifiedJedis(URI.create(require("REDIS_URL")))) {
            SnapshotSource snapshots = Snapshots.redis(redis);
            for (String host : hosts) {
                TimedConsumer consumer = new TimedConsumer(AgentClients.consumer(bootstrap, host), host, receipts);
                Producer<String, SpecificRecord> producer = new KafkaProducer<>(AgentClients.reportProducer(bootstrap, host),
                        new StringSerializer(), new AvroSerializer<>(registry));
                HostSync sync = new HostSync(host, consumer, producer, snapshots, new AvroDeserializer<>(registry, HostUpdate.class),
                        new DryRunEnforcer(dir.resolve(host + ".nft")), FlowTable.NONE, new NftRenderer(false, HostMode.ROUTED),
                        reconcile, Clock.systemUTC(), new SimpleMeterRegistry(), HostSync.DEFAULT_MAX_ELEMENTS, new UpdateMac(keys));
                Thread t = new Thread(() -> {
                    try {
                        sync.run();
                    } finally {
                        producer.close(Duration.ofSeconds(5));
                    }
                }, "host-sync-" + host);
                t.setDaemon(true);
                agents.add(new Agent(host, sync, consumer, t));
            }
            long deadline = System.nanoTime() + readyTimeout * 1_000_000_000L;
            // In waves: a thousand agents bootstrapping at one instant on one machine time out on the
            // broker's metadata and the registry's first lookup, and retry with back-off; a deployed
            // fleet's agents start on their own hosts, at their own times. The scenarios measure a
            // running fleet, so the start only has to end.
            for (int from = 0; from < agents.size(); from += WAVE) {
                List<Agent> wave = agents.subList(from, Math.min(agents.size(), from + WAVE));
                wave.forEach(a -> a.thread().start());
                long waveEnd = System.nanoTime() + 30_000_000_000L;
                while (wave.stream().anyMatch(a -> !a.sync().isBootstrapped()) && System.nanoTime() < waveEnd) {
                    Thread.sleep(50);
                }
            }
            while (true) {
                long ready = agents.stream().filter(a -> a.sync().isBootstrapped()).count();
                if (ready == agents.size()) {
                    out.println("ready " + ready);
                    break;
                }
                if (System.nanoTime() > deadline) {
                    String why = agents.stream().filter(a -> !a.sync().isBootstrapped()).findFirst()
                            .map(a -> a.hostId() + ": " + a.sync().readiness().reason()).orElse("");
                    out.println("failed " + ready + " of " + agents.size() + " agents bootstrapped in " + readyTimeout + " s; first not: " + why);
                    stop(agents);
                    return;
                }
                Thread.sleep(200);
            }
            serve(agents, receipts, out);
            stop(agents);
            out.println("stopped");
        }
    }

    private static void serve(List<Agent> agents, Queue<TimedConsumer.Receipt> receipts, PrintWriter out) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String[] cmd = line.trim().split("\\s+", 2);
            switch (cmd[0]) {
                case "stats" -> {
                    long fetched = 0;
                    long own = 0;
                    long records = 0;
                    long ownRecords = 0;
                    long notReady = 0;
                    for (Agent a : agents) {
                        fetched += a.consumer().fetchedBytes();
                        own += a.consumer().ownBytes();
                        records += a.consumer().records();
                        ownRecords += a.consumer().ownRecords();
                        notReady += a.sync().readiness().ready() ? 0 : 1;
                    }
                    out.println("stats " + fetched + " " + own + " " + records + " " + ownRecords + " " + notReady);
                }
                case "dump" -> {
                    int n = 0;
                    StringBuilder b = new StringBuilder();
                    for (TimedConsumer.Receipt r = receipts.poll(); r != null; r = receipts.poll()) {
                        b.append(r.hostId()).append(' ').append(r.partition()).append(' ').append(r.offset()).append(' ')
                                .append(r.micros()).append('\n');
                        n++;
                    }
                    Files.writeString(Path.of(cmd[1]), b.toString());
                    out.println("dumped " + n);
                }
                case "stop" -> {
                    return;
                }
                default -> out.println("error unknown command '" + cmd[0] + "'");
            }
        }
    }

    private static void stop(List<Agent> agents) throws InterruptedException {
        agents.forEach(a -> a.sync().stop());
        for (Agent a : agents) {
            a.thread().join(10_000);
        }
    }

    private static String require(String name) {
        String v = System.getenv(name);
        if (v == null || v.isBlank()) {
            throw new IllegalStateException(name + " is not set");
        }
        return v;
    }
}
