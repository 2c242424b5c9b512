package io.egressctl.schemas;

import java.time.Instant;
import java.util.List;

import io.egressctl.events.AppliedFragment;
import io.egressctl.events.CompiledRule;
import io.egressctl.events.DefaultPolicy;
import io.egressctl.events.EnforcementReport;
import io.egressctl.events.EnforcementStatus;
import io.egressctl.events.EnforcementTrigger;
import io.egressctl.events.Fragment;
import io.egressctl.events.HostUpdate;
import io.egressctl.events.NetworkKind;
import io.egressctl.events.NetworkSpec;
import io.egressctl.events.Protocol;
import io.egressctl.events.RuleAction;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.RuleOperation;
import io.egressctl.events.RuleSpec;
import io.egressctl.events.Source;
import io.egressctl.events.VmAddress;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.events.WorkloadOperation;

/** Sample events of every contract type, with every optional part filled in. */
public final class Fixtures {

    /** A millisecond instant: timestamp-millis keeps no more. */
    public static final Instant T0 = Instant.parse("2025-05-01T10:15:30.123Z");

    private Fixtures() {
    }

    public static Source source() {
        return new Source("alice@tenant-1", "tenant-1", "req-42", T0, "rule-service", "0.1.0");
    }

    public static RuleSpec blockPort80(String ruleId) {
        return RuleSpec.newBuilder()
                .setRuleId(ruleId)
                .setProtocol(Protocol.TCP)
                .setAction(RuleAction.DENY)
                .setPriority(100)
                .setSourceCidrs(List.of("10.1.1.10/32"))
                .setSourceVmIds(List.of("vm-1", "vm-2"))
                .setDestinationCidrs(List.of("0.0.0.0/0"))
                .setDestinationExceptCidrs(List.of("10.0.0.0/8"))
                .setStartPort(80)
                .setEndPort(80)
                .setDescription("no plain http, héllo ✓")
                .build();
    }

    public static RuleEvent ruleCreated(String eventId, String networkId) {
        return RuleEvent.newBuilder()
                .setEventId(eventId)
                .setOperation(RuleOperation.RULE_CREATED)
                .setNetworkId(networkId)
                .setExpectedVersion(7L)
                .setIdempotencyKey("idem-" + eventId)
                .setNetwork(new NetworkSpec(networkId, "tenant-1", NetworkKind.VPC_TIER, "10.1.1.0/24", "fd00::/64",
                        DefaultPolicy.ALLOW, true, 50, false))
                .setRuleBefore(null)
                .setRuleAfter(blockPort80("rule-" + eventId))
                .setSource(source())
                .build();
    }

    public static WorkloadEvent vmPlaced() {
        return new WorkloadEvent("wl-1", WorkloadOperation.VM_MOVED, "net-1", "vm-1", "host-2", "host-1", "10.1.1.10",
                "fd00::10", source(), "vnet12", "52:54:00:12:34:56", "acme");
    }

    public static HostUpdate hostUpdate() {
        CompiledRule rule = new CompiledRule("rule-1", RuleAction.DENY, 100, Protocol.ICMP, List.of("vm-1"),
                List.of("0.0.0.0/0"), List.of(), null, null, 8, -1);
        Fragment fragment = new Fragment(DefaultPolicy.ALLOW, List.of(new VmAddress("vm-1", "10.1.1.10", null, "vnet12", "52:54:00:12:34:56")),
                List.of(rule), false);
        return new HostUpdate("host-1", "net-1", 12L, false, fragment, "sha256:abcd", List.of("chg-1", "chg-2"), T0, null, null);
    }

    public static HostUpdate hostTombstone() {
        return new HostUpdate("host-1", "net-1", 13L, true, null, "", List.of(), T0, null, null);
    }

    public static EnforcementReport nack() {
        return new EnforcementReport("host-1", EnforcementStatus.NACK, EnforcementTrigger.UPDATE,
                List.of(new AppliedFragment("net-1", 11L)), "sha256:last-good", List.of("chg-1"),
                "nft: syntax error, unexpected junk", 1234L, "nftables", 2L, T0, List.of(), List.of(), null);
    }
}
