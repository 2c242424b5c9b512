package io.egressctl.cli.chaos;

import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/** What the fault suite counts as lost and as duplicated, from accepted changes and a final state. */
class LedgerTest {

    private static Ledger.Change create(int seq, String ruleId) {
        return new Ledger.Change(seq, Ledger.Kind.CREATE, "k" + seq, ruleId, null, null, "c" + seq);
    }

    private static Ledger.Change delete(int seq, String ruleId) {
        return new Ledger.Change(seq, Ledger.Kind.DELETE, "k" + seq, ruleId, null, null, "c" + seq);
    }

    private static Ledger.Change place(int seq, String vm, String host) {
        return new Ledger.Change(seq, Ledger.Kind.PLACE, "k" + seq, null, vm, host, "c" + seq);
    }

    /** vm0 on h1 before the burst; r1 and r2 created, r1 deleted, vm1 placed on h2. */
    private static Ledger ledger() {
        Ledger l = new Ledger(Map.of("vm0", "h1"));
        l.accept(create(0, "r1"));
        l.accept(create(1, "r2"));
        l.accept(delete(2, "r1"));
        l.accept(place(3, "vm1", "h2"));
        return l;
    }

    private static Ledger.Observed state(Map<String, String> rules, Map<String, String> vms, Set<String> h1Rules, Set<String> h2Rules) {
        return new Ledger.Observed(true, rules, vms, Map.of("h1", h1Rules, "h2", h2Rules),
                Map.of("h1", Set.of("vm0"), "h2", Set.of("vm1")));
    }

    @Test
    void everyEffectInTheViewAndInEverySnapshotIsNothingLost() {
        Ledger.Outcome o = ledger().evaluate(state(Map.of("r2", "chaos key=k1"), Map.of("vm0", "h1", "vm1", "h2"), Set.of("r2"), Set.of("r2")));
        assertThat(o.accepted()).isEqualTo(4);
        assertThat(o.lost()).isEmpty();
        assertThat(o.duplicated()).isZero();
        assertThat(ledger().liveRules()).containsExactly("r2");
    }

    @Test
    void aCreateMissingFromOneHostsSnapshotIsLostAndNamesTheHost() {
        Ledger.Outcome o = ledger().evaluate(state(Map.of("r2", "chaos key=k1"), Map.of("vm0", "h1", "vm1", "h2"), Set.of("r2"), Set.of()));
        assertThat(o.lost()).singleElement().satisfies(f -> {
            assertThat(f.change().ruleId()).isEqualTo("r2");
            assertThat(f.reason()).isEqualTo("rule not in the snapshot of h2");
        });
    }

    @Test
    void aDeleteWhoseRuleIsStillThereIsLost() {
        Ledger.Outcome o = ledger().evaluate(state(Map.of("r1", "chaos key=k0", "r2", "chaos key=k1"), Map.of("vm0", "h1", "vm1", "h2"),
                Set.of("r1", "r2"), Set.of("r2")));
        assertThat(o.lost()).extracting(f -> f.change().kind() + " " + f.reason())
                .containsExactly("DELETE deleted rule still in the network's view");
    }

    @Test
    void aPlacementOnAnotherHostOrMissingFromTheSnapshotIsLost() {
        Ledger l = ledger();
        Ledger.Observed moved = state(Map.of("r2", "chaos key=k1"), Map.of("vm0", "h1", "vm1", "h1"), Set.of("r2"), Set.of("r2"));
        assertThat(l.evaluate(moved).lost()).extracting(Ledger.Finding::reason).containsExactly("the view puts the VM on h1");
        Ledger.Observed noFragment = new Ledger.Observed(true, Map.of("r2", "chaos key=k1"), Map.of("vm0", "h1", "vm1", "h2"),
                Map.of("h1", Set.of("r2")), Map.of("h1", Set.of("vm0")));
        assertThat(l.evaluate(noFragment).lost()).extracting(Ledger.Finding::reason)
                .containsExactlyInAnyOrder("rule not in the snapshot of h2", "VM not in the snapshot of h2");
    }

    @Test
    void aMissingNetworkLosesEveryAcceptedChange() {
        Ledger.Outcome o = ledger().evaluate(new Ledger.Observed(false, Map.of(), Map.of(), Map.of(), Map.of()));
        assertThat(o.lost()).hasSize(4).allSatisfy(f -> assertThat(f.reason()).isEqualTo("the network is not in the API (404)"));
    }

    @Test
    void twoRulesForOneIdempotencyKeyAreADuplicatedEffect() {
        Ledger.Outcome o = ledger().evaluate(state(Map.of("r2", "chaos key=k1", "r9", "chaos key=k1"), Map.of("vm0", "h1", "vm1", "h2"),
                Set.of("r2", "r9"), Set.of("r2", "r9")));
        assertThat(o.lost()).isEmpty();
        assertThat(o.duplicated()).isEqualTo(1);
        assertThat(o.duplicates()).containsEntry("k1", java.util.List.of("r2", "r9"));
    }

    @Test
    void aRuleWhoseRequestNeverGotAnAnswerIsUnacknowledgedNotDuplicated() {
        Ledger.Outcome o = ledger().evaluate(state(Map.of("r2", "chaos key=k1", "r7", "chaos key=k7", "other", "a tenant's own rule"),
                Map.of("vm0", "h1", "vm1", "h2"), Set.of("r2"), Set.of("r2")));
        assertThat(o.duplicated()).isZero();
        assertThat(o.unacknowledged()).isEqualTo(1);
        assertThat(Ledger.keyOf("a tenant's own rule")).isNull();
        assertThat(Ledger.keyOf("chaos key=chaos-ab12-0-c3")).isEqualTo("chaos-ab12-0-c3");
    }
}
