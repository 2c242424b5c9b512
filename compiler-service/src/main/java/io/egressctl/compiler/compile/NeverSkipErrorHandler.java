package io.egressctl.compiler.compile;

import io.egressctl.compiler.snapshot.FencedException;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.kafka.listener.CommonErrorHandler;
import org.springframework.kafka.listener.ListenerUtils;
import org.springframework.kafka.listener.MessageListenerContainer;
import org.springframework.stereotype.Component;

import java.time.Duration;
import java.util.List;

/**
 * The error handler of every listener of the compiler (Spring Boot gives it to the container
 * factory): a batch that failed is retried for as long as it fails, never skipped. It seeks each
 * partition of the batch back to the batch's first record, commits nothing, and backs off (doubling
 * from {@code egress.compiler.retry.initial-backoff} to {@code egress.compiler.retry.max-backoff}), so
 * the next poll reads the same records again; health is {@code DEGRADED} with the reason until a batch
 * completes ({@link PipelineHealth}). Only infrastructure failures reach it: the pipeline dead-letters
 * records that are poison by content and goes on.
 *
 * <p>A fenced instance ({@link FencedException}: another instance took partitions over) asks for a
 * rebalance instead of backing off: its records of those partitions are ignored until the group
 * assigns it partitions again. {@link CompilerListener.ReadAgain} (a partition claimed late) only
 * returns: the listener did its seeks.
 */
@Component
public class NeverSkipErrorHandler implements CommonErrorHandler {

    private static final Logger log = LoggerFactory.getLogger(NeverSkipErrorHandler.class);

    private final PipelineHealth health;
    private final Duration initialBackoff;
    private final Duration maxBackoff;

    public NeverSkipErrorHandler(PipelineHealth health,
                                 @Value("${egress.compiler.retry.initial-backoff:200ms}") Duration initialBackoff,
                                 @Value("${egress.compiler.retry.max-backoff:5s}") Duration maxBackoff) {
        this.health = health;
        this.initialBackoff = initialBackoff;
        this.maxBackoff = maxBackoff;
    }

    /** The back-off after the given number of consecutive failures: doubling, capped. */
    Duration backoff(int attempts) {
        long millis = initialBackoff.toMillis();
        for (int i = 1; i < attempts && millis < maxBackoff.toMillis(); i++) {
            millis *= 2;
        }
        return Duration.ofMillis(Math.min(millis, maxBackoff.toMillis()));
    }

    @Override
    public boolean seeksAfterHandling() {
        return true;
    }

    /** Nothing of a failed batch is committed. */
    @Override
    public boolean isAckAfterHandle() {
        return false;
    }

    @Override
    public void handleBatch(Exception thrown, ConsumerRecords<?, ?> data, Consumer<?, ?> consumer, MessageListenerContainer container,
                            Runnable invokeListener) {
        Throwable cause = unwrap(thrown);
        if (cause instanceof CompilerListener.ReadAgain) {
            return;
        }
        String listener = container.getListenerId() == null ? "listener" : container.getListenerId();
        int attempts = health.failed(listener, cause);
        // Back to the first record of the batch in each partition still assigned: read again, not skipped.
        for (TopicPartition tp : data.partitions()) {
            List<? extends ConsumerRecord<?, ?>> records = data.records(tp);
            if (!records.isEmpty() && consumer.assignment().contains(tp)) {
                consumer.seek(tp, records.get(0).offset());
            }
        }
        if (cause instanceof FencedException fenced) {
            log.warn("{}: {}; asking the group for a rebalance", listener, fenced.getMessage());
            consumer.enforceRebalance("fenced: partitions " + fenced.partitions() + " were taken over by another instance");
            return;
        }
        Duration wait = backoff(attempts);
        Failures.Failure f = Failures.classify(cause);
        if (attempts == 1 || attempts % 10 == 0) {
            log.warn("{}: batch of {} failed ({}: {}); retrying in {} ms (attempt {}), nothing skipped or committed",
                    listener, data.partitions(), f.kind(), f.reason(), wait.toMillis(), attempts);
        }
        sleep(container, wait);
    }

    /** Exceptions thrown by a poll (a rebalance callback, a commit): backed off and retried the same way. */
    @Override
    public void handleOtherException(Exception thrown, Consumer<?, ?> consumer, MessageListenerContainer container, boolean batchListener) {
        String listener = container.getListenerId() == null ? "listener" : container.getListenerId();
        Throwable cause = unwrap(thrown);
        // Counted, but not kept as the health reason: no batch of this listener may follow to clear it.
        health.counted(listener, cause);
        Duration wait = maxBackoff.compareTo(Duration.ofSeconds(1)) < 0 ? maxBackoff : Duration.ofSeconds(1);
        log.warn("{}: {}; polling again in {} ms", listener, Failures.classify(cause).reason(), wait.toMillis());
        sleep(container, wait);
    }

    /** The listener's own exception, not Spring's wrapper of it. */
    private static Throwable unwrap(Throwable e) {
        Throwable c = e;
        while (c instanceof org.springframework.kafka.listener.ListenerExecutionFailedException && c.getCause() != null) {
            c = c.getCause();
        }
        return c;
    }

    private static void sleep(MessageListenerContainer container, Duration wait) {
        try {
            ListenerUtils.stoppableSleep(container, wait.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
