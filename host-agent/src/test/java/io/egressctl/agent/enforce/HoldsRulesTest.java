package io.egressctl.agent.enforce;

import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.nft.NftRuleset;
import io.egressctl.core.render.HostMode;
import io.egressctl.core.render.NftRenderer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SortedMap;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link Enforcer#holdsRules}: what the agent asks before it would apply an empty snapshot (fail
 * closed). True only when a table of ours with a VM or rule is in force.
 */
class HoldsRulesTest {

    @TempDir
    Path dir;

    private static NftRuleset render(HostMode mode, boolean withVm) {
        SortedMap<String, Fragment> m = new TreeMap<>();
        if (withVm) {
            m.put("net-a", new Fragment("net-a", DefaultPolicy.DENY, List.of(new VmAddress("vm-1", "tap-a1", null, "10.1.1.10", null)),
                    List.of()));
        }
        return new NftRenderer(false, mode).ruleset("host-1", m);
    }

    @Test
    void theDryRunEnforcerHoldsRulesWhenItsFileHasAVm() throws Exception {
        DryRunEnforcer e = new DryRunEnforcer(dir.resolve("agent.nft"));
        assertThat(e.holdsRules()).as("no file: a new host").isFalse();
        e.apply(render(HostMode.ROUTED, false));
        assertThat(e.holdsRules()).as("an empty host's table").isFalse();
        e.apply(render(HostMode.BRIDGED, true));
        assertThat(e.holdsRules()).isTrue();
    }

    @Test
    void theNftablesEnforcerListsItsTableOnce() throws Exception {
        List<List<String>> calls = new ArrayList<>();
        String[] answer = {"table inet egressctl {\n\tset vms {\n\t\ttype mark\n\t\telements = { 0x4500a1b2 }\n\t}\n}\n", ""};
        int[] exit = {0};
        NftablesEnforcer e = new NftablesEnforcer((stdin, args) -> {
            calls.add(args);
            return new NftRunner.Result(exit[0], answer[0], answer[1]);
        });

        assertThat(e.holdsRules()).isTrue();
        assertThat(calls).containsExactly(List.of("list", "table", "inet", "egressctl"));

        answer[0] = "table inet egressctl {\n\tset vms {\n\t\ttype mark\n\t}\n}\n";
        assertThat(e.holdsRules()).as("an empty table").isFalse();

        exit[0] = 1;
        answer[0] = "";
        answer[1] = "Error: No such file or directory\nlist table inet egressctl\n                 ^^^^^^^^^\n";
        assertThat(e.holdsRules()).as("no table").isFalse();

        answer[1] = "Error: Operation not permitted";
        assertThatThrownBy(e::holdsRules).isInstanceOf(EnforcementException.class).hasMessageContaining("Operation not permitted");
    }

    @Test
    void anEnforcerThatCannotTellIsTreatedAsANewHost() throws Exception {
        Enforcer plain = new Enforcer() {
            @Override
            public String name() {
                return "plain";
            }

            @Override
            public void apply(NftRuleset ruleset) {
            }

            @Override
            public boolean inSync(NftRuleset ruleset) {
                return false;
            }
        };
        assertThat(plain.holdsRules()).isFalse();
    }
}
