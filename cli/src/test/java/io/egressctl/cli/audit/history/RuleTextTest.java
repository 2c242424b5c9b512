package io.egressctl.cli.audit.history;

import io.egressctl.cli.audit.Events;
import io.egressctl.events.DefaultPolicy;
import io.egressctl.events.Protocol;
import io.egressctl.events.RuleAction;
import io.egressctl.events.RuleSpec;
import io.egressctl.schemas.mapping.EventMapper;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class RuleTextTest {

    @Test
    void summarisesRulesOnOneLine() {
        assertThat(RuleText.of(Events.tcp("r1", 80, "10.20.0.11/32"))).isEqualTo("tcp port 80 from 10.20.0.11/32 to any");
        RuleSpec range = RuleSpec.newBuilder(Events.tcp("r2", 5000, null)).setEndPort(5100).setProtocol(Protocol.UDP)
                .setSourceVmIds(List.of("vm-a", "vm-b")).setDestinationCidrs(List.of("203.0.113.0/24"))
                .setDestinationExceptCidrs(List.of("203.0.113.7/32")).setAction(RuleAction.ALLOW).setPriority(10).build();
        assertThat(RuleText.of(range))
                .isEqualTo("udp ports 5000-5100 from vm-a,vm-b to 203.0.113.0/24 except 203.0.113.7/32 allow priority 10");
        RuleSpec icmp = RuleSpec.newBuilder(Events.tcp("r3", 1, null)).setProtocol(Protocol.ICMP).setStartPort(null)
                .setEndPort(null).setIcmpType(8).setIcmpCode(-1).build();
        assertThat(RuleText.of(icmp)).isEqualTo("icmp type 8 from all-vms to any");
        RuleSpec all = RuleSpec.newBuilder(icmp).setProtocol(Protocol.ALL).setIcmpType(null).build();
        assertThat(RuleText.of(all)).isEqualTo("all from all-vms to any");
        assertThat(RuleText.of((RuleSpec) null)).isNull();
    }

    @Test
    void summarisesNetworksAndCoreValuesAlike() {
        assertThat(RuleText.of(Events.network("net-1", DefaultPolicy.DENY))).isEqualTo("basic 10.20.0.0/24 policy deny tenant acme");
        assertThat(RuleText.of(EventMapper.fromAvro(Events.tcp("r1", 443, null)))).isEqualTo("tcp port 443 from all-vms to any");
        assertThat(RuleText.of(EventMapper.fromAvro(Events.network("net-1", DefaultPolicy.ALLOW))))
                .isEqualTo("basic 10.20.0.0/24 policy allow tenant acme");
    }
}
