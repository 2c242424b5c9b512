package io.egressctl.core.validation;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class NetworkIdsTest {

    @Test
    void aScopedLogIdIsTheTenantAndTheNameAndTheNameComesBackForThatTenantOnly() {
        String id = NetworkIds.scoped("beta", "web");
        assertThat(id).isEqualTo("beta:web");
        assertThat(NetworkIds.nameFor("beta", id)).isEqualTo("web");
        assertThat(NetworkIds.nameFor("acme", id)).as("another tenant's prefix is left alone").isEqualTo("beta:web");
        assertThat(NetworkIds.nameFor("beta", "web")).as("a bare log id is its own name").isEqualTo("web");
        assertThat(NetworkIds.nameFor("beta", "beta:")).isEqualTo("beta:");
    }

    @Test
    void aNameWithAColonIsNeverABareLogIdSoItCannotTakeAnotherTenantsScopedId() {
        assertThat(NetworkIds.mayBeBare("web")).isTrue();
        assertThat(NetworkIds.mayBeBare("beta:web")).isFalse();
        assertThat(NetworkIds.nameFor("acme", NetworkIds.scoped("acme", "beta:web"))).isEqualTo("beta:web");
    }

    @Test
    void aLogIdMayBeAsLongAsATenantIdAndANameTogether() {
        String tenant = "t".repeat(64);
        String name = "n".repeat(64);
        assertThat(NetworkIds.isValidLogId(NetworkIds.scoped(tenant, name))).isTrue();
        assertThat(NetworkIds.isValidLogId(NetworkIds.scoped(tenant, name) + "x")).isFalse();
        assertThat(NetworkIds.isValidLogId("web")).isTrue();
        assertThat(NetworkIds.isValidLogId("a".repeat(64) + "/x")).isFalse();
        assertThat(NetworkIds.isValidLogId("-web")).isFalse();
        assertThat(NetworkIds.isValidLogId(null)).isFalse();
        assertThatThrownBy(() -> NetworkIds.requireLogId("networkId", "bad id")).isInstanceOf(ValidationException.class)
                .hasMessageContaining("networkId");
    }
}
