package io.egressctl.core.state;

import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.VmPlacement;
import io.egressctl.core.validation.RuleValidator;
import io.egressctl.core.validation.ValidationException;

import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Everything the compiler knows about one network: its definition, rules and VM placements, and
 * the log positions it has consumed. Decides every event in log order (invariant 2): stale
 * versions, duplicate rules and quota overflows are rejected here, the same way on every replay.
 *
 * <p>Log positions are Kafka offsets + 1 of the event in its topic partition; every event of one
 * network shares a partition, so positions only grow per network. Not thread-safe: one owner
 * (the compiler instance holding the partition) mutates it.
 */
public final class NetworkState {

    /** Idempotency keys remembered per network (oldest forgotten first). */
    static final int IDEMPOTENCY_MEMORY = 10_000;

    private final String networkId;
    private final RuleValidator validator = new RuleValidator();
    private Network network;
    private final TreeMap<String, EgressRule> rules = new TreeMap<>();
    private final TreeMap<String, VmPlacement> vms = new TreeMap<>();
    private final LinkedHashMap<String, String> idempotencyKeys = new LinkedHashMap<>();
    private long configVersion;
    private long rulePosition;
    private long workloadPosition;

    public NetworkState(String networkId) {
        this.networkId = networkId;
    }

    public String networkId() {
        return networkId;
    }

    /** The network, or null when it was never created or has been deleted. */
    public Network network() {
        return network;
    }

    /** Rules by id (read-only view). */
    public SortedMap<String, EgressRule> rules() {
        return Collections.unmodifiableSortedMap(rules);
    }

    /** VM placements by VM id (read-only view). */
    public SortedMap<String, VmPlacement> vms() {
        return Collections.unmodifiableSortedMap(vms);
    }

    /** Log position of the last accepted rule event: the version clients send back as If-Match. */
    public long configVersion() {
        return configVersion;
    }

    public long rulePosition() {
        return rulePosition;
    }

    public long workloadPosition() {
        return workloadPosition;
    }

    /**
     * Version of the compiled fragments: the sum of both topics' positions, so it only grows and
     * is the same after any full replay of the log.
     */
    public long version() {
        return rulePosition + workloadPosition;
    }

    /** Decides and, when accepted, applies a rule event found at {@code position} of its partition. */
    public Decision applyRule(RuleChange c, long position) {
        if (position <= rulePosition) {
            return Decision.alreadyApplied();
        }
        rulePosition = position;
        Decision d = decideRule(c);
        if (d.isAccepted()) {
            configVersion = position;
        }
        return d;
    }

    private Decision decideRule(RuleChange c) {
        if (c.expectedVersion() != null && c.expectedVersion() != configVersion) {
            return Decision.rejected("STALE_VERSION", "network " + networkId + " is at version " + configVersion
                    + ", the change expected " + c.expectedVersion(), c.ruleId());
        }
        if (c.idempotencyKey() != null && idempotencyKeys.containsKey(c.idempotencyKey())) {
            return Decision.rejected("IDEMPOTENT_REPLAY", "request already applied as rule "
                    + idempotencyKeys.get(c.idempotencyKey()), idempotencyKeys.get(c.idempotencyKey()));
        }
        switch (c.operation()) {
            case NETWORK_CREATED -> {
                if (network != null) {
                    return Decision.rejected("NETWORK_EXISTS", "network " + networkId + " already exists", null);
                }
                network = c.network();
                return Decision.accepted(null);
            }
            case NETWORK_UPDATED -> {
                if (network == null) {
                    return notFound();
                }
                if (!network.tenantId().equals(c.network().tenantId())) {
                    return Decision.rejected("TENANT_MISMATCH", "network " + networkId + " belongs to another tenant", null);
                }
                if (!network.guestCidr().equals(c.network().guestCidr())) {
                    return Decision.rejected("IMMUTABLE_FIELD", "the guest CIDR of a network cannot change", null);
                }
                network = c.network();
                return Decision.accepted(null);
            }
            case NETWORK_DELETED -> {
                if (network == null) {
                    return notFound();
                }
                network = null;
                rules.clear();
                return Decision.accepted(null);
            }
            case RULE_CREATED, RULE_UPDATED -> {
                if (network == null) {
                    return notFound();
                }
                EgressRule rule = c.ruleAfter();
                boolean create = c.operation() == RuleChange.Operation.RULE_CREATED;
                if (create && rules.containsKey(rule.ruleId())) {
                    return Decision.rejected("RULE_EXISTS", "rule " + rule.ruleId() + " already exists", rule.ruleId());
                }
                if (!create && !rules.containsKey(rule.ruleId())) {
                    return Decision.rejected("RULE_NOT_FOUND", "rule " + rule.ruleId() + " does not exist", rule.ruleId());
                }
                try {
                    validator.revalidate(rule, network);
                } catch (ValidationException e) {
                    return Decision.rejected("INVALID", e.getMessage(), rule.ruleId());
                }
                String key = rule.matchKey();
                for (EgressRule existing : rules.values()) {
                    if (!existing.ruleId().equals(rule.ruleId()) && existing.matchKey().equals(key)) {
                        return Decision.rejected("DUPLICATE_RULE", "an identical rule exists: " + existing.ruleId(), existing.ruleId());
                    }
                }
                if (create && rules.size() >= network.ruleQuota()) {
                    return Decision.rejected("QUOTA_EXCEEDED", "network " + networkId + " already has its quota of "
                            + network.ruleQuota() + " rules", rule.ruleId());
                }
                rules.put(rule.ruleId(), rule);
                remember(c.idempotencyKey(), rule.ruleId());
                return Decision.accepted(rule.ruleId());
            }
            case RULE_DELETED -> {
                if (network == null) {
                    return notFound();
                }
                String id = c.ruleId();
                if (rules.remove(id) == null) {
                    return Decision.rejected("RULE_NOT_FOUND", "rule " + id + " does not exist", id);
                }
                return Decision.accepted(id);
            }
            default -> throw new IllegalStateException("unhandled operation " + c.operation());
        }
    }

    private Decision notFound() {
        return Decision.rejected("NETWORK_NOT_FOUND", "network " + networkId + " does not exist", null);
    }

    private void remember(String idempotencyKey, String ruleId) {
        if (idempotencyKey == null) {
            return;
        }
        idempotencyKeys.put(idempotencyKey, ruleId);
        if (idempotencyKeys.size() > IDEMPOTENCY_MEMORY) {
            Iterator<String> it = idempotencyKeys.keySet().iterator();
            it.next();
            it.remove();
        }
    }

    /** Decides and applies a placement event found at {@code position} of its partition. */
    public Decision applyWorkload(WorkloadChange c, long position) {
        if (position <= workloadPosition) {
            return Decision.alreadyApplied();
        }
        workloadPosition = position;
        switch (c.operation()) {
            case VM_PLACED, VM_MOVED -> vms.put(c.vmId(), new VmPlacement(c.vmId(), networkId, c.hostId(), c.ipv4(), c.ipv6()));
            case VM_REMOVED -> {
                VmPlacement p = vms.get(c.vmId());
                if (p == null) {
                    return Decision.rejected("VM_NOT_FOUND", "vm " + c.vmId() + " is not placed in network " + networkId, null);
                }
                vms.remove(c.vmId());
            }
            case HOST_DRAINED -> vms.values().removeIf(p -> p.hostId().equals(c.hostId()));
            default -> throw new IllegalStateException("unhandled operation " + c.operation());
        }
        return Decision.accepted(null);
    }

    /** Idempotency keys in the order they were seen (for checkpoints). */
    public Map<String, String> idempotencyKeys() {
        return Collections.unmodifiableMap(idempotencyKeys);
    }

    /**
     * Rebuilds a state from a checkpoint. The arguments must come from a state's own accessors.
     */
    public static NetworkState restore(String networkId, Network network, Map<String, EgressRule> rules,
                                       Map<String, VmPlacement> vms, Map<String, String> idempotencyKeys,
                                       long configVersion, long rulePosition, long workloadPosition) {
        NetworkState s = new NetworkState(networkId);
        s.network = network;
        s.rules.putAll(rules);
        s.vms.putAll(vms);
        s.idempotencyKeys.putAll(idempotencyKeys);
        s.configVersion = configVersion;
        s.rulePosition = rulePosition;
        s.workloadPosition = workloadPosition;
        return s;
    }
}
