package io.egressctl.examples.producer;

import io.egressctl.events.RuleEvent;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.schemas.serde.AvroSerializer;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Publishes RuleEvents and WorkloadEvents to {@value #TOPIC}, keyed by network id, and waits for each
 * acknowledgement before the next: a caller learns each event's position (its network's version) and
 * never has two events of one network in doubt at once. Not thread-safe as a sequence of calls; one
 * instance per publishing thread of a network.
 */
public final class EventLogProducer implements AutoCloseable {

    /** The one log of every event that decides a network's state. */
    public static final String TOPIC = "egress.network-events";

    /** How long one publish waits for the broker's acknowledgement (above delivery.timeout.ms). */
    private static final long ACK_WAIT_SECONDS = 35;

    private final Producer<String, SpecificRecord> producer;

    /** A producer over {@link #config}: Kafka instantiates and configures the serializers by class name. */
    public EventLogProducer(String bootstrapServers, String schemaRegistryUrl, String clientId) {
        this(new KafkaProducer<>(config(bootstrapServers, schemaRegistryUrl, clientId)));
    }

    /** Over any producer of the same key and value types (a test's, or one with TLS settings added). */
    public EventLogProducer(Producer<String, SpecificRecord> producer) {
        this.producer = Objects.requireNonNull(producer, "producer");
    }

    /**
     * The producer settings docs/producers.md recommends, as a mutable map (add TLS, SASL or the
     * registry's credentials to it):
     * <ul>
     *   <li>{@code acks=all} and {@code enable.idempotence=true}: an acknowledged event is on every
     *       in-sync replica, and the producer's own retries (a lost acknowledgement, a leader change)
     *       neither duplicate nor reorder a network's events; {@code max.in.flight.requests.per.connection}
     *       at most 5 keeps that guarantee (Kafka refuses more with idempotence);</li>
     *   <li>the key as a UTF-8 string ({@code StringSerializer}) and Kafka's default partitioner: the
     *       network id decides the partition, the same one every other producer of the network uses;</li>
     *   <li>the value in the Confluent wire format by the project's {@link AvroSerializer}, registered
     *       under TopicRecordNameStrategy ({@code egress.network-events-io.egressctl.events.RuleEvent},
     *       {@code ...WorkloadEvent}). With Confluent's jars at hand, {@code value.serializer=
     *       io.confluent.kafka.serializers.KafkaAvroSerializer} takes the same three settings.</li>
     * </ul>
     */
    public static Map<String, Object> config(String bootstrapServers, String schemaRegistryUrl, String clientId) {
        Map<String, Object> p = new HashMap<>();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        // TLS and SASL from KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_* (docs/operations.md,
        // "Production deployment: credentials, TLS, ACLs"); nothing when they are unset.
        p.putAll(io.egressctl.schemas.security.KafkaSecurity.fromEnvironment().clientProperties());
        p.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5);
        // Retries are unbounded within the delivery timeout; past it the outcome is unknown and the
        // caller republishes the same event (same ids), which the log decides once.
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 0);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, AvroSerializer.class.getName());
        p.put("schema.registry.url", schemaRegistryUrl);
        p.put("value.subject.name.strategy", "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy");
        return p;
    }

    /** Publishes a network or rule event keyed by its network id; returns where the log put it. */
    public Published publish(RuleEvent event) {
        return send(event.getNetworkId(), event.getEventId(), event);
    }

    /** Publishes a placement event keyed by its network id; returns where the log put it. */
    public Published publish(WorkloadEvent event) {
        return send(event.getNetworkId(), event.getEventId(), event);
    }

    private Published send(String networkId, String eventId, SpecificRecord event) {
        try {
            RecordMetadata m = producer.send(new ProducerRecord<>(TOPIC, networkId, event)).get(ACK_WAIT_SECONDS, TimeUnit.SECONDS);
            return new Published(eventId, networkId, m.partition(), m.offset());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PublishException(eventId, e);
        } catch (ExecutionException e) {
            throw new PublishException(eventId, e.getCause() == null ? e : e.getCause());
        } catch (TimeoutException e) {
            throw new PublishException(eventId, e);
        }
    }

    @Override
    public void close() {
        producer.close();
    }

    /**
     * An acknowledged event.
     *
     * @param offset its offset in the partition; the network's version after it is {@code offset + 1}
     */
    public record Published(String eventId, String networkId, int partition, long offset) {

        /** The network's version once the compiler decided this event (its position in the log). */
        public long position() {
            return offset + 1;
        }
    }

    /**
     * A publish whose outcome is unknown: the event may or may not be in the log. Publish the very same
     * event again (same event id, idempotency key and rule id) before any later event of its network.
     */
    public static final class PublishException extends RuntimeException {
        private final String eventId;

        PublishException(String eventId, Throwable cause) {
            super("event " + eventId + " was not acknowledged: " + cause, cause);
            this.eventId = eventId;
        }

        public String eventId() {
            return eventId;
        }
    }
}
