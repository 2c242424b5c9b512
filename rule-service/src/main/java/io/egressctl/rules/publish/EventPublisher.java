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

    private final Producer<String, SpecificRecord> producer;

    EventPublisher(Producer<String, SpecificRecord> eventProducer) {
        this.producer = eventProducer;
    }

    public RecordMetadata publish(RuleChange change) {
        return send(new ProducerRecord<>(Topics.NETWORK_EVENTS, change.networkId(), EventMapper.toAvro(change)));
    }

    public RecordMetadata publish(WorkloadChange change) {
        return send(new ProducerRecord<>(Topics.NETWORK_EVENTS, change.networkId(), EventMapper.toAvro(change)));
    }

    private RecordMetadata send(ProducerRecord<String, SpecificRecord> record) {
        try {
            return producer.send(record).get(15, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw unavailable(e);
        } catch (ExecutionException | TimeoutException | RuntimeException e) {
            throw unavailable(e);
        }
    }

    private static ApiException unavailable(Exception e) {
        Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
        return new ApiException(HttpStatus.SERVICE_UNAVAILABLE, "PUBLISH_FAILED", "the change could not be published: " + cause.getMessage());
    }
}
