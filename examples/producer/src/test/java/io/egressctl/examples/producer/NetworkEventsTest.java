package io.egressctl.examples.producer;

import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.state.Decision;
import io.egressctl.core.state.NetworkState;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.Source;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.registry.InMemorySchemaRegistryClient;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.AvroSerializer;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The example's events are what the compiler accepts: they decode through the same mapper, and the
 * core's log-order decisions accept them in publishing order. A republished copy is decided as already
 * applied because each RuleEvent carries its event id as its idempotency key; the serializer configured
 * as the guide says registers each type under its own subject.
 */
class NetworkEventsTest {

    static final Source SOURCE = NetworkEvents.source("compute-example", "acme", "req-1", Instant.parse("2026-01-01T00:00:00Z"),
            "producer-example", "0.1.0");
    static final RuleEvent CREATED = NetworkEvents.networkCreated("ev-net",
            NetworkEvents.basicNetwork("net-1", "acme", "10.77.0.0/24"), SOURCE);
    static final WorkloadEvent PLACED = NetworkEvents.vmPlaced("ev-vm", "net-1", "acme", "vm-1", "host-1", "tap-ex1", "52:54:00:aa:bb:cc",
            "10.77.0.10", null, SOURCE);
    static final RuleEvent RULE = NetworkEvents.ruleCreated("ev-rule", "net-1",
            NetworkEvents.blockTcpPortForVm("no-smtp", "10.77.0.10", 25, "no SMTP"), null, SOURCE);

    @Test
    void theCompilerAcceptsTheThreeEventsInPublishingOrderAndTheNetworksVersionIsItsPosition() {
        NetworkState state = new NetworkState("net-1");
        assertThat(state.applyRule(EventMapper.fromAvro(CREATED), 1).outcome()).isEqualTo(Decision.Outcome.ACCEPTED);
        assertThat(state.applyWorkload(EventMapper.fromAvro(PLACED), 2).outcome()).isEqualTo(Decision.Outcome.ACCEPTED);
        Decision rule = state.applyRule(EventMapper.fromAvro(RULE), 3);
        assertThat(rule.outcome()).as("%s", rule).isEqualTo(Decision.Outcome.ACCEPTED);

        assertThat(state.version()).isEqualTo(3);
        assertThat(state.network().tenantId()).isEqualTo("acme");
        assertThat(state.vms().get("vm-1").interfaceName()).isEqualTo("tap-ex1");
        assertThat(state.vms().get("vm-1").hostId()).isEqualTo("host-1");
        assertThat(state.rules()).containsOnlyKeys("no-smtp");
        assertThat(state.rules().get("no-smtp").ports().start()).isEqualTo(25);
    }

    @Test
    void thePlacementIsBoundToTheNetworksTenantAndRefusedOnAnotherTenantsNetwork() {
        assertThat(PLACED.getNetworkTenantId()).isEqualTo("acme");
        NetworkState state = new NetworkState("net-1");
        state.applyRule(EventMapper.fromAvro(NetworkEvents.networkCreated("ev-other", NetworkEvents.basicNetwork("net-1", "globex",
                "10.77.0.0/24"), SOURCE)), 1);
        Decision d = state.applyWorkload(EventMapper.fromAvro(PLACED), 2);
        assertThat(d.code()).isEqualTo("TENANT_MISMATCH");
        assertThat(state.vms()).isEmpty();
    }

    @Test
    void aRepublishedCopyOfTheNetworkOrTheRuleIsAlreadyAppliedAndMovesNothing() {
        NetworkState state = new NetworkState("net-1");
        state.applyRule(EventMapper.fromAvro(CREATED), 1);
        state.applyWorkload(EventMapper.fromAvro(PLACED), 2);
        state.applyRule(EventMapper.fromAvro(RULE), 3);

        // The copies land later in the log (a retry after an unknown outcome), yet change nothing.
        assertThat(state.applyRule(EventMapper.fromAvro(CREATED), 4).outcome()).isEqualTo(Decision.Outcome.ALREADY_APPLIED);
        assertThat(state.applyRule(EventMapper.fromAvro(RULE), 5).outcome()).isEqualTo(Decision.Outcome.ALREADY_APPLIED);
        assertThat(state.version()).isEqualTo(3);
        assertThat(state.configVersion()).isEqualTo(3);
    }

    @Test
    void withoutTheIdempotencyKeyACopyIsDecidedAgainAndRejected() {
        NetworkState state = new NetworkState("net-1");
        state.applyRule(EventMapper.fromAvro(CREATED), 1);
        state.applyRule(EventMapper.fromAvro(RULE), 2);
        RuleEvent copy = RuleEvent.newBuilder(RULE).setIdempotencyKey(null).build();

        Decision d = state.applyRule(EventMapper.fromAvro(copy), 3);
        assertThat(d.outcome()).isEqualTo(Decision.Outcome.REJECTED);
        assertThat(d.code()).isEqualTo("RULE_EXISTS");
        assertThat(state.version()).as("a rejection moves the version too").isEqualTo(3);
    }

    @Test
    void anOlderPlacementWithoutAnInterfaceIsAcceptedAsItWas() {
        NetworkState state = new NetworkState("net-1");
        state.applyRule(EventMapper.fromAvro(CREATED), 1);
        WorkloadEvent old = WorkloadEvent.newBuilder(PLACED).setInterfaceName(null).setMac(null).setNetworkTenantId(null).build();

        assertThat(state.applyWorkload(EventMapper.fromAvro(old), 2).outcome()).isEqualTo(Decision.Outcome.ACCEPTED);
        assertThat(state.vms().get("vm-1").interfaceName()).isNull();
    }

    @Test
    void theSerializerConfiguredAsTheGuideSaysRegistersEachTypeUnderItsOwnSubjectAndTheCompilersReaderDecodesBoth() {
        InMemorySchemaRegistryClient registry = new InMemorySchemaRegistryClient();
        Map<String, Object> config = EventLogProducer.config("127.0.0.1:9092", "http://registry.invalid", "test");
        AvroSerializer<SpecificRecord> serializer = new AvroSerializer<>(registry);
        serializer.configure(config, false);

        byte[] rule = serializer.serialize(EventLogProducer.TOPIC, RULE);
        byte[] placed = serializer.serialize(EventLogProducer.TOPIC, PLACED);

        assertThat(registry.subjects()).containsExactlyInAnyOrder("egress.network-events-io.egressctl.events.RuleEvent",
                "egress.network-events-io.egressctl.events.WorkloadEvent");
        assertThat(rule[0]).as("magic byte").isZero();
        AvroDeserializer<SpecificRecord> reader = AvroDeserializer.ofTypes(registry, RuleEvent.class, WorkloadEvent.class);
        assertThat(reader.deserialize(EventLogProducer.TOPIC, rule)).isEqualTo(RULE);
        assertThat(reader.deserialize(EventLogProducer.TOPIC, placed)).isEqualTo(PLACED);
    }

    @Test
    void theProducerIsIdempotentWithAcksAll() {
        Map<String, Object> config = EventLogProducer.config("127.0.0.1:9092", "http://registry.invalid", "test");
        assertThat(config).containsEntry(ProducerConfig.ACKS_CONFIG, "all")
                .containsEntry(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true)
                .containsEntry(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, AvroSerializer.class.getName());
        assertThat((Integer) config.get(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION)).isBetween(1, 5);
    }

    @Test
    void optionsComeFromArgumentsThenTheEnvironmentAndAMissingConnectionIsNamed() {
        Map<String, String> env = Map.of("KAFKA_BOOTSTRAP_SERVERS", "k:1", "SCHEMA_REGISTRY_URL", "http://r", "EGRESS_API_URL", "http://a",
                "EGRESS_API_KEY", "tenant-key", "EGRESS_OPERATOR_KEY", "operator-key");
        ProducerExample.Options o = ProducerExample.Options.parse(new String[] {"--network=n-1", "--wait=compiled", "--timeout=5"}, env::get);
        assertThat(o.networkId()).isEqualTo("n-1");
        assertThat(o.bootstrapServers()).isEqualTo("k:1");
        assertThat(o.apiKey()).as("the operator's key reads every change").isEqualTo("operator-key");
        assertThat(o.waitFor()).isEqualTo(ChangeStatusClient.Level.COMPILED);
        assertThat(o.timeout().toSeconds()).isEqualTo(5);

        org.assertj.core.api.Assertions.assertThatThrownBy(() -> ProducerExample.Options.parse(new String[0], k -> null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("--bootstrap-servers").hasMessageContaining("KAFKA_BOOTSTRAP_SERVERS");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> ProducerExample.Options.parse(new String[] {"--nope=1"}, env::get))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("unknown argument --nope");
    }
}
