package io.egressctl.compiler.config;

import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.KafkaDefaults;
import io.egressctl.schemas.serde.TopicTopology;
import io.egressctl.schemas.serde.Topics;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.kafka.core.KafkaAdmin;
import redis.clients.jedis.UnifiedJedis;

import java.time.Duration;
import java.util.List;

/**
 * Kafka topics, producers, the schema registry client and Redis for the compiler. The producers (and
 * through them the listeners) depend on the topic check, so nothing reads or writes before it passed.
 */
@Configuration(proxyBeanMethods = false)
class InfraConfig {

    /**
     * The operator's limits (rules per network, networks per tenant, fragment size), from
     * {@code EGRESS_MAX_RULES_PER_NETWORK}, {@code EGRESS_MAX_NETWORKS_PER_TENANT} and
     * {@code EGRESS_MAX_FRAGMENT_BYTES} (environment or properties; defaults in docs/operations.md).
     * The compiler, rule-service and audit replay must be given the same values.
     */
    @Bean
    io.egressctl.core.state.Limits limits(org.springframework.core.env.Environment env) {
        return io.egressctl.core.state.Limits.from(env::getProperty);
    }

    /**
     * Signs the host updates this compiler writes: keys from {@code EGRESS_UPDATE_KEYS}
     * ({@code <keyId>:<base64 secret>,...}), the one signed with from {@code EGRESS_UPDATE_SIGNING_KEY_ID}
     * (default: the first). None: updates are written unsigned (and agents holding keys refuse them).
     */
    @Bean
    io.egressctl.schemas.integrity.UpdateMac updateMac(org.springframework.core.env.Environment env) {
        io.egressctl.schemas.integrity.UpdateKeys keys = io.egressctl.schemas.integrity.UpdateKeys.parse(
                env.getProperty("EGRESS_UPDATE_KEYS"), env.getProperty("EGRESS_UPDATE_SIGNING_KEY_ID"));
        if (!keys.enabled()) {
            org.slf4j.LoggerFactory.getLogger(InfraConfig.class).warn("EGRESS_UPDATE_KEYS is not set: host updates are written "
                    + "unsigned, and agents cannot tell them from records written by anything else that reaches Kafka or Redis");
        }
        return new io.egressctl.schemas.integrity.UpdateMac(keys);
    }

    /** Checks the agents' enforcement reports with the same keys (EnforcementReportListener). */
    @Bean
    io.egressctl.schemas.integrity.ReportMac reportMac(io.egressctl.schemas.integrity.UpdateMac updateMac) {
        return new io.egressctl.schemas.integrity.ReportMac(updateMac.keys());
    }

    @Bean
    SchemaRegistryClient schemaRegistryClient(EgressProperties props) {
        return new HttpSchemaRegistryClient(props.schemaRegistryUrl());
    }

    /** Where Redis is and how it is deployed (standalone, Sentinel, Cluster): {@code REDIS_URL}. */
    @Bean
    io.egressctl.schemas.redis.RedisTarget redisTarget(EgressProperties props) {
        return io.egressctl.schemas.redis.RedisTarget.parse(props.redisUrl());
    }

    @Bean(destroyMethod = "close")
    UnifiedJedis redis(io.egressctl.schemas.redis.RedisTarget target) {
        org.slf4j.LoggerFactory.getLogger(InfraConfig.class).info("Redis: {}", target);
        return io.egressctl.schemas.redis.RedisClients.create(target, false);
    }

    /** Idempotent, acks=all producer for HostUpdates: per-host order survives retries. */
    @Bean(destroyMethod = "close")
    Producer<String, SpecificRecord> avroProducer(@Value("${spring.kafka.bootstrap-servers}") String bootstrap,
                                                  SchemaRegistryClient registry, TopicTopology.Report topology) {
        return new KafkaProducer<>(KafkaDefaults.orderedProducer(bootstrap, "egress-compiler"), new StringSerializer(), new AvroSerializer<>(registry));
    }

    /** Raw producer for dead-letter records: the original bytes, reason in headers. */
    @Bean(destroyMethod = "close")
    Producer<String, byte[]> dltProducer(@Value("${spring.kafka.bootstrap-servers}") String bootstrap,
                                         TopicTopology.Report topology) {
        return new KafkaProducer<>(KafkaDefaults.orderedProducer(bootstrap, "egress-compiler-dlt"), new StringSerializer(), new ByteArraySerializer());
    }

    /**
     * The topics this service reads and writes, checked (never changed) before anything else of the
     * service starts: absent ones are created, and the service refuses to run when an existing one has
     * another partition count than {@code egress.partitions} (see {@link TopicTopology}).
     */
    @Bean
    TopicTopology.Report topicTopology(KafkaAdmin kafkaAdmin, EgressProperties props, TopicProperties topics) {
        return TopicTopology.ensure("compiler-service", kafkaAdmin.getConfigurationProperties(), requiredTopics(props.partitions(), topics.hostUpdatePartitions(props.partitions()), topics.durability()),
                topics.checkTimeout());
    }

    /**
     * Every topic of the compiler: the network events log (its input: network, rule and workload events,
     * one order per network), host updates, reports, and their dead letters. The network events log and
     * the reports must have {@code partitions}; host updates are created with {@code hostUpdatePartitions}
     * and taken with any count when they exist (a warning when it differs): the compiler's producer and
     * every agent map a host to a partition under the topic's own count, and agents follow a change of it.
     */
    static List<TopicTopology.Requirement> requiredTopics(int partitions, int hostUpdatePartitions, KafkaDefaults.Durability durability) {
        return List.of(
                TopicTopology.keyed(KafkaDefaults.keptForever(Topics.NETWORK_EVENTS, partitions, durability), PARTITIONS_SETTING),
                TopicTopology.anyPartitionCount(KafkaDefaults.retainedFor(Topics.HOST_UPDATES, hostUpdatePartitions, Duration.ofDays(7),
                        durability)),
                TopicTopology.keyed(KafkaDefaults.retainedFor(Topics.ENFORCEMENT_REPORTS, partitions, Duration.ofDays(30), durability),
                        PARTITIONS_SETTING),
                TopicTopology.anyPartitionCount(KafkaDefaults.keptForever(Topics.dlt(Topics.NETWORK_EVENTS), partitions, durability)),
                TopicTopology.anyPartitionCount(KafkaDefaults.keptForever(Topics.dlt(Topics.ENFORCEMENT_REPORTS), partitions, durability)));
    }

    /** {@link #requiredTopics(int, int, KafkaDefaults.Durability)} with host updates at {@code partitions} too. */
    static List<TopicTopology.Requirement> requiredTopics(int partitions, KafkaDefaults.Durability durability) {
        return requiredTopics(partitions, partitions, durability);
    }

    static final String PARTITIONS_SETTING = "egress.partitions / EGRESS_PARTITIONS";
}
