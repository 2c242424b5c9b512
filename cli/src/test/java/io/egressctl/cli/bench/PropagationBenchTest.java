package io.egressctl.cli.bench;

import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PropagationBenchTest {

    @Test
    void optionsHaveTheFleetOfTheIssueByDefaultAndAreBounded() {
        Map<String, Integer> o = PropagationBench.options(new String[0]);
        assertThat(o).containsEntry("hosts", 1000).containsEntry("baseline", 100).containsEntry("vms-per-host", 20)
                .containsEntry("networks", 2000).containsEntry("rules-per-network", 25);
        assertThat(PropagationBench.options(new String[] {"--hosts", "100", "--changes=10"}))
                .containsEntry("hosts", 100).containsEntry("changes", 10);
        assertThatThrownBy(() -> PropagationBench.options(new String[] {"--hosts", "6000"})).hasMessageContaining("at most 5000");
        assertThatThrownBy(() -> PropagationBench.options(new String[] {"--changes", "501"})).hasMessageContaining("at most 500");
        assertThatThrownBy(() -> PropagationBench.options(new String[] {"--vms-per-host", "2"})).hasMessageContaining("between 3 and 100");
        assertThatThrownBy(() -> PropagationBench.options(new String[] {"--fleet", "2"})).hasMessageContaining("unknown option --fleet");
    }

    @Test
    void theCloudGivesEveryHostItsVmsAndTheMeasuredNetworksTheirSpans() {
        FleetCloud cloud = new FleetCloud("pbt", "demo", 100, 20, 2000, 25);

        assertThat(cloud.vms).hasSize(100 * 20);
        Map<String, Long> perHost = cloud.vms.stream().collect(Collectors.groupingBy(FleetCloud.Vm::hostId, Collectors.counting()));
        assertThat(perHost).hasSize(100).allSatisfy((h, n) -> assertThat(n).as(h).isEqualTo(20L));
        assertThat(cloud.hostsOf(cloud.all())).isEqualTo(100);
        assertThat(cloud.hostsOf(cloud.tenth())).isEqualTo(10);
        assertThat(cloud.oneVms).hasSize(10);
        assertThat(cloud.oneVms.stream().map(FleetCloud.Vm::hostId).distinct()).hasSize(10);
        // one VM per (host, interface), one address per (network, VM)
        Set<String> interfaces = new HashSet<>();
        Set<String> addresses = new HashSet<>();
        for (FleetCloud.Vm v : cloud.vms) {
            assertThat(interfaces.add(v.hostId() + "/" + v.interfaceName())).as(v.toString()).isTrue();
            assertThat(addresses.add(v.networkId() + "/" + v.ipv4())).as(v.toString()).isTrue();
            assertThat(v.interfaceName().length()).isLessThanOrEqualTo(15);
        }
        assertThat(List.of(cloud.one(), cloud.tenth(), cloud.all())).doesNotContainAnyElementsOf(cloud.networks);
    }
}
