package io.egressctl.agent.config;

import io.egressctl.agent.enforce.ConntrackFlowTable;
import io.egressctl.agent.enforce.DryRunEnforcer;
import io.egressctl.agent.enforce.Enforcer;
import io.egressctl.agent.enforce.FlowTable;
import io.egressctl.agent.sync.HostSync;
import io.egressctl.agent.sync.Snapshots;
import io.egressctl.core.render.NftRenderer;
import io.egressctl.core.validation.Identifiers;
import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.AvroSerializer;
import io.micrometer.core.instrument.MeterRegistry;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import redis.clients.jedis.UnifiedJedis;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Map;

/** Wires the agent: its enforcer, its Kafka clients, the snapshot source and the sync loop. */
@Configuration(proxyBeanMethods = false)
class AgentConfig {

    private static final Logger log = LoggerFactory.getLogger(AgentConfig.class);

    @Bean
    Enforcer enforcer(AgentProperties props) {
        Enforcer e = switch (props.enforcer()) {
            case "dry-run" -> new DryRunEnforcer(Path.of(props.dryRunFile()));
            case "nftables" -> io.egressctl.agent.enforce.Enforcers.nftables(props);
            default -> throw new IllegalArgumentException("egress.agent.enforcer must be dry-run or nftables, not '" + props.enforcer() + "'");
        };
        log.info("host {} enforces with the {} enforcer{}, host mode {}, rule counters {}", props.hostId(), e.name(),
                e instanceof DryRunEnforcer d ? " into " + d.file().toAbsolutePath() : "",
                props.hostMode().name().toLowerCase(java.util.Locale.ROOT), props.ruleCounters() ? "on" : "off");
        return e;
    }

    /**
     * Where established flows end after a new block: conntrack in the enforcer's namespace for the
     * nftables enforcer, nowhere for the dry-run one (it has no kernel flows). A conntrack that
     * cannot run is reported once here; each flush then fails, is logged and counted, and never
     * fails an apply. A {@code conntrack -R -} is kept started for the next flush (see ConntrackFlowTable).
     */
    @Bean
    FlowTable flowTable(AgentProperties props, Enforcer enforcer) {
        if (enforcer instanceof DryRunEnforcer) {
            return FlowTable.NONE;
        }
        String binary = props.conntrackBinary() == null || props.conntrackBinary().isBlank() ? "conntrack" : props.conntrackBinary();
        ConntrackFlowTable table = new ConntrackFlowTable(binary, props.netns(), Duration.ofSeconds(10), true);
        try {
            table.check();
        } catch (io.egressctl.agent.enforce.EnforcementException ex) {
            log.warn("host {}: established flows will not end after a new block until conntrack runs: {}", props.hostId(),
                    ex.getMessage());
        }
        return table;
    }

    @Bean(destroyMethod = "close")
    UnifiedJedis redis(SharedProperties shared) {
        return io.egressctl.schemas.redis.RedisClients.create(shared.redisUrl());
    }

    @Bean
    SchemaRegistryClient schemaRegistryClient(SharedProperties shared) {
        return new HttpSchemaRegistryClient(shared.schemaRegistryUrl());
    }

    @Bean(destroyMethod = "close")
    Producer<String, SpecificRecord> reportProducer(SharedProperties shared, AgentProperties props, SchemaRegistryClient registry) {
        return new KafkaProducer<>(AgentClients.reportProducer(shared.kafkaBootstrapServers(), props.hostId()), new StringSerializer(), new AvroSerializer<>(registry));
    }

    @Bean
    HostSync hostSync(AgentProperties props, SharedProperties shared, Producer<String, SpecificRecord> reportProducer,
                      UnifiedJedis redis, SchemaRegistryClient registry, Enforcer enforcer, FlowTable flowTable,
                      MeterRegistry meters, org.springframework.core.env.Environment env) {
        Identifiers.require("egress.agent.host-id", props.hostId());
        Map<String, Object> c = AgentClients.consumer(shared.kafkaBootstrapServers(), props.hostId());
        KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(c, new StringDeserializer(), new ByteArrayDeserializer());
        Duration reconcile = props.reconcileInterval() == null ? Duration.ofSeconds(5) : props.reconcileInterval();
        return new HostSync(props.hostId(), consumer, reportProducer, Snapshots.redis(redis),
                new AvroDeserializer<>(registry, HostUpdate.class), enforcer, flowTable,
                new NftRenderer(props.ruleCounters(), props.hostMode()), reconcile,
                Clock.systemUTC(), meters, props.elementLimit(), updateMac(env));
    }

    /**
     * The keys host updates must be signed with ({@code EGRESS_UPDATE_KEYS}, the compiler's keys; during a
     * rotation the old and the new one). None: updates are taken unchecked, with a warning at start. The
     * agent signs its enforcement reports with {@code EGRESS_UPDATE_SIGNING_KEY_ID} (default: the first).
     */
    static io.egressctl.schemas.integrity.UpdateMac updateMac(org.springframework.core.env.Environment env) {
        io.egressctl.schemas.integrity.UpdateKeys keys = io.egressctl.schemas.integrity.UpdateKeys.parse(
                env.getProperty("EGRESS_UPDATE_KEYS"), env.getProperty("EGRESS_UPDATE_SIGNING_KEY_ID"));
        if (keys.enabled()) {
            org.slf4j.LoggerFactory.getLogger(AgentConfig.class).info("host updates must be signed with one of the keys {}",
                    keys.keys().keySet());
        } else {
            org.slf4j.LoggerFactory.getLogger(AgentConfig.class).warn("EGRESS_UPDATE_KEYS is not set: this agent applies any "
                    + "host update it reads, whoever wrote it to Kafka or Redis");
        }
        return new io.egressctl.schemas.integrity.UpdateMac(keys);
    }

    @Bean
    SyncRunner syncRunner(HostSync sync) {
        return new SyncRunner(sync);
    }

    /**
     * Ready once the first snapshot is enforced and while the sync loop syncs; DOWN with the reason
     * otherwise (first snapshot not applied yet, snapshot unreadable or empty while rules are in
     * force, "not syncing: ..." while the loop retries). Details: the applied hash and the VMs the
     * host does not enforce.
     */
    @Bean
    HealthIndicator enforcementHealth(HostSync sync) {
        return () -> {
            HostSync.Readiness r = sync.readiness();
            Health.Builder b = r.ready() ? Health.up() : Health.down().withDetail("reason", r.reason());
            return b.withDetails(r.details()).build();
        };
    }
}
