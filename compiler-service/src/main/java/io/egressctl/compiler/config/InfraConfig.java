package io.egressctl.compiler.config;

import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.KafkaDefaults;
import io.egressctl.schemas.serde.Topics;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.kafka.config.TopicBuilder;
import redis.clients.jedis.UnifiedJedis;

import java.net.URI;

/** Kafka topics, producers, the schema registry client and Redis for the compiler. */
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

    /** Idempotent, acks=all producer for HostUpdates: per-host order survives retries. */
    @Bean(destroyMethod = "close")
    Producer<String, SpecificRecord> avroProducer(@Value("${spring.kafka.bootstrap-servers}") String bootstrap,
                                                  SchemaRegistryClient registry) {
        return new KafkaProducer<>(KafkaDefaults.orderedProducer(bootstrap, "egress-compiler"), new StringSerializer(), new AvroSerializer<>(registry));
    }

    /** Raw producer for dead-letter records: the original bytes, reason in headers. */
    @Bean(destroyMethod = "close")
    Producer<String, byte[]> dltProducer(@Value("${spring.kafka.bootstrap-servers}") String bootstrap) {
        return new KafkaProducer<>(KafkaDefaults.orderedProducer(bootstrap, "egress-compiler-dlt"), new StringSerializer(), new ByteArraySerializer());
    }

    /** The one log of network, rule and workload events (a network's version is its position here). */
    @Bean
    NewTopic networkEvents(EgressProperties props) {
        return forever(Topics.NETWORK_EVENTS, props);
    }

    @Bean
    NewTopic hostUpdates(EgressProperties props) {
        return TopicBuilder.name(Topics.HOST_UPDATES).partitions(props.partitions()).replicas(1)
                .config(TopicConfig.RETENTION_MS_CONFIG, String.valueOf(7L * 24 * 3600 * 1000)).build();
    }

    @Bean
    NewTopic enforcementReports(EgressProperties props) {
        return TopicBuilder.name(Topics.ENFORCEMENT_REPORTS).partitions(props.partitions()).replicas(1)
                .config(TopicConfig.RETENTION_MS_CONFIG, String.valueOf(30L * 24 * 3600 * 1000)).build();
    }

    @Bean
    NewTopic networkEventsDlt(EgressProperties props) {
        return forever(Topics.dlt(Topics.NETWORK_EVENTS), props);
    }

    @Bean
    NewTopic enforcementReportsDlt(EgressProperties props) {
        return forever(Topics.dlt(Topics.ENFORCEMENT_REPORTS), props);
    }

    private static NewTopic forever(String name, EgressProperties props) {
        return KafkaDefaults.keptForever(name, props.partitions());
    }
}
