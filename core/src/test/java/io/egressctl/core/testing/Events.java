package io.egressctl.core.testing;

import io.egressctl.core.event.Audit;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.NetworkKind;
import io.egressctl.core.validation.RuleDraft;
import io.egressctl.core.validation.RuleValidator;

import java.time.Instant;
import java.util.concurrent.atomic.AtomicLong;

/** Builders for domain events and networks, so tests state only what matters to them. */
public final class Events {

    public static final Audit AUDIT = new Audit("alice", "tenant-1", "req-1", Instant.parse("2024-05-01T10:00:00Z"),
            "test", "0.0.0");

    private static final AtomicLong IDS = new AtomicLong();
    private static final RuleValidator VALIDATOR = new RuleValidator();

    private Events() {
    }

    private static String nextEventId(String prefix) {
        return prefix + "-" + IDS.incrementAndGet();
    }

    /** A basic IPv4 network of tenant-1 with default ALLOW, CloudStack semantics and the default quota. */
    public static Network network(String id, String guestCidr) {
        return new Network(id, "tenant-1", NetworkKind.BASIC, Cidr.parse(guestCidr), null, DefaultPolicy.ALLOW, false,
                Network.DEFAULT_RULE_QUOTA);
    }

    public static Network network(String id, String guestCidr, String guestCidr6, DefaultPolicy policy, boolean advanced,
                                  int quota) {
        return new Network(id, "tenant-1", NetworkKind.VPC_TIER, Cidr.parse(guestCidr),
                guestCidr6 == null ? null : Cidr.parse(guestCidr6), policy, advanced, quota);
    }

    /** The same network, owned by {@code tenantId}. */
    public static Network ofTenant(String tenantId, Network n) {
        return new Network(n.networkId(), tenantId, n.kind(), n.guestCidr(), n.guestCidr6(), n.defaultPolicy(), n.advanced(),
                n.ruleQuota(), n.keepEstablished());
    }

    /** Validates a draft into a rule, as the rule-service would before publishing it. */
    public static EgressRule rule(String ruleId, Network network, RuleDraft draft) {
        return VALIDATOR.validateRule(ruleId, draft, network);
    }

    public static RuleChange networkCreated(Network n) {
        return ruleEvent(RuleChange.Operation.NETWORK_CREATED, n.networkId(), null, null, n, null, null);
    }

    public static RuleChange networkUpdated(Network n) {
        return ruleEvent(RuleChange.Operation.NETWORK_UPDATED, n.networkId(), null, null, n, null, null);
    }

    public static RuleChange networkDeleted(String networkId) {
        return ruleEvent(RuleChange.Operation.NETWORK_DELETED, networkId, null, null, null, null, null);
    }

    public static RuleChange ruleCreated(String networkId, EgressRule r) {
        return ruleEvent(RuleChange.Operation.RULE_CREATED, networkId, null, null, null, null, r);
    }

    public static RuleChange ruleUpdated(String networkId, EgressRule before, EgressRule after) {
        return ruleEvent(RuleChange.Operation.RULE_UPDATED, networkId, null, null, null, before, after);
    }

    public static RuleChange ruleDeleted(String networkId, EgressRule before) {
        return ruleEvent(RuleChange.Operation.RULE_DELETED, networkId, null, null, null, before, null);
    }

    /** Any rule event, spelled out. */
    public static RuleChange ruleEvent(RuleChange.Operation op, String networkId, Long expectedVersion, String idempotencyKey,
                                       Network network, EgressRule before, EgressRule after) {
        return new RuleChange(nextEventId("rule"), op, networkId, expectedVersion, idempotencyKey, network, before, after,
                AUDIT);
    }

    /** The same change, carrying an If-Match version. */
    public static RuleChange expecting(long version, RuleChange c) {
        return new RuleChange(c.eventId(), c.operation(), c.networkId(), version, c.idempotencyKey(), c.network(),
                c.ruleBefore(), c.ruleAfter(), c.audit());
    }

    /** The same change, carrying an idempotency key. */
    public static RuleChange withKey(String key, RuleChange c) {
        return new RuleChange(c.eventId(), c.operation(), c.networkId(), c.expectedVersion(), key, c.network(),
                c.ruleBefore(), c.ruleAfter(), c.audit());
    }

    public static WorkloadChange placed(String networkId, String vmId, String hostId, String ipv4) {
        return placed(networkId, vmId, hostId, ipv4, null);
    }

    public static WorkloadChange placed(String networkId, String vmId, String hostId, String ipv4, String ipv6) {
        return new WorkloadChange(nextEventId("wl"), WorkloadChange.Operation.VM_PLACED, networkId, vmId, hostId, null,
                tap(networkId, vmId), null, ipv4, ipv6, AUDIT);
    }

    /**
     * The interface the tests' placements give a VM: one per (network, VM), so VMs of different
     * networks with the same id never claim one interface. At most 11 characters.
     */
    public static String tap(String networkId, String vmId) {
        return "tap" + Integer.toHexString((networkId + "/" + vmId).hashCode());
    }

    public static WorkloadChange moved(String networkId, String vmId, String fromHost, String toHost, String ipv4) {
        return moved(networkId, vmId, fromHost, toHost, ipv4, null);
    }

    public static WorkloadChange moved(String networkId, String vmId, String fromHost, String toHost, String ipv4,
                                       String ipv6) {
        return new WorkloadChange(nextEventId("wl"), WorkloadChange.Operation.VM_MOVED, networkId, vmId, toHost, fromHost,
                tap(networkId, vmId), null, ipv4, ipv6, AUDIT);
    }

    public static WorkloadChange removed(String networkId, String vmId, String hostId) {
        return new WorkloadChange(nextEventId("wl"), WorkloadChange.Operation.VM_REMOVED, networkId, vmId, hostId, null,
                null, null, AUDIT);
    }

    public static WorkloadChange drained(String networkId, String hostId) {
        return new WorkloadChange(nextEventId("wl"), WorkloadChange.Operation.HOST_DRAINED, networkId, null, hostId, null,
                null, null, AUDIT);
    }
}
