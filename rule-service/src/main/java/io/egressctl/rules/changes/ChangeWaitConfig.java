package io.egressctl.rules.changes;

import io.egressctl.rules.config.EgressProperties;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

import java.time.Duration;

/**
 * The waiters of {@code ?wait=} and their one subscription to the compiler's notifications. The
 * gauges {@code egress.change.waiters} (callers waiting) and {@code egress.change.waited} (changes
 * they wait on) show what the registry holds.
 */
@Configuration(proxyBeanMethods = false)
class ChangeWaitConfig {

    /** Heap a waiting caller holds (its connection's buffers in Tomcat, measured about 80 KB) with room for garbage. */
    static final long HEAP_PER_WAITER = 96 * 1024;
    /** Heap kept for everything else the service does. */
    static final long HEAP_RESERVED = 256L * 1024 * 1024;

    /**
     * {@code egress.change-wait.recheck} (2s): how often a waited change is read without a notification;
     * {@code egress.change-wait.max-waiters}: callers that may wait at once, by default what the heap
     * holds beside {@link #HEAP_RESERVED} at {@link #HEAP_PER_WAITER} each (at least 1,000; about 13,000
     * with the 1536 MB heap of {@code ./egressctl up}; docs/operations.md).
     */
    @Bean(destroyMethod = "close")
    ChangeWaiters changeWaiters(ChangeTracker tracker, @Value("${egress.change-wait.recheck:2s}") Duration recheck,
                                @Value("${egress.change-wait.max-waiters:0}") int maxWaiters, ObjectProvider<MeterRegistry> meters) {
        int limit = maxWaiters > 0 ? maxWaiters : defaultMaxWaiters(Runtime.getRuntime().maxMemory());
        LoggerFactory.getLogger(ChangeWaiters.class).info("at most {} callers may wait for changes at once", limit);
        ChangeWaiters waiters = new ChangeWaiters(tracker::find, tracker::refresh, recheck, limit);
        meters.ifAvailable(m -> {
            Gauge.builder("egress.change.waiters", waiters, ChangeWaiters::size)
                    .description("callers waiting for a change to be compiled or applied (?wait=)").register(m);
            Gauge.builder("egress.change.waited", waiters, ChangeWaiters::changes)
                    .description("changes that callers wait on").register(m);
        });
        return waiters;
    }

    @Bean(initMethod = "start", destroyMethod = "close")
    ChangeNotifications changeNotifications(EgressProperties props, ChangeWaiters waiters) {
        return new ChangeNotifications(props.redisUrl(), waiters);
    }

    /** The waiters a heap of {@code maxHeap} bytes holds (at least 1,000). */
    static int defaultMaxWaiters(long maxHeap) {
        return (int) Math.max(1_000, Math.min(Integer.MAX_VALUE, (maxHeap - HEAP_RESERVED) / HEAP_PER_WAITER));
    }
}
