package io.egressctl.compiler.compile;

import io.egressctl.compiler.snapshot.FencedException;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.Status;
import org.springframework.kafka.listener.MessageListenerContainer;
import redis.clients.jedis.exceptions.JedisConnectionException;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.when;

/**
 * The compiler's error handler: a failed batch is read again from its first record, nothing is
 * committed, the retry is counted and health says DEGRADED with the reason until a batch completes;
 * a fenced instance asks for a rebalance.
 */
class NeverSkipErrorHandlerTest {

    final SimpleMeterRegistry meters = new SimpleMeterRegistry();
    final PipelineHealth health = new PipelineHealth(meters);
    final NeverSkipErrorHandler handler = new NeverSkipErrorHandler(health, Duration.ofMillis(1), Duration.ofMillis(4));
    final TopicPartition p0 = new TopicPartition("egress.network-events", 0);
    final TopicPartition p1 = new TopicPartition("egress.network-events", 1);
    final MockConsumer<String, byte[]> consumer = new MockConsumer<>("earliest");
    final MessageListenerContainer container = mock(MessageListenerContainer.class);

    NeverSkipErrorHandlerTest() {
        when(container.getListenerId()).thenReturn("compiler");
        when(container.isRunning()).thenReturn(true);
        consumer.assign(List.of(p0, p1));
        consumer.updateBeginningOffsets(Map.of(p0, 0L, p1, 0L));
        consumer.seek(p0, 13);
        consumer.seek(p1, 8);
    }

    ConsumerRecords<String, byte[]> batch() {
        return new ConsumerRecords<>(Map.of(
                p0, List.of(new ConsumerRecord<>(p0.topic(), 0, 10, "n", new byte[0]), new ConsumerRecord<>(p0.topic(), 0, 12, "n", new byte[0])),
                p1, List.of(new ConsumerRecord<>(p1.topic(), 1, 7, "m", new byte[0]))), Map.of());
    }

    @Test
    void aFailedBatchIsReadAgainFromItsFirstRecordsAndNothingIsCommitted() {
        assertThat(handler.isAckAfterHandle()).isFalse();
        assertThat(handler.seeksAfterHandling()).isTrue();

        handler.handleBatch(new RuntimeException(new JedisConnectionException("Failed to connect to any host resolved for DNS name")),
                batch(), consumer, container, () -> { });

        assertThat(consumer.position(p0)).isEqualTo(10);
        assertThat(consumer.position(p1)).isEqualTo(7);
        assertThat(consumer.committed(java.util.Set.of(p0, p1)).values()).allMatch(o -> o == null);
        assertThat(meters.counter("egress.compiler.retries", "listener", "compiler", "reason", "redis").count()).isEqualTo(1);
        Health h = health.health();
        assertThat(h.getStatus()).isEqualTo(new Status("DEGRADED"));
        assertThat((String) h.getDetails().get("reason")).contains("compiler: retrying").contains("redis").contains("Failed to connect");
        assertThat(meters.get("egress.compiler.degraded").gauge().value()).isEqualTo(1);

        health.succeeded("compiler");
        assertThat(health.health().getStatus()).isEqualTo(Status.UP);
        assertThat(meters.get("egress.compiler.degraded").gauge().value()).isZero();
    }

    @Test
    void theBackOffDoublesUpToItsCap() {
        NeverSkipErrorHandler h = new NeverSkipErrorHandler(health, Duration.ofMillis(200), Duration.ofSeconds(5));
        assertThat(List.of(1, 2, 3, 5, 6, 50)).extracting(a -> h.backoff(a).toMillis()).containsExactly(200L, 400L, 800L, 3200L, 5000L, 5000L);
    }

    @Test
    void aFencedInstanceAsksForARebalance() {
        handler.handleBatch(new FencedException(java.util.Set.of(1)), batch(), consumer, container, () -> { });
        assertThat(consumer.position(p0)).isEqualTo(10);
        assertThat(meters.counter("egress.compiler.retries", "listener", "compiler", "reason", "fenced").count()).isEqualTo(1);
        assertThat((String) health.health().getDetails().get("reason")).contains("fenced");
    }
}
