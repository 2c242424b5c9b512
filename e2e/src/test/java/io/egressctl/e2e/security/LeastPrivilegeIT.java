package io.egressctl.e2e.security;

import io.egressctl.schemas.security.KafkaSecurity;
import io.egressctl.schemas.serde.Topics;
import io.egressctl.schemas.view.RedisKeys;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.DefaultJedisClientConfig;
import redis.clients.jedis.HostAndPort;
import redis.clients.jedis.UnifiedJedis;
import redis.clients.jedis.exceptions.JedisDataException;

import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import java.io.IOException;
import java.io.InputStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Least privilege, shipped: a secured Kafka broker (SASL_SSL, SCRAM-SHA-512, StandardAuthorizer) and a
 * Redis with ACL users (over TLS where the redis-server has it), started by {@code scripts/secure.sh}
 * exactly as {@code ./egressctl up --secure} starts them, in a state dir and on ports of this test's own,
 * with the ACLs of {@code stack/acls/kafka.acl} and the users of {@code stack/acls/redis-users.acl}. Each
 * refusal that matters is tried with the principal's own credentials, beside what the same principal must
 * still be able to do (so the refusals are the ACLs' doing, not a broken connection).
 *
 * <p>Reuses the Kafka jars of the running test stack ({@code EGRESS_HOME/lib}) when there is one.
 */
class LeastPrivilegeIT {

    private static Path root;
    private static Path home;
    private static Map<String, String> stackEnv;
    private static Map<String, String> passwords;
    private static String bootstrap;
    private static int redisPort;
    private static boolean redisTls;

    @BeforeAll
    static void startSecuredKafkaAndRedis() throws Exception {
        root = Path.of("").toAbsolutePath().getParent();
        assertThat(root.resolve("scripts/secure.sh")).exists();
        home = root.resolve("e2e/target/least-privilege");
        deleteTree(home);
        Files.createDirectories(home);
        String parentHome = System.getenv("EGRESS_HOME");
        if (parentHome != null && Files.isDirectory(Path.of(parentHome, "lib", "kafka"))) {
            Files.createSymbolicLink(home.resolve("lib"), Path.of(parentHome, "lib").toAbsolutePath());
        }
        int[] ports = freePorts(5);
        stackEnv = new HashMap<>();
        stackEnv.put("EGRESS_HOME", home.toString());
        stackEnv.put("EGRESS_SECURE", "1");
        stackEnv.put("EGRESS_KAFKA_PORT", String.valueOf(ports[0]));
        stackEnv.put("EGRESS_KAFKA_CONTROLLER_PORT", String.valueOf(ports[1]));
        stackEnv.put("EGRESS_REDIS_PORT", String.valueOf(ports[2]));
        stackEnv.put("EGRESS_REGISTRY_PORT", String.valueOf(ports[3])); // not started; stack.sh checks them all
        stackEnv.put("EGRESS_REGISTRY_MGMT_PORT", String.valueOf(ports[4]));
        stackEnv.put("EGRESS_DEMO_HOSTS", "host-1 host-2");
        stackEnv.put("EGRESS_KAFKA_HEAP_OPTS", "-Xms128m -Xmx384m");
        long t0 = System.nanoTime();
        stack("source scripts/stack.sh && secure_kafka_redis_up", 240);
        System.out.printf("LeastPrivilegeIT: secured Kafka and Redis up in %.1f s%n", (System.nanoTime() - t0) / 1e9);
        bootstrap = "127.0.0.1:" + ports[0];
        redisPort = ports[2];
        redisTls = Files.readString(home.resolve("secure/redis-tls")).trim().equals("yes");
        passwords = new HashMap<>();
        for (String l : Files.readAllLines(home.resolve("secure/passwords.env"))) {
            int eq = l.indexOf('=');
            if (eq > 0) {
                passwords.put(l.substring(0, eq), l.substring(eq + 1));
            }
        }
        try (Admin admin = Admin.create(kafka("admin", Map.of()))) {
            admin.createTopics(List.of(new NewTopic(Topics.NETWORK_EVENTS, 1, (short) 1), new NewTopic(Topics.HOST_UPDATES, 1, (short) 1),
                    new NewTopic(Topics.ENFORCEMENT_REPORTS, 1, (short) 1))).all().get(60, TimeUnit.SECONDS);
        }
        try (UnifiedJedis redis = redis("admin")) {
            redis.hset(RedisKeys.hostFragments("host-1"), "net-a", "fragment of host-1");
            redis.hset(RedisKeys.hostFragments("host-2"), "net-a", "fragment of host-2");
        }
    }

    @AfterAll
    static void stop() throws Exception {
        if (stackEnv != null) {
            stack("source scripts/stack.sh && cmd_down", 120);
        }
        deleteTree(home);
    }

    // ---- Kafka ----------------------------------------------------------------------------------------

    /**
     * What {@code ./egressctl up --secure} runs on a stack already up (AccessPolicy kafka-apply): a rule
     * and a principal removed from kafka.acl are revoked on the running broker, not only never added.
     * A principal of this test's own, so the shipped ones keep their rights for the other tests.
     */
    @Test
    void aPrincipalRemovedFromTheFileLosesItsRulesAndItsLogin() throws Exception {
        List<org.apache.kafka.common.acl.AclBinding> shipped = io.egressctl.schemas.security.AccessPolicy.kafkaAcls(
                Files.readString(root.resolve("stack/acls/kafka.acl")), "kafka.acl");
        List<org.apache.kafka.common.acl.AclBinding> withRetired = new ArrayList<>(shipped);
        withRetired.addAll(io.egressctl.schemas.security.AccessPolicy.kafkaAcls("retired Describe,Read topic literal " + Topics.HOST_UPDATES, "test"));
        passwords.put("retired", io.egressctl.schemas.security.AccessPolicy.newPassword());
        try (Admin admin = Admin.create(kafka("admin", Map.of()))) {
            io.egressctl.schemas.security.AccessPolicy.scramUsers(admin, List.of("retired"), passwords);
            assertThat(io.egressctl.schemas.security.AccessPolicy.apply(admin, withRetired)).as("nothing in force beyond the file").isEmpty();
            assertThat(endOffset("retired", Topics.HOST_UPDATES)).as("retired reads while its line is in the file").isGreaterThanOrEqualTo(0);

            List<org.apache.kafka.common.acl.AclBinding> revoked = io.egressctl.schemas.security.AccessPolicy.apply(admin, shipped);
            assertThat(revoked).as("its line removed: its rule revoked").hasSize(2)
                    .allSatisfy(b -> assertThat(b.entry().principal()).isEqualTo("User:retired"));
            assertThatThrownBy(() -> endOffset("retired", Topics.HOST_UPDATES)).as("retired, still logged in, reads no more")
                    .hasCauseInstanceOf(TopicAuthorizationException.class);
            assertThat(endOffset("agent", Topics.HOST_UPDATES)).as("the shipped principals keep theirs").isGreaterThanOrEqualTo(0);

            assertThat(io.egressctl.schemas.security.AccessPolicy.removeOtherScramUsers(admin,
                    io.egressctl.schemas.security.AccessPolicy.principals(shipped), io.egressctl.schemas.security.AccessPolicy.SUPER_USER))
                    .as("the users the file no longer names, never the super user").containsExactly("retired");
            assertThatThrownBy(() -> endOffset("retired", Topics.HOST_UPDATES)).as("retired cannot log in any more")
                    .isInstanceOf(org.apache.kafka.common.errors.SaslAuthenticationException.class);
            assertThat(endOffset("audit", Topics.HOST_UPDATES)).as("the shipped users still log in").isGreaterThanOrEqualTo(0);
        }
    }

    @Test
    void anAgentWritesItsReportsButNeitherARuleEventNorAHostUpdate() throws Exception {
        try (KafkaProducer<String, byte[]> agent = producer("agent")) {
            assertRefused(agent, Topics.NETWORK_EVENTS);
            assertRefused(agent, Topics.HOST_UPDATES);
            agent.send(new ProducerRecord<>(Topics.ENFORCEMENT_REPORTS, "host-1", bytes("ack"))).get(30, TimeUnit.SECONDS);
        }
        assertThat(endOffset("agent", Topics.HOST_UPDATES)).as("the agent reads host updates").isGreaterThanOrEqualTo(0);
        assertThatThrownBy(() -> endOffset("agent", Topics.NETWORK_EVENTS)).as("the agent does not read the events log")
                .hasCauseInstanceOf(TopicAuthorizationException.class).isInstanceOf(RuntimeException.class);
    }

    @Test
    void ruleServiceWritesOnlyTheEventsLog() throws Exception {
        try (KafkaProducer<String, byte[]> ruleService = producer("rule-service")) {
            ruleService.send(new ProducerRecord<>(Topics.NETWORK_EVENTS, "net-a", bytes("event"))).get(30, TimeUnit.SECONDS);
            assertRefused(ruleService, Topics.HOST_UPDATES);
            assertRefused(ruleService, Topics.ENFORCEMENT_REPORTS);
        }
    }

    @Test
    void theCompilerWritesHostUpdatesButNoEvent() throws Exception {
        try (KafkaProducer<String, byte[]> compiler = producer("compiler-service")) {
            compiler.send(new ProducerRecord<>(Topics.HOST_UPDATES, "host-1", bytes("update"))).get(30, TimeUnit.SECONDS);
            assertRefused(compiler, Topics.NETWORK_EVENTS);
        }
        assertThat(endOffset("compiler-service", Topics.NETWORK_EVENTS)).as("the compiler reads the events log").isGreaterThanOrEqualTo(0);
    }

    @Test
    void theAuditPrincipalReadsEverythingAndWritesNothing() throws Exception {
        for (String topic : List.of(Topics.NETWORK_EVENTS, Topics.HOST_UPDATES, Topics.ENFORCEMENT_REPORTS)) {
            assertThat(endOffset("audit", topic)).as("audit reads " + topic).isGreaterThanOrEqualTo(0);
        }
        // Without Write on any topic, an idempotent producer gets no producer id at all (the send fails, or
        // is refused at once when the refusal came first) ...
        try (KafkaProducer<String, byte[]> audit = producer("audit")) {
            assertThatThrownBy(() -> audit.send(new ProducerRecord<>(Topics.NETWORK_EVENTS, "k", bytes("forged"))).get(30, TimeUnit.SECONDS))
                    .hasRootCauseInstanceOf(ClusterAuthorizationException.class);
        }
        // ... and a plain one is refused topic by topic.
        try (KafkaProducer<String, byte[]> audit = producer("audit", false)) {
            assertRefused(audit, Topics.NETWORK_EVENTS);
            assertRefused(audit, Topics.HOST_UPDATES);
            assertRefused(audit, Topics.ENFORCEMENT_REPORTS);
        }
        try (UnifiedJedis redis = redis("audit")) {
            assertThat(redis.hgetAll(RedisKeys.hostFragments("host-1"))).containsKey("net-a");
            assertNoPerm(() -> redis.set(RedisKeys.network("net-a"), "forged"));
            assertNoPerm(() -> redis.del(RedisKeys.hostFragments("host-1")));
            // No tool walks the keyspace (indexes name the keys): SCAN and KEYS are refused, the index read is not.
            assertThat(redis.smembers(RedisKeys.hosts())).isNotNull();
            assertNoPerm(() -> redis.scan("0"));
            assertNoPerm(() -> redis.keys("egress:*"));
        }
    }

    // ---- Redis ----------------------------------------------------------------------------------------

    @Test
    void ruleServiceCannotWriteASnapshotKey() {
        try (UnifiedJedis redis = redis("rule-service")) {
            assertThat(redis.hgetAll(RedisKeys.hostFragments("host-1"))).as("rule-service reads the read model").containsKey("net-a");
            redis.set(RedisKeys.nameClaim("least-privilege-it"), "demo"); // its own keys: allowed
            assertNoPerm(() -> redis.hset(RedisKeys.hostFragments("host-1"), "net-a", "forged"));
            assertNoPerm(() -> redis.del(RedisKeys.hostFragments("host-1")));
            assertNoPerm(() -> redis.set(RedisKeys.network("net-a"), "forged"));
        }
        try (UnifiedJedis admin = redis("admin")) {
            assertThat(admin.hget(RedisKeys.hostFragments("host-1"), "net-a")).isEqualTo("fragment of host-1");
        }
    }

    @Test
    void anAgentReadsOnlyItsOwnSnapshotKeys() {
        try (UnifiedJedis redis = redis("agent-host-1")) {
            assertThat(redis.hgetAll(RedisKeys.hostFragments("host-1"))).containsEntry("net-a", "fragment of host-1");
            assertNoPerm(() -> redis.hgetAll(RedisKeys.hostFragments("host-2")));
            assertNoPerm(() -> redis.hset(RedisKeys.hostFragments("host-1"), "net-a", "forged"));
        }
    }

    @Test
    void noOneGetsInWithoutAUser() {
        try (UnifiedJedis anonymous = new UnifiedJedis(new HostAndPort("127.0.0.1", redisPort), redisConfig().build())) {
            assertThatThrownBy(() -> anonymous.get("egress:hosts")).isInstanceOf(JedisDataException.class).hasMessageContaining("NOAUTH");
        }
    }

    // ---- helpers --------------------------------------------------------------------------------------

    private static void assertRefused(KafkaProducer<String, byte[]> producer, String topic) {
        assertThatThrownBy(() -> producer.send(new ProducerRecord<>(topic, "k", bytes("forged"))).get(30, TimeUnit.SECONDS))
                .as("a write to " + topic).isInstanceOf(ExecutionException.class).hasCauseInstanceOf(TopicAuthorizationException.class);
    }

    private static void assertNoPerm(Runnable r) {
        assertThatThrownBy(r::run).isInstanceOf(JedisDataException.class).hasMessageStartingWith("NOPERM");
    }

    /** The end offset of partition 0 of {@code topic}, read by {@code user} (a consumer of no group, as agents and audit are). */
    private static long endOffset(String user, String topic) {
        Map<String, Object> c = kafka(user, Map.of(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false));
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(c, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            try {
                return consumer.endOffsets(List.of(tp), Duration.ofSeconds(30)).get(tp);
            } catch (TopicAuthorizationException e) {
                throw new RuntimeException(user + " may not read " + topic, e);
            }
        }
    }

    /** An idempotent producer (acks=all), as the services' are. */
    private static KafkaProducer<String, byte[]> producer(String user) {
        return producer(user, true);
    }

    private static KafkaProducer<String, byte[]> producer(String user, boolean idempotent) {
        return new KafkaProducer<>(kafka(user, Map.of(ProducerConfig.ACKS_CONFIG, "all", ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, idempotent,
                ProducerConfig.MAX_BLOCK_MS_CONFIG, 30_000, ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000,
                ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 20_000)), new StringSerializer(), new ByteArraySerializer());
    }

    /** A client of {@code user} configured the way every client of the project is: KafkaSecurity from KAFKA_* settings. */
    private static Map<String, Object> kafka(String user, Map<String, Object> extra) {
        Map<String, String> env = Map.of("KAFKA_SECURITY_PROTOCOL", "SASL_SSL", "KAFKA_SASL_USERNAME", user,
                "KAFKA_SASL_PASSWORD", passwords.get(user), "KAFKA_SSL_TRUSTSTORE_LOCATION", home.resolve("secure/tls/ca.pem").toString(),
                "KAFKA_SSL_TRUSTSTORE_TYPE", "PEM");
        Map<String, Object> c = KafkaSecurity.from(env::get).applyTo(new HashMap<>());
        c.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(AdminClientConfig.CLIENT_ID_CONFIG, "least-privilege-it-" + user);
        c.putAll(extra);
        return c;
    }

    private static UnifiedJedis redis(String user) {
        return new UnifiedJedis(new HostAndPort("127.0.0.1", redisPort), redisConfig().user(user).password(passwords.get(user)).build());
    }

    private static DefaultJedisClientConfig.Builder redisConfig() {
        DefaultJedisClientConfig.Builder b = DefaultJedisClientConfig.builder().socketTimeoutMillis(10_000);
        if (redisTls) {
            b.ssl(true).sslSocketFactory(trusting(home.resolve("secure/tls/ca.pem")).getSocketFactory());
        }
        return b;
    }

    private static SSLContext trusting(Path caPem) {
        try (InputStream in = Files.newInputStream(caPem)) {
            KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
            ks.load(null, null);
            ks.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(ks);
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(null, tmf.getTrustManagers(), null);
            return ctx;
        } catch (Exception e) {
            throw new IllegalStateException("cannot read the stack's CA " + caPem, e);
        }
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static void stack(String script, long timeoutSeconds) throws Exception {
        Path log = home.resolve("stack-" + System.nanoTime() + ".log");
        ProcessBuilder pb = new ProcessBuilder("bash", "-c", script).directory(root.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile());
        pb.environment().putAll(stackEnv);
        Process p = pb.start();
        boolean done = p.waitFor(timeoutSeconds, TimeUnit.SECONDS);
        if (!done) {
            p.destroyForcibly();
        }
        if (!done || p.exitValue() != 0) {
            throw new IllegalStateException("'" + script + "' " + (done ? "exited " + p.exitValue() : "timed out") + ":\n" + Files.readString(log));
        }
    }

    private static int[] freePorts(int n) throws IOException {
        List<ServerSocket> sockets = new ArrayList<>();
        try {
            for (int i = 0; i < n; i++) {
                sockets.add(new ServerSocket(0));
            }
            return sockets.stream().mapToInt(ServerSocket::getLocalPort).toArray();
        } finally {
            for (ServerSocket s : sockets) {
                s.close();
            }
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        if (dir == null || !Files.exists(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) { // walk does not follow the lib symbolic link
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
