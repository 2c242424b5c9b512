package io.egressctl.core.state;

import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.VmPlacement;
import io.egressctl.core.validation.Identifiers;
import io.egressctl.core.validation.Interfaces;
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
 * <p>Every event that decides a network's state (network, rule and workload events) is in one
 * ordered log, keyed by the network id, so all of a network's events share one partition. An
 * event's position is its Kafka offset + 1 in that partition; the network's version is the
 * position of the last event it consumed (accepted or rejected). Positions only grow per network,
 * and the same log gives the same (version, content) sequence on every replay, however it is
 * batched or restarted. Not thread-safe: one owner (the compiler instance holding the partition)
 * mutates it.
 */
public final class NetworkState {

    /** Idempotency keys remembered per network (oldest forgotten first). */
    static final int IDEMPOTENCY_MEMORY = 10_000;

    /** Value remembered for a network created under an idempotency key: this prefix and the event id. */
    static final String NETWORK_MARK = "network:";

    /** Stateless and thread-safe: shared by every network's size checks. */
    private static final io.egressctl.core.compile.FragmentCompiler FRAGMENTS = new io.egressctl.core.compile.FragmentCompiler();

    private final String networkId;
    private final Limits limits;
    private final RuleValidator validator = new RuleValidator();
    private Network network;
    private final TreeMap<String, EgressRule> rules = new TreeMap<>();
    /** Rule id by match key: duplicate detection in constant time, whatever the network's size. */
    private final java.util.HashMap<String, String> ruleIdByMatchKey = new java.util.HashMap<>();
    private final TreeMap<String, VmPlacement> vms = new TreeMap<>();
    private final LinkedHashMap<String, String> idempotencyKeys = new LinkedHashMap<>();
    private long configVersion;
    private long position;
    /** Fragments the last event's size check compiled (null: none), for the compiler to reuse. */
    private CheckedFragments checked;

    /**
     * Fragments a size check compiled for {@code hosts} (a host of the set without VMs of the network has
     * no entry), on the state as the event left it.
     */
    public record CheckedFragments(java.util.Set<String> hosts, Map<String, io.egressctl.core.compile.Fragment> fragments) {
    }

    /** A network decided under the default {@link Limits}. */
    public NetworkState(String networkId) {
        this(networkId, Limits.defaults());
    }

    /**
     * A network decided under the operator's limits. Every fold of the log (compiler, audit replay)
     * must pass the same limits to decide the same.
     */
    public NetworkState(String networkId, Limits limits) {
        this.networkId = networkId;
        this.limits = limits;
    }

    /** The limits this network is decided under. */
    public Limits limits() {
        return limits;
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

    /** Position (offset + 1) of the last event of this network consumed from its log, 0 before the first. */
    public long position() {
        return position;
    }

    /**
     * Version of the network and of its compiled fragments: its position in the log. It only grows
     * and is a function of the log alone: any replay of the log reaches the same content at the
     * same version.
     */
    public long version() {
        return position;
    }

    /**
     * Decides and, when accepted, applies a network or rule event found at {@code position}
     * (offset + 1) of the network's partition. An event at or before the current position was
     * consumed already: {@link Decision.Outcome#ALREADY_APPLIED}, nothing changes.
     */
    public Decision applyRule(RuleChange c, long position) {
        checked = null;
        if (position <= this.position || isRepublished(c)) {
            // A republished copy (same idempotency key and the same rule or network the first copy
            // created) is the same request's retry after a publish whose outcome was unknown: it was
            // decided when its first copy was, so it neither moves the version nor records a change.
            return Decision.alreadyApplied();
        }
        this.position = position;
        Decision d = decideRule(c);
        if (d.isAccepted()) {
            configVersion = position;
        }
        return d;
    }

    /**
     * True when {@code c} is another copy of an event already accepted: the idempotency key is
     * remembered for the very rule this event creates or deletes (the API fixes a request's rule id
     * and change id when it claims the key, so a retry republishes the same ids), or for the network
     * this very event id created.
     */
    private boolean isRepublished(RuleChange c) {
        if (c.idempotencyKey() == null) {
            return false;
        }
        String seen = idempotencyKeys.get(c.idempotencyKey());
        if (seen == null) {
            return false;
        }
        if (c.operation() == RuleChange.Operation.NETWORK_CREATED) {
            return seen.equals(NETWORK_MARK + c.eventId());
        }
        return seen.equals(c.ruleId());
    }

    private Decision decideRule(RuleChange c) {
        // The idempotency key is checked before the version: a client retrying a request that was
        // applied sends the same If-Match, which the applied request itself has made stale.
        if (c.idempotencyKey() != null && idempotencyKeys.containsKey(c.idempotencyKey())) {
            String seen = idempotencyKeys.get(c.idempotencyKey());
            boolean network = seen.startsWith(NETWORK_MARK);
            return Decision.rejected("IDEMPOTENT_REPLAY", "request already applied as "
                    + (network ? "the creation of network " + networkId : "rule " + seen), network ? null : seen);
        }
        if (c.expectedVersion() != null && c.expectedVersion() != configVersion) {
            return Decision.rejected("STALE_VERSION", "network " + networkId + " is at version " + configVersion
                    + ", the change expected " + c.expectedVersion(), c.ruleId());
        }
        switch (c.operation()) {
            case NETWORK_CREATED -> {
                if (network != null) {
                    return Decision.rejected("NETWORK_EXISTS", "network " + networkId + " already exists", null);
                }
                Decision invalid = checkNetworkPayload(c);
                if (invalid != null) {
                    return invalid;
                }
                network = c.network();
                remember(c.idempotencyKey(), NETWORK_MARK + c.eventId());
                return Decision.accepted(null);
            }
            case NETWORK_UPDATED -> {
                if (network == null) {
                    return notFound();
                }
                Decision invalid = checkNetworkPayload(c);
                if (invalid != null) {
                    return invalid;
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
                ruleIdByMatchKey.clear();
                // The placements go with the network: a network created again under this id (by its
                // tenant or, after this, by another) starts without VMs and governs only what compute
                // places on it then. Their hosts get tombstones, their interfaces are released.
                vms.clear();
                return Decision.accepted(null);
            }
            case RULE_CREATED, RULE_UPDATED -> {
                if (network == null) {
                    return notFound();
                }
                if (c.ruleAfter() == null) {
                    return Decision.rejected("INVALID", c.operation() + " carries no rule", null);
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
                    // Keep the validator's normal form (sorted, de-duplicated lists), so duplicate
                    // detection and fragment hashes do not depend on how a producer ordered its lists.
                    rule = validator.revalidate(rule, network);
                } catch (ValidationException e) {
                    return Decision.rejected("INVALID", e.getMessage(), rule.ruleId());
                }
                String key = rule.matchKey();
                String existingId = ruleIdByMatchKey.get(key);
                if (existingId != null && !existingId.equals(rule.ruleId())) {
                    return Decision.rejected("DUPLICATE_RULE", "an identical rule exists: " + existingId, existingId);
                }
                int quota = limits.effectiveQuota(network.ruleQuota());
                if (create && rules.size() >= quota) {
                    return Decision.rejected("QUOTA_EXCEEDED", "network " + networkId + " already has its quota of " + quota
                            + " rules" + (quota < network.ruleQuota() ? " (the operator's limit of rules per network)" : ""),
                            rule.ruleId());
                }
                EgressRule previous = rules.get(rule.ruleId());
                putRule(rule);
                Decision tooLarge = checkFragmentSize(FRAGMENTS.hostsCoveredBy(this, rule), rule.ruleId());
                if (tooLarge != null) {
                    // Undone: the event is rejected, the state is as before it.
                    removeRule(rule.ruleId());
                    if (previous != null) {
                        putRule(previous);
                    }
                    return tooLarge;
                }
                remember(c.idempotencyKey(), rule.ruleId());
                return Decision.accepted(rule.ruleId());
            }
            case RULE_DELETED -> {
                if (network == null) {
                    return notFound();
                }
                String id = c.ruleId();
                if (id == null || removeRule(id) == null) {
                    return Decision.rejected("RULE_NOT_FOUND", "rule " + id + " does not exist", id);
                }
                remember(c.idempotencyKey(), id);
                return Decision.accepted(id);
            }
            default -> throw new IllegalStateException("unhandled operation " + c.operation());
        }
    }

    /**
     * Refuses a change after which a fragment of one of {@code hosts} would be larger than the
     * operator's fragment budget ({@link Limits#fragmentBytes()}, under the broker's record limit):
     * the HostUpdate could not be sent, so the change is rejected in log order instead.
     * Costs one compile of those hosts.
     */
    private Decision checkFragmentSize(java.util.Set<String> hosts, String ruleId) {
        if (hosts.isEmpty()) {
            return null;
        }
        Map<String, io.egressctl.core.compile.Fragment> compiled = FRAGMENTS.compile(this, hosts);
        for (Map.Entry<String, io.egressctl.core.compile.Fragment> f : compiled.entrySet()) {
            long bytes = io.egressctl.core.compile.FragmentSize.bound(f.getValue());
            if (bytes > limits.fragmentBytes()) {
                return Decision.rejected("FRAGMENT_TOO_LARGE", "the change would make network " + networkId + "'s rules for host "
                        + f.getKey() + " " + bytes + " bytes, over the limit of " + limits.fragmentBytes()
                        + " (fewer rules, fewer VMs on the host, or shorter lists)", ruleId);
            }
        }
        checked = new CheckedFragments(java.util.Set.copyOf(hosts), compiled);
        return null;
    }

    /**
     * The fragments the last event's size check compiled, once (then null): the compiler reuses them
     * instead of compiling those hosts again. Null when the last event was not checked or was rejected.
     */
    public CheckedFragments takeCheckedFragments() {
        CheckedFragments c = checked;
        checked = null;
        return c;
    }

    private void putRule(EgressRule rule) {
        EgressRule previous = rules.put(rule.ruleId(), rule);
        if (previous != null) {
            ruleIdByMatchKey.remove(previous.matchKey(), previous.ruleId());
        }
        ruleIdByMatchKey.put(rule.matchKey(), rule.ruleId());
    }

    private EgressRule removeRule(String id) {
        EgressRule removed = rules.remove(id);
        if (removed != null) {
            ruleIdByMatchKey.remove(removed.matchKey(), id);
        }
        return removed;
    }

    /** A network event must carry the network it is about, under the id its key names. */
    private Decision checkNetworkPayload(RuleChange c) {
        if (c.network() == null) {
            return Decision.rejected("INVALID", c.operation() + " carries no network", null);
        }
        if (!networkId.equals(c.network().networkId())) {
            return Decision.rejected("INVALID", c.operation() + " for network " + networkId + " carries network "
                    + c.network().networkId(), null);
        }
        // A producer writing to the log directly is held to what the API checks.
        Network n = c.network();
        String wide = n.guestCidr() == null ? null : RuleValidator.guestPrefixProblem(n.guestCidr());
        if (wide == null && n.guestCidr6() != null) {
            wide = RuleValidator.guestPrefixProblem(n.guestCidr6());
        }
        if (wide != null) {
            return Decision.rejected("INVALID", wide, null);
        }
        if (n.ruleQuota() < 1 || n.ruleQuota() > limits.rulesPerNetwork()) {
            return Decision.rejected("INVALID", "ruleQuota " + n.ruleQuota() + " is outside 1.." + limits.rulesPerNetwork()
                    + " (the operator's limit of rules per network)", null);
        }
        return null;
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

    /**
     * Decides and applies a placement event found at {@code position} (offset + 1) of the network's
     * partition, the same log as its rule events (an event at or before the current position was
     * consumed already: {@link Decision.Outcome#ALREADY_APPLIED}). A placement
     * with an invalid VM or host id or a malformed address is rejected as {@code INVALID}; addresses
     * are kept in canonical text form.
     */
    public Decision applyWorkload(WorkloadChange c, long position) {
        checked = null;
        if (position <= this.position) {
            return Decision.alreadyApplied();
        }
        this.position = position;
        Decision unbound = checkTenant(c);
        if (unbound != null) {
            return unbound;
        }
        switch (c.operation()) {
            case VM_PLACED, VM_MOVED -> {
                // Upstream compute is held to the same rules as tenants: ids and addresses end up in
                // hashes and nft scripts, and one malformed address would fail every compile of the network.
                if (!Identifiers.isValid(c.vmId())) {
                    return invalidWorkload("vmId", c.vmId());
                }
                if (!Identifiers.isValid(c.hostId())) {
                    return invalidWorkload("hostId", c.hostId());
                }
                String ipv4 = hostAddress(c.ipv4(), true);
                String ipv6 = hostAddress(c.ipv6(), false);
                if (c.ipv4() != null && ipv4 == null) {
                    return invalidWorkload("ipv4", c.ipv4());
                }
                if (c.ipv6() != null && ipv6 == null) {
                    return invalidWorkload("ipv6", c.ipv6());
                }
                // The interface is the VM's identity on its host. Events written before it was part of
                // the contract carry none: accepted as they were, and reported by the host as not
                // enforced. A given name or MAC must be valid.
                String iface = c.interfaceName();
                if (iface != null && !Interfaces.isValidName(iface)) {
                    return invalidWorkload("interfaceName", iface);
                }
                String mac = c.mac() == null ? null : Interfaces.canonicalMac(c.mac());
                if (c.mac() != null && mac == null) {
                    return invalidWorkload("mac", c.mac());
                }
                if (iface != null) {
                    for (VmPlacement other : vms.values()) {
                        if (!other.vmId().equals(c.vmId()) && other.hostId().equals(c.hostId()) && iface.equals(other.interfaceName())) {
                            return Decision.rejected("INTERFACE_IN_USE", "interface " + iface + " on host " + c.hostId()
                                    + " belongs to vm " + other.vmId() + " of network " + networkId, null);
                        }
                    }
                }
                VmPlacement previous = vms.put(c.vmId(), new VmPlacement(c.vmId(), networkId, c.hostId(), iface, mac, ipv4, ipv6));
                Decision tooLarge = checkFragmentSize(java.util.Set.of(c.hostId()), null);
                if (tooLarge != null) {
                    if (previous == null) {
                        vms.remove(c.vmId());
                    } else {
                        vms.put(c.vmId(), previous);
                    }
                    return tooLarge;
                }
            }
            case VM_REMOVED -> {
                VmPlacement p = c.vmId() == null ? null : vms.get(c.vmId());
                if (p == null) {
                    return Decision.rejected("VM_NOT_FOUND", "vm " + c.vmId() + " is not placed in network " + networkId, null);
                }
                vms.remove(c.vmId());
            }
            case HOST_DRAINED -> {
                if (!Identifiers.isValid(c.hostId())) {
                    return invalidWorkload("hostId", c.hostId());
                }
                vms.values().removeIf(p -> p.hostId().equals(c.hostId()));
            }
            default -> throw new IllegalStateException("unhandled operation " + c.operation());
        }
        return Decision.accepted(null);
    }

    /**
     * A placement bound to a tenant ({@link WorkloadChange#networkTenantId()}) is decided only against
     * a network that exists and belongs to that tenant, so whoever holds a network id (now, or after a
     * delete) governs only the VMs compute placed for that holder. An event without a tenant (written
     * before placements were bound) is decided as it always was. The answer never names the owner.
     */
    private Decision checkTenant(WorkloadChange c) {
        String tenant = c.networkTenantId();
        if (tenant == null) {
            return null;
        }
        if (!Identifiers.isValid(tenant)) {
            return invalidWorkload("networkTenantId", tenant);
        }
        if (network == null) {
            return Decision.rejected("NETWORK_NOT_FOUND", "network " + networkId + " does not exist"
                    + " (a placement bound to tenant " + tenant + " needs that tenant's network)", null);
        }
        if (!network.tenantId().equals(tenant)) {
            return Decision.rejected("TENANT_MISMATCH", "the placement names tenant " + tenant + " but network " + networkId
                    + " belongs to another tenant", null);
        }
        return null;
    }

    private static Decision invalidWorkload(String field, String value) {
        String shown = value == null ? "null" : "'" + value.replaceAll("\\p{Cntrl}", "?") + "'";
        if (shown.length() > 64) {
            shown = shown.substring(0, 60) + "...'";
        }
        return Decision.rejected("INVALID", field + " " + shown + " is not valid", null);
    }

    /** The canonical text of a single address of the given family, or null when {@code text} is not one. */
    private static String hostAddress(String text, boolean ipv4) {
        if (text == null) {
            return null;
        }
        try {
            Cidr c = Cidr.parse(text);
            return c.isHost() && c.isIpv4() == ipv4 ? c.addressText() : null;
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /** Idempotency keys in the order they were seen (for checkpoints). */
    public Map<String, String> idempotencyKeys() {
        return Collections.unmodifiableMap(idempotencyKeys);
    }

    /**
     * Rebuilds a state from a checkpoint. The arguments must come from a state's own accessors
     * ({@code position} from {@link #position()}).
     */
    public static NetworkState restore(String networkId, Network network, Map<String, EgressRule> rules,
                                       Map<String, VmPlacement> vms, Map<String, String> idempotencyKeys,
                                       long configVersion, long position) {
        return restore(networkId, network, rules, vms, idempotencyKeys, configVersion, position, Limits.defaults());
    }

    /** This state, to be decided further under {@code other} limits (a copy; this one is unchanged). */
    public NetworkState withLimits(Limits other) {
        return restore(networkId, network, rules, vms, idempotencyKeys, configVersion, position, other);
    }

    /** Rebuilds a state from a checkpoint, to be decided further under {@code limits}. */
    public static NetworkState restore(String networkId, Network network, Map<String, EgressRule> rules,
                                       Map<String, VmPlacement> vms, Map<String, String> idempotencyKeys,
                                       long configVersion, long position, Limits limits) {
        NetworkState s = new NetworkState(networkId, limits);
        s.network = network;
        rules.values().forEach(s::putRule);
        s.vms.putAll(vms);
        s.idempotencyKeys.putAll(idempotencyKeys);
        s.configVersion = configVersion;
        s.position = position;
        return s;
    }
}
