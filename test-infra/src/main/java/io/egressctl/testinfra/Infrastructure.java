package io.egressctl.testinfra;

import com.github.dockerjava.api.exception.NotFoundException;
import com.github.dockerjava.api.model.ExposedPort;
import com.github.dockerjava.api.model.PortBinding;
import com.github.dockerjava.api.model.Ports;
import org.junit.jupiter.api.Assumptions;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.wait.strategy.Wait;
import org.testcontainers.lifecycle.Startables;
import org.testcontainers.utility.DockerImageName;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * Where the integration tests (compiler-service, rule-service) and the end-to-end tests (e2e) get Kafka,
 * the schema registry and Redis, chosen by one switch, {@code EGRESS_TEST_INFRA}:
 * <ul>
 *   <li>{@code stack} (the default): the local stack {@code ./egressctl test} started, given by
 *       KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL and REDIS_URL;</li>
 *   <li>{@code testcontainers}: containers on a local Docker engine, started by Testcontainers when a test
 *       first asks for their endpoints (Redis alone, Kafka and the registry together: a JVM whose tests use
 *       only Redis starts only Redis) and stopped when the test JVM exits. The images are the project's own ({@code scripts/images.sh}:
 *       egressctl/kafka, egressctl/apicurio-registry, egressctl/redis), or the official ones with
 *       {@code EGRESS_IMAGES=official}; {@code EGRESS_IMAGE_KAFKA}, {@code EGRESS_IMAGE_REGISTRY} and
 *       {@code EGRESS_IMAGE_REDIS} name others. No engine, or an image missing, fails with what to run;</li>
 *   <li>{@code auto}: testcontainers when an engine answers, else the stack.</li>
 * </ul>
 * Kafka must be reachable from the host at the address it advertises (the tests, and the services the
 * end-to-end tests start as processes, run on the host): its container listens on a port chosen here and
 * published on 127.0.0.1 under the same number, and advertises 127.0.0.1 with it (docker-proxy forwards it;
 * no iptables rules are needed, so this works on an engine started with {@code --iptables=false}). The
 * registry and Redis are reached on their mapped ports. Testcontainers' reaper is off
 * (TESTCONTAINERS_RYUK_DISABLED, set by the modules' failsafe configuration): the containers are stopped
 * and removed here, with their volumes, after the actions registered with {@link #beforeStop}.
 *
 * <p>A test that needs a Redis it may kill and start again (not the shared one: that would disturb the
 * other tests) gets one from {@link #ownRedis()}, on either source.
 */
public final class Infrastructure {

    /** Where the endpoints come from. */
    public enum Source { STACK, TESTCONTAINERS }

    static final String KAFKA = "KAFKA_BOOTSTRAP_SERVERS";
    static final String REGISTRY = "SCHEMA_REGISTRY_URL";
    static final String REDIS = "REDIS_URL";

    private static Infrastructure shared;
    /** Run before the containers stop, in order (e.g. services started on them, which should not see them vanish). */
    private static final List<Runnable> BEFORE_STOP = new ArrayList<>();

    /** The three roles, in the order the endpoints are listed. */
    static final List<String> ROLES = List.of(KAFKA, REGISTRY, REDIS);

    private final Source source;
    /** The endpoints known so far: all three on the stack; on containers, Kafka's and those of the containers started. */
    private final Map<String, String> endpoints;
    /** On containers: each role's container (created, started on first use of its endpoint), and its image. */
    private final Map<String, GenericContainer<?>> containers;
    private final Map<String, String> images;
    private final Set<String> started = new HashSet<>();

    private Infrastructure(Source source, Map<String, String> endpoints, Map<String, GenericContainer<?>> containers,
                           Map<String, String> images) {
        this.source = source;
        this.endpoints = new LinkedHashMap<>(endpoints);
        this.containers = Map.copyOf(containers);
        this.images = Map.copyOf(images);
        if (source == Source.STACK) {
            started.addAll(ROLES);
        }
    }

    /** The infrastructure of this test JVM: found on first call (on containers: checked, then started as used). */
    public static synchronized Infrastructure get() {
        if (shared == null) {
            shared = switch (choose(System.getenv("EGRESS_TEST_INFRA"), Infrastructure::engineAnswers)) {
                case STACK -> fromStack(System::getenv);
                case TESTCONTAINERS -> startContainers(System::getenv);
            };
        }
        return shared;
    }

    /**
     * The source the switch names: {@code stack} (also when unset or blank), {@code testcontainers}, or
     * {@code auto} (testcontainers when {@code engine} answers true). Anything else is refused.
     */
    static Source choose(String setting, java.util.function.BooleanSupplier engine) {
        String s = setting == null ? "" : setting.strip().toLowerCase(Locale.ROOT);
        return switch (s) {
            case "", "stack" -> Source.STACK;
            case "testcontainers" -> Source.TESTCONTAINERS;
            case "auto" -> engine.getAsBoolean() ? Source.TESTCONTAINERS : Source.STACK;
            default -> throw new IllegalStateException("EGRESS_TEST_INFRA='" + setting + "': use stack (default), testcontainers or auto");
        };
    }

    /**
     * Registers an action run at JVM exit before this JVM's containers stop (when the source is
     * testcontainers): the end-to-end tests stop the services they started on them, so none sees its
     * Kafka or Redis vanish while it shuts down. Actions run in the order registered; one that throws is
     * reported and the others still run.
     */
    public static void beforeStop(Runnable action) {
        synchronized (BEFORE_STOP) {
            BEFORE_STOP.add(java.util.Objects.requireNonNull(action, "action"));
        }
    }

    /** The three endpoints from the environment the local stack set. */
    static Infrastructure fromStack(Function<String, String> env) {
        Map<String, String> e = new LinkedHashMap<>();
        for (String k : List.of(KAFKA, REGISTRY, REDIS)) {
            String v = env.apply(k);
            if (v == null || v.isBlank()) {
                throw new IllegalStateException(k + " is not set: run the integration and end-to-end tests with ./egressctl test, which starts the stack"
                        + " (or set EGRESS_TEST_INFRA=testcontainers with a Docker engine running and the images built: ./egressctl images infra)");
            }
            e.put(k, v);
        }
        return new Infrastructure(Source.STACK, e, Map.of(), Map.of());
    }

    /** The image of each role: EGRESS_IMAGE_* when set, else the project's own (or official with EGRESS_IMAGES=official). */
    static Map<String, String> images(Function<String, String> env) {
        String mode = env.apply("EGRESS_IMAGES") == null ? "local" : env.apply("EGRESS_IMAGES").strip();
        Map<String, String> defaults = switch (mode) {
            case "", "local" -> Map.of(KAFKA, "egressctl/kafka:4.1.2", REGISTRY, "egressctl/apicurio-registry:2.6.13.Final",
                    REDIS, "egressctl/redis:7.0");
            case "official" -> Map.of(KAFKA, "apache/kafka:4.1.2", REGISTRY, "apicurio/apicurio-registry-mem:2.6.13.Final",
                    REDIS, "redis:7.0.15");
            default -> throw new IllegalStateException("EGRESS_IMAGES='" + mode + "': use local (default) or official");
        };
        Map<String, String> out = new LinkedHashMap<>();
        out.put(KAFKA, orDefault(env.apply("EGRESS_IMAGE_KAFKA"), defaults.get(KAFKA)));
        out.put(REGISTRY, orDefault(env.apply("EGRESS_IMAGE_REGISTRY"), defaults.get(REGISTRY)));
        out.put(REDIS, orDefault(env.apply("EGRESS_IMAGE_REDIS"), defaults.get(REDIS)));
        return out;
    }

    static String orDefault(String v, String d) {
        return v == null || v.isBlank() ? d : v.strip();
    }

    static boolean engineAnswers() {
        try {
            return DockerClientFactory.instance().isDockerAvailable();
        } catch (RuntimeException e) {
            return false;
        }
    }

    /**
     * The containers of the three roles, created but not started: each starts when a test first asks for its
     * endpoint ({@link #env}), or all that are left when one asks for all ({@link #endpoints}), so tests
     * that need only Redis do not pay for Kafka and the registry.
     */
    private static Infrastructure startContainers(Function<String, String> env) {
        if (!engineAnswers()) {
            throw new IllegalStateException("EGRESS_TEST_INFRA=testcontainers, but no Docker engine answers: start one (scripts/engine.sh start,"
                    + " as root), or run on the local stack (EGRESS_TEST_INFRA=stack, ./egressctl test)");
        }
        Map<String, String> images = images(env);
        List<String> missing = new ArrayList<>();
        boolean official = "official".equals(orDefault(env.apply("EGRESS_IMAGES"), "local"));
        for (String image : images.values()) {
            try {
                DockerClientFactory.instance().client().inspectImageCmd(image).exec();
            } catch (NotFoundException e) {
                missing.add(image);
            }
        }
        if (!missing.isEmpty() && !official) {
            throw new IllegalStateException("image(s) " + missing + " not on the engine: build them with ./egressctl images infra"
                    + " (scripts/images.sh; no image registry needed)");
        }
        String label = label();
        int kafkaPort = freePort();
        GenericContainer<?> kafka = new GenericContainer<>(DockerImageName.parse(images.get(KAFKA)))
                .withLabel("io.egressctl.test", label)
                .withEnv("KAFKA_NODE_ID", "1")
                .withEnv("KAFKA_PROCESS_ROLES", "broker,controller")
                .withEnv("KAFKA_LISTENERS", "PLAINTEXT://:" + kafkaPort + ",CONTROLLER://:9093")
                .withEnv("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://127.0.0.1:" + kafkaPort)
                .withEnv("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
                .withEnv("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT")
                .withEnv("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
                .withEnv("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
                .withEnv("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
                .withEnv("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
                .withEnv("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
                .withEnv("KAFKA_NUM_PARTITIONS", "6")
                // As the local stack: topics are made by the services (or the test), never by a client's mistake.
                .withEnv("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
                .withCreateContainerCmdModifier(cmd -> {
                    ExposedPort p = ExposedPort.tcp(kafkaPort);
                    cmd.withExposedPorts(p);
                    cmd.getHostConfig().withPortBindings(new PortBinding(Ports.Binding.bindIpAndPort("127.0.0.1", kafkaPort), p));
                })
                .waitingFor(Wait.forLogMessage(".*Kafka Server started.*", 1).withStartupTimeout(Duration.ofMinutes(3)));
        GenericContainer<?> registry = new GenericContainer<>(DockerImageName.parse(images.get(REGISTRY)))
                .withLabel("io.egressctl.test", label)
                .withExposedPorts(8080)
                .waitingFor(Wait.forHttp("/apis/ccompat/v7/subjects").forPort(8080).forStatusCode(200)
                        .withStartupTimeout(Duration.ofMinutes(3)));
        GenericContainer<?> redis = new GenericContainer<>(DockerImageName.parse(images.get(REDIS)))
                .withLabel("io.egressctl.test", label)
                .withExposedPorts(6379)
                .waitingFor(Wait.forLogMessage(".*Ready to accept connections.*", 1).withStartupTimeout(Duration.ofMinutes(1)));
        List<GenericContainer<?>> all = List.of(kafka, registry, redis);
        // Stopped at exit, those started (even half-way), after the beforeStop actions (see stop).
        Runtime.getRuntime().addShutdownHook(new Thread(() -> stop(all), "testcontainers-stop"));
        return new Infrastructure(Source.TESTCONTAINERS, Map.of(KAFKA, "127.0.0.1:" + kafkaPort),
                Map.of(KAFKA, kafka, REGISTRY, registry, REDIS, redis), images);
    }

    /**
     * Starts the containers of {@code roles} not started yet, side by side, and notes their endpoints. Kafka's
     * address is fixed at creation (its advertised listener); the others' are their mapped ports.
     */
    private synchronized void start(List<String> roles) {
        List<String> todo = roles.stream().filter(r -> !started.contains(r)).toList();
        if (todo.isEmpty()) {
            return;
        }
        long t0 = System.nanoTime();
        Startables.deepStart(todo.stream().map(containers::get).toList()).join();
        Map<String, String> now = new LinkedHashMap<>();
        for (String r : todo) {
            started.add(r);
            switch (r) {
                case REGISTRY -> endpoints.put(REGISTRY, "http://127.0.0.1:" + containers.get(REGISTRY).getMappedPort(8080) + "/apis/ccompat/v7");
                case REDIS -> endpoints.put(REDIS, "redis://127.0.0.1:" + containers.get(REDIS).getMappedPort(6379));
                default -> { } // Kafka's: known since creation
            }
            now.put(r, endpoints.get(r));
        }
        System.out.printf("[test-infra] Testcontainers: %s started in %.1f s: %s%n", todo.stream().map(images::get).toList(),
                (System.nanoTime() - t0) / 1e9, now);
    }

    /** Where the endpoints come from. */
    public Source source() {
        return source;
    }

    /** The label of this JVM's containers ({@code io.egressctl.test}), to find what a killed test JVM left. */
    static String label() {
        return "egressctl-test-" + ProcessHandle.current().pid();
    }

    /**
     * KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL or REDIS_URL. On containers, its container is started first if
     * need be: Redis alone, Kafka and the registry together.
     */
    public synchronized String env(String name) {
        if (!ROLES.contains(name)) {
            throw new IllegalArgumentException("not an infrastructure endpoint: " + name + " (one of " + ROLES + ")");
        }
        // Kafka and the registry go together (events are written through the registry): started side by side.
        start(name.equals(REDIS) ? List.of(REDIS) : List.of(KAFKA, REGISTRY));
        return endpoints.get(name);
    }

    /** The three endpoints, as the services read them from their environment (on containers, all started first). */
    public synchronized Map<String, String> endpoints() {
        start(ROLES);
        Map<String, String> out = new LinkedHashMap<>();
        ROLES.forEach(r -> out.put(r, endpoints.get(r)));
        return Collections.unmodifiableMap(out);
    }

    /**
     * REDIS_URL with another database number: tests that flush what they write use a database of their own,
     * on the stack and on a container alike.
     */
    public String redisUrl(int database) {
        if (database < 0 || database > 15) {
            throw new IllegalArgumentException("Redis database " + database + ": use 0 to 15");
        }
        return env(REDIS).replaceAll("/\\d+$", "") + "/" + database;
    }

    /**
     * A Redis server of the calling test's own, which it may kill and start again on the same address:
     * a redis-server process on a free port of 127.0.0.1 when the source is the stack, a container of the
     * Redis image on a published port when it is testcontainers. Started before it is returned; close it.
     */
    public OwnRedis ownRedis() {
        return switch (source) {
            case STACK -> OwnRedis.process(System::getenv);
            case TESTCONTAINERS -> OwnRedis.container(images.get(REDIS), label());
        };
    }

    /**
     * Skips the calling test, with {@code why} as the reason in the report, unless the endpoints are the local
     * stack's: for the few tests that kill and restart the stack's own processes, which containers do not have.
     */
    public static void assumeStack(String why) {
        Assumptions.assumeTrue(get().source == Source.STACK, () -> "needs the local stack (EGRESS_TEST_INFRA=stack): " + why);
    }

    /** Runs the beforeStop actions, then stops and removes the containers (with their volumes). */
    private static synchronized void stop(List<GenericContainer<?>> containers) {
        List<Runnable> actions;
        synchronized (BEFORE_STOP) {
            actions = List.copyOf(BEFORE_STOP);
        }
        for (Runnable a : actions) {
            try {
                a.run();
            } catch (RuntimeException e) {
                System.err.println("[test-infra] an action before the containers stop failed: " + e);
            }
        }
        for (GenericContainer<?> c : containers) {
            try {
                c.stop();
            } catch (RuntimeException e) {
                System.err.println("[test-infra] could not stop container " + c.getContainerId() + ": " + e);
            }
        }
    }

    /** Ports handed out in this JVM: a server may not have bound its port yet when the next one is picked. */
    private static final java.util.Set<Integer> HANDED_OUT = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /** A free port of 127.0.0.1 not handed out before in this JVM (the system may give a port just closed again). */
    public static int freePort() {
        for (int attempt = 0; attempt < 100; attempt++) {
            try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
                if (HANDED_OUT.add(s.getLocalPort())) {
                    return s.getLocalPort();
                }
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }
        throw new IllegalStateException("no free port not handed out already in 100 attempts");
    }
}
