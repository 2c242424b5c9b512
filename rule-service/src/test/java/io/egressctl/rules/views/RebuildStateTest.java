package io.egressctl.rules.views;

import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;

class RebuildStateTest {

    @Test
    void noGenerationMarkerMeansRedisLostItsStateAndIsRebuilding() {
        RebuildState.Status s = RebuildState.classify(null, Map.of());
        assertThat(s.rebuilding()).isTrue();
        assertThat(s.reason()).contains("no generation marker");
    }

    @Test
    void partitionsMarkedAsRebuildingAreNamedInOrderWithWhatTheCompilerWrote() {
        RebuildState.Status s = RebuildState.classify("g1", Map.of("10", "replaying: at 5 of 9", "2", "healing after a Redis loss"));
        assertThat(s.rebuilding()).isTrue();
        assertThat(s.reason()).isEqualTo("the compiler is rebuilding the read model from the log: partition 2: healing after a Redis loss;"
                + " partition 10: replaying: at 5 of 9");
    }

    @Test
    void aGenerationAndNoMarkersIsComplete() {
        assertThat(RebuildState.classify("g1", Map.of())).isEqualTo(RebuildState.Status.COMPLETE);
    }

    @Test
    void theStatusIsReadAgainOnlyAfterTheCacheTime() {
        AtomicInteger reads = new AtomicInteger();
        AtomicLong now = new AtomicLong(1000);
        RebuildState state = new RebuildState(() -> {
            reads.incrementAndGet();
            return RebuildState.Status.COMPLETE;
        }, 500, now::get);
        state.status();
        state.status();
        now.addAndGet(499);
        state.status();
        assertThat(reads).hasValue(1);
        now.addAndGet(1);
        state.status();
        assertThat(reads).hasValue(2);
    }

    @Test
    void healthIsOutOfServiceWithTheReasonWhileRebuilding() {
        RebuildState state = new RebuildState(() -> RebuildState.classify(null, Map.of()), 0, () -> 0);
        assertThat(state.health().getStatus().getCode()).isEqualTo("OUT_OF_SERVICE");
        assertThat(state.health().getDetails().get("reason").toString()).contains("no generation marker");
        RebuildState down = new RebuildState(() -> {
            throw new IllegalStateException("connection refused");
        }, 0, () -> 0);
        assertThat(down.health().getStatus().getCode()).isEqualTo("DOWN");
    }
}
