package io.egressctl.cli.audit.replay;

import io.egressctl.cli.audit.Events;
import io.egressctl.cli.audit.Json;
import io.egressctl.core.state.NetworkState;
import io.egressctl.events.RuleEvent;
import io.egressctl.schemas.registry.InMemorySchemaRegistryClient;
import io.egressctl.schemas.view.NetworkView;
import io.egressctl.schemas.view.RuleView;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.Map;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

/** The comparison behind {@code audit replay-check}: items of the replayed state vs the compiler's view. */
class ViewItemsTest {

    static NetworkState state(RuleEvent... events) {
        Replay replay = new Replay(new InMemorySchemaRegistryClient());
        long offset = 0;
        for (RuleEvent e : events) {
            replay.rule(e, e.getNetworkId(), offset++);
        }
        return replay.state("net-1");
    }

    /** What the compiler would write for the state, through JSON like Redis holds it. */
    static NetworkView viaJson(NetworkState s) {
        return Json.PRETTY.readValue(Json.line(NetworkView.of(s)), NetworkView.class);
    }

    @Test
    void theViewOfTheSameStateHasTheSameItems() {
        NetworkState s = state(Events.created("net-1", 1), Events.ruleCreated("net-1", 2, Events.tcp("r1", 80, "10.20.0.11/32")));
        assertThat(ViewItems.of(s).keySet()).containsExactly("network", "config version", "rule r1");
        assertThat(ViewItems.differing(ViewItems.of(s), ViewItems.of(viaJson(s)))).isEmpty();
    }

    @Test
    void aRuleEditedByHandDiffers() {
        NetworkState s = state(Events.created("net-1", 1), Events.ruleCreated("net-1", 2, Events.tcp("r1", 80, null)),
                Events.ruleCreated("net-1", 3, Events.tcp("r2", 22, null)));
        NetworkView v = viaJson(s);
        Map<String, RuleView> rules = new TreeMap<>(v.rules());
        RuleView r1 = rules.get("r1");
        rules.put("r1", new RuleView(r1.ruleId(), r1.protocol(), r1.action(), r1.priority(), r1.sourceCidrs(), r1.sourceVmIds(),
                r1.destinationCidrs(), r1.destinationExceptCidrs(), 8080, 8080, r1.icmpType(), r1.icmpCode(), r1.description()));
        rules.remove("r2");
        NetworkView edited = new NetworkView(v.networkId(), v.tenantId(), v.kind(), v.guestCidr(), v.guestCidr6(), "deny",
                v.advanced(), v.ruleQuota(), v.configVersion(), v.version(), rules, v.vms());
        var log = ViewItems.of(s);
        var redis = ViewItems.of(edited);
        assertThat(ViewItems.differing(log, redis)).containsExactly("network", "rule r1", "rule r2");
        assertThat(log.get("rule r1").display()).isEqualTo("tcp port 80 from all-vms to any deny");
        assertThat(redis.get("rule r1").display()).isEqualTo("tcp port 8080 from all-vms to any deny");
        assertThat(redis.get("network").display()).isEqualTo("basic 10.20.0.0/24 policy deny tenant acme");
    }

    @Test
    void aPlacementShowsItsHostInterfaceMacAndAddresses() {
        var p = new io.egressctl.core.model.VmPlacement("vm-a", "net-1", "host-1", "tap-a1", "52:54:00:12:34:56", "10.20.0.11", "fd00::11");
        assertThat(ViewItems.vm(NetworkView.VmView.of(p)).display()).isEqualTo("host-1/tap-a1 52:54:00:12:34:56 10.20.0.11 fd00::11");
        // Placed by an event older than interfaces: the host alone.
        assertThat(ViewItems.vm(new NetworkView.VmView("host-1", "10.20.0.11", null)).display()).isEqualTo("host-1 10.20.0.11");
        // The interface is part of what is compared: a view without it differs from a log with it.
        assertThat(ViewItems.vm(NetworkView.VmView.of(p)).canonical())
                .isNotEqualTo(ViewItems.vm(new NetworkView.VmView("host-1", "10.20.0.11", "fd00::11")).canonical());
    }

    @Test
    void keepEstablishedIsPartOfTheNetworkItem() {
        NetworkState s = state(Events.created("net-1", 1));
        NetworkView v = viaJson(s);
        NetworkView keeping = new NetworkView(v.networkId(), v.tenantId(), v.kind(), v.guestCidr(), v.guestCidr6(), v.defaultPolicy(),
                v.advanced(), v.ruleQuota(), v.configVersion(), v.version(), v.rules(), v.vms(), true);
        assertThat(ViewItems.differing(ViewItems.of(s), ViewItems.of(keeping))).containsExactly("network");
        assertThat(ViewItems.of(keeping).get("network").display()).endsWith("policy allow keep-established tenant acme");
    }

    @Test
    void aDeletedNetworkHasNoItems() {
        NetworkState s = state(Events.created("net-1", 1), Events.ruleCreated("net-1", 2, Events.tcp("r1", 80, null)),
                io.egressctl.events.RuleEvent.newBuilder(Events.created("net-1", 3))
                        .setOperation(io.egressctl.events.RuleOperation.NETWORK_DELETED).build());
        assertThat(ViewItems.of(s)).isEmpty();
        assertThat(ViewItems.of((NetworkView) null)).isEmpty();
    }

    static ReplayCheckCommand.EventRef ref(long offset) {
        return new ReplayCheckCommand.EventRef("egress.network-events", 0, offset, "RULE_UPDATED", "e" + offset,
                Instant.parse("2024-05-01T10:00:00Z").plusSeconds(offset), "alice", "req-" + offset);
    }

    @Test
    void aLaggingValuePartsAtTheFirstChangeAfterItLastHeld() {
        ReplayCheckCommand.Tracker t = new ReplayCheckCommand.Tracker("v2");
        t.see("v1", ref(1));
        t.see("v2", ref(2));
        t.see("v3", ref(5));
        t.see("v4", ref(7));
        assertThat(t.parting().offset()).isEqualTo(5);
    }

    @Test
    void aValueTheLogNeverHeldPartsWhereTheLogFirstSetTheItem() {
        ReplayCheckCommand.Tracker t = new ReplayCheckCommand.Tracker("edited");
        t.see("v1", ref(1));
        t.see("v2", ref(4));
        assertThat(t.parting().offset()).isEqualTo(1);
    }

    @Test
    void anItemRedisLacksPartsWhereTheLogMadeIt() {
        ReplayCheckCommand.Tracker t = new ReplayCheckCommand.Tracker(null);
        t.see("v1", ref(3));
        t.see("v2", ref(6));
        assertThat(t.parting().offset()).isEqualTo(3);
        ReplayCheckCommand.Tracker back = new ReplayCheckCommand.Tracker(null);
        back.see("v1", ref(3));
        back.see(null, ref(4));
        assertThat(back.parting()).as("equal again at the end").isNull();
    }

    @Test
    void rendersDifferencesWithTheirPartingEvent() {
        var d = new ReplayCheckCommand.Difference("net-1", "rule r1", "tcp port 80 from all-vms to any deny",
                "tcp port 8080 from all-vms to any deny", ref(2));
        assertThat(ReplayCheckCommand.table(java.util.List.of(d), "checked 1 network")).isEqualTo("""
                NETWORK  ITEM     LOG                                   REDIS                                   PARTED AT
                net-1    rule r1  tcp port 80 from all-vms to any deny  tcp port 8080 from all-vms to any deny  p0@2 RULE_UPDATED 2024-05-01T10:00:02.000Z alice req-2
                checked 1 network
                """);
    }
}
