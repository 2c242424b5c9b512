package io.egressctl.rules.api;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class WaitParametersTest {

    @Test
    void acceptsWhatTheWaitUnderstands() {
        assertThatCode(() -> WaitParameters.check(null, null)).doesNotThrowAnyException();
        assertThatCode(() -> WaitParameters.check("compiled", "500ms")).doesNotThrowAnyException();
        assertThatCode(() -> WaitParameters.check("applied", "5s")).doesNotThrowAnyException();
    }

    @Test
    void refusesABadWaitOrTimeoutBeforeTheHandlerPublishes() {
        assertThatThrownBy(() -> WaitParameters.check("enforced", null)).isInstanceOf(ApiException.class).hasMessageContaining("compiled or applied");
        assertThatThrownBy(() -> WaitParameters.check("applied", "soon")).isInstanceOf(ApiException.class).hasMessageContaining("timeout");
    }

    @Test
    void aNegativeOrZeroTimeoutIsRefusedNamingTheField() {
        for (String t : java.util.List.of("-5s", "-1ms", "0s", "0ms", "-0s", "PT0S", "PT-5S", "-PT5S", "0.0s")) {
            ApiException e = org.assertj.core.api.Assertions.catchThrowableOfType(ApiException.class, () -> WaitParameters.check("applied", t));
            org.assertj.core.api.Assertions.assertThat(e).as(t).isNotNull();
            org.assertj.core.api.Assertions.assertThat(e.status().value()).as(t).isEqualTo(400);
            org.assertj.core.api.Assertions.assertThat(e.code()).as(t).isEqualTo("BAD_PARAMETER");
            org.assertj.core.api.Assertions.assertThat(e.getMessage()).as(t).contains("must be positive");
            org.assertj.core.api.Assertions.assertThat(e.properties().get("errors").toString()).as(t).contains("field=timeout");
        }
    }

    @Test
    void aMalformedTimeoutIsRefused() {
        for (String t : java.util.List.of("5", "5m", "0x10s", "1e3s", "NaNs", "Infinitys", "5 s", "s", "ms", "1.5ms", "5d")) {
            assertThatThrownBy(() -> WaitParameters.check("applied", t)).as(t).isInstanceOf(ApiException.class)
                    .hasMessageContaining("must look like");
        }
    }

    @Test
    void aHugeTimeoutIsCappedAtTheLongestWait() {
        var max = io.egressctl.rules.changes.ChangeTracker.MAX_WAIT;
        org.assertj.core.api.Assertions.assertThat(ChangeWriter.parseTimeout("3600s")).isEqualTo(max);
        org.assertj.core.api.Assertions.assertThat(ChangeWriter.parseTimeout("999999999999999999ms")).isEqualTo(max);
        org.assertj.core.api.Assertions.assertThat(ChangeWriter.parseTimeout("99999999999999999.5s")).isEqualTo(max);
        org.assertj.core.api.Assertions.assertThat(ChangeWriter.parseTimeout("PT100000H")).isEqualTo(max);
        org.assertj.core.api.Assertions.assertThat(ChangeWriter.parseTimeout("1ms")).isEqualTo(java.time.Duration.ofMillis(1));
        org.assertj.core.api.Assertions.assertThat(ChangeWriter.parseTimeout("2.5s")).isEqualTo(java.time.Duration.ofMillis(2500));
        org.assertj.core.api.Assertions.assertThat(ChangeWriter.parseTimeout(null)).isEqualTo(java.time.Duration.ofSeconds(10));
    }

    @Test
    void anOverlongOrUnprintableIdempotencyKeyIsA400() {
        ApiException longKey = org.assertj.core.api.Assertions.catchThrowableOfType(ApiException.class,
                () -> ChangeWriter.checkIdempotencyKey("k".repeat(10 * 1024)));
        org.assertj.core.api.Assertions.assertThat(longKey.code()).isEqualTo("BAD_IDEMPOTENCY_KEY");
        org.assertj.core.api.Assertions.assertThat(longKey.getMessage()).contains("10240 characters");
        assertThatThrownBy(() -> ChangeWriter.checkIdempotencyKey("a\u0001b")).isInstanceOf(ApiException.class);
        assertThatThrownBy(() -> ChangeWriter.checkIdempotencyKey("")).isInstanceOf(ApiException.class);
        assertThatThrownBy(() -> ChangeWriter.checkIdempotencyKey("caf\u00e9")).isInstanceOf(ApiException.class);
        assertThatCode(() -> ChangeWriter.checkIdempotencyKey("k".repeat(128))).doesNotThrowAnyException();
    }
}
