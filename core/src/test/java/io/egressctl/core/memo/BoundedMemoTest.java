package io.egressctl.core.memo;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class BoundedMemoTest {

    @Test
    void aRememberedValueIsNotComputedAgain() {
        AtomicInteger calls = new AtomicInteger();
        BoundedMemo<String, Integer> memo = new BoundedMemo<>(10, s -> {
            calls.incrementAndGet();
            return s.length();
        });
        assertThat(memo.get("abc")).isEqualTo(3);
        assertThat(memo.get("abc")).isEqualTo(3);
        assertThat(calls).hasValue(1);
    }

    @Test
    void whenFullItForgetsEverythingAndStillAnswersRight() {
        AtomicInteger calls = new AtomicInteger();
        BoundedMemo<Integer, Integer> memo = new BoundedMemo<>(3, i -> {
            calls.incrementAndGet();
            return i * 2;
        });
        for (int i = 0; i < 3; i++) {
            memo.get(i);
        }
        assertThat(memo.size()).isEqualTo(3);
        assertThat(memo.get(7)).isEqualTo(14);
        assertThat(memo.size()).as("cleared, then the new value").isEqualTo(1);
        assertThat(memo.get(0)).isZero();
        assertThat(calls).hasValue(5);
    }

    @Test
    void aLimitBelowOneIsRefused() {
        assertThatThrownBy(() -> new BoundedMemo<String, String>(0, s -> s)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("limit");
    }
}
