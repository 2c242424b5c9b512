package io.egressctl.core.state;

import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.NetworkKind;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.core.model.VmPlacement;
import io.egressctl.core.state.Decision.Outcome;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static io.egressctl.core.testing.Drafts.draft;
import static io.egressctl.core.testing.Events.drained;
import static io.egressctl.core.testing.Events.expecting;
import static io.egressctl.core.testing.Events.moved;
import static io.egressctl.core.testing.Events.network;
import static io.egressctl.core.testing.Events.networkCreated;
import static io.egressctl.core.testing.Events.networkDeleted;
import static io.egressctl.core.testing.Events.networkUpdated;
import static io.egressctl.core.testing.Events.placed;
import static io.egressctl.core.testing.Events.removed;
import static io.egressctl.core.testing.Events.rule;
import static io.egressctl.core.testing.Events.ruleCreated;
import static io.egressctl.core.testing.Events.ruleDeleted;
import static io.egressctl.core.testing.Events.ruleEvent;
import static io.egressctl.core.testing.Events.ruleUpdated;
import static io.egressctl.core.testing.Events.withKey;
import static org.assertj.core.api.Assertions.assertThat;

class NetworkStateTest {

    private static final Network NET = network("net-a", "10.1.0.0/24");
    private static final EgressRule BLOCK_80 = rule("r-80", NET, draft("tcp").port(80).build());
    private static final EgressRule BLOCK_ICMP = rule("r-icmp", NET, draft("icmp").sources("10.1.0.5/32").build());

    private final NetworkState state = new NetworkState("net-a");

    /** Creates the network at rule position 1. */
    private void created() {
        createdAt(1);
    }

    private void createdAt(long position) {
        assertThat(state.applyRule(networkCreated(NET), position).isAccepted()).isTrue();
    }

    private static void assertRejected(Decision d, String code) {
        assertThat(d.outcome()).isEqualTo(Outcome.REJECTED);
        assertThat(d.code()).isEqualTo(code);
        assertThat(d.reason()).isNotBlank();
    }

    @Test
    void anAcceptedRuleEventMovesTheConfigVersionToItsPosition() {
        created();

        Decision d = state.applyRule(ruleCreated("net-a", BLOCK_80), 7);

        assertThat(d).isEqualTo(Decision.accepted("r-80"));
        assertThat(state.configVersion()).isEqualTo(7);
        assertThat(state.position()).isEqualTo(7);
        assertThat(state.rules()).containsOnlyKeys("r-80");
    }

    @Test
    void aStaleExpectedVersionIsRejectedAsStaleVersionAndChangesNothing() {
        created();
        state.applyRule(ruleCreated("net-a", BLOCK_80), 2);

        Decision d = state.applyRule(expecting(1, ruleCreated("net-a", BLOCK_ICMP)), 3);

        assertRejected(d, "STALE_VERSION");
        assertThat(d.reason()).isEqualTo("network net-a is at version 2, the change expected 1");
        assertThat(d.ruleId()).isEqualTo("r-icmp");
        assertThat(state.rules()).containsOnlyKeys("r-80");
        assertThat(state.configVersion()).as("a rejection does not move the config version").isEqualTo(2);
        assertThat(state.position()).as("but its position is consumed").isEqualTo(3);
    }

    @Test
    void theCurrentExpectedVersionIsAccepted() {
        created();

        assertThat(state.applyRule(expecting(1, ruleCreated("net-a", BLOCK_80)), 2).isAccepted()).isTrue();
        assertThat(state.applyRule(expecting(2, ruleDeleted("net-a", BLOCK_80)), 3).isAccepted()).isTrue();
    }

    @Test
    void ofTwoWritersWhoSawTheSameVersionTheFirstInLogOrderWinsAndTheSecondIsStale() {
        created();
        RuleChange first = expecting(1, ruleCreated("net-a", BLOCK_80));
        RuleChange second = expecting(1, ruleCreated("net-a", BLOCK_ICMP));

        assertThat(state.applyRule(first, 2).isAccepted()).isTrue();
        assertRejected(state.applyRule(second, 3), "STALE_VERSION");
    }

    @Test
    void aDuplicateRuleIsRejectedAsDuplicateRuleNamingTheExistingRule() {
        created();
        state.applyRule(ruleCreated("net-a", BLOCK_80), 2);

        Decision d = state.applyRule(ruleCreated("net-a", BLOCK_80.withId("r-80-again")), 3);

        assertRejected(d, "DUPLICATE_RULE");
        assertThat(d.ruleId()).isEqualTo("r-80");
        assertThat(d.reason()).isEqualTo("an identical rule exists: r-80");
        assertThat(state.rules()).containsOnlyKeys("r-80");
    }

    @Test
    void aDuplicateIsRecognisedWhateverOrderTheEventListsItsCidrsIn() {
        created();
        EgressRule sorted = new EgressRule("r-1", Protocol.TCP, null, EgressRule.DEFAULT_PRIORITY,
                List.of(Cidr.parse("10.1.0.5/32"), Cidr.parse("10.1.0.6/32")), List.of(), List.of(), List.of(),
                PortRange.single(80), null, null);
        EgressRule reversed = new EgressRule("r-2", Protocol.TCP, null, EgressRule.DEFAULT_PRIORITY,
                List.of(Cidr.parse("10.1.0.6/32"), Cidr.parse("10.1.0.5/32")), List.of(), List.of(), List.of(),
                PortRange.single(80), null, null);

        state.applyRule(ruleCreated("net-a", reversed), 2);
        Decision d = state.applyRule(ruleCreated("net-a", sorted), 3);

        assertRejected(d, "DUPLICATE_RULE");
        assertThat(state.rules().get("r-2").sourceCidrs()).as("stored in the validator's normal form")
                .containsExactly(Cidr.parse("10.1.0.5/32"), Cidr.parse("10.1.0.6/32"));
    }

    @Test
    void updatingARuleIntoACopyOfAnotherIsADuplicateButUpdatingItToItselfIsNot() {
        created();
        state.applyRule(ruleCreated("net-a", BLOCK_80), 2);
        state.applyRule(ruleCreated("net-a", BLOCK_ICMP), 3);

        assertRejected(state.applyRule(ruleUpdated("net-a", BLOCK_ICMP, BLOCK_80.withId("r-icmp")), 4), "DUPLICATE_RULE");
        assertThat(state.applyRule(ruleUpdated("net-a", BLOCK_80, BLOCK_80), 5).isAccepted()).isTrue();
    }

    @Test
    void aRuleBeyondTheQuotaIsRejectedAsQuotaExceededAndADeleteFreesASlot() {
        Network small = new Network("net-a", "tenant-1", NetworkKind.BASIC, Cidr.parse("10.1.0.0/24"), null,
                DefaultPolicy.ALLOW, false, 2);
        state.applyRule(networkCreated(small), 1);
        EgressRule r1 = rule("r-1", small, draft("tcp").port(1).build());
        EgressRule r2 = rule("r-2", small, draft("tcp").port(2).build());
        EgressRule r3 = rule("r-3", small, draft("tcp").port(3).build());
        state.applyRule(ruleCreated("net-a", r1), 2);
        state.applyRule(ruleCreated("net-a", r2), 3);

        Decision d = state.applyRule(ruleCreated("net-a", r3), 4);

        assertRejected(d, "QUOTA_EXCEEDED");
        assertThat(d.reason()).isEqualTo("network net-a already has its quota of 2 rules");
        assertThat(state.applyRule(ruleUpdated("net-a", r2, rule("r-2", small, draft("tcp").port(22).build())), 5).isAccepted())
                .as("an update at the quota is fine").isTrue();
        state.applyRule(ruleDeleted("net-a", r1), 6);
        assertThat(state.applyRule(ruleCreated("net-a", r3), 7).isAccepted()).isTrue();
    }

    @Test
    void aRuleOnAnUnknownNetworkIsRejectedAsNetworkNotFound() {
        assertRejected(state.applyRule(ruleCreated("net-a", BLOCK_80), 1), "NETWORK_NOT_FOUND");
        assertThat(state.network()).isNull();
        assertThat(state.rules()).isEmpty();
    }

    @Test
    void aRuleOnADeletedNetworkIsRejectedAsNetworkNotFound() {
        created();
        state.applyRule(ruleCreated("net-a", BLOCK_80), 2);
        assertThat(state.applyRule(networkDeleted("net-a"), 3).isAccepted()).isTrue();

        assertThat(state.rules()).as("deleting a network deletes its rules").isEmpty();
        assertRejected(state.applyRule(ruleCreated("net-a", BLOCK_ICMP), 4), "NETWORK_NOT_FOUND");
        assertRejected(state.applyRule(networkDeleted("net-a"), 5), "NETWORK_NOT_FOUND");
    }

    @Test
    void redeliveryOfTheSamePositionIsAlreadyAppliedAndChangesNothing() {
        created();
        RuleChange create = ruleCreated("net-a", BLOCK_80);
        state.applyRule(create, 2);
        Map<String, EgressRule> rulesBefore = Map.copyOf(state.rules());

        assertThat(state.applyRule(create, 2)).isEqualTo(Decision.alreadyApplied());
        assertThat(state.applyRule(networkDeleted("net-a"), 1).outcome()).as("any older position too")
                .isEqualTo(Outcome.ALREADY_APPLIED);
        assertThat(state.rules()).isEqualTo(rulesBefore);
        assertThat(state.network()).isEqualTo(NET);
        assertThat(state.configVersion()).isEqualTo(2);
        assertThat(state.position()).isEqualTo(2);
    }

    @Test
    void aRedeliveredRejectionStaysSilentRatherThanBeingDecidedAgain() {
        created();
        RuleChange stale = expecting(0, ruleCreated("net-a", BLOCK_80));
        assertRejected(state.applyRule(stale, 2), "STALE_VERSION");

        assertThat(state.applyRule(stale, 2).outcome()).isEqualTo(Outcome.ALREADY_APPLIED);
    }

    private static WorkloadChange onInterface(String vmId, String host, String iface, String mac, String ipv4) {
        return new WorkloadChange("wl-" + vmId + "-" + iface, WorkloadChange.Operation.VM_PLACED, "net-a", vmId, host, null,
                iface, mac, ipv4, null, placed("net-a", vmId, host, ipv4).audit());
    }

    @Test
    void aPlacementKeepsItsInterfaceAndCanonicalMac() {
        assertThat(state.applyWorkload(onInterface("vm-1", "host-1", "vnet0", "52-54-00-AB-CD-EF", "10.1.0.5"), 1).isAccepted()).isTrue();

        VmPlacement p = state.vms().get("vm-1");
        assertThat(p.interfaceName()).isEqualTo("vnet0");
        assertThat(p.mac()).isEqualTo("52:54:00:ab:cd:ef");
    }

    @Test
    void aSecondVmOfTheNetworkOnAnInterfaceInUseOnThatHostIsRejectedInLogOrderAsInterfaceInUse() {
        assertThat(state.applyWorkload(onInterface("vm-1", "host-1", "tap-1", null, "10.1.0.5"), 1).isAccepted()).isTrue();

        Decision d = state.applyWorkload(onInterface("vm-2", "host-1", "tap-1", null, "10.1.0.6"), 2);

        assertThat(d.outcome()).isEqualTo(Outcome.REJECTED);
        assertThat(d.code()).isEqualTo("INTERFACE_IN_USE");
        assertThat(d.reason()).isEqualTo("interface tap-1 on host host-1 belongs to vm vm-1 of network net-a");
        assertThat(state.vms()).containsOnlyKeys("vm-1");
    }

    @Test
    void theSameInterfaceNameOnAnotherHostOrTheVmReplacedOnItsOwnInterfaceIsFine() {
        assertThat(state.applyWorkload(onInterface("vm-1", "host-1", "tap-1", null, "10.1.0.5"), 1).isAccepted()).isTrue();

        assertThat(state.applyWorkload(onInterface("vm-2", "host-2", "tap-1", null, "10.1.0.6"), 2).isAccepted()).isTrue();
        assertThat(state.applyWorkload(onInterface("vm-1", "host-1", "tap-1", null, "10.1.0.7"), 3).isAccepted()).isTrue();
        assertThat(state.vms().get("vm-1").ipv4()).isEqualTo("10.1.0.7");
    }

    @ParameterizedTest(name = "interface ''{0}'' is refused")
    @CsvSource({"tap-with-16-char", "tap/1", "'tap 1'", "'.'", "'..'", "'tap\"1'", "ünï"})
    void anInvalidInterfaceNameIsRejectedAsInvalidAndChangesNothing(String iface) {
        Decision d = state.applyWorkload(onInterface("vm-1", "host-1", iface, null, "10.1.0.5"), 1);

        assertThat(d.outcome()).isEqualTo(Outcome.REJECTED);
        assertThat(d.code()).isEqualTo("INVALID");
        assertThat(d.reason()).startsWith("interfaceName ");
        assertThat(state.vms()).isEmpty();
    }

    @ParameterizedTest(name = "MAC ''{0}'' is refused")
    @CsvSource({"01:00:5e:00:00:01", "00:00:00:00:00:00", "52:54:00:ab:cd", "52:54:00:ab:cd:eg", "52:54:00-ab:cd:ef", "525400abcdef"})
    void anInvalidMacIsRejectedAsInvalidAndChangesNothing(String mac) {
        Decision d = state.applyWorkload(onInterface("vm-1", "host-1", "tap-1", mac, "10.1.0.5"), 1);

        assertThat(d.outcome()).isEqualTo(Outcome.REJECTED);
        assertThat(d.code()).isEqualTo("INVALID");
        assertThat(d.reason()).startsWith("mac ");
        assertThat(state.vms()).isEmpty();
    }

    @Test
    void aPlacementWithoutAnInterfaceFromAnOlderProducerIsAcceptedAsItWas() {
        WorkloadChange legacy = new WorkloadChange("wl-old", WorkloadChange.Operation.VM_PLACED, "net-a", "vm-1", "host-1", null,
                "10.1.0.5", null, placed("net-a", "vm-1", "host-1", "10.1.0.5").audit());

        assertThat(state.applyWorkload(legacy, 1).isAccepted()).isTrue();
        assertThat(state.vms().get("vm-1").interfaceName()).isNull();
    }

    @Test
    void redeliveryOfAWorkloadPositionIsAlreadyAppliedAndChangesNothing() {
        WorkloadChange place = placed("net-a", "vm-1", "host-1", "10.1.0.5");
        assertThat(state.applyWorkload(place, 1).isAccepted()).isTrue();

        assertThat(state.applyWorkload(moved("net-a", "vm-1", "host-1", "host-2", "10.1.0.5"), 1).outcome())
                .isEqualTo(Outcome.ALREADY_APPLIED);
        assertThat(state.vms().get("vm-1").hostId()).isEqualTo("host-1");
    }

    @Test
    void aRepeatedIdempotencyKeyIsRecognisedAndNamesTheRuleItCreated() {
        created();
        assertThat(state.applyRule(withKey("req-42", ruleCreated("net-a", BLOCK_80)), 2).isAccepted()).isTrue();

        Decision d = state.applyRule(withKey("req-42", ruleCreated("net-a", BLOCK_80.withId("r-other"))), 3);

        assertRejected(d, "IDEMPOTENT_REPLAY");
        assertThat(d.ruleId()).isEqualTo("r-80");
        assertThat(state.rules()).containsOnlyKeys("r-80");
        assertThat(state.idempotencyKeys()).containsEntry("req-42", "r-80");
    }

    @Test
    void aRepublishedCopyWithTheSameIfMatchIsIgnoredNotAStaleVersion() {
        created();
        RuleChange request = expecting(1, withKey("req-42", ruleCreated("net-a", BLOCK_80)));
        assertThat(state.applyRule(request, 2).isAccepted()).isTrue();

        // The API republishes the very event (same key, same rule id) when its first publish timed out.
        RuleChange retry = expecting(1, withKey("req-42", ruleCreated("net-a", BLOCK_80)));

        assertThat(state.applyRule(retry, 3).outcome()).isEqualTo(Decision.Outcome.ALREADY_APPLIED);
        assertThat(state.version()).as("a copy moves nothing").isEqualTo(2);
        assertThat(state.rules()).containsOnlyKeys("r-80");
    }

    @Test
    void aRepublishedDeleteIsIgnoredNotARuleNotFound() {
        created();
        state.applyRule(ruleCreated("net-a", BLOCK_80), 2);
        assertThat(state.applyRule(withKey("req-del", ruleDeleted("net-a", BLOCK_80)), 3).isAccepted()).isTrue();

        Decision retry = state.applyRule(withKey("req-del", ruleDeleted("net-a", BLOCK_80)), 4);

        assertThat(retry.outcome()).isEqualTo(Decision.Outcome.ALREADY_APPLIED);
        assertThat(state.version()).isEqualTo(3);
    }

    @Test
    void aRepublishedNetworkCreateIsIgnoredAndAnotherCreateUnderItsKeyIsAnIdempotentReplay() {
        RuleChange create = withKey("req-net", networkCreated(NET));
        assertThat(state.applyRule(create, 1).isAccepted()).isTrue();

        assertThat(state.applyRule(create, 2).outcome()).as("the same event again").isEqualTo(Decision.Outcome.ALREADY_APPLIED);
        assertThat(state.version()).isEqualTo(1);
        Decision other = state.applyRule(withKey("req-net", networkCreated(NET)), 3);
        assertRejected(other, "IDEMPOTENT_REPLAY");
        assertThat(other.reason()).contains("creation of network net-a");
    }

    @Test
    void aRejectedRequestDoesNotSpendItsIdempotencyKey() {
        created();
        state.applyRule(ruleCreated("net-a", BLOCK_80), 2);
        assertRejected(state.applyRule(withKey("req-7", ruleCreated("net-a", BLOCK_80.withId("dup"))), 3), "DUPLICATE_RULE");

        assertThat(state.applyRule(withKey("req-7", ruleCreated("net-a", BLOCK_ICMP)), 4).isAccepted()).isTrue();
    }

    @Test
    void theOldestIdempotencyKeyIsForgottenBeyondTheMemoryLimit() {
        Map<String, String> keys = new LinkedHashMap<>();
        for (int i = 0; i < NetworkState.IDEMPOTENCY_MEMORY; i++) {
            keys.put("key-" + i, "rule-" + i);
        }
        NetworkState full = NetworkState.restore("net-a", NET, Map.of(), Map.of(), keys, 1, 1);

        assertThat(full.applyRule(withKey("key-new", ruleCreated("net-a", BLOCK_80)), 2).isAccepted()).isTrue();

        assertThat(full.idempotencyKeys()).hasSize(NetworkState.IDEMPOTENCY_MEMORY).doesNotContainKey("key-0")
                .containsKeys("key-1", "key-new");
        assertThat(full.idempotencyKeys().keySet()).first().isEqualTo("key-1");
    }

    @Test
    void anEventBuiltRuleThatBreaksValidationIsRejectedAsInvalid() {
        created();
        EgressRule outside = new EgressRule("r-x", Protocol.TCP, null, EgressRule.DEFAULT_PRIORITY,
                List.of(Cidr.parse("10.9.0.0/24")), List.of(), List.of(), List.of(), null, null, null);

        Decision d = state.applyRule(ruleCreated("net-a", outside), 2);

        assertRejected(d, "INVALID");
        assertThat(d.reason()).contains("sourceCidrs: 10.9.0.0/24 is outside the guest CIDR 10.1.0.0/24");
    }

    @Test
    void aRuleEventWithoutItsRuleIsRejectedAsInvalidInsteadOfFailing() {
        created();

        assertRejected(state.applyRule(ruleEvent(RuleChange.Operation.RULE_CREATED, "net-a", null, null, null, null, null), 2),
                "INVALID");
        assertRejected(state.applyRule(ruleEvent(RuleChange.Operation.RULE_UPDATED, "net-a", null, null, null, BLOCK_80, null), 3),
                "INVALID");
        assertRejected(state.applyRule(ruleEvent(RuleChange.Operation.RULE_DELETED, "net-a", null, null, null, null, null), 4),
                "RULE_NOT_FOUND");
    }

    @Test
    void creatingAnExistingRuleOrUpdatingAMissingOneIsRejected() {
        created();
        state.applyRule(ruleCreated("net-a", BLOCK_80), 2);

        assertRejected(state.applyRule(ruleCreated("net-a", rule("r-80", NET, draft("udp").build())), 3), "RULE_EXISTS");
        assertRejected(state.applyRule(ruleUpdated("net-a", BLOCK_ICMP, BLOCK_ICMP), 4), "RULE_NOT_FOUND");
        assertRejected(state.applyRule(ruleDeleted("net-a", BLOCK_ICMP), 5), "RULE_NOT_FOUND");
    }

    @Test
    void networkEventsAreDecidedInLogOrder() {
        created();

        assertRejected(state.applyRule(networkCreated(NET), 2), "NETWORK_EXISTS");
        assertRejected(state.applyRule(networkUpdated(new Network("net-a", "tenant-2", NetworkKind.BASIC,
                Cidr.parse("10.1.0.0/24"), null, DefaultPolicy.DENY, false, 10)), 3), "TENANT_MISMATCH");
        assertRejected(state.applyRule(networkUpdated(network("net-a", "10.2.0.0/24")), 4), "IMMUTABLE_FIELD");
        assertThat(state.applyRule(networkUpdated(NET.withDefaultPolicy(DefaultPolicy.DENY)), 5).isAccepted()).isTrue();
        assertThat(state.network().defaultPolicy()).isEqualTo(DefaultPolicy.DENY);
    }

    @Test
    void aNetworkEventCarryingAnotherNetworkOrNoneIsRejectedAsInvalid() {
        assertRejected(state.applyRule(networkCreated(network("net-b", "10.1.0.0/24")), 1), "INVALID");
        assertRejected(state.applyRule(ruleEvent(RuleChange.Operation.NETWORK_CREATED, "net-a", null, null, null, null, null), 2),
                "INVALID");
        assertThat(state.network()).isNull();

        createdAt(3);
        assertRejected(state.applyRule(networkUpdated(network("net-b", "10.1.0.0/24")), 4), "INVALID");
        assertRejected(state.applyRule(ruleEvent(RuleChange.Operation.NETWORK_UPDATED, "net-a", null, null, null, null, null), 5),
                "INVALID");
        assertThat(state.network()).isEqualTo(NET);
    }

    @Test
    void placementsMovesRemovalsAndDrainsAreTrackedPerVm() {
        state.applyWorkload(placed("net-a", "vm-1", "host-1", "10.1.0.5"), 1);
        state.applyWorkload(placed("net-a", "vm-2", "host-1", "10.1.0.6", "fd00::6"), 2);
        state.applyWorkload(placed("net-a", "vm-3", "host-2", "10.1.0.7"), 3);
        state.applyWorkload(moved("net-a", "vm-1", "host-1", "host-3", "10.1.0.5"), 4);

        assertThat(state.vms().get("vm-1")).isEqualTo(new VmPlacement("vm-1", "net-a", "host-3", io.egressctl.core.testing.Events.tap("net-a", "vm-1"), null, "10.1.0.5", null));
        assertThat(state.vms().get("vm-2").ipv6()).isEqualTo("fd00::6");

        assertThat(state.applyWorkload(drained("net-a", "host-1"), 5).isAccepted()).isTrue();
        assertThat(state.vms()).containsOnlyKeys("vm-1", "vm-3");

        assertThat(state.applyWorkload(removed("net-a", "vm-3", "host-2"), 6).isAccepted()).isTrue();
        assertThat(state.vms()).containsOnlyKeys("vm-1");
        assertThat(state.position()).isEqualTo(6);
        assertThat(state.configVersion()).as("placements do not move the config version (If-Match)").isZero();
    }

    @Test
    void aPlacementBoundToTheNetworksOwnerIsAccepted() {
        created();
        Decision d = state.applyWorkload(placed("net-a", "vm-1", "host-1", "10.1.0.5").boundTo("tenant-1"), 2);
        assertThat(d.isAccepted()).isTrue();
        assertThat(state.vms()).containsOnlyKeys("vm-1");
    }

    @Test
    void aPlacementBoundToAnotherTenantIsRejectedAsTenantMismatchWithoutNamingTheOwner() {
        created();
        Decision d = state.applyWorkload(placed("net-a", "vm-1", "host-1", "10.1.0.5").boundTo("tenant-2"), 2);
        assertRejected(d, "TENANT_MISMATCH");
        assertThat(d.reason()).contains("tenant-2").doesNotContain("tenant-1");
        assertThat(state.vms()).isEmpty();
        assertThat(state.version()).as("a rejection still takes its position").isEqualTo(2);
    }

    @Test
    void everyPlacementOperationBoundToAnotherTenantIsRejectedAndChangesNothing() {
        created();
        state.applyWorkload(placed("net-a", "vm-1", "host-1", "10.1.0.5").boundTo("tenant-1"), 2);
        assertRejected(state.applyWorkload(moved("net-a", "vm-1", "host-1", "host-2", "10.1.0.5").boundTo("tenant-2"), 3), "TENANT_MISMATCH");
        assertRejected(state.applyWorkload(removed("net-a", "vm-1", "host-1").boundTo("tenant-2"), 4), "TENANT_MISMATCH");
        assertRejected(state.applyWorkload(drained("net-a", "host-1").boundTo("tenant-2"), 5), "TENANT_MISMATCH");
        assertThat(state.vms().get("vm-1").hostId()).isEqualTo("host-1");
    }

    @Test
    void aBoundPlacementBeforeItsNetworkExistsIsRejectedAsNetworkNotFound() {
        assertRejected(state.applyWorkload(placed("net-a", "vm-1", "host-1", "10.1.0.5").boundTo("tenant-1"), 1), "NETWORK_NOT_FOUND");
        assertThat(state.vms()).isEmpty();
        createdAt(2);
        assertThat(state.vms()).as("nothing was waiting for the network").isEmpty();
    }

    @Test
    void aPlacementBoundToAMalformedTenantIdIsRejectedAsInvalid() {
        created();
        assertRejected(state.applyWorkload(placed("net-a", "vm-1", "host-1", "10.1.0.5").boundTo("bad tenant"), 2), "INVALID");
    }

    @Test
    void anUnboundPlacementFromAnOlderProducerIsDecidedAsBeforeBeforeAndAfterItsNetwork() {
        assertThat(state.applyWorkload(placed("net-a", "vm-0", "host-1", "10.1.0.4"), 1).isAccepted()).isTrue();
        createdAt(2);
        assertThat(state.applyWorkload(placed("net-a", "vm-1", "host-1", "10.1.0.5"), 3).isAccepted()).isTrue();
        assertThat(state.vms()).containsOnlyKeys("vm-0", "vm-1");
    }

    @Test
    void deletingANetworkClearsItsPlacementsSoTheNextNetworkUnderItsIdInheritsNoVm() {
        created();
        state.applyWorkload(placed("net-a", "vm-1", "host-1", "10.1.0.5").boundTo("tenant-1"), 2);
        assertThat(state.applyRule(networkDeleted("net-a"), 3).isAccepted()).isTrue();
        assertThat(state.vms()).isEmpty();

        Network other = io.egressctl.core.testing.Events.ofTenant("tenant-2", NET);
        assertThat(state.applyRule(networkCreated(other), 4).isAccepted()).isTrue();
        assertThat(state.vms()).as("another tenant's network under the same id starts empty").isEmpty();
        assertRejected(state.applyWorkload(removed("net-a", "vm-1", "host-1"), 5), "VM_NOT_FOUND");
        assertRejected(state.applyWorkload(placed("net-a", "vm-1", "host-1", "10.1.0.5").boundTo("tenant-1"), 6), "TENANT_MISMATCH");
        assertThat(state.applyWorkload(placed("net-a", "vm-9", "host-1", "10.1.0.9").boundTo("tenant-2"), 7).isAccepted()).isTrue();
    }

    @Test
    void aLogWithADeleteAndARecreateIsDecidedTheSameOnEveryReplay() {
        List<Object> log = List.of(networkCreated(NET), placed("net-a", "vm-1", "host-1", "10.1.0.5").boundTo("tenant-1"),
                networkDeleted("net-a"), networkCreated(io.egressctl.core.testing.Events.ofTenant("tenant-2", NET)),
                placed("net-a", "vm-1", "host-1", "10.1.0.5").boundTo("tenant-1"),
                placed("net-a", "vm-2", "host-2", "10.1.0.6").boundTo("tenant-2"));
        List<String> first = new ArrayList<>();
        List<String> second = new ArrayList<>();
        NetworkState a = new NetworkState("net-a");
        NetworkState b = new NetworkState("net-a");
        for (int i = 0; i < log.size(); i++) {
            first.add(decide(a, log.get(i), i + 1));
            second.add(decide(b, log.get(i), i + 1));
        }
        assertThat(first).isEqualTo(second).containsExactly("ACCEPTED", "ACCEPTED", "ACCEPTED", "ACCEPTED",
                "REJECTED TENANT_MISMATCH", "ACCEPTED");
        assertThat(a.vms()).isEqualTo(b.vms()).containsOnlyKeys("vm-2");
        assertThat(a.version()).isEqualTo(b.version()).isEqualTo(6);
    }

    private static String decide(NetworkState s, Object event, long position) {
        Decision d = event instanceof RuleChange r ? s.applyRule(r, position) : s.applyWorkload((WorkloadChange) event, position);
        return d.outcome() + (d.code() == null ? "" : " " + d.code());
    }

    @Test
    void removingAVmThatIsNotPlacedIsRejectedAsVmNotFound() {
        Decision d = state.applyWorkload(removed("net-a", "vm-9", "host-1"), 1);

        assertRejected(d, "VM_NOT_FOUND");
        assertThat(state.position()).isEqualTo(1);
    }

    @ParameterizedTest(name = "a placement with {0} ''{1}'' is rejected as INVALID")
    @CsvSource(value = {
            "ipv4, not-an-ip",
            "ipv4, '10.1.0.5 : accept, 1.1.1.1'",
            "ipv4, 10.1.0.0/24",
            "ipv4, fd00::5",
            "ipv6, 10.1.0.5",
            "ipv6, fd00::/64",
            "vmId, 'vm 1'",
            "vmId, NULL",
            "hostId, 'host\"1'",
            "hostId, NULL",
    }, nullValues = "NULL")
    void aPlacementWithAMalformedAddressOrIdIsRejectedAsInvalidAndChangesNothing(String field, String value) {
        state.applyWorkload(placed("net-a", "vm-1", "host-1", "10.1.0.5"), 1);
        String vmId = field.equals("vmId") ? value : "vm-2";
        String hostId = field.equals("hostId") ? value : "host-1";
        String ipv4 = field.equals("ipv4") ? value : "10.1.0.6";
        String ipv6 = field.equals("ipv6") ? value : null;

        Decision d = state.applyWorkload(placed("net-a", vmId, hostId, ipv4, ipv6), 2);

        assertRejected(d, "INVALID");
        assertThat(d.reason()).startsWith(field + " ");
        assertThat(state.vms()).containsOnlyKeys("vm-1");
    }

    @Test
    void placementAddressesAreKeptInCanonicalForm() {
        state.applyWorkload(placed("net-a", "vm-1", "host-1", " 10.1.0.5/32", "FD00:0:0:0::0005"), 1);

        assertThat(state.vms().get("vm-1").ipv4()).isEqualTo("10.1.0.5");
        assertThat(state.vms().get("vm-1").ipv6()).isEqualTo("fd00::5");
    }

    @Test
    void aDrainOfAnInvalidHostIsRejected() {
        assertRejected(state.applyWorkload(drained("net-a", null), 1), "INVALID");
    }

    @Test
    void theVersionIsThePositionOfTheLastEventOfTheOneLogWhateverItsKind() {
        created();
        long before = state.version();
        state.applyWorkload(placed("net-a", "vm-1", "host-1", "10.1.0.5"), 4);
        long afterWorkload = state.version();
        state.applyRule(expecting(99, ruleCreated("net-a", BLOCK_80)), 6);

        assertThat(before).isEqualTo(1);
        assertThat(afterWorkload).isEqualTo(4);
        assertThat(state.version()).as("even a rejected event moves it").isEqualTo(6);
        assertThat(state.configVersion()).as("only accepted network and rule events move the config version").isEqualTo(1);
    }

    @Test
    void rulesAndPlacementsShareOnePositionSoAnEventOfEitherKindBehindItIsAlreadyApplied() {
        created();
        assertThat(state.applyWorkload(placed("net-a", "vm-1", "host-1", "10.1.0.5"), 3).isAccepted()).isTrue();

        assertThat(state.applyRule(ruleCreated("net-a", BLOCK_80), 2).outcome()).isEqualTo(Outcome.ALREADY_APPLIED);
        assertThat(state.applyWorkload(placed("net-a", "vm-2", "host-1", "10.1.0.6"), 3).outcome()).isEqualTo(Outcome.ALREADY_APPLIED);
        assertThat(state.rules()).isEmpty();
        assertThat(state.vms()).containsOnlyKeys("vm-1");
        assertThat(state.applyRule(ruleCreated("net-a", BLOCK_80), 4).isAccepted()).isTrue();
    }

    @Test
    void theSameLogDecidedTwiceGivesTheSameDecisionsAndTheSameState() {
        List<RuleChange> log = List.of(
                networkCreated(NET),
                ruleCreated("net-a", BLOCK_80),
                expecting(1, ruleCreated("net-a", BLOCK_ICMP)),
                ruleCreated("net-a", BLOCK_80.withId("dup")),
                withKey("k", ruleCreated("net-a", BLOCK_ICMP)),
                withKey("k", ruleCreated("net-a", BLOCK_ICMP.withId("again"))),
                ruleDeleted("net-a", BLOCK_80));
        NetworkState a = new NetworkState("net-a");
        NetworkState b = new NetworkState("net-a");

        List<Decision> first = decideAll(a, log);
        List<Decision> second = decideAll(b, log);

        assertThat(first).isEqualTo(second);
        assertThat(first).extracting(Decision::code)
                .containsExactly(null, null, "STALE_VERSION", "DUPLICATE_RULE", null, "IDEMPOTENT_REPLAY", null);
        assertThat(a.rules()).isEqualTo(b.rules());
        assertThat(a.configVersion()).isEqualTo(b.configVersion()).isEqualTo(7);
    }

    private static List<Decision> decideAll(NetworkState s, List<RuleChange> log) {
        List<Decision> out = new ArrayList<>();
        for (int i = 0; i < log.size(); i++) {
            out.add(s.applyRule(log.get(i), i + 1));
        }
        return out;
    }

    @Test
    void aRestoredStateHoldsTheSameContentAndDecidesTheNextEventTheSame() {
        created();
        state.applyRule(withKey("k-1", ruleCreated("net-a", BLOCK_80)), 2);
        assertThat(state.applyWorkload(placed("net-a", "vm-1", "host-1", "10.1.0.5"), 3).isAccepted()).isTrue();

        NetworkState copy = NetworkState.restore(state.networkId(), state.network(), state.rules(), state.vms(),
                state.idempotencyKeys(), state.configVersion(), state.position());

        assertThat(copy.network()).isEqualTo(state.network());
        assertThat(copy.rules()).isEqualTo(state.rules());
        assertThat(copy.vms()).isEqualTo(state.vms());
        assertThat(copy.idempotencyKeys()).isEqualTo(state.idempotencyKeys());
        assertThat(copy.version()).isEqualTo(state.version());
        RuleChange next = withKey("k-1", ruleCreated("net-a", BLOCK_ICMP));
        assertThat(copy.applyRule(next, 4)).isEqualTo(state.applyRule(next, 4));
        assertThat(copy.applyRule(next, 3).outcome()).isEqualTo(Outcome.ALREADY_APPLIED);
    }

    // ---- the operator's limits, decided in log order ----

    @Test
    void aDirectProducersRuleOverTheOperatorsLimitIsRejectedInLogOrder() {
        NetworkState limited = new NetworkState("net-a", new Limits(2, 10, 100_000));
        assertThat(limited.applyRule(networkCreated(network("net-a", "10.1.0.0/24", null, DefaultPolicy.ALLOW, false, 2)), 1)
                .isAccepted()).isTrue();
        assertThat(limited.applyRule(ruleCreated("net-a", BLOCK_80), 2).isAccepted()).isTrue();
        assertThat(limited.applyRule(ruleCreated("net-a", BLOCK_ICMP), 3).isAccepted()).isTrue();

        Decision third = limited.applyRule(ruleCreated("net-a", rule("r-443", NET, draft("tcp").port(443).build())), 4);

        assertRejected(third, "QUOTA_EXCEEDED");
        assertThat(limited.rules()).containsOnlyKeys("r-80", "r-icmp");
        assertThat(limited.version()).as("a rejected event moves the version").isEqualTo(4);
    }

    @Test
    void aTenantsQuotaAboveTheLimitIsRejectedAndAnOlderNetworkIsHeldToTheLimit() {
        NetworkState limited = new NetworkState("net-a", new Limits(1, 10, 100_000));
        Decision create = limited.applyRule(networkCreated(NET), 1);
        assertRejected(create, "INVALID");
        assertThat(create.reason()).contains("ruleQuota 1000 is outside 1..1");

        // A network created under a higher limit (a checkpoint of before) keeps its quota on paper,
        // but its rules stop at the operator's limit.
        NetworkState older = NetworkState.restore("net-a", NET, Map.of(), Map.of(), Map.of(), 1, 1).withLimits(new Limits(1, 10, 100_000));
        assertThat(older.applyRule(ruleCreated("net-a", BLOCK_80), 2).isAccepted()).isTrue();
        Decision over = older.applyRule(ruleCreated("net-a", BLOCK_ICMP), 3);
        assertRejected(over, "QUOTA_EXCEEDED");
        assertThat(over.reason()).contains("the operator's limit of rules per network");
    }

    @Test
    void aDirectProducersGuestCidrTooWideIsRejected() {
        Network everything = new Network("net-a", "tenant-1", NetworkKind.BASIC, Cidr.parse("0.0.0.0/0"), null, DefaultPolicy.ALLOW,
                false, 10);
        Decision d = state.applyRule(networkCreated(everything), 1);
        assertRejected(d, "INVALID");
        assertThat(d.reason()).contains("0.0.0.0/0 is too wide for a guest network");
        assertThat(state.network()).isNull();
        Network v6 = new Network("net-a", "tenant-1", NetworkKind.BASIC, Cidr.parse("10.1.0.0/24"), Cidr.parse("::/0"),
                DefaultPolicy.ALLOW, false, 10);
        assertRejected(state.applyRule(networkCreated(v6), 2), "INVALID");
    }

    @Test
    void aRuleThatWouldMakeAHostsFragmentTooLargeForARecordIsRejectedAndUndone() {
        NetworkState small = new NetworkState("net-a", new Limits(1000, 10, 2048));
        assertThat(small.applyRule(networkCreated(NET), 1).isAccepted()).isTrue();
        assertThat(small.applyWorkload(placed("net-a", "vm-1", "host-1", "10.1.0.11"), 2).isAccepted()).isTrue();
        long position = 2;
        Decision last = null;
        int accepted = 0;
        for (int port = 1; port < 200; port++) {
            last = small.applyRule(ruleCreated("net-a", rule("r-" + port, NET, draft("tcp").port(port).build())), ++position);
            if (!last.isAccepted()) {
                break;
            }
            accepted++;
        }
        assertRejected(last, "FRAGMENT_TOO_LARGE");
        assertThat(last.reason()).contains("host host-1").contains("over the limit of 2048");
        assertThat(small.rules()).as("the refused rule is not kept").hasSize(accepted);
        long bound = io.egressctl.core.compile.FragmentSize.bound(new io.egressctl.core.compile.FragmentCompiler().compile(small).get("host-1"));
        assertThat(bound).isLessThanOrEqualTo(2048);
        // A rule that covers no VM of the host adds nothing to its fragment: accepted.
        assertThat(small.applyRule(ruleCreated("net-a", rule("r-other", NET, draft("tcp").port(999).sources("10.1.0.99/32").build())),
                ++position).isAccepted()).isTrue();
    }

    @Test
    void aPlacementThatWouldMakeAHostsFragmentTooLargeIsRejectedAndTheVmKeepsItsPlace() {
        NetworkState small = new NetworkState("net-a", new Limits(1000, 10, 2048));
        assertThat(small.applyRule(networkCreated(NET), 1).isAccepted()).isTrue();
        for (int port = 1; port <= 10; port++) {
            assertThat(small.applyRule(ruleCreated("net-a", rule("r-" + port, NET, draft("tcp").port(port).build())), 1 + port).isAccepted())
                    .isTrue();
        }
        long position = 11;
        Decision last = null;
        int vm = 0;
        while (vm < 100) {
            vm++;
            last = small.applyWorkload(placed("net-a", "vm-" + vm, "host-1", "10.1.0." + vm), ++position);
            if (!last.isAccepted()) {
                break;
            }
        }
        assertRejected(last, "FRAGMENT_TOO_LARGE");
        assertThat(small.vms()).doesNotContainKey("vm-" + vm).hasSize(vm - 1);
        // The same VM fits on another host.
        assertThat(small.applyWorkload(placed("net-a", "vm-" + vm, "host-2", "10.1.0." + vm), ++position).isAccepted()).isTrue();
        // And moving a VM onto the full host is refused with the VM left where it was.
        Decision move = small.applyWorkload(placed("net-a", "vm-" + vm, "host-1", "10.1.0." + vm), ++position);
        assertRejected(move, "FRAGMENT_TOO_LARGE");
        assertThat(small.vms().get("vm-" + vm).hostId()).isEqualTo("host-2");
    }
}
