package io.egressctl.schemas.view;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** The network read model across versions: views written before interfaces and keepEstablished still read. */
class NetworkViewTest {

    @Test
    void aViewWrittenBeforeInterfacesAndKeepEstablishedReadsWithTheirDefaults() {
        String old = "{\"networkId\":\"n1\",\"tenantId\":\"acme\",\"kind\":\"basic\",\"guestCidr\":\"10.0.0.0/24\",\"guestCidr6\":null,"
                + "\"defaultPolicy\":\"allow\",\"advanced\":false,\"ruleQuota\":1000,\"configVersion\":3,\"version\":5,\"rules\":{},"
                + "\"vms\":{\"vm-1\":{\"hostId\":\"h1\",\"ipv4\":\"10.0.0.11\",\"ipv6\":null}}}";
        NetworkView v = NetworkView.fromHash(Map.of("version", "5", "json", old));
        assertThat(v.keepEstablished()).isFalse();
        assertThat(v.vms().get("vm-1")).isEqualTo(new NetworkView.VmView("h1", "10.0.0.11", null, null, null));
        assertThat(v.network().keepEstablished()).isFalse();
    }

    @Test
    void interfaceMacAndKeepEstablishedRoundTrip() {
        NetworkView v = new NetworkView("n1", "acme", "basic", "10.0.0.0/24", null, "deny", false, 1000, 3, 5, Map.of(),
                Map.of("vm-1", new NetworkView.VmView("h1", "10.0.0.11", null, "tap-a1", "52:54:00:12:34:56")), true);
        String json = tools.jackson.databind.json.JsonMapper.builder().build().writeValueAsString(v);
        assertThat(json).contains("\"interfaceName\":\"tap-a1\"", "\"mac\":\"52:54:00:12:34:56\"", "\"keepEstablished\":true");
        NetworkView back = NetworkView.fromHash(Map.of("version", "5", "json", json));
        assertThat(back).isEqualTo(v);
        assertThat(back.network().keepEstablished()).isTrue();
    }

    @Test
    void theInterfaceIndexKeyIsTaggedByHost() {
        assertThat(RedisKeys.hostInterfaces("host-1")).isEqualTo("egress:host:{host-1}:interfaces");
        assertThat(RedisKeys.interfaceHolder("net-a", "vm-1")).isEqualTo("net-a/vm-1");
    }
}
