package io.egressctl.e2e.support;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.testinfra.Infrastructure;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The real control plane for end-to-end tests: the three services as separate JVM processes (the
 * jars the build just made) on Kafka, a schema registry and Redis from {@link Infrastructure}: the stack that
 * {@code ./egressctl test} started (KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL and REDIS_URL), or containers
 * on a local Docker engine with {@code EGRESS_TEST_INFRA=testcontainers}. One
 * instance per test JVM, started on first use and stopped at exit. Host agents are started per test
 * class with host ids unique to this run, so classes never see each other's hosts.
 */
public final class ControlPlane {

    private static ControlPlane shared;

    private final Path root;
    private final Path workDir;
    private final String runId;
    private final Map<String, String> stackEnv = new HashMap<>();
    private final Map<String, Process> processes = new HashMap<>();
    private final Map<String, Integer> agentPorts = new HashMap<>();
    private final Map<String, Integer> servicePorts = new HashMap<>();
    private final Map<String, Map<String, String>> agentEnv = new HashMap<>();
    /** How each process was started (jar and environment), so it can be started again the same way. */
    private final Map<String, Path> startedJar = new HashMap<>();
    private final Map<String, Map<String, String>> startedEnv = new HashMap<>();
    private final String tenantKey = "tk-" + random();
    private final String otherTenantKey = "tk-" + random();
    private final String operatorKey = "ok-" + random();
    private final String cloudstackKey = "csk-" + random();
    private final String cloudstackSecret = "css-" + random();
    private String apiUrl;
    private ApiClient api;

    /** The control plane of this test JVM, started on first call. */
    public static synchronized ControlPlane shared() {
        if (shared == null) {
            // On containers: the services stop before their Kafka and Redis do, so none sees them vanish.
            Infrastructure.beforeStop(ControlPlane::stopShared);
            ControlPlane cp = new ControlPlane();
            Runtime.getRuntime().addShutdownHook(new Thread(cp::stopAll));
            cp.startServices();
            shared = cp;
        }
        return shared;
    }

    /** Stops the services of this JVM's control plane, when one was started (before its infrastructure stops). */
    static void stopShared() {
        ControlPlane cp;
        synchronized (ControlPlane.class) {
            cp = shared;
        }
        if (cp != null) {
            cp.stopAll();
        }
    }

    /**
     * A control plane of its own on other infrastructure than the shared one (e.g. a cluster a test
     * started): compiler-service and rule-service with {@code endpoints} as their environment (Kafka,
     * registry, Redis and any other setting). {@link #stop} stops it (and so does the JVM's exit).
     */
    public static ControlPlane startOn(Map<String, String> endpoints) {
        ControlPlane cp = new ControlPlane(endpoints);
        Runtime.getRuntime().addShutdownHook(new Thread(cp::stopAll));
        cp.startServices();
        return cp;
    }

    /** Stops every process this control plane started (one made by {@link #startOn}). */
    public void stop() {
        stopAll();
    }

    private ControlPlane() {
        this(Infrastructure.get().endpoints());
    }

    private ControlPlane(Map<String, String> endpoints) {
        stackEnv.putAll(endpoints);
        // Host updates as deltas wherever one is smaller, not only from 16 rules: every end-to-end test
        // (the fault suite, the audits, the kernel pipeline) then runs the delta path, gaps included.
        stackEnv.putIfAbsent("EGRESS_DELTA_MIN_RULES", "1");
        root = Path.of("").toAbsolutePath().getParent();
        runId = random().substring(0, 6);
        workDir = root.resolve("e2e/target/e2e-" + runId);
        try {
            Files.createDirectories(workDir.resolve("logs"));
            Files.createDirectories(workDir.resolve("agents"));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Starts compiler-service and rule-service; called after the shutdown hook is in place. */
    private void startServices() {
        int apiPort = freePort();
        int compilerPort = freePort();
        Map<String, String> compilerEnv = new HashMap<>(stackEnv);
        compilerEnv.put("EGRESS_COMPILER_PORT", String.valueOf(compilerPort));
        start("compiler-service", jar("compiler-service"), compilerEnv);
        Map<String, String> apiEnv = new HashMap<>(stackEnv);
        apiEnv.put("EGRESS_API_PORT", String.valueOf(apiPort));
        apiEnv.put("EGRESS_API_KEYS", tenantKey + "=acme:tenant:alice," + otherTenantKey + "=globex:tenant:mallory,"
                + operatorKey + "=ops:operator:compute");
        apiEnv.put("EGRESS_CLOUDSTACK_KEYS", cloudstackKey + ":" + cloudstackSecret + "=acme:tenant:alice");
        start("rule-service", jar("rule-service"), apiEnv);
        waitHealthy("compiler-service", compilerPort);
        waitHealthy("rule-service", apiPort);
        apiUrl = "http://127.0.0.1:" + apiPort;
        api = new ApiClient(apiUrl);
    }

    public ApiClient api() {
        return api;
    }

    public String apiUrl() {
        return apiUrl;
    }

    /** API key of tenant {@code acme}. */
    public String tenantKey() {
        return tenantKey;
    }

    /** API key of another tenant, {@code globex}. */
    public String otherTenantKey() {
        return otherTenantKey;
    }

    public String operatorKey() {
        return operatorKey;
    }

    /** CloudStack API key of tenant {@code acme} (for {@code /client/api}). */
    public String cloudstackKey() {
        return cloudstackKey;
    }

    /** CloudStack secret key of tenant {@code acme}. */
    public String cloudstackSecret() {
        return cloudstackSecret;
    }

    public String env(String name) {
        return stackEnv.get(name);
    }

    /** An id unique to this run, for networks, VMs and hosts. */
    public String unique(String prefix) {
        return prefix + "-" + runId + "-" + random().substring(0, 4);
    }

    /**
     * A placement body: the VM's host, its interface there (its identity on the host; unique per
     * host, at most 15 characters) and its IPv4 address.
     */
    public static Map<String, Object> placement(String hostId, String interfaceName, String ipv4) {
        Map<String, Object> body = new java.util.LinkedHashMap<>();
        body.put("hostId", hostId);
        body.put("interfaceName", interfaceName);
        body.put("ipv4", ipv4);
        return body;
    }

    /**
     * Creates network {@code networkId} ({@code guestCidr}, the tenant's) and places one VM on it,
     * {@code vmId} on {@code hostId} at {@code interfaceName} and {@code ipv4}, waiting until the
     * placement is applied (the host's agent must be running).
     */
    public void networkWithVm(String networkId, String guestCidr, String vmId, String hostId, String interfaceName, String ipv4) {
        networkWithVm(networkId, guestCidr, vmId, hostId, interfaceName, ipv4, "applied");
    }

    /** {@link #networkWithVm}, the placement waited for until {@code wait} ({@code compiled}: no agent needed); its answer. */
    public ApiClient.Response networkWithVm(String networkId, String guestCidr, String vmId, String hostId, String interfaceName,
                                            String ipv4, String wait) {
        ApiClient.Response created = api().post("/api/v1/networks?wait=compiled&timeout=30s", tenantKey,
                Map.of("networkId", networkId, "guestCidr", guestCidr));
        if (created.status() != 201) {
            throw new IllegalStateException("network " + networkId + " not created: " + created.status() + " " + created.body());
        }
        ApiClient.Response placed = api().put("/api/v1/networks/" + networkId + "/placements/" + vmId + "?wait=" + wait + "&timeout=30s",
                operatorKey, placement(hostId, interfaceName, ipv4));
        if (placed.status() != 200) {
            throw new IllegalStateException("vm " + vmId + " not placed: " + placed.status() + " " + placed.body());
        }
        return placed;
    }

    /**
     * Writes {@code value} to {@code topic} under {@code key} as any producer with access to Kafka
     * could (Avro, the registry's wire format, acks=all), bypassing the services: how tests forge
     * or inject events.
     */
    public void produce(String topic, String key, SpecificRecord value) {
        try (KafkaProducer<String, SpecificRecord> producer = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG,
                env("KAFKA_BOOTSTRAP_SERVERS"), ProducerConfig.ACKS_CONFIG, "all"), new StringSerializer(),
                new AvroSerializer<>(new HttpSchemaRegistryClient(env("SCHEMA_REGISTRY_URL"))))) {
            producer.send(new ProducerRecord<>(topic, key, value)).get();
        } catch (Exception e) {
            throw new IllegalStateException("cannot write to " + topic, e);
        }
    }

    /**
     * Signs enforcement reports as an agent holding the stack's update keys would (the services inherit
     * this JVM's {@code EGRESS_UPDATE_KEYS}): the compiler folds only signed reports when it holds keys.
     */
    public static final io.egressctl.schemas.integrity.ReportMac AGENT_REPORTS =
            new io.egressctl.schemas.integrity.ReportMac(io.egressctl.schemas.integrity.UpdateKeys.fromEnvironment());

    /** The body of the process on {@code port}'s /actuator/health, or why it could not be read. */
    public static String health(int port) {
        return get(port, "/actuator/health");
    }

    /** The value of meter {@code name} of the process on {@code port} (its actuator), or -1 when it cannot be read. */
    public static double metric(int port, String name) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"value\":([0-9.E-]+)").matcher(get(port, "/actuator/metrics/" + name));
        return m.find() ? Double.parseDouble(m.group(1)) : -1;
    }

    private static String get(int port, String path) {
        try {
            return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                    .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString()).body();
        } catch (IOException e) {
            return "unreachable: " + e;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
    }

    /** Starts a dry-run agent for {@code hostId} and waits until its first snapshot is applied. */
    public synchronized void startAgent(String hostId) {
        startAgent(hostId, Map.of());
    }

    /** Starts an agent with extra environment (e.g. the nftables enforcer in a namespace). */
    public synchronized void startAgent(String hostId, Map<String, String> extraEnv) {
        waitHealthy("agent-" + hostId, startAgentNotWaiting(hostId, extraEnv));
    }

    /** Starts dry-run agents for these hosts side by side, then waits until each applied its first snapshot. */
    public synchronized void startAgents(List<String> hostIds) {
        Map<String, Integer> ports = new java.util.LinkedHashMap<>();
        hostIds.forEach(h -> ports.put(h, startAgentNotWaiting(h, Map.of())));
        ports.forEach((h, port) -> waitHealthy("agent-" + h, port));
    }

    /** Starts an agent and returns its port at once, without waiting for it to be ready (a test that expects it not to be). */
    public synchronized int startAgentNotWaiting(String hostId, Map<String, String> extraEnv) {
        int port = agentPorts.computeIfAbsent(hostId, h -> freePort());
        Map<String, String> env = new HashMap<>(stackEnv);
        env.put("EGRESS_AGENT_PORT", String.valueOf(port));
        env.put("EGRESS_HOST_ID", hostId);
        env.put("EGRESS_ENFORCER", "dry-run");
        env.put("EGRESS_DRY_RUN_FILE", rulesetFile(hostId).toString());
        env.put("EGRESS_RECONCILE_INTERVAL", "1s");
        env.putAll(extraEnv);
        agentEnv.put(hostId, env);
        start("agent-" + hostId, jar("host-agent"), env);
        return port;
    }

    /**
     * Starts an extra compiler-service process (e.g. a second instance of a consumer group) and waits
     * until it is healthy; {@code env} adds to or overrides the stack's environment.
     */
    public synchronized void startCompiler(String name, Map<String, String> env) {
        int port = freePort();
        servicePorts.put(name, port);
        Map<String, String> e = new HashMap<>(stackEnv);
        e.put("EGRESS_COMPILER_PORT", String.valueOf(port));
        e.putAll(env);
        start(name, jar("compiler-service"), e);
        waitHealthy(name, port);
    }

    /** The HTTP port of a compiler started with {@link #startCompiler}. */
    public synchronized int port(String name) {
        return servicePorts.get(name);
    }

    /**
     * Sends a process started by this fixture a signal by its pid: {@code STOP} freezes it (no thread
     * runs, no heartbeat is sent, as in a long GC pause or a VM stall), {@code CONT} lets it go on.
     */
    public synchronized void signal(String name, String signal) {
        Process p = processes.get(name);
        if (p == null) {
            throw new IllegalStateException("no process " + name);
        }
        try {
            int rc = new ProcessBuilder("kill", "-" + signal, Long.toString(p.pid())).inheritIO().start().waitFor();
            if (rc != 0) {
                throw new IllegalStateException("kill -" + signal + " " + p.pid() + " exited with " + rc);
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** Stops a process started by this fixture: gracefully, or with SIGKILL as a crash would. */
    public synchronized void stopProcess(String name, boolean kill) {
        Process p = processes.remove(name);
        if (p == null) {
            return;
        }
        if (kill) {
            p.destroyForcibly();
        } else {
            p.destroy();
        }
        try {
            p.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Stops an agent: gracefully, or with SIGKILL as a crash would. */
    public synchronized void stopAgent(String hostId, boolean kill) {
        Process p = processes.remove("agent-" + hostId);
        if (p == null) {
            return;
        }
        if (kill) {
            p.destroyForcibly();
        } else {
            p.destroy();
        }
        try {
            p.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The log of a process this fixture started (its stdout and stderr). */
    public Path logFile(String name) {
        return workDir.resolve("logs").resolve(name + ".log");
    }

    /** Where the dry-run agent of a host writes its rendered ruleset. */
    public Path rulesetFile(String hostId) {
        return workDir.resolve("agents").resolve(hostId + ".nft");
    }

    /** The host's rendered ruleset, or "" when none was written yet. */
    public String ruleset(String hostId) {
        try {
            Path p = rulesetFile(hostId);
            return Files.exists(p) ? Files.readString(p) : "";
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * The rendered element line of a rule with the name of its set in front, e.g.
     * {@code l0_port4: 10.0.0.1 . tcp . 80 comment "r=<id> h=<hash>"} (the port's mark shown as its VM's
     * address): sets of even layers drop,
     * odd layers accept.
     */
    public static String lineOf(String ruleset, String ruleId) {
        String set = "";
        Map<String, String> address4 = new HashMap<>();
        Map<String, String> address6 = new HashMap<>();
        String found = null;
        String foundSet = null;
        for (String l : ruleset.split("\n")) {
            if (l.startsWith("  set ") || l.startsWith("  map ")) {
                set = l.substring(6, l.length() - 2);
            } else if ((set.equals("addr4") || set.equals("addr6")) && l.strip().startsWith("0x")) {
                String[] f = l.strip().split(" ");
                (set.equals("addr4") ? address4 : address6).put(f[0], f[2]);
            } else if (found == null && l.contains("r=" + ruleId + " ")) {
                found = l.strip().replaceAll(",$", "");
                foundSet = set;
            }
        }
        if (found == null) {
            return "";
        }
        // Elements are keyed by the mark of the VM's interface; show the mark as the VM's address of
        // the set's family (the addr4/addr6 sets map one to the other), so a line reads as the rule does.
        String mark = found.substring(0, found.indexOf(' '));
        String address = (foundSet.matches("l\\d+_[a-z]+6.*") ? address6 : address4).get(mark);
        return foundSet + ": " + (address == null ? found : address + found.substring(mark.length()));
    }

    /**
     * The module's jar, copied once into this run's folder: a rebuild of target/ while the tests run
     * must not pull classes from under a running service.
     */
    private Path jar(String module) {
        Path jar = root.resolve(module).resolve("target").resolve(module + "-0.1.0-SNAPSHOT.jar");
        if (!Files.exists(jar)) {
            throw new IllegalStateException(jar + " is missing: build with mvn package first");
        }
        Path copy = workDir.resolve(module + ".jar");
        try {
            if (!Files.exists(copy)) {
                Files.copy(jar, copy);
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot copy " + jar, e);
        }
        return copy;
    }

    /** The names of the processes this fixture runs now (services, agents, extra compilers). */
    public synchronized List<String> running() {
        return processes.entrySet().stream().filter(e -> e.getValue().isAlive()).map(Map.Entry::getKey).sorted().toList();
    }

    /**
     * Kills a process this fixture started (SIGKILL, as a crash would, or SIGTERM) and starts it again with
     * the same jar and environment (same port, keys and settings); returns once it is healthy.
     */
    public synchronized void restartProcess(String name, boolean kill) {
        stopProcess(name, kill);
        startAgain(name);
    }

    /** Starts a process again that this fixture started before and stopped; waits until it is healthy. */
    public synchronized void startAgain(String name) {
        Path jar = startedJar.get(name);
        Map<String, String> env = startedEnv.get(name);
        if (jar == null || env == null) {
            throw new IllegalArgumentException("no process '" + name + "' was started by this fixture");
        }
        if (processes.containsKey(name) && processes.get(name).isAlive()) {
            throw new IllegalStateException(name + " still runs");
        }
        start(name, jar, env);
        String port = env.getOrDefault("EGRESS_AGENT_PORT", env.getOrDefault("EGRESS_API_PORT", env.get("EGRESS_COMPILER_PORT")));
        waitHealthy(name, Integer.parseInt(port));
    }

    private void start(String name, Path jar, Map<String, String> env) {
        startedJar.put(name, jar);
        startedEnv.put(name, Map.copyOf(env));
        List<String> cmd = new ArrayList<>(List.of(javaBin(), "-Xms64m", "-Xmx320m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Degress.e2e=" + runId, "-jar", jar.toString()));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(workDir.resolve("logs").resolve(name + ".log").toFile()));
        pb.environment().putAll(env);
        try {
            processes.put(name, pb.start());
        } catch (IOException e) {
            throw new IllegalStateException("cannot start " + name, e);
        }
    }

    private void waitHealthy(String name, int port) {
        HttpClient http = HttpClient.newHttpClient();
        long deadline = System.nanoTime() + Duration.ofSeconds(180).toNanos();
        while (System.nanoTime() < deadline) {
            Process p = processes.get(name);
            if (p == null || !p.isAlive()) {
                throw new IllegalStateException(name + " exited; see " + workDir.resolve("logs").resolve(name + ".log"));
            }
            try {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/actuator/health"))
                        .timeout(Duration.ofSeconds(2)).build(), HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200 && r.body().contains("\"UP\"")) {
                    return;
                }
            } catch (IOException e) {
                // not listening yet
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
            sleep(250);
        }
        throw new IllegalStateException(name + " not healthy on port " + port + " in time; see " + workDir.resolve("logs"));
    }

    private synchronized void stopAll() {
        processes.values().forEach(Process::destroy);
        for (Process p : processes.values()) {
            try {
                if (!p.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                }
            } catch (InterruptedException e) {
                p.destroyForcibly();
            }
        }
        processes.clear();
    }

    private static String javaBin() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    /** A free port never handed out before in this JVM (test-infra's, shared with the stack it starts). */
    private static int freePort() {
        return Infrastructure.freePort();
    }

    private static String random() {
        byte[] b = new byte[12];
        ThreadLocalRandom.current().nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    public static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** Polls {@code check} every 50 ms until true or {@code timeout}. */
    public static boolean eventually(Duration timeout, java.util.function.BooleanSupplier check) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (check.getAsBoolean()) {
                return true;
            }
            sleep(50);
        }
        return check.getAsBoolean();
    }
}
