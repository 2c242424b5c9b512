package io.egressctl.core.compile;

import io.egressctl.core.model.Action;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Rule-keyed fragment deltas: what they carry, and that applying one to its base gives the next fragment exactly. */
class FragmentDeltaTest {

    static CompiledRule rule(String id, int priority, int port, String... vms) {
        return new CompiledRule(id, Action.DENY, priority, Protocol.TCP, List.of(vms), List.of(Cidr.parse("198.51.100.0/24")), List.of(),
                PortRange.single(port), null);
    }

    static Fragment fragment(DefaultPolicy policy, CompiledRule... rules) {
        List<CompiledRule> sorted = new ArrayList<>(List.of(rules));
        sorted.sort(Comparator.comparingInt(CompiledRule::priority).thenComparing(CompiledRule::ruleId));
        return new Fragment("n1", policy, List.of(new VmAddress("vm-a", "vnet0", null, "10.1.1.10", null),
                new VmAddress("vm-b", "vnet1", null, "10.1.1.11", null)), sorted);
    }

    @Test
    void aDeltaCarriesOnlyTheRulesThatChangedOrWent() {
        Fragment base = fragment(DefaultPolicy.ALLOW, rule("r1", 100, 80, "vm-a"), rule("r2", 100, 443, "vm-a"), rule("r3", 200, 22, "vm-b"));
        Fragment next = fragment(DefaultPolicy.ALLOW, rule("r1", 100, 80, "vm-a"), rule("r2", 100, 8443, "vm-a"), rule("r4", 50, 25, "vm-b"));

        FragmentDelta d = FragmentDelta.between(7, base, next);

        assertThat(d.baseVersion()).isEqualTo(7);
        assertThat(d.upserts()).extracting(CompiledRule::ruleId).containsExactly("r4", "r2");
        assertThat(d.removedRuleIds()).containsExactly("r3");
        assertThat(d.ruleCount()).isEqualTo(3);
        Fragment applied = d.applyTo(base);
        assertThat(applied).isEqualTo(next);
        assertThat(applied.hash()).isEqualTo(next.hash());
    }

    @Test
    void theNetworksSmallPartsTravelWhole() {
        Fragment base = fragment(DefaultPolicy.ALLOW, rule("r1", 100, 80, "vm-a"));
        Fragment next = new Fragment("n1", DefaultPolicy.DENY, List.of(new VmAddress("vm-a", "vnet0", null, "10.1.1.10", null)),
                base.rules(), true);

        FragmentDelta d = FragmentDelta.between(1, base, next);

        assertThat(d.upserts()).isEmpty();
        assertThat(d.removedRuleIds()).isEmpty();
        assertThat(d.applyTo(base)).isEqualTo(next);
    }

    @Test
    void aRemovedRuleTheBaseDoesNotHoldIsRefused_notItsBase() {
        FragmentDelta d = new FragmentDelta(3, DefaultPolicy.ALLOW, List.of(), false, List.of(), List.of("r9"));
        assertThatThrownBy(() -> d.applyTo(fragment(DefaultPolicy.ALLOW, rule("r1", 100, 80, "vm-a"))))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("r9");
    }

    @Test
    void aRuleUpsertedTwiceOrBothUpsertedAndRemovedIsRefused() {
        assertThatThrownBy(() -> new FragmentDelta(1, DefaultPolicy.ALLOW, List.of(), false,
                List.of(rule("r1", 1, 80, "vm-a"), rule("r1", 1, 81, "vm-a")), List.of()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("upserted twice");
        assertThatThrownBy(() -> new FragmentDelta(1, DefaultPolicy.ALLOW, List.of(), false, List.of(rule("r1", 1, 80, "vm-a")), List.of("r1")))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("both upserted and removed");
    }

    @Test
    void fragmentsOfTwoNetworksHaveNoDelta() {
        Fragment other = new Fragment("n2", DefaultPolicy.ALLOW, List.of(), List.of());
        assertThatThrownBy(() -> FragmentDelta.between(1, fragment(DefaultPolicy.ALLOW), other)).isInstanceOf(IllegalArgumentException.class);
    }

    /** Any base, any next: the delta applied to the base is the next fragment, hash for hash. */
    @Property(tries = 300)
    void applyingTheDeltaToItsBaseGivesTheNextFragment(@ForAll("rules") List<CompiledRule> before, @ForAll("rules") List<CompiledRule> after,
                                                        @ForAll boolean deny) {
        Fragment base = fragment(DefaultPolicy.ALLOW, before.toArray(CompiledRule[]::new));
        Fragment next = fragment(deny ? DefaultPolicy.DENY : DefaultPolicy.ALLOW, after.toArray(CompiledRule[]::new));

        FragmentDelta d = FragmentDelta.between(1, base, next);

        assertThat(d.applyTo(base).hash()).isEqualTo(next.hash());
        assertThat(d.ruleCount()).isLessThanOrEqualTo(before.size() + after.size());
    }

    @Provide
    Arbitrary<List<CompiledRule>> rules() {
        // Ids from a small pool, so that bases and nexts share, change and drop rules.
        Arbitrary<CompiledRule> one = Arbitraries.integers().between(0, 11).flatMap(id -> Arbitraries.integers().between(0, 2)
                .flatMap(priority -> Arbitraries.of(80, 443).flatMap(port -> Arbitraries.of("vm-a", "vm-b")
                        .map(vm -> rule("r" + id, 100 + priority, port, vm)))));
        return one.list().ofMaxSize(12).uniqueElements(CompiledRule::ruleId);
    }
}
