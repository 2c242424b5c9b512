package io.egressctl.agent.config;

import io.egressctl.core.render.HostMode;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class AgentPropertiesTest {

    private static AgentProperties withMode(String mode) {
        return new AgentProperties("host-1", "dry-run", "x.nft", null, "nft", "", false, mode, "conntrack", 0);
    }

    @Test
    void theHostModeIsRoutedUnlessSaidOtherwise() {
        assertThat(withMode(null).hostMode()).isEqualTo(HostMode.ROUTED);
        assertThat(withMode("").hostMode()).isEqualTo(HostMode.ROUTED);
        assertThat(withMode("routed").hostMode()).isEqualTo(HostMode.ROUTED);
        assertThat(withMode("Bridged").hostMode()).isEqualTo(HostMode.BRIDGED);
    }

    @Test
    void anUnknownModeStopsTheAgentWithTheReason() {
        assertThatThrownBy(() -> withMode("ovs").hostMode()).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("neither routed nor bridged");
    }
}
