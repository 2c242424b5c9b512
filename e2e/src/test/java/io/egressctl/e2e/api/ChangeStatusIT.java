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

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Change status as a host's reports make it (invariant 7), through the real compiler and
 * rule-service: a host that has no agent reports as one would (its reports published to
 * {@code egress.enforcement-reports}), so the test decides what it ACKs or NACKs. A wait that times
 * out answers what the docs say; an ACK of an older version does not count as applied; a NACK shows
 * in the change's status with the agent's error; the ACK of the change's version makes it APPLIED.
 */
class ChangeStatusIT {

    static ControlPlane cp;
    static ApiClient api;
    static Producer<String, SpecificRecord> reports;
    static String net;
    static String host;

    @BeforeAll
    static void networkOnAHostWithoutAnAgent() {
        cp = ControlPlane.shared();
        api = cp.api();
        reports = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cp.env("KAFKA_BOOTSTRAP_SERVERS"),
                ProducerConfig.ACKS_CONFIG, "all"), new StringSerializer(),
                new AvroSerializer<>(new HttpSchemaRegistryClient(cp.env("SCHEMA_REGISTRY_URL"))));
        net = cp.unique("status");
        host = cp.unique("status-h");
        ApiClient.Response r = api.post("/api/v1/networks?wait=compiled&timeout=30s", cp.tenantKey(),
                Map.of("networkId", net, "guestCidr", "10.49.0.0/24"));
        assertThat(r.status()).as("%s", r.body()).isEqualTo(201);
    }

    @AfterAll
    static void close() {
        if (reports != null) {
            reports.close();
        }
    }

    static void report(EnforcementStatus status, long version, String error) throws Exception {
        EnforcementReport r = EnforcementReport.newBuilder().setHostId(host).setStatus(status).setTrigger(EnforcementTrigger.UPDATE)
                .setFragments(version == 0 ? List.of() : List.of(AppliedFragment.newBuilder().setNetworkId(net).setVersion(version).build()))
                .setAppliedHash("test").setChangeIds(List.of()).setError(error).setApplyMicros(10).setEnforcer("dry-run")
                .setDriftRepairs(0).setReportedAt(Instant.now()).setUnenforced(List.of()).build();
        reports.send(new ProducerRecord<>(Topics.ENFORCEMENT_REPORTS, host, ControlPlane.AGENT_REPORTS.sign(r))).get();
    }

    static JsonNode status(String changeId) {
        return api.get("/api/v1/changes/" + changeId, cp.operatorKey()).body();
    }

    @Test
    void aWaitThatTimesOutAnswersTheStatusSoFarThenOlderAcksDoNotCountNacksShowAndTheRightAckApplies() throws Exception {
        // 1. A placement with wait=applied on a host that never answers: 202 with the status so far.
        long start = System.nanoTime();
        ApiClient.Response placed = api.put("/api/v1/networks/" + net + "/placements/vm-1?wait=applied&timeout=1500ms", cp.operatorKey(),
                ControlPlane.placement(host, "tap-s1", "10.49.0.11"));
        long tookMillis = Duration.ofNanos(System.nanoTime() - start).toMillis();
        assertThat(placed.status()).as("%s", placed.body()).isEqualTo(202);
        assertThat(tookMillis).as("it waited for the timeout, not less").isGreaterThanOrEqualTo(1_400);
        JsonNode s = placed.body().get("status");
        assertThat(s.get("status").asString()).isEqualTo("COMPILED");
        assertThat(s.get("hostsApplied").asInt()).isZero();
        assertThat(s.get("pendingHosts").get(0).asString()).isEqualTo(host);
        String changeId = placed.text("changeId");
        long version = s.get("version").asLong();
        // GET with a wait that times out: 200 with the same status body (docs/api.md).
        ApiClient.Response polled = api.get("/api/v1/changes/" + changeId + "?wait=applied&timeout=500ms", cp.operatorKey());
        assertThat(polled.status()).as("%s", polled.body()).isEqualTo(200);
        assertThat(polled.body().get("status").asString()).isEqualTo("COMPILED");

        // 2. The host ACKs an older version of the network: not applied (invariant 7).
        report(EnforcementStatus.ACK, version - 1, null);
        ControlPlane.sleep(1_000);
        JsonNode older = status(changeId);
        assertThat(older.get("status").asString()).as("%s", older).isEqualTo("COMPILED");
        assertThat(older.get("pendingHosts").get(0).asString()).isEqualTo(host);
        assertThat(older.get("failedHosts")).as("an ACK is no failure").isEmpty();

        // 3. The host NACKs the new version: the status names the host and its error.
        report(EnforcementStatus.NACK, version - 1, "nft: Error: Could not process rule: No such file or directory");
        assertThat(ControlPlane.eventually(Duration.ofSeconds(15), () -> status(changeId).path("failedHosts").size() == 1)).isTrue();
        JsonNode nacked = status(changeId);
        assertThat(nacked.get("status").asString()).isEqualTo("COMPILED");
        assertThat(nacked.get("failedHosts").get(0).get("hostId").asString()).isEqualTo(host);
        assertThat(nacked.get("failedHosts").get(0).get("error").asString()).contains("Could not process rule");

        // 4. The ACK of the change's version: APPLIED, and no failure left.
        report(EnforcementStatus.ACK, version, null);
        assertThat(ControlPlane.eventually(Duration.ofSeconds(15), () -> status(changeId).path("status").asString().equals("APPLIED")))
                .isTrue();
        JsonNode applied = status(changeId);
        assertThat(applied.get("hostsApplied").asInt()).isEqualTo(1);
        assertThat(applied.get("failedHosts")).isEmpty();
    }
}
