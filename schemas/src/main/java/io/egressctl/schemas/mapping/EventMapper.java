package io.egressctl.schemas.mapping;

import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.FragmentDelta;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.event.Audit;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.model.Action;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.IcmpMatch;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.NetworkKind;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.core.validation.Identifiers;
import io.egressctl.core.validation.Interfaces;
import io.egressctl.core.validation.NetworkIds;
import io.egressctl.core.validation.ValidationException;
import io.egressctl.events.HostUpdate;
import io.egressctl.events.NetworkSpec;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.RuleOperation;
import io.egressctl.events.RuleSpec;
import io.egressctl.events.Source;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.events.WorkloadOperation;

import java.time.Instant;
import java.util.List;

/**
 * Maps between the Avro contracts and the core's domain values. Decoding an event re-parses every
 * typed value (CIDRs, ports, ids), so a malformed event published straight to Kafka fails here with
 * a {@link ValidationException} instead of reaching the compiler. Stateless and thread-safe.
 */
public final class EventMapper {

    private EventMapper() {
    }

    // ---- RuleEvent ----

    public static RuleEvent toAvro(RuleChange c) {
        return RuleEvent.newBuilder()
                .setEventId(c.eventId())
                .setOperation(RuleOperation.valueOf(c.operation().name()))
                .setNetworkId(c.networkId())
                .setExpectedVersion(c.expectedVersion())
                .setIdempotencyKey(c.idempotencyKey())
                .setNetwork(c.network() == null ? null : toAvro(c.network()))
                .setRuleBefore(c.ruleBefore() == null ? null : toAvro(c.ruleBefore()))
                .setRuleAfter(c.ruleAfter() == null ? null : toAvro(c.ruleAfter()))
                .setSource(toAvro(c.audit()))
                .build();
    }

    /**
     * @throws ValidationException when a field does not parse or a required part is missing
     */
    public static RuleChange fromAvro(RuleEvent e) {
        Identifiers.require("eventId", e.getEventId());
        NetworkIds.requireLogId("networkId", e.getNetworkId());
        RuleChange.Operation op = RuleChange.Operation.valueOf(e.getOperation().name());
        Network network = e.getNetwork() == null ? null : fromAvro(e.getNetwork());
        EgressRule before = e.getRuleBefore() == null ? null : fromAvro(e.getRuleBefore());
        EgressRule after = e.getRuleAfter() == null ? null : fromAvro(e.getRuleAfter());
        switch (op) {
            case NETWORK_CREATED, NETWORK_UPDATED -> {
                if (network == null) {
                    throw new ValidationException("network", "is required for " + op);
                }
                if (!network.networkId().equals(e.getNetworkId())) {
                    throw new ValidationException("network.networkId", "differs from the event key " + e.getNetworkId());
                }
            }
            case RULE_CREATED, RULE_UPDATED -> {
                if (after == null) {
                    throw new ValidationException("ruleAfter", "is required for " + op);
                }
            }
            case RULE_DELETED -> {
                if (before == null) {
                    throw new ValidationException("ruleBefore", "is required for " + op);
                }
            }
            default -> { }
        }
        return new RuleChange(e.getEventId(), op, e.getNetworkId(), e.getExpectedVersion(), e.getIdempotencyKey(),
                network, before, after, fromAvro(e.getSource()));
    }

    public static NetworkSpec toAvro(Network n) {
        return NetworkSpec.newBuilder()
                .setNetworkId(n.networkId())
                .setTenantId(n.tenantId())
                .setKind(io.egressctl.events.NetworkKind.valueOf(n.kind().name()))
                .setGuestCidr(n.guestCidr().toString())
                .setGuestCidr6(n.guestCidr6() == null ? null : n.guestCidr6().toString())
                .setDefaultPolicy(io.egressctl.events.DefaultPolicy.valueOf(n.defaultPolicy().name()))
                .setAdvanced(n.advanced())
                .setRuleQuota(n.ruleQuota())
                .setKeepEstablished(n.keepEstablished())
                .build();
    }

    public static Network fromAvro(NetworkSpec s) {
        NetworkIds.requireLogId("network.networkId", s.getNetworkId());
        Identifiers.require("network.tenantId", s.getTenantId());
        return new Network(s.getNetworkId(), s.getTenantId(), NetworkKind.valueOf(s.getKind().name()),
                cidr("network.guestCidr", s.getGuestCidr()),
                s.getGuestCidr6() == null ? null : cidr("network.guestCidr6", s.getGuestCidr6()),
                DefaultPolicy.valueOf(s.getDefaultPolicy().name()), s.getAdvanced(), s.getRuleQuota(), s.getKeepEstablished());
    }

    public static RuleSpec toAvro(EgressRule r) {
        return RuleSpec.newBuilder()
                .setRuleId(r.ruleId())
                .setProtocol(io.egressctl.events.Protocol.valueOf(r.protocol().name()))
                .setAction(r.action() == null ? null : io.egressctl.events.RuleAction.valueOf(r.action().name()))
                .setPriority(r.priority())
                .setSourceCidrs(texts(r.sourceCidrs()))
                .setSourceVmIds(r.sourceVmIds())
                .setDestinationCidrs(texts(r.destinationCidrs()))
                .setDestinationExceptCidrs(texts(r.destinationExceptCidrs()))
                .setStartPort(r.ports() == null ? null : r.ports().start())
                .setEndPort(r.ports() == null ? null : r.ports().end())
                .setIcmpType(r.icmp() == null ? null : r.icmp().type())
                .setIcmpCode(r.icmp() == null ? null : r.icmp().code())
                .setDescription(r.description())
                .build();
    }

    public static EgressRule fromAvro(RuleSpec s) {
        Identifiers.require("ruleId", s.getRuleId());
        try {
            PortRange ports = s.getStartPort() == null ? null
                    : new PortRange(s.getStartPort(), s.getEndPort() == null ? s.getStartPort() : s.getEndPort());
            IcmpMatch icmp = s.getIcmpType() == null ? null
                    : new IcmpMatch(s.getIcmpType(), s.getIcmpCode() == null ? -1 : s.getIcmpCode());
            for (String vm : s.getSourceVmIds()) {
                Identifiers.require("sourceVmIds", vm);
            }
            return new EgressRule(s.getRuleId(), Protocol.valueOf(s.getProtocol().name()),
                    s.getAction() == null ? null : Action.valueOf(s.getAction().name()), s.getPriority(),
                    cidrs("sourceCidrs", s.getSourceCidrs()), List.copyOf(s.getSourceVmIds()),
                    cidrs("destinationCidrs", s.getDestinationCidrs()), cidrs("destinationExceptCidrs", s.getDestinationExceptCidrs()),
                    ports, icmp, s.getDescription());
        } catch (IllegalArgumentException e) {
            throw new ValidationException("rule", e.getMessage());
        }
    }

    public static Source toAvro(Audit a) {
        return Source.newBuilder()
                .setActor(a.actor()).setTenantId(a.tenantId()).setRequestId(a.requestId())
                .setEventTime(a.eventTime()).setService(a.service()).setServiceVersion(a.serviceVersion())
                .build();
    }

    public static Audit fromAvro(Source s) {
        return new Audit(s.getActor(), s.getTenantId(), s.getRequestId(), s.getEventTime(), s.getService(), s.getServiceVersion());
    }

    // ---- WorkloadEvent ----

    public static WorkloadEvent toAvro(WorkloadChange c) {
        return WorkloadEvent.newBuilder()
                .setEventId(c.eventId())
                .setOperation(WorkloadOperation.valueOf(c.operation().name()))
                .setNetworkId(c.networkId())
                .setVmId(c.vmId())
                .setHostId(c.hostId())
                .setPreviousHostId(c.previousHostId())
                .setIpv4(c.ipv4())
                .setIpv6(c.ipv6())
                .setInterfaceName(c.interfaceName())
                .setMac(c.mac())
                .setSource(toAvro(c.audit()))
                .setNetworkTenantId(c.networkTenantId())
                .build();
    }

    /**
     * @throws ValidationException when an id or address is malformed or a VM operation lacks its VM
     */
    public static WorkloadChange fromAvro(WorkloadEvent e) {
        Identifiers.require("eventId", e.getEventId());
        NetworkIds.requireLogId("networkId", e.getNetworkId());
        Identifiers.require("hostId", e.getHostId());
        WorkloadChange.Operation op = WorkloadChange.Operation.valueOf(e.getOperation().name());
        if (op != WorkloadChange.Operation.HOST_DRAINED) {
            Identifiers.require("vmId", e.getVmId());
        }
        if (e.getPreviousHostId() != null) {
            Identifiers.require("previousHostId", e.getPreviousHostId());
        }
        if (op == WorkloadChange.Operation.VM_PLACED || op == WorkloadChange.Operation.VM_MOVED) {
            if (e.getIpv4() == null && e.getIpv6() == null) {
                throw new ValidationException("ipv4", "a placed VM needs an IPv4 or IPv6 address");
            }
        }
        String v4 = address("ipv4", e.getIpv4(), true);
        String v6 = address("ipv6", e.getIpv6(), false);
        // An interface name or MAC is passed on as written: NetworkState decides on it in log order
        // (REJECTED INVALID), so a replay decides the same whatever this mapper's version.
        return new WorkloadChange(e.getEventId(), op, e.getNetworkId(), e.getVmId(), e.getHostId(), e.getPreviousHostId(),
                e.getInterfaceName(), e.getMac(), v4, v6, fromAvro(e.getSource()), e.getNetworkTenantId());
    }

    /** Parses a bare address of the given family and returns its canonical text; null stays null. */
    public static String address(String field, String text, boolean ipv4) {
        if (text == null) {
            return null;
        }
        Cidr c = cidr(field, text);
        if (!c.isHost() || c.isIpv4() != ipv4) {
            throw new ValidationException(field, "'" + text + "' is not a single " + (ipv4 ? "IPv4" : "IPv6") + " address");
        }
        return c.addressText();
    }

    // ---- HostUpdate ----

    public static HostUpdate toAvro(FragmentUpdate u, Instant compiledAt) {
        return HostUpdate.newBuilder()
                .setHostId(u.hostId())
                .setNetworkId(u.networkId())
                .setVersion(u.version())
                .setTombstone(u.isTombstone())
                .setFragment(u.fragment() == null ? null : toAvro(u.fragment()))
                .setFragmentHash(u.hash())
                .setChangeIds(u.changeIds())
                .setCompiledAt(compiledAt)
                .build();
    }

    /**
     * The update as published with its fragment as a {@link FragmentDelta} against {@code delta}'s base
     * version of the same (host, network): fragment null, the hash still that of the whole fragment
     * ({@code u}'s), which a reader checks after applying the delta to its base.
     */
    public static HostUpdate toAvroDelta(FragmentUpdate u, FragmentDelta delta, Instant compiledAt) {
        if (u.isTombstone()) {
            throw new IllegalArgumentException("a removal has no delta");
        }
        return HostUpdate.newBuilder()
                .setHostId(u.hostId())
                .setNetworkId(u.networkId())
                .setVersion(u.version())
                .setTombstone(false)
                .setFragment(null)
                .setFragmentHash(u.hash())
                .setChangeIds(u.changeIds())
                .setCompiledAt(compiledAt)
                .setDelta(io.egressctl.events.FragmentDelta.newBuilder()
                        .setBaseVersion(delta.baseVersion())
                        .setDefaultPolicy(io.egressctl.events.DefaultPolicy.valueOf(delta.defaultPolicy().name()))
                        .setVms(delta.vms().stream().map(EventMapper::toAvro).toList())
                        .setKeepEstablished(delta.keepEstablished())
                        .setUpserts(delta.upserts().stream().map(EventMapper::toAvro).toList())
                        .setRemovedRuleIds(delta.removedRuleIds())
                        .build())
                .build();
    }

    /** True when {@code h} carries its fragment as a delta (it then needs its base to be read: {@link #deltaFromAvro}). */
    public static boolean isDelta(HostUpdate h) {
        return h.getDelta() != null;
    }

    /**
     * A whole update: a removal, or a version with its whole fragment.
     *
     * @throws ValidationException for a delta update ({@link #isDelta}: read it with {@link #deltaFromAvro}
     *                             against its base), or for an update that is neither a removal nor carries a
     *                             fragment (never taken for a removal)
     */
    public static FragmentUpdate fromAvro(HostUpdate h) {
        if (h.getDelta() != null) {
            throw new ValidationException("delta", "the update carries a delta against v" + h.getDelta().getBaseVersion()
                    + ": it needs its base fragment to be read");
        }
        if (!h.getTombstone() && h.getFragment() == null) {
            throw new ValidationException("fragment", "the update is no removal and carries no fragment");
        }
        Fragment f = h.getFragment() == null ? null : fromAvro(h.getNetworkId(), h.getFragment());
        return new FragmentUpdate(h.getHostId(), h.getNetworkId(), h.getVersion(), h.getTombstone() ? null : f,
                h.getFragmentHash(), List.copyOf(h.getChangeIds()));
    }

    /** The delta of a {@link #isDelta delta update}, re-validating every address and id as {@link #fromAvro(String, io.egressctl.events.Fragment)} does. */
    public static FragmentDelta deltaFromAvro(HostUpdate h) {
        io.egressctl.events.FragmentDelta d = h.getDelta();
        if (d == null) {
            throw new ValidationException("delta", "the update carries no delta");
        }
        if (h.getTombstone()) {
            throw new ValidationException("delta", "a removal carries no delta");
        }
        try {
            return new FragmentDelta(d.getBaseVersion(), DefaultPolicy.valueOf(d.getDefaultPolicy().name()),
                    d.getVms().stream().map(EventMapper::fromAvro).toList(), d.getKeepEstablished(),
                    d.getUpserts().stream().map(EventMapper::fromAvro).toList(), d.getRemovedRuleIds().stream()
                    .map(id -> Identifiers.require("removedRuleIds", id)).toList());
        } catch (ValidationException e) {
            throw e;
        } catch (IllegalArgumentException e) {
            throw new ValidationException("delta", e.getMessage());
        }
    }

    /**
     * A delta update made whole against {@code base}, the fragment of the version the delta names.
     *
     * @throws ValidationException when the delta does not apply to {@code base} (a removed rule it does not hold)
     */
    public static FragmentUpdate resolve(HostUpdate h, FragmentDelta delta, Fragment base) {
        Fragment next;
        try {
            next = delta.applyTo(base);
        } catch (IllegalArgumentException e) {
            throw new ValidationException("delta", e.getMessage());
        }
        return new FragmentUpdate(h.getHostId(), h.getNetworkId(), h.getVersion(), next, h.getFragmentHash(), List.copyOf(h.getChangeIds()));
    }

    public static io.egressctl.events.Fragment toAvro(Fragment f) {
        return io.egressctl.events.Fragment.newBuilder()
                .setDefaultPolicy(io.egressctl.events.DefaultPolicy.valueOf(f.defaultPolicy().name()))
                .setVms(f.vms().stream().map(EventMapper::toAvro).toList())
                .setKeepEstablished(f.keepEstablished())
                .setRules(f.rules().stream().map(EventMapper::toAvro).toList())
                .build();
    }

    private static io.egressctl.events.VmAddress toAvro(VmAddress v) {
        return io.egressctl.events.VmAddress.newBuilder()
                .setVmId(v.vmId()).setIpv4(v.ipv4()).setIpv6(v.ipv6())
                .setInterfaceName(v.interfaceName()).setMac(v.mac()).build();
    }

    private static io.egressctl.events.CompiledRule toAvro(CompiledRule r) {
        return io.egressctl.events.CompiledRule.newBuilder()
                .setRuleId(r.ruleId())
                .setAction(io.egressctl.events.RuleAction.valueOf(r.action().name()))
                .setPriority(r.priority())
                .setProtocol(io.egressctl.events.Protocol.valueOf(r.protocol().name()))
                .setVmIds(r.vmIds())
                .setDestinationCidrs(texts(r.destinationCidrs()))
                .setDestinationExceptCidrs(texts(r.destinationExceptCidrs()))
                .setStartPort(r.ports() == null ? null : r.ports().start())
                .setEndPort(r.ports() == null ? null : r.ports().end())
                .setIcmpType(r.icmp() == null ? null : r.icmp().type())
                .setIcmpCode(r.icmp() == null ? null : r.icmp().code())
                .build();
    }

    /** Decodes a fragment, re-validating every address and id (the agent trusts no producer either). */
    public static Fragment fromAvro(String networkId, io.egressctl.events.Fragment f) {
        List<VmAddress> vms = f.getVms().stream().map(EventMapper::fromAvro).toList();
        List<CompiledRule> rules = f.getRules().stream().map(EventMapper::fromAvro).toList();
        return new Fragment(networkId, DefaultPolicy.valueOf(f.getDefaultPolicy().name()), vms, rules, f.getKeepEstablished());
    }

    private static VmAddress fromAvro(io.egressctl.events.VmAddress v) {
        return new VmAddress(Identifiers.require("vmId", v.getVmId()),
                v.getInterfaceName() == null ? null : Interfaces.requireName("interfaceName", v.getInterfaceName()),
                Interfaces.optionalMac("mac", v.getMac()),
                address("ipv4", v.getIpv4(), true), address("ipv6", v.getIpv6(), false));
    }

    private static CompiledRule fromAvro(io.egressctl.events.CompiledRule r) {
        try {
            return new CompiledRule(Identifiers.require("ruleId", r.getRuleId()), Action.valueOf(r.getAction().name()),
                    r.getPriority(), Protocol.valueOf(r.getProtocol().name()), List.copyOf(r.getVmIds()),
                    cidrs("destinationCidrs", r.getDestinationCidrs()), cidrs("destinationExceptCidrs", r.getDestinationExceptCidrs()),
                    r.getStartPort() == null ? null : new PortRange(r.getStartPort(), r.getEndPort() == null ? r.getStartPort() : r.getEndPort()),
                    r.getIcmpType() == null ? null : new IcmpMatch(r.getIcmpType(), r.getIcmpCode() == null ? -1 : r.getIcmpCode()));
        } catch (ValidationException e) {
            throw e;
        } catch (IllegalArgumentException e) {
            throw new ValidationException("rule", e.getMessage());
        }
    }

    private static List<String> texts(List<Cidr> cidrs) {
        return cidrs.stream().map(Cidr::toString).toList();
    }

    private static List<Cidr> cidrs(String field, List<String> texts) {
        return texts.stream().map(t -> cidr(field, t)).toList();
    }

    private static Cidr cidr(String field, String text) {
        try {
            return Cidr.parse(text);
        } catch (IllegalArgumentException e) {
            throw new ValidationException(field, e.getMessage());
        }
    }
}
