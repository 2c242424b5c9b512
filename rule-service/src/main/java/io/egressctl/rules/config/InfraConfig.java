package io.egressctl.rules.config;

import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.KafkaDefaults;
import io.egressctl.schemas.serde.SubjectNameStrategy;
import io.egressctl.schemas.serde.TopicTopology;
import io.egressctl.schemas.serde.Topics;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.StringSerializer;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.kafka.core.KafkaAdmin;
import redis.clients.jedis.UnifiedJedis;

import java.util.List;
import java.util.Map;

/** The event producer, the schema registry client, Redis and the topics this service writes. */
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

    @Bean
    SchemaRegistryClient schemaRegistryClient(EgressProperties props) {
        return new HttpSchemaRegistryClient(props.schemaRegistryUrl());
    }

    @Bean(destroyMethod = "close")
    UnifiedJedis redis(EgressProperties props) {
        return redisClient(props.redisUrl());
    }

    /**
     * A pooled Redis client (standalone, Sentinel or Cluster, as {@code REDIS_URL} says) whose connections
     * are checked (a PING) when borrowed: after Redis restarts or fails over, each idle pooled connection is
     * dead, and without the check each one failed the request that borrowed it (an HTTP 500 per pooled
     * connection) before the pool dropped it. A tenant-facing API pays the round trip (tens of
     * microseconds on a local network) rather than answer errors.
     */
    static UnifiedJedis redisClient(String url) {
        return io.egressctl.schemas.redis.RedisClients.create(io.egressctl.schemas.redis.RedisTarget.parse(url), true);
    }

    /** Idempotent producer (acks=all): a retried send never duplicates or reorders a network's events. */
    @Bean(destroyMethod = "close")
    Producer<String, SpecificRecord> eventProducer(@Value("${spring.kafka.bootstrap-servers}") String bootstrap,
                                                   SchemaRegistryClient registry, TopicTopology.Report topology) {
        Map<String, Object> p = KafkaDefaults.orderedProducer(bootstrap, "egress-rule-service");
        // A request waits for its event: fail within seconds rather than hang when the broker is away.
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 10_000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 5_000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 5_000);
        // RuleEvent and WorkloadEvent share egress.network-events: each schema under its own subject.
        return new KafkaProducer<>(p, new StringSerializer(), new AvroSerializer<>(registry, true, SubjectNameStrategy.TOPIC_RECORD_NAME));
    }

    /**
     * The topics this service writes, checked (never changed) before the producer exists: absent ones
     * are created, and the service refuses to run when an existing one has another partition count than
     * {@code egress.partitions} (see {@link TopicTopology}).
     */
    @Bean
    TopicTopology.Report topicTopology(KafkaAdmin kafkaAdmin, EgressProperties props, TopicProperties topics) {
        return TopicTopology.ensure("rule-service", kafkaAdmin.getConfigurationProperties(), requiredTopics(props.partitions(), topics.durability()),
                topics.checkTimeout());
    }

    /**
     * The event log this service publishes to, the one log of network, rule and workload events (the
     * compiler checks the same one, and its own).
     */
    static List<TopicTopology.Requirement> requiredTopics(int partitions, KafkaDefaults.Durability durability) {
        return List.of(TopicTopology.keyed(KafkaDefaults.keptForever(Topics.NETWORK_EVENTS, partitions, durability), PARTITIONS_SETTING));
    }

    static final String PARTITIONS_SETTING = "egress.partitions / EGRESS_PARTITIONS";
}
