package io.egressctl.e2e.api;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.core.event.Audit;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.NetworkKind;
import io.egressctl.core.validation.RuleDraft;
import io.egressctl.core.validation.RuleValidator;
import io.egressctl.e2e.support.ControlPlane;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.Topics;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.UnifiedJedis;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import java.net.URI;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static io.egressctl.e2e.api.Published.assertProblem;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Requests that fail half way, through the real rule-service, Kafka, compiler and Redis: a retried
 * request with the same {@code Idempotency-Key} and the same request gets the same outcome and never
 * a second effect, whether the first attempt completed, is still publishing, crashed after claiming
 * the key, or timed out while publishing (its event possibly in the log); the same key with another
 * body or network is 422 {@code IDEMPOTENCY_KEY_REUSED}.
 *
 * <p>A crashed or timed-out first attempt is reproduced by what it leaves behind: its claim in Redis
 * (fingerprint, change id, rule id; the time it started, or 0 after a publish whose outcome is
 * unknown) and, for the timeout, its event in the log.
 */
class IdempotencyIT {

    static ControlPlane cp;
    static ApiClient api;
    static UnifiedJedis redis;
    static Producer<String, SpecificRecord> avro;
    static String net;
    static String otherNet;
    static final JsonMapper JSON = JsonMapper.builder().build();

    @BeforeAll
    static void networks() {
        cp = ControlPlane.shared();
        api = cp.api();
        redis = new UnifiedJedis(URI.create(cp.env("REDIS_URL")));
        avro = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cp.env("KAFKA_BOOTSTRAP_SERVERS"),
                ProducerConfig.ACKS_CONFIG, "all"), new StringSerializer(),
                new AvroSerializer<>(new HttpSchemaRegistryClient(cp.env("SCHEMA_REGISTRY_URL"))));
        net = cp.unique("idem");
        otherNet = cp.unique("idem2");
        for (String n : List.of(net, otherNet)) {
            ApiClient.Response r = api.post("/api/v1/networks?wait=compiled&timeout=30s", cp.tenantKey(),
                    Map.of("networkId", n, "guestCidr", "10.48.0.0/24"));
            assertThat(r.status()).as("%s", r.body()).isEqualTo(201);
        }
    }

    @AfterAll
    static void close() {
        if (avro != null) {
            avro.close();
        }
        if (redis != null) {
            redis.close();
        }
    }

    static String rules(String network) {
        return "/api/v1/networks/" + network + "/egress-rules";
    }

    static ApiClient.Response create(String network, String key, Map<String, Object> body, String query) {
        return api.send("POST", rules(network) + query, cp.tenantKey(), body, Map.of("Idempotency-Key", key));
    }

    static String claimKey(String key) {
        return "egress:idem:acme:" + key;
    }

    static long ruleCount(String network, int port) {
        JsonNode list = api.get(rules(network), cp.tenantKey()).body();
        long n = 0;
        for (JsonNode r : list) {
            if (r.path("startPort").asInt() == port) {
                n++;
            }
        }
        return n;
    }

    /** The fingerprint the service gives {@code body} on {@code network}: read from a completed request's claim. */
    static String fingerprintOf(String network, Map<String, Object> body) {
        String key = "fp-" + UUID.randomUUID();
        ApiClient.Response r = create(network, key, body, "?wait=compiled&timeout=30s");
        assertThat(r.status()).as("%s", r.body()).isEqualTo(201);
        String fingerprint = JSON.readTree(redis.get(claimKey(key))).get("fingerprint").asString();
        assertThat(api.delete(rules(network) + "/" + r.text("ruleId") + "?wait=compiled&timeout=30s", cp.tenantKey()).status())
                .isEqualTo(200);
        return fingerprint;
    }

    /** Leaves the claim a first attempt leaves: ids fixed, started at {@code claimedAt} (0: publish outcome unknown). */
    static void claim(String key, String fingerprint, String changeId, String ruleId, long claimedAt) {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("fingerprint", fingerprint);
        c.put("changeId", changeId);
        c.put("entityId", ruleId);
        c.put("entityField", "ruleId");
        c.put("claimedAt", claimedAt);
        redis.setex(claimKey(key), 3600, JSON.writeValueAsString(c));
    }

    @Test
    void theSameRequestTwiceCreatesOneRuleAndGetsTheFirstAnswerBack() {
        String key = "k-" + UUID.randomUUID();
        Map<String, Object> body = Map.of("protocol", "tcp", "startPort", 7001);
        ApiClient.Response first = create(net, key, body, "?wait=compiled&timeout=30s");
        assertThat(first.status()).as("%s", first.body()).isEqualTo(201);
        // The same body written differently (field order, spacing) is the same request.
        ApiClient.Response again = api.send("POST", rules(net), cp.tenantKey(), "{ \"startPort\": 7001,  \"protocol\": \"tcp\" }",
                Map.of("Idempotency-Key", key));
        assertThat(again.status()).as("%s", again.body()).isEqualTo(202);
        assertThat(again.text("changeId")).isEqualTo(first.text("changeId"));
        assertThat(again.text("ruleId")).isEqualTo(first.text("ruleId"));
        assertThat(again.body().get("idempotentReplay").asBoolean()).isTrue();
        ControlPlane.sleep(Published.SETTLE.toMillis());
        assertThat(ruleCount(net, 7001)).isEqualTo(1);
    }

    @Test
    void theSameKeyWithAnotherBodyOrNetworkIs422AndPublishesNothing() {
        String key = "k-" + UUID.randomUUID();
        ApiClient.Response first = create(net, key, Map.of("protocol", "tcp", "startPort", 7002), "?wait=compiled&timeout=30s");
        assertThat(first.status()).as("%s", first.body()).isEqualTo(201);
        try (Published published = new Published(cp)) {
            Published.Snapshot before = published.snapshot(net, cp.tenantKey());
            Published.Snapshot otherBefore = published.snapshot(otherNet, cp.tenantKey());
            ApiClient.Response otherBody = create(net, key, Map.of("protocol", "tcp", "startPort", 7003), "");
            assertProblem(otherBody, 422, "IDEMPOTENCY_KEY_REUSED", null, "was used for another request");
            assertThat(otherBody.body().get("type").asString()).isEqualTo("https://egressctl.io/problems/idempotency-key-reused");
            assertProblem(create(otherNet, key, Map.of("protocol", "tcp", "startPort", 7002), ""), 422, "IDEMPOTENCY_KEY_REUSED", null,
                    "another body, path or network");
            published.assertNothingSince(before);
            published.assertNothingSince(otherBefore);
        }
    }

    @Test
    void aRetryWhileTheFirstAttemptIsStillPublishingIs409WithARetryHint() {
        Map<String, Object> body = Map.of("protocol", "udp", "startPort", 7004);
        String fingerprint = fingerprintOf(net, body);
        String key = "k-" + UUID.randomUUID();
        claim(key, fingerprint, UUID.randomUUID().toString(), UUID.randomUUID().toString(), System.currentTimeMillis());
        ApiClient.Response r = create(net, key, body, "");
        assertProblem(r, 409, "REQUEST_IN_PROGRESS", null, "in progress");
        assertThat(r.body().get("retryAfterSeconds").asLong()).isBetween(1L, 30L);
    }

    @Test
    void aRetryAfterAFirstAttemptThatCrashedAfterClaimingPublishesItsIdsOnce() {
        Map<String, Object> body = Map.of("protocol", "udp", "startPort", 7005);
        String fingerprint = fingerprintOf(net, body);
        String key = "k-" + UUID.randomUUID();
        String changeId = UUID.randomUUID().toString();
        String ruleId = UUID.randomUUID().toString();
        // Crashed 40 s ago, before publishing: today's answer would be 409 for a day.
        claim(key, fingerprint, changeId, ruleId, System.currentTimeMillis() - 40_000);

        ApiClient.Response retry = create(net, key, body, "?wait=compiled&timeout=30s");

        assertThat(retry.status()).as("%s", retry.body()).isEqualTo(201);
        assertThat(retry.text("changeId")).isEqualTo(changeId);
        assertThat(retry.text("ruleId")).isEqualTo(ruleId);
        ApiClient.Response again = create(net, key, body, "");
        assertThat(again.text("ruleId")).isEqualTo(ruleId);
        assertThat(again.body().get("idempotentReplay").asBoolean()).isTrue();
        ControlPlane.sleep(Published.SETTLE.toMillis());
        assertThat(ruleCount(net, 7005)).isEqualTo(1);
    }

    @Test
    void aRetryAfterAPublishTimeoutWhoseEventIsInTheLogHasOneEffect() throws Exception {
        Map<String, Object> body = Map.of("protocol", "tcp", "startPort", 7006);
        String fingerprint = fingerprintOf(net, body);
        String key = "k-" + UUID.randomUUID();
        String changeId = UUID.randomUUID().toString();
        String ruleId = UUID.randomUUID().toString();
        // The first attempt's send reached the log, but its acknowledgement did not come in time: the
        // API answered 503 and kept the claim with its publish outcome unknown (claimedAt 0).
        Network network = new Network(net, "acme", NetworkKind.BASIC, Cidr.parse("10.48.0.0/24"), null, DefaultPolicy.ALLOW, false,
                Network.DEFAULT_RULE_QUOTA, false);
        EgressRule rule = new RuleValidator().validateRule(ruleId,
                new RuleDraft("tcp", null, null, null, null, null, null, 7006, null, null, null, null), network);
        RuleChange event = new RuleChange(changeId, RuleChange.Operation.RULE_CREATED, net, null, key, null, null, rule,
                new Audit("alice", "acme", "req-timeout", Instant.now(), "rule-service", "test"));
        claim(key, fingerprint, changeId, ruleId, 0);
        avro.send(new ProducerRecord<>(Topics.NETWORK_EVENTS, net, EventMapper.toAvro(event))).get();

        // Straight away: the compiler may or may not have decided the first copy yet. Either the retry
        // finds it decided, or it republishes the same event id, which the log decides once.
        ApiClient.Response retry = create(net, key, body, "?wait=compiled&timeout=30s");

        assertThat(retry.status()).as("%s", retry.body()).isIn(201, 202);
        assertThat(retry.text("changeId")).isEqualTo(changeId);
        assertThat(retry.text("ruleId")).isEqualTo(ruleId);
        assertThat(ControlPlane.eventually(Duration.ofSeconds(20), () -> ruleCount(net, 7006) == 1)).isTrue();
        ControlPlane.sleep(Published.SETTLE.toMillis());
        assertThat(ruleCount(net, 7006)).as("one rule, whichever copy was decided").isEqualTo(1);
        JsonNode status = api.get("/api/v1/changes/" + changeId, cp.tenantKey()).body();
        assertThat(status.get("status").asString()).as("the change is not overwritten as rejected: %s", status).isIn("COMPILED", "APPLIED");
        assertThat(status.get("ruleId").asString()).isEqualTo(ruleId);
    }

    @Test
    void aRetriedNetworkCreateGetsTheFirstAnswerNotNetworkExists() {
        String key = "k-" + UUID.randomUUID();
        String id = cp.unique("idem-net");
        Map<String, Object> body = Map.of("networkId", id, "guestCidr", "10.50.0.0/24");
        ApiClient.Response first = api.send("POST", "/api/v1/networks?wait=compiled&timeout=30s", cp.tenantKey(), body,
                Map.of("Idempotency-Key", key));
        assertThat(first.status()).as("%s", first.body()).isEqualTo(201);
        ApiClient.Response again = api.send("POST", "/api/v1/networks", cp.tenantKey(), body, Map.of("Idempotency-Key", key));
        assertThat(again.status()).as("%s", again.body()).isEqualTo(202);
        assertThat(again.text("changeId")).isEqualTo(first.text("changeId"));
        assertThat(again.text("networkId")).isEqualTo(id);
        assertThat(again.body().get("idempotentReplay").asBoolean()).isTrue();
        assertProblem(api.send("POST", "/api/v1/networks", cp.tenantKey(), Map.of("networkId", id, "guestCidr", "10.51.0.0/24"),
                Map.of("Idempotency-Key", key)), 422, "IDEMPOTENCY_KEY_REUSED", null, null);
        // Without the key, the same create is what it is: the network exists.
        assertProblem(api.post("/api/v1/networks", cp.tenantKey(), body), 409, "NETWORK_EXISTS", null, null);
    }
}
