package io.egressctl.rules.api;

import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.validation.RuleDraft;
import io.egressctl.core.validation.RuleValidator;
import io.egressctl.core.validation.ValidationException;
import io.egressctl.schemas.view.NetworkView;
import io.egressctl.schemas.view.RuleView;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PreviewControllerTest {

    private final PreviewController preview = new PreviewController(null);

    private static NetworkView view(Map<String, RuleView> rules) {
        Map<String, NetworkView.VmView> vms = new TreeMap<>();
        vms.put("vm-a", new NetworkView.VmView("h1", "10.0.0.11", null, "tap-vm-a", null));
        vms.put("vm-b", new NetworkView.VmView("h2", "10.0.0.12", null, "tap-vm-b", null));
        vms.put("vm-c", new NetworkView.VmView("h2", "10.0.0.13", null, "tap-vm-c", null));
        return new NetworkView("n1", "acme", "basic", "10.0.0.0/24", null, "allow", false, 1000, 7, 9, rules, vms);
    }

    private static Requests.RuleRequest rule(String protocol, Integer port, List<String> sources, List<String> destinations) {
        return new Requests.RuleRequest(protocol, null, null, sources, null, destinations, null, port, null, null, null, null);
    }

    @Test
    void namesTheCoveredVmsTheirHostsAndTheNftStatements() {
        Map<String, Object> p = preview.preview(view(Map.of()), rule("tcp", 80, List.of("10.0.0.12/31"), null));
        assertThat(p.get("affectedHosts")).isEqualTo(List.of("h2"));
        assertThat((List<?>) p.get("affectedVms")).hasSize(2);
        @SuppressWarnings("unchecked")
        List<String> lines = (List<String>) p.get("nftLines");
        assertThat(lines).hasSize(3);
        assertThat(lines.get(0)).matches("add element inet egressctl l0_port4 \\{ 0x45[0-9a-f]{6} \\. tcp \\. 80 comment \"r=preview h=[0-9a-f]{12}\" }");
        assertThat(lines.get(1)).matches("add element inet egressctl l0_port4 \\{ 0x45[0-9a-f]{6} \\. tcp \\. 80 comment \"r=preview h=.*");
        assertThat(lines.get(2)).isEqualTo("meta nfproto ipv4 meta mark . meta l4proto . th dport @l0_port4 drop comment \"layer 0 deny port ipv4\"");
        assertThat(p).containsEntry("published", false).containsEntry("configVersion", 7L).doesNotContainKey("conflict");
    }

    @Test
    void aDestinationListComesWithTheSetItReferences() {
        Map<String, Object> p = preview.preview(view(Map.of()), rule("udp", 53, null, List.of("192.0.2.0/24", "198.51.100.0/24")));
        @SuppressWarnings("unchecked")
        List<String> lines = (List<String>) p.get("nftLines");
        // One element per VM and destination, on both hosts; the lookup they go through listed once.
        // Each destination is one /24 and the port one port: exact keys, masked to /24 by the lookup.
        assertThat(lines).hasSize(7).filteredOn(l -> l.startsWith("add element inet egressctl l0_port4_dst24 { "))
                .hasSize(6).anyMatch(l -> l.matches("add element inet egressctl l0_port4_dst24 \\{ 0x45[0-9a-f]{6} \\. 192\\.0\\.2\\.0 \\. udp \\. 53 comment.*"))
                .anyMatch(l -> l.matches("add element inet egressctl l0_port4_dst24 \\{ 0x45[0-9a-f]{6} \\. 198\\.51\\.100\\.0 \\. udp \\. 53 comment.*"));
        assertThat(lines).containsOnlyOnce("meta mark . ip daddr & 255.255.255.0 . meta l4proto . th dport @l0_port4_dst24 drop "
                + "comment \"layer 0 deny port ipv4 by destination /24\"");
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> hosts = (List<Map<String, Object>>) p.get("hosts");
        assertThat((List<?>) hosts.get(0).get("nftLines")).hasSize(3);
        assertThat(p.get("affectedHosts")).isEqualTo(List.of("h1", "h2"));
    }

    @Test
    void aDuplicateIsReportedNotRefused() {
        EgressRule existing = new RuleValidator().validateRule("r1",
                new RuleDraft("tcp", null, null, null, null, null, null, 80, null, null, null, null), view(Map.of()).network());
        Map<String, Object> p = preview.preview(view(Map.of("r1", RuleView.of(existing, DefaultPolicy.ALLOW))), rule("tcp", 80, null, null));
        assertThat(p.get("conflict")).isEqualTo(Map.of("code", "DUPLICATE_RULE", "detail", "an identical rule exists: r1", "existingRuleId", "r1"));
        // The existing rule is compiled too, but only the previewed rule's lines are shown.
        @SuppressWarnings("unchecked")
        List<String> lines = (List<String>) p.get("nftLines");
        assertThat(lines).filteredOn(l -> l.startsWith("add element")).isNotEmpty()
                .allSatisfy(l -> assertThat(l).contains("r=preview "));
    }

    @Test
    void aRuleEarlierRulesFullyDecideShowsWhyItAddsNoElement() {
        // "a0" (evaluated before "preview": same priority, lower id) already drops all of vm-b's traffic.
        EgressRule all = new RuleValidator().validateRule("a0",
                new RuleDraft("all", null, null, List.of("10.0.0.12/32"), null, null, null, null, null, null, null, null), view(Map.of()).network());
        Map<String, Object> p = preview.preview(view(Map.of("a0", RuleView.of(all, DefaultPolicy.ALLOW))),
                rule("icmp", null, List.of("10.0.0.12/32"), null));

        assertThat(p.get("affectedHosts")).isEqualTo(List.of("h2"));
        @SuppressWarnings("unchecked")
        List<String> lines = (List<String>) p.get("nftLines");
        assertThat(lines).singleElement().asString()
                .matches("# shadowed: r=preview h=[0-9a-f]{12} vm vm-b \\(tap-vm-b\\) ipv4: earlier rules decide every packet it matches");
    }

    @Test
    void anInvalidRuleIsRefusedLikeACreate() {
        assertThatThrownBy(() -> preview.preview(view(Map.of()), rule("icmp", 80, null, null)))
                .isInstanceOf(ValidationException.class).hasMessageContaining("startPort");
    }

    @Test
    void aRuleCoveringNoPlacedVmAffectsNothing() {
        Map<String, Object> p = preview.preview(view(Map.of()), rule("all", null, List.of("10.0.0.128/25"), null));
        assertThat((List<?>) p.get("affectedVms")).isEmpty();
        assertThat((List<?>) p.get("nftLines")).isEmpty();
    }
}
