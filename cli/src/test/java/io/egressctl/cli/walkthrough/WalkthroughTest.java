package io.egressctl.cli.walkthrough;

import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.model.Action;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.core.render.NftRenderer;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The walkthrough's reading of a ruleset the renderer really produced: which rules it enforces and
 * what it shows per VM. It once still parsed an older layout and reported every rule missing.
 */
class WalkthroughTest {

    private static String rendered() {
        // vm-1: "all" sorts before its ICMP rule, which is then fully decided (no element); vm-2: udp/53 to one address.
        CompiledRule all = new CompiledRule("a-all", Action.DENY, 1000, Protocol.ALL, List.of("vm-1"), List.of(), List.of(), null, null);
        CompiledRule icmp = new CompiledRule("b-icmp", Action.DENY, 1000, Protocol.ICMP, List.of("vm-1"), List.of(), List.of(), null, null);
        CompiledRule dns = new CompiledRule("c-dns", Action.DENY, 1000, Protocol.UDP, List.of("vm-2"), List.of(Cidr.parse("192.0.2.53/32")),
                List.of(), PortRange.single(53), null);
        Fragment f = new Fragment("demo-net", DefaultPolicy.ALLOW,
                List.of(new VmAddress("vm-1", "10.1.0.11", null), new VmAddress("vm-2", "10.1.0.12", null)), List.of(all, icmp, dns));
        return new NftRenderer().render("host-1", new TreeMap<>(Map.of("demo-net", f)));
    }

    @Test
    void aRuleWithElementsAndAFullyDecidedRuleAreBothEnforcedAndAnAbsentOneIsNot() {
        String ruleset = rendered();
        assertThat(Walkthrough.enforces(ruleset, "a-all")).isTrue();
        assertThat(Walkthrough.enforces(ruleset, "b-icmp")).as("named in the header, no element").isTrue();
        assertThat(Walkthrough.enforces(ruleset, "c-dns")).isTrue();
        assertThat(Walkthrough.enforces(ruleset, "d-none")).isFalse();
        assertThat(Walkthrough.enforces(ruleset, "a-al")).as("ids match whole").isFalse();
    }

    @Test
    void eachVmShowsItsDefaultThenItsElementsAndItsRulesWithoutElement() {
        Map<String, List<String>> view = Walkthrough.enforcedByAddress(rendered());
        assertThat(view).containsOnlyKeys("10.1.0.11", "10.1.0.12");
        List<String> vm1 = view.get("10.1.0.11");
        assertThat(vm1.get(0)).isEqualTo("default accept  (net demo-net vm vm-1)");
        assertThat(vm1).anyMatch(l -> l.startsWith("l0_all4: 10.1.0.11 ") && l.endsWith("(a-all...)"));
        assertThat(vm1).anyMatch(l -> l.startsWith("no element: earlier rules decide all it matches") && l.endsWith("(b-icmp...)"));
        assertThat(view.get("10.1.0.12")).anyMatch(l -> l.contains("10.1.0.12 . 192.0.2.53 . udp . 53") && l.endsWith("(c-dns...)"));
    }
}
