package io.egressctl.e2e.api;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.core.event.Audit;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.NetworkKind;
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
import tools.jackson.databind.JsonNode;

import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What the API refuses, a producer writing to the log directly cannot slip past: the compiler
 * rejects it in log order (status {@code REJECTED} with the code and reason at
 * {@code GET /api/v1/changes/{eventId}}) and the network does not appear. Runs with the default
 * limits (10,000 rules per network).
 */
class OperatorLimitsIT {

    static ControlPlane cp;
    static Producer<String, SpecificRecord> avro;
    static final Audit AUDIT = new Audit("provisioner", "acme", "req-direct", Instant.now(), "provisioning", "1.0");

    @BeforeAll
    static void producer() {
        cp = ControlPlane.shared();
        avro = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cp.env("KAFKA_BOOTSTRAP_SERVERS"),
                ProducerConfig.ACKS_CONFIG, "all"), new StringSerializer(),
                new AvroSerializer<>(new HttpSchemaRegistryClient(cp.env("SCHEMA_REGISTRY_URL"))));
    }

    @AfterAll
    static void close() {
        if (avro != null) {
            avro.close();
        }
    }

    static JsonNode rejectedInLogOrder(Network n) throws Exception {
        String eventId = UUID.randomUUID().toString();
        avro.send(new ProducerRecord<>(Topics.NETWORK_EVENTS, n.networkId(), EventMapper.toAvro(new RuleChange(eventId,
                RuleChange.Operation.NETWORK_CREATED, n.networkId(), null, null, n, null, null, AUDIT)))).get();
        ApiClient api = cp.api();
        assertThat(ControlPlane.eventually(Duration.ofSeconds(20),
                () -> api.get("/api/v1/changes/" + eventId, cp.operatorKey()).status() == 200)).isTrue();
        JsonNode status = api.get("/api/v1/changes/" + eventId, cp.operatorKey()).body();
        assertThat(status.get("status").asString()).as("%s", status).isEqualTo("REJECTED");
        assertThat(api.get("/api/v1/networks/" + n.networkId(), cp.tenantKey()).status()).isEqualTo(404);
        return status;
    }

    @Test
    void aDirectNetworkWithARuleQuotaAboveTheOperatorsLimitIsRejectedInLogOrder() throws Exception {
        Network n = new Network(cp.unique("over-quota"), "acme", NetworkKind.BASIC, Cidr.parse("10.52.0.0/24"), null,
                DefaultPolicy.ALLOW, false, 10_001, false);
        JsonNode status = rejectedInLogOrder(n);
        assertThat(status.get("code").asString()).isEqualTo("INVALID");
        assertThat(status.get("reason").asString()).contains("ruleQuota 10001 is outside 1..10000");
    }

    @Test
    void aDirectNetworkWithAGuestCidrOfEverythingIsRejectedInLogOrder() throws Exception {
        Network n = new Network(cp.unique("everything"), "acme", NetworkKind.BASIC, Cidr.parse("0.0.0.0/0"), null,
                DefaultPolicy.ALLOW, false, 100, false);
        JsonNode status = rejectedInLogOrder(n);
        assertThat(status.get("code").asString()).isEqualTo("INVALID");
        assertThat(status.get("reason").asString()).contains("0.0.0.0/0 is too wide for a guest network");
    }
}
