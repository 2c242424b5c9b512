package io.egressctl.agent.kernel;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/** Kernel probes are tried again before they count as blocked, and a blocked one fails every try. */
class ProbeRetryTest {

    @Test
    void aProbeThatPassesOnALaterTryPasses() {
        AtomicInteger tries = new AtomicInteger();
        assertThat(NetnsTopology.anyOf(3, Duration.ofMillis(1), () -> tries.incrementAndGet() == 3)).isTrue();
        assertThat(tries).hasValue(3);
    }

    @Test
    void aProbeCountsAsBlockedOnlyWhenEveryTryFailedWithAPauseBetweenTries() {
        AtomicInteger tries = new AtomicInteger();
        long t0 = System.nanoTime();
        assertThat(NetnsTopology.anyOf(3, Duration.ofMillis(50), () -> {
            tries.incrementAndGet();
            return false;
        })).isFalse();
        assertThat(tries).hasValue(3);
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).as("two pauses between three tries").isGreaterThanOrEqualTo(Duration.ofMillis(100));
    }

    @Test
    void aPassingProbeIsTriedOnce() {
        AtomicInteger tries = new AtomicInteger();
        assertThat(NetnsTopology.anyOf(NetnsTopology.ATTEMPTS, NetnsTopology.RETRY_PAUSE, () -> tries.incrementAndGet() > 0)).isTrue();
        assertThat(tries).hasValue(1);
    }
}
