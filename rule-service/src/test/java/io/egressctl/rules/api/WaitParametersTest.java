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
}
