package io.egressctl.compiler.faults;

import io.egressctl.compiler.CompilerApplication;
import io.egressctl.compiler.compile.PipelineHealth;
import io.egressctl.core.event.Audit;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.NetworkKind;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.KafkaDefaults;
import io.egressctl.schemas.serde.Topics;
import io.egressctl.schemas.view.RedisKeys;
import io.egressctl.testinfra.Infrastructure;
import io.micrometer.core.instrument.MeterRegistry;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.health.contributor.Status;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import redis.clients.jedis.UnifiedJedis;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Future;
import java.util.function.BooleanSupplier;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The compiler-service, in this JVM with its real Spring Kafka container and error handler, against
 * a real Kafka, schema registry and Redis ({@link Infrastructure}: the local stack's, or containers with
 * {@code EGRESS_TEST_INFRA=testcontainers}),
 * under outages of a few seconds: nothing is dead-lettered or lost, health says DEGRADED with the
 * reason meanwhile, and every event is compiled once the outage ends.
 *
 * <ul>
 *   <li>The schema registry cannot be reached (a TCP proxy of this test in front of the real one,
 *       closed): events that would decode are retried, not dead-lettered.</li>
 *   <li>Redis stops answering in the middle of a burst ({@code CLIENT PAUSE 4000 ALL}, longer than the
 *       client's 2 s timeout): every event of the burst ends up compiled at its position.</li>
 * </ul>
 * The compiler has a consumer group and a Redis database of its own, so it replays the whole topic
 * and shares nothing with other instances. Both outages are made here, in front of or inside the shared
 * servers (a proxy, a client pause), so the test runs on containers as on the stack.
 */
@SpringBootTest(classes = CompilerApplication.class)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class CompilerOutagesIT {

    static final String RUN = UUID.randomUUID().toString().substring(0, 8);
    static final int DB = 7;
    static final Audit AUDIT = new Audit("it", "acme", "req", Instant.parse("2026-01-01T00:00:00Z"), "it", "0");
    static final RegistryProxy proxy = RegistryProxy.start(URI.create(env("SCHEMA_REGISTRY_URL")));

    @Autowired
    PipelineHealth health;
    @Autowired
    MeterRegistry meters;

    /** KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL or REDIS_URL of the stack or of the containers. */
    static String env(String name) {
        return Infrastructure.get().env(name);
    }

    static String redisUrl() {
        return Infrastructure.get().redisUrl(DB);
    }

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry r) {
        try (UnifiedJedis redis = new UnifiedJedis(URI.create(redisUrl()))) {
            redis.flushDB();
        }
        r.add("spring.kafka.bootstrap-servers", () -> env("KAFKA_BOOTSTRAP_SERVERS"));
        r.add("egress.schema-registry-url", proxy::url);
        r.add("egress.redis-url", CompilerOutagesIT::redisUrl);
        r.add("egress.compiler.group", () -> "it-outages-" + RUN);
        r.add("egress.compiler.status-group", () -> "it-outages-status-" + RUN);
        r.add("egress.compiler.checkpoint-interval-ms", () -> "300");
        r.add("egress.compiler.retry.max-backoff", () -> "1s");
        r.add("server.port", () -> "0");
    }

    @AfterAll
    static void cleanUp() {
        proxy.close();
        try (UnifiedJedis redis = new UnifiedJedis(URI.create(redisUrl()))) {
            redis.flushDB();
        }
    }

    @Test
    @Order(1)
    void anUnreachableRegistryIsRetriedNotDeadLettered() throws Exception {
        // Down since before the compiler started: it has not fetched a single writer schema, so no record
        // of the log can be decoded.
        proxy.down();
        List<String> changes = new ArrayList<>();
        String net = "it-" + RUN + "-reg";
        try (Producer<String, SpecificRecord> producer = producer()) {
            send(producer, networkCreated(net), changes);
            for (int i = 0; i < 5; i++) {
                send(producer, ruleCreated(net, "r" + i, 1000 + i), changes);
            }
        }
        assertThat(eventually(Duration.ofSeconds(30), () -> health.health().getStatus().equals(PipelineHealth.DEGRADED)))
                .as("DEGRADED while the registry cannot be reached").isTrue();
        Thread.sleep(3000);
        assertThat((String) health.health().getDetails().get("reason")).contains("schema-registry");
        assertThat(retries("schema-registry")).isPositive();
        try (UnifiedJedis redis = new UnifiedJedis(URI.create(redisUrl()))) {
            assertThat(redis.exists(RedisKeys.change(changes.get(0)))).as("nothing compiled meanwhile").isFalse();

            proxy.up();
            assertThat(eventually(Duration.ofSeconds(60), () -> changes.stream().allMatch(c -> redis.exists(RedisKeys.change(c)))))
                    .as("every event compiled once the registry answers").isTrue();
            for (String c : changes) {
                assertThat(redis.get(RedisKeys.change(c))).contains("\"status\":\"COMPILED\"");
            }
        }
        assertThat(deadLettered(net)).as("an outage is not poison").isZero();
        assertThat(eventually(Duration.ofSeconds(10), () -> health.health().getStatus().equals(Status.UP))).isTrue();
    }

    @Test
    @Order(2)
    void aRedisOutageInTheMiddleOfABurstLosesNothing() throws Exception {
        List<String> nets = List.of("it-" + RUN + "-a", "it-" + RUN + "-b", "it-" + RUN + "-c");
        List<String> changes = new ArrayList<>();
        Map<String, Long> lastPosition = new ConcurrentHashMap<>();
        Map<String, Integer> rules = new ConcurrentHashMap<>();
        proxy.up();
        double before = retries("redis");
        try (Producer<String, SpecificRecord> producer = producer();
             UnifiedJedis admin = new UnifiedJedis(URI.create(redisUrl()))) {
            for (String net : nets) {
                lastPosition.put(net, send(producer, networkCreated(net), changes) + 1);
            }
            Thread pause = null;
            for (int i = 0; i < 240; i++) {
                if (i == 80) {
                    // Redis stops answering every client for 4 s (the compiler's commands time out after 2 s).
                    pause = new Thread(() -> admin.sendCommand(redis.clients.jedis.Protocol.Command.CLIENT, "PAUSE", "4000", "ALL"));
                    pause.start();
                }
                String net = nets.get(i % nets.size());
                lastPosition.put(net, send(producer, ruleCreated(net, "r" + i, 1000 + i), changes) + 1);
                rules.merge(net, 1, Integer::sum);
                Thread.sleep(20);
            }
            pause.join();
        }
        try (UnifiedJedis redis = new UnifiedJedis(URI.create(redisUrl()))) {
            assertThat(eventually(Duration.ofSeconds(90), () -> changes.stream().allMatch(c -> redis.exists(RedisKeys.change(c)))))
                    .as("every change of the burst compiled").isTrue();
            for (String net : nets) {
                Map<String, String> view = redis.hgetAll(RedisKeys.network(net));
                assertThat(Long.parseLong(view.get("version"))).as("%s at the position of its last event", net).isEqualTo(lastPosition.get(net));
                assertThat(view.keySet().stream().filter(k -> k.startsWith("r:")).count()).as("%s's rules", net).isEqualTo((long) rules.get(net));
            }
        }
        assertThat(retries("redis")).as("the outage was retried").isGreaterThan(before);
        assertThat(eventually(Duration.ofSeconds(10), () -> health.health().getStatus().equals(Status.UP))).isTrue();
    }

    // ---- helpers ----

    double retries(String reason) {
        var c = meters.find("egress.compiler.retries").tag("listener", "compiler").tag("reason", reason).counter();
        return c == null ? 0 : c.count();
    }

    static Producer<String, SpecificRecord> producer() {
        return new KafkaProducer<>(KafkaDefaults.orderedProducer(env("KAFKA_BOOTSTRAP_SERVERS"), "it-outages-" + RUN),
                new StringSerializer(), new AvroSerializer<>(new HttpSchemaRegistryClient(env("SCHEMA_REGISTRY_URL"))));
    }

    /** Sends the event (key: its network) and returns its offset. */
    static long send(Producer<String, SpecificRecord> producer, RuleChange c, List<String> changes) throws Exception {
        Future<RecordMetadata> f = producer.send(new ProducerRecord<>(Topics.NETWORK_EVENTS, c.networkId(), EventMapper.toAvro(c)));
        changes.add(c.eventId());
        return f.get().offset();
    }

    static RuleChange networkCreated(String net) {
        return new RuleChange("c-" + net, RuleChange.Operation.NETWORK_CREATED, net, null, null,
                new Network(net, "acme", NetworkKind.BASIC, Cidr.parse("10.0.0.0/24"), null, DefaultPolicy.ALLOW, false, 1000), null, null, AUDIT);
    }

    static RuleChange ruleCreated(String net, String ruleId, int port) {
        return new RuleChange("c-" + net + "-" + ruleId, RuleChange.Operation.RULE_CREATED, net, null, null, null, null,
                new EgressRule(ruleId, Protocol.TCP, null, EgressRule.DEFAULT_PRIORITY, List.of(Cidr.parse("10.0.0.11/32")), List.of(), List.of(),
                        List.of(), PortRange.single(port), null, null), AUDIT);
    }

    /** Records of the network on the dead-letter topic. */
    static long deadLettered(String net) {
        try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, env("KAFKA_BOOTSTRAP_SERVERS")),
                new StringDeserializer(), new ByteArrayDeserializer())) {
            String topic = Topics.dlt(Topics.NETWORK_EVENTS);
            List<TopicPartition> tps = c.partitionsFor(topic).stream().map(p -> new TopicPartition(topic, p.partition())).toList();
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps);
            long found = 0;
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp)) && System.nanoTime() < deadline) {
                for (var r : c.poll(Duration.ofMillis(200))) {
                    if (net.equals(r.key())) {
                        found++;
                    }
                }
            }
            return found;
        }
    }

    static boolean eventually(Duration timeout, BooleanSupplier check) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (check.getAsBoolean()) {
                return true;
            }
            Thread.sleep(100);
        }
        return check.getAsBoolean();
    }

    /**
     * A TCP proxy in front of the real schema registry that can be closed (connection refused, open
     * connections cut) and opened again on the same port: a registry outage without touching the
     * registry other tests use.
     */
    static final class RegistryProxy implements AutoCloseable {
        private final URI target;
        private final int port;
        private final Set<Socket> open = ConcurrentHashMap.newKeySet();
        private volatile ServerSocket server;

        private RegistryProxy(URI target, int port) {
            this.target = target;
            this.port = port;
        }

        /** A proxy on a free port, closed. */
        static RegistryProxy start(URI target) {
            try (ServerSocket probe = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
                // Closed until a test opens it: the compiler starts consuming as soon as its context is up.
                return new RegistryProxy(target, probe.getLocalPort());
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }

        String url() {
            return "http://127.0.0.1:" + port + target.getPath();
        }

        synchronized void up() {
            if (server != null) {
                return;
            }
            try {
                ServerSocket s = new ServerSocket();
                s.setReuseAddress(true);
                s.bind(new InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), port));
                server = s;
                Thread t = new Thread(() -> accept(s), "registry-proxy");
                t.setDaemon(true);
                t.start();
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }

        synchronized void down() {
            if (server == null) {
                return;
            }
            try {
                server.close();
            } catch (IOException ignored) {
                // closing
            }
            server = null;
            open.forEach(s -> {
                try {
                    s.close();
                } catch (IOException ignored) {
                    // closing
                }
            });
            open.clear();
        }

        @Override
        public void close() {
            down();
        }

        private void accept(ServerSocket s) {
            while (!s.isClosed()) {
                try {
                    Socket client = s.accept();
                    Socket upstream = new Socket(target.getHost(), target.getPort());
                    open.add(client);
                    open.add(upstream);
                    pipe(client, upstream);
                    pipe(upstream, client);
                } catch (IOException e) {
                    // closed, or the registry refused: the client sees its connection closed
                }
            }
        }

        private void pipe(Socket from, Socket to) {
            Thread t = new Thread(() -> {
                try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
                    in.transferTo(out);
                } catch (IOException ignored) {
                    // cut
                } finally {
                    try {
                        from.close();
                        to.close();
                    } catch (IOException ignored) {
                        // closing
                    }
                    open.remove(from);
                    open.remove(to);
                }
            }, "registry-proxy-pipe");
            t.setDaemon(true);
            t.start();
        }
    }
}
