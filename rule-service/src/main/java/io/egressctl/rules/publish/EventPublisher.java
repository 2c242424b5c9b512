package io.egressctl.rules.publish;

import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.rules.api.ApiException;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.serde.Topics;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.http.HttpStatus;
import org.springframework.stereotype.Component;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Publishes accepted changes keyed by network id and waits for the broker's acknowledgement, so an
 * answered request is a durable event. Network, rule and placement events all go to the one log
 * {@code egress.network-events} (RuleEvent and WorkloadEvent, each its own schema), so the order of a
 * network's events, and hence its versions, is decided by that log alone. A broker or registry
 * failure answers 503 and publishes nothing the caller is told about.
 */
@Component
public class EventPublisher {

    private static final Logger log = LoggerFactory.getLogger(EventPublisher.class);

    private final Producer<String, SpecificRecord> producer;

    EventPublisher(Producer<String, SpecificRecord> eventProducer) {
        this.producer = eventProducer;
    }

    public RecordMetadata publish(RuleChange change) {
        return send(new ProducerRecord<>(Topics.NETWORK_EVENTS, change.networkId(), EventMapper.toAvro(change)),
                change.operation().name(), change.eventId());
    }

    public RecordMetadata publish(WorkloadChange change) {
        return send(new ProducerRecord<>(Topics.NETWORK_EVENTS, change.networkId(), EventMapper.toAvro(change)),
                change.operation().name(), change.eventId());
    }

    private RecordMetadata send(ProducerRecord<String, SpecificRecord> record, String operation, String eventId) {
        try {
            RecordMetadata at = producer.send(record).get(15, TimeUnit.SECONDS);
            // One line per accepted write: with the request's log context (request id, change id) it ties an
            // API call to its place in the log.
            log.info("published {} {} of network {} at {}-{}@{}", operation, eventId, record.key(), at.topic(), at.partition(),
                    at.offset());
            return at;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw failed(operation, eventId, record.key(), e);
        } catch (ExecutionException | TimeoutException | RuntimeException e) {
            throw failed(operation, eventId, record.key(), e);
        }
    }

    private static ApiException failed(String operation, String eventId, String networkId, Exception e) {
        ApiException answer = unavailable(e);
        log.warn("could not publish {} {} of network {}: {}", operation, eventId, networkId, answer.getMessage());
        return answer;
    }

    private static ApiException unavailable(Exception e) {
        Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
        return new ApiException(HttpStatus.SERVICE_UNAVAILABLE, "PUBLISH_FAILED", "the change could not be published: " + cause.getMessage());
    }
}
