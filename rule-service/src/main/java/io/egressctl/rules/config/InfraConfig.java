package io.egressctl.rules.config;

import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.KafkaDefaults;
import io.egressctl.schemas.serde.SubjectNameStrategy;
import io.egressctl.schemas.serde.Topics;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.StringSerializer;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
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
        Map<String, Object> p = KafkaDefaults.orderedProducer(bootstrap, "egress-rule-service");
        // A request waits for its event: fail within seconds rather than hang when the broker is away.
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 10_000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 5_000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 5_000);
        // RuleEvent and WorkloadEvent share egress.network-events: each schema under its own subject.
        return new KafkaProducer<>(p, new StringSerializer(), new AvroSerializer<>(registry, true, SubjectNameStrategy.TOPIC_RECORD_NAME));
    }

    /** The one log of network, rule and workload events this service writes. */
    @Bean
    NewTopic networkEvents(EgressProperties props) {
        return forever(Topics.NETWORK_EVENTS, props.partitions());
    }

    static NewTopic forever(String name, int partitions) {
        return KafkaDefaults.keptForever(name, partitions);
    }
}
