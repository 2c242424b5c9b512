package io.egressctl.e2e.api;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.e2e.support.ControlPlane;
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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code ?wait=} completed from the compiler's notifications, through the real compiler and
 * rule-service, on hosts without an agent whose reports the test publishes as a host would (as
 * {@link ChangeStatusIT} does): 500 callers waiting on one change all get {@code APPLIED} within a
 * second of the host's ACK; a caller of another tenant is refused at once rather than after its
 * wait; a wait that times out still answers 202 with the status so far.
 */
class ChangeWaitersIT {

    static ControlPlane cp;
    static ApiClient api;
    static Producer<String, SpecificRecord> reports;
    static String net;
    static final JsonMapper JSON = JsonMapper.builder().build();

    @BeforeAll
    static void network() {
        cp = ControlPlane.shared();
        api = cp.api();
        reports = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cp.env("KAFKA_BOOTSTRAP_SERVERS"),
                ProducerConfig.ACKS_CONFIG, "all"), new StringSerializer(),
                new AvroSerializer<>(new HttpSchemaRegistryClient(cp.env("SCHEMA_REGISTRY_URL"))));
        net = cp.unique("waiters");
        ApiClient.Response r = api.post("/api/v1/networks?wait=compiled&timeout=30s", cp.tenantKey(),
                Map.of("networkId", net, "guestCidr", "10.51.0.0/24"));
        assertThat(r.status()).as("%s", r.body()).isEqualTo(201);
    }

    @AfterAll
    static void close() {
        if (reports != null) {
            reports.close();
        }
    }

    /** Places a VM on {@code host} (no agent there) and returns its change's status once compiled. */
    static JsonNode placeCompiled(String vm, String host, String ip) {
        ApiClient.Response placed = api.put("/api/v1/networks/" + net + "/placements/" + vm + "?wait=compiled&timeout=30s",
                cp.operatorKey(), ControlPlane.placement(host, "tap-" + vm, ip));
        assertThat(placed.status()).as("%s", placed.body()).isEqualTo(200);
        JsonNode s = placed.body().get("status");
        assertThat(s.get("status").asString()).isEqualTo("COMPILED");
        assertThat(s.get("pendingHosts").get(0).asString()).isEqualTo(host);
        return s;
    }

    static void ack(String host, long version) throws Exception {
        EnforcementReport r = EnforcementReport.newBuilder().setHostId(host).setStatus(EnforcementStatus.ACK)
                .setTrigger(EnforcementTrigger.UPDATE)
                .setFragments(List.of(AppliedFragment.newBuilder().setNetworkId(net).setVersion(version).build()))
                .setAppliedHash("test").setChangeIds(List.of()).setError(null).setApplyMicros(10).setEnforcer("dry-run")
                .setDriftRepairs(0).setReportedAt(Instant.now()).setUnenforced(List.of()).build();
        reports.send(new ProducerRecord<>(Topics.ENFORCEMENT_REPORTS, host, r)).get();
    }

    /** The callers waiting in the rule-service now, from its gauge. */
    static double waiting(HttpClient http) throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(cp.apiUrl() + "/actuator/metrics/egress.change.waiters"))
                .GET().build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return JSON.readTree(r.body()).get("measurements").get(0).get("value").asDouble();
    }

    @Test
    void fiveHundredCallersWaitingOnOneChangeAllAnswerWithinASecondOfTheAck() throws Exception {
        String host = cp.unique("wait-h");
        JsonNode s = placeCompiled("vm-many", host, "10.51.0.11");
        String changeId = s.get("changeId").asString();
        long version = s.get("version").asLong();

        int n = 500;
        ExecutorService pool = Executors.newFixedThreadPool(4);
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).executor(pool)
                .connectTimeout(Duration.ofSeconds(10)).build();
        try {
            HttpRequest wait = HttpRequest.newBuilder(URI.create(cp.apiUrl() + "/api/v1/changes/" + changeId + "?wait=applied&timeout=60s"))
                    .header("X-API-Key", cp.tenantKey()).timeout(Duration.ofSeconds(90)).GET().build();
            List<CompletableFuture<HttpResponse<String>>> answers = new ArrayList<>();
            long[] answeredAt = new long[n];
            for (int i = 0; i < n; i++) {
                int k = i;
                answers.add(http.sendAsync(wait, HttpResponse.BodyHandlers.ofString()).whenComplete((r, e) -> answeredAt[k] = System.nanoTime()));
            }
            assertThat(ControlPlane.eventually(Duration.ofSeconds(30), () -> {
                try {
                    return waiting(http) >= n;
                } catch (Exception e) {
                    return false;
                }
            })).as("all %d callers are waiting in the rule-service", n).isTrue();
            ControlPlane.sleep(1_500);
            assertThat(answers).as("nobody is answered before the host ACKs").noneMatch(CompletableFuture::isDone);

            long acked = System.nanoTime();
            ack(host, version);
            CompletableFuture.allOf(answers.toArray(CompletableFuture[]::new)).get(30, TimeUnit.SECONDS);
            long slowest = 0;
            long[] sorted = answeredAt.clone();
            java.util.Arrays.sort(sorted);
            String spread = String.format(java.util.Locale.ROOT, "first %d ms, median %d ms, last %d ms after the ACK's publish",
                    TimeUnit.NANOSECONDS.toMillis(sorted[0] - acked), TimeUnit.NANOSECONDS.toMillis(sorted[n / 2] - acked),
                    TimeUnit.NANOSECONDS.toMillis(sorted[n - 1] - acked));
            System.out.printf("ChangeWaitersIT: %d waiters answered: %s%n", n, spread);
            for (int i = 0; i < n; i++) {
                HttpResponse<String> r = answers.get(i).join();
                assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
                JsonNode body = JSON.readTree(r.body());
                assertThat(body.get("status").asString()).isEqualTo("APPLIED");
                assertThat(body.get("hostsApplied").asInt()).isEqualTo(1);
                slowest = Math.max(slowest, answeredAt[i] - acked);
            }
            assertThat(TimeUnit.NANOSECONDS.toMillis(slowest)).as("from the ACK's publish to the last of %d answers (%s)", n, spread)
                    .isLessThan(1_000);
            assertThat(waiting(http)).as("the registry let go of every waiter").isZero();
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aCallerOfAnotherTenantIsRefusedAtOnceNotAfterItsWait() {
        JsonNode s = placeCompiled("vm-other", cp.unique("wait-o"), "10.51.0.12");
        String changeId = s.get("changeId").asString();

        long start = System.nanoTime();
        ApiClient.Response refused = api.get("/api/v1/changes/" + changeId + "?wait=applied&timeout=30s", cp.otherTenantKey());
        long tookMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertThat(refused.status()).as("%s", refused.body()).isEqualTo(404);
        assertThat(tookMillis).as("refused before waiting, not after 30 s").isLessThan(5_000);

        // The owner may wait on it, and its wait times out with the status so far (GET: 200).
        ApiClient.Response owner = api.get("/api/v1/changes/" + changeId + "?wait=applied&timeout=300ms", cp.tenantKey());
        assertThat(owner.status()).as("%s", owner.body()).isEqualTo(200);
        assertThat(owner.body().get("status").asString()).isEqualTo("COMPILED");
    }

    @Test
    void aWriteWhoseWaitTimesOutAnswers202WithTheStatusSoFar() {
        String host = cp.unique("wait-t");
        long start = System.nanoTime();
        ApiClient.Response placed = api.put("/api/v1/networks/" + net + "/placements/vm-late?wait=applied&timeout=1500ms", cp.operatorKey(),
                ControlPlane.placement(host, "tap-late", "10.51.0.13"));
        long tookMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertThat(placed.status()).as("%s", placed.body()).isEqualTo(202);
        assertThat(tookMillis).as("it waited for the timeout").isBetween(1_400L, 10_000L);
        assertThat(placed.headers().get("Location").get(0)).isEqualTo("/api/v1/changes/" + placed.text("changeId"));
        JsonNode s = placed.body().get("status");
        assertThat(s.get("status").asString()).isEqualTo("COMPILED");
        assertThat(s.get("hostsApplied").asInt()).isZero();
        assertThat(s.get("pendingHosts").get(0).asString()).isEqualTo(host);
    }
}
