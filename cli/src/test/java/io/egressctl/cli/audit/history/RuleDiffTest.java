package io.egressctl.cli.audit.history;

import io.egressctl.cli.audit.Events;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.events.DefaultPolicy;
import io.egressctl.schemas.mapping.EventMapper;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

class RuleDiffTest {

    static EgressRule tcp(String id, int port) {
        return EventMapper.fromAvro(Events.tcp(id, port, null));
    }

    static Map<String, EgressRule> rules(EgressRule... rs) {
        Map<String, EgressRule> m = new TreeMap<>();
        for (EgressRule r : rs) {
            m.put(r.ruleId(), r);
        }
        return m;
    }

    static final Network ALLOW = EventMapper.fromAvro(Events.network("net-1", DefaultPolicy.ALLOW));
    static final Network DENY = EventMapper.fromAvro(Events.network("net-1", DefaultPolicy.DENY));

    @Test
    void listsRulesAddedRemovedAndChangedWithTheFieldsThatDiffer() {
        List<RuleDiff.Change> d = RuleDiff.between(ALLOW, rules(tcp("r1", 80), tcp("r2", 22), tcp("r4", 9)), ALLOW,
                rules(tcp("r1", 81), tcp("r3", 443), tcp("r4", 9)));
        assertThat(d).extracting(c -> c.kind() + " " + c.ruleId() + " " + c.fields())
                .containsExactly("CHANGED r1 [ports]", "REMOVED r2 []", "ADDED r3 []");
        assertThat(d.get(0).before()).isEqualTo(tcp("r1", 80));
        assertThat(d.get(0).after()).isEqualTo(tcp("r1", 81));
    }

    @Test
    void listsNetworkChangesFirst() {
        assertThat(RuleDiff.between(ALLOW, rules(), DENY, rules(tcp("r1", 80))))
                .extracting(c -> c.kind() + " " + c.ruleId() + " " + c.fields())
                .containsExactly("NETWORK_CHANGED null [defaultPolicy]", "ADDED r1 []");
        assertThat(RuleDiff.between(null, rules(), ALLOW, rules())).extracting(RuleDiff.Change::kind)
                .containsExactly(RuleDiff.Kind.NETWORK_CREATED);
        assertThat(RuleDiff.between(ALLOW, rules(tcp("r1", 80)), null, rules())).extracting(RuleDiff.Change::kind)
                .containsExactly(RuleDiff.Kind.NETWORK_DELETED, RuleDiff.Kind.REMOVED);
    }

    @Test
    void equalStatesHaveNoChange() {
        assertThat(RuleDiff.between(ALLOW, rules(tcp("r1", 80)), ALLOW, rules(tcp("r1", 80)))).isEmpty();
        assertThat(RuleDiff.between(null, rules(), null, rules())).isEmpty();
    }

    @Test
    void rendersAsATable() {
        String text = DiffCommand.table("net-1", Events.T0, 2, Events.T0.plusSeconds(60), 5,
                RuleDiff.between(ALLOW, rules(tcp("r1", 80), tcp("r2", 22)), ALLOW, rules(tcp("r1", 81), tcp("r3", 443))));
        assertThat(text).isEqualTo("""
                network: net-1
                from: 2024-05-01T10:00:00.000Z (config version 2)
                to: 2024-05-01T10:01:00.000Z (config version 5)
                CHANGE   RULE  FIELDS  BEFORE                           AFTER
                changed  r1    ports   tcp port 80 from all-vms to any  tcp port 81 from all-vms to any
                removed  r2    -       tcp port 22 from all-vms to any  -
                added    r3    -       -                                tcp port 443 from all-vms to any
                3 changes
                """);
    }
}
