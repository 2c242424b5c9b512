package io.egressctl.core.nft;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class NftDeltaTest {

    private static final String BASE = "type filter hook forward priority filter; policy accept;";

    static NftRuleset ruleset(List<NftSet> sets, List<NftChain> chains) {
        return new NftRuleset(List.of(new NftTable("inet", "egressctl", sets, chains)), List.of("note"));
    }

    static NftSet set(String name, NftElement... elements) {
        return new NftSet(name, false, List.of("type mark"), List.of(elements));
    }

    static NftChain forward(String... rules) {
        return new NftChain("forward", BASE, List.of(rules));
    }

    @Test
    void equalRulesetsNeedNothing() {
        NftRuleset a = ruleset(List.of(set("vms", NftElement.of("0x1", null))), List.of(forward("meta mark @vms accept")));
        NftRuleset b = ruleset(List.of(set("vms", NftElement.of("0x1", null))), List.of(forward("meta mark @vms accept")));

        NftDelta d = NftDelta.between(a, b);

        assertThat(d.isEmpty()).isTrue();
        assertThat(NftScript.delta(d)).isEmpty();
        assertThat(a.sameTables(b)).isTrue();
    }

    @Test
    void oneElementChangedInALargeSetIsOneDeleteAndOneAdd() {
        List<NftElement> was = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
            was.add(NftElement.of("0x" + Integer.toHexString(i) + " . tcp . 80-80", "r=r" + i + " h=aa"));
        }
        List<NftElement> now = new ArrayList<>(was);
        now.set(500, NftElement.of("0x1f4 . tcp . 443-443", "r=r500 h=bb"));
        NftRuleset a = ruleset(List.of(new NftSet("l0_port4", false, List.of("type mark . inet_proto . inet_service", "flags interval"), was)),
                List.of(forward()));
        NftRuleset b = ruleset(List.of(new NftSet("l0_port4", false, List.of("type mark . inet_proto . inet_service", "flags interval"), now)),
                List.of(forward()));

        NftDelta d = NftDelta.between(a, b);

        assertThat(d.elementOperations()).isEqualTo(2);
        assertThat(NftScript.delta(d)).isEqualTo("delete element inet egressctl l0_port4 { 0x1f4 . tcp . 80-80 }\n"
                + "add element inet egressctl l0_port4 { 0x1f4 . tcp . 443-443 comment \"r=r500 h=bb\" }\n");
    }

    @Test
    void aChangedCommentOrMapDataReplacesTheElement() {
        NftSet def = new NftSet("def", true, List.of("type mark : verdict"), List.of(new NftElement("0x1", "net a vm 1", "accept")));
        NftSet def2 = new NftSet("def", true, List.of("type mark : verdict"), List.of(new NftElement("0x1", "net a vm 1", "drop")));

        NftDelta d = NftDelta.between(ruleset(List.of(def), List.of()), ruleset(List.of(def2), List.of()));

        assertThat(NftScript.delta(d)).isEqualTo("delete element inet egressctl def { 0x1 }\n"
                + "add element inet egressctl def { 0x1 comment \"net a vm 1\" : drop }\n");
    }

    @Test
    void newSetsComeFirstChainsAreRefilledThenOldSetsGo() {
        NftRuleset a = ruleset(List.of(set("l0_all4", NftElement.of("0x1", "r=a"))),
                List.of(forward(), new NftChain("vm", null, List.of("meta mark @l0_all4 drop comment \"layer 0\""))));
        NftRuleset b = ruleset(List.of(set("l1_all4", NftElement.of("0x1", "r=b"))),
                List.of(forward(), new NftChain("vm", null, List.of("meta mark @l1_all4 accept comment \"layer 1\""))));

        String text = NftScript.delta(NftDelta.between(a, b));

        assertThat(text).isEqualTo("table inet egressctl {\n  set l1_all4 {\n    type mark\n    elements = { 0x1 comment \"r=b\" }\n  }\n}\n"
                + "flush chain inet egressctl vm\n"
                + "add rule inet egressctl vm meta mark @l1_all4 accept comment \"layer 1\"\n"
                + "delete set inet egressctl l0_all4\n");
    }

    @Test
    void whatOnlyAFullReplacementCanDoHasNoDelta() {
        NftRuleset a = ruleset(List.of(set("vms")), List.of(forward()));
        assertThat(NftDelta.between(a, new NftRuleset(List.of(), List.of()))).as("a table removed").isNull();
        assertThat(NftDelta.between(a, new NftRuleset(List.of(a.tables().get(0), new NftTable("bridge", "egressctl", List.of(), List.of())),
                List.of()))).as("a table added (mode change)").isNull();
        assertThat(NftDelta.between(a, ruleset(List.of(new NftSet("vms", false, List.of("type ipv4_addr"), List.of())), List.of(forward()))))
                .as("a set redeclared").isNull();
        assertThat(NftDelta.between(a, ruleset(List.of(set("vms")), List.of(new NftChain("forward", BASE.replace("filter;", "raw;"), List.of())))))
                .as("a base chain redefined").isNull();
        assertThat(NftDelta.between(a, ruleset(List.of(set("vms"), new NftSet("def", true, List.of("type mark : verdict"), List.of())),
                List.of(forward())))).as("a map added").isNull();
        assertThat(NftDelta.between(a, ruleset(List.of(set("vms")), List.of(forward(), new NftChain("pre", BASE, List.of())))))
                .as("a base chain added").isNull();
    }

    @Test
    void theScriptWritesNotesAsCommentsAndTheKernelInputLeavesThemOut() {
        NftRuleset a = ruleset(List.of(set("vms", NftElement.of("0x1", null))), List.of(forward("meta mark @vms accept")));

        assertThat(NftScript.script(a)).startsWith("# note\ntable inet egressctl\ndelete table inet egressctl\ntable inet egressctl {\n");
        assertThat(NftScript.kernelInput(a)).startsWith("table inet egressctl\ndelete table inet egressctl\n").doesNotContain("#");
        assertThat(NftScript.kernelInput(a, List.of("bridge egressctl", "inet egressctl")))
                .as("a product table the ruleset does not define is removed first")
                .startsWith("table bridge egressctl\ndelete table bridge egressctl\ntable inet egressctl\n");
    }
}
