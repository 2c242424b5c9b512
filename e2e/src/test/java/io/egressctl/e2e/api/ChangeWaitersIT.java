package io.egressctl.e2e.api;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.cli.bench.WaitersBench;
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
import java.util.List;
import java.util.Map;
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
        reports.send(new ProducerRecord<>(Topics.ENFORCEMENT_REPORTS, host, ControlPlane.AGENT_REPORTS.sign(r))).get();
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
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        // A first round warms what a fresh control plane does once (the compiler's first report, whose
        // schema it fetches; the producer's metadata and schema here; the services' JIT), unmeasured.
        assertThat(round(http, "vm-warm", "10.51.0.21", 50)).hasSize(50);

        int n = 500;
        double[] afterAck = round(http, "vm-many", "10.51.0.11", n);
        double[] sorted = afterAck.clone();
        java.util.Arrays.sort(sorted);
        String spread = String.format(java.util.Locale.ROOT, "first %.0f ms, median %.0f ms, last %.0f ms after the ACK's publish",
                sorted[0], sorted[n / 2], sorted[n - 1]);
        System.out.printf("ChangeWaitersIT: %d waiters answered: %s%n", n, spread);
        assertThat(sorted[n - 1]).as("from the ACK's publish to the last of %d answers, ms (%s)", n, spread).isLessThan(1_000);
        assertThat(waiting(http)).as("the registry let go of every waiter").isZero();
    }

    /**
     * {@code n} callers wait on the placement of {@code vm} on a host of its own until the rule-service
     * counts them all; then the host ACKs. Returns, for each caller, the milliseconds from just before
     * the ACK's publish to its answer, once every answer is checked to be 200 APPLIED. The callers are
     * driven by one selector thread, as {@code bench waiters} does, so that 500 of them cost the test
     * little CPU beside the services'.
     */
    private static double[] round(HttpClient http, String vm, String ip, int n) throws Exception {
        String host = cp.unique("wait-h");
        JsonNode s = placeCompiled(vm, host, ip);
        String changeId = s.get("changeId").asString();
        long version = s.get("version").asLong();
        try (WaitersBench.Waiters waiters = new WaitersBench.Waiters(URI.create(cp.apiUrl()), changeId, cp.tenantKey(), n)) {
            waiters.open(100);
            assertThat(ControlPlane.eventually(Duration.ofSeconds(30), () -> {
                try {
                    return waiting(http) >= n;
                } catch (Exception e) {
                    return false;
                }
            })).as("all %d callers are waiting in the rule-service", n).isTrue();
            ControlPlane.sleep(1_000);
            assertThat(waiters.answered()).as("nobody is answered before the host ACKs (%s)", waiters.firstOdd()).isZero();

            long acked = System.nanoTime();
            ack(host, version);
            waiters.awaitAll(TimeUnit.SECONDS.toNanos(30));
            assertThat(waiters.answered()).as("answered").isEqualTo(n);
            assertThat(waiters.applied()).as("answered 200 with status APPLIED (first other: %s)", waiters.firstOdd()).isEqualTo(n);
            return waiters.latenciesSince(acked);
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
