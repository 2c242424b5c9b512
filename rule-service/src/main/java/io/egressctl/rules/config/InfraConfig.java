package io.egressctl.rules.config;

import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.Topics;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.serialization.StringSerializer;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.kafka.config.TopicBuilder;
import redis.clients.jedis.UnifiedJedis;

import java.net.URI;
import java.util.Map;

/** The event producer, the schema registry client, Redis and the topics this service writes. */
@Configuration(proxyBeanMethods = false)
class InfraConfig {

    @Bean
    SchemaRegistryClient schemaRegistryClient(EgressProperties props) {
        return new HttpSchemaRegistryClient(props.schemaRegistryUrl());
    }

    @Bean(destroyMethod = "close")
    UnifiedJedis redis(EgressProperties props) {
        return new UnifiedJedis(URI.create(props.redisUrl()));
    }

    /** Idempotent producer (acks=all): a retried send never duplicates or reorders a network's events. */
    @Bean(destroyMethod = "close")
    Producer<String, SpecificRecord> eventProducer(@Value("${spring.kafka.bootstrap-servers}") String bootstrap,
                                                   SchemaRegistryClient registry) {
        Map<String, Object> p = Map.of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ProducerConfig.CLIENT_ID_CONFIG, "egress-rule-service",
                ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true,
                ProducerConfig.LINGER_MS_CONFIG, 0,
                ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 10_000,
                ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 5_000,
                ProducerConfig.MAX_BLOCK_MS_CONFIG, 5_000);
        return new KafkaProducer<>(p, new StringSerializer(), new AvroSerializer<>(registry));
    }

    @Bean
    NewTopic ruleEvents(EgressProperties props) {
        return forever(Topics.RULE_EVENTS, props.partitions());
    }

    @Bean
    NewTopic workloadEvents(EgressProperties props) {
        return forever(Topics.WORKLOAD_EVENTS, props.partitions());
    }

    /** The audit log never expires (invariant 1). */
    static NewTopic forever(String name, int partitions) {
        return TopicBuilder.name(name).partitions(partitions).replicas(1)
                .config(TopicConfig.CLEANUP_POLICY_CONFIG, TopicConfig.CLEANUP_POLICY_DELETE)
                .config(TopicConfig.RETENTION_MS_CONFIG, "-1")
                .config(TopicConfig.RETENTION_BYTES_CONFIG, "-1")
                .build();
    }
}
