package io.egressctl.cli.audit;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class ProgressTest {

    @Test
    void progressLineShowsRatePositionAndRemaining() {
        assertThat(Progress.line(250_000, 1_000_000, 2_000_000_000L, "egress.rule-events p3@41000"))
                .isEqualTo("250,000/1,000,000 (25%)  125,000 records/s  at egress.rule-events p3@41000  remaining 6s");
        assertThat(Progress.line(10, 0, 1_000_000_000L, null)).isEqualTo("10  10 records/s");
        // NONE prints nothing and never fails
        Progress.NONE.advance(5, "x");
        Progress.NONE.done();
    }
}
