package io.egressctl.core.validation;

import io.egressctl.core.state.Limits;

import io.egressctl.core.model.Action;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.IcmpMatch;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.NetworkKind;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;

/**
 * Turns drafts into validated model values, or says everything that is wrong with them. The API
 * and the compiler use this one class, so an event published straight to Kafka is held to the same
 * rules as an API call. Stateless and thread-safe.
 */
public final class RuleValidator {

    /** Most entries a CIDR or VM-id list may hold. */
    public static final int MAX_LIST_ENTRIES = 256;
    /** Most characters of a description. */
    public static final int MAX_DESCRIPTION = 255;
    /** Largest rule quota a network may ask for under the default limits ({@link Limits#DEFAULT_RULES_PER_NETWORK}). */
    public static final int MAX_RULE_QUOTA = Limits.DEFAULT_RULES_PER_NETWORK;
    /**
     * Shortest IPv4 guest prefix: a /8 (16.7 million addresses) is the widest a guest network may be;
     * {@code 0.0.0.0/0} or a /4 is not a guest network but the Internet.
     */
    public static final int MIN_GUEST_PREFIX_V4 = 8;
    /** Shortest IPv6 guest prefix: a /48 (a site); {@code ::/0} or a /16 is not a guest network. */
    public static final int MIN_GUEST_PREFIX_V6 = 48;

    /**
     * Validates a rule draft against its network.
     *
     * @throws ValidationException listing every violation
     */
    public EgressRule validateRule(String ruleId, RuleDraft d, Network network) {
        List<Violation> v = new ArrayList<>();
        if (!Identifiers.isValid(ruleId)) {
            v.add(new Violation("ruleId", "is not a valid id"));
        }
        Protocol protocol = null;
        if (d.protocol() == null || d.protocol().isBlank()) {
            v.add(new Violation("protocol", "is required: tcp, udp, icmp, icmpv6 or all"));
        } else {
            try {
                protocol = Protocol.parse(d.protocol());
            } catch (IllegalArgumentException e) {
                v.add(new Violation("protocol", e.getMessage()));
            }
        }
        Action action = null;
        if (d.action() != null) {
            if (!network.advanced()) {
                v.add(new Violation("action", "explicit actions need an advanced network; this network uses CloudStack semantics (rules "
                        + (network.defaultPolicy() == DefaultPolicy.ALLOW ? "block" : "allow") + " what they match)"));
            } else {
                try {
                    action = Action.valueOf(d.action().trim().toUpperCase(Locale.ROOT));
                } catch (IllegalArgumentException e) {
                    v.add(new Violation("action", "unknown action '" + Identifiers.abbreviate(d.action()) + "': use allow or deny"));
                }
            }
        }
        int priority = EgressRule.DEFAULT_PRIORITY;
        if (d.priority() != null) {
            if (!network.advanced()) {
                v.add(new Violation("priority", "priorities need an advanced network"));
            } else if (d.priority() < 1 || d.priority() > 65535) {
                v.add(new Violation("priority", d.priority() + " is outside 1..65535"));
            } else {
                priority = d.priority();
            }
        }

        PortRange ports = null;
        if (d.startPort() != null || d.endPort() != null) {
            if (protocol != null && !protocol.hasPorts()) {
                v.add(new Violation("startPort", "ports are only valid for tcp and udp, not " + protocol.apiName()));
            } else if (d.startPort() == null) {
                v.add(new Violation("startPort", "is required when endPort is given"));
            } else {
                int end = d.endPort() == null ? d.startPort() : d.endPort();
                if (d.startPort() < 1 || d.startPort() > 65535) {
                    v.add(new Violation("startPort", d.startPort() + " is outside 1..65535"));
                } else if (end < 1 || end > 65535) {
                    v.add(new Violation("endPort", end + " is outside 1..65535"));
                } else if (d.startPort() > end) {
                    v.add(new Violation("endPort", "start port " + d.startPort() + " is greater than end port " + end));
                } else {
                    ports = new PortRange(d.startPort(), end);
                }
            }
        }

        IcmpMatch icmp = null;
        if (d.icmpType() != null || d.icmpCode() != null) {
            if (protocol != null && !protocol.isIcmp()) {
                v.add(new Violation(d.icmpType() != null ? "icmpType" : "icmpCode", "icmp type and code need protocol icmp or icmpv6, not " + protocol.apiName()));
            } else {
                int type = d.icmpType() == null ? -1 : d.icmpType();
                int code = d.icmpCode() == null ? -1 : d.icmpCode();
                if (type < -1 || type > 255) {
                    v.add(new Violation("icmpType", type + " is outside -1..255 (-1 means any)"));
                } else if (code < -1 || code > 255) {
                    v.add(new Violation("icmpCode", code + " is outside -1..255 (-1 means any)"));
                } else if (type == -1 && code != -1) {
                    v.add(new Violation("icmpCode", "an icmp code needs an icmp type"));
                } else if (type != -1) {
                    icmp = new IcmpMatch(type, code);
                }
            }
        }

        List<Cidr> sources = cidrs("sourceCidrs", d.sourceCidrs(), v);
        List<String> vmIds = ids("sourceVmIds", d.sourceVmIds(), v);
        List<Cidr> destinations = cidrs("destinationCidrs", d.destinationCidrs(), v);
        List<Cidr> exceptions = cidrs("destinationExceptCidrs", d.destinationExceptCidrs(), v);

        checkScope(protocol, sources, vmIds, destinations, exceptions, d.description(), network, v);
        String description = d.description();

        if (!v.isEmpty()) {
            throw new ValidationException(v);
        }
        return new EgressRule(ruleId, protocol, action, priority, sources, vmIds, destinations, exceptions, ports, icmp, description);
    }

    /** The checks that depend on the network and on how the rule's parts fit together. */
    private static void checkScope(Protocol protocol, List<Cidr> sources, List<String> vmIds, List<Cidr> destinations,
                                   List<Cidr> exceptions, String description, Network network, List<Violation> v) {
        if (!sources.isEmpty() && !vmIds.isEmpty()) {
            v.add(new Violation("sourceVmIds", "give sourceCidrs or sourceVmIds, not both"));
        }
        for (Cidr c : sources) {
            Cidr guest = c.isIpv4() ? network.guestCidr() : network.guestCidr6();
            if (guest == null) {
                v.add(new Violation("sourceCidrs", c + " is IPv6 but network " + network.networkId() + " has no IPv6 prefix"));
            } else if (!guest.contains(c)) {
                v.add(new Violation("sourceCidrs", c + " is outside the guest CIDR " + guest));
            }
        }
        boolean hasV6 = network.guestCidr6() != null;
        for (Cidr c : destinations) {
            if (!c.isIpv4() && !hasV6) {
                v.add(new Violation("destinationCidrs", c + " is IPv6 but network " + network.networkId() + " has no IPv6 prefix"));
            }
        }
        if (protocol == Protocol.ICMPV6) {
            if (!hasV6) {
                v.add(new Violation("protocol", "icmpv6 needs a network with an IPv6 prefix"));
            }
            destinations.stream().filter(Cidr::isIpv4).findFirst()
                    .ifPresent(c -> v.add(new Violation("destinationCidrs", "icmpv6 cannot reach IPv4 destination " + c)));
        }
        if (protocol == Protocol.ICMP) {
            destinations.stream().filter(c -> !c.isIpv4()).findFirst()
                    .ifPresent(c -> v.add(new Violation("destinationCidrs", "icmp (IPv4) cannot reach IPv6 destination " + c + "; use icmpv6")));
        }
        for (Cidr e : exceptions) {
            if (!destinations.isEmpty() && destinations.stream().noneMatch(dst -> dst.contains(e))) {
                v.add(new Violation("destinationExceptCidrs", e + " lies in none of the destination CIDRs"));
            }
        }

        if (description != null) {
            if (description.length() > MAX_DESCRIPTION) {
                v.add(new Violation("description", "is longer than " + MAX_DESCRIPTION + " characters"));
            } else if (description.chars().anyMatch(ch -> Character.isISOControl(ch))) {
                v.add(new Violation("description", "contains control characters"));
            }
        }

    }

    /**
     * Checks an already-built rule (for example one decoded from an event) against its network with
     * the same rules as {@link #validateRule}.
     *
     * @throws ValidationException listing every violation
     */
    public EgressRule revalidate(EgressRule r, Network network) {
        // Typed values are valid by construction (ports, ICMP type and code, CIDR syntax); what is
        // left is how they fit together and into the network. No re-parsing: this runs per event.
        List<Violation> v = new ArrayList<>();
        if (!Identifiers.isValid(r.ruleId())) {
            v.add(new Violation("ruleId", "is not a valid id"));
        }
        if (r.action() != null && !network.advanced()) {
            v.add(new Violation("action", "explicit actions need an advanced network"));
        }
        if (r.priority() != EgressRule.DEFAULT_PRIORITY && !network.advanced()) {
            v.add(new Violation("priority", "priorities need an advanced network"));
        } else if (r.priority() < 1 || r.priority() > 65535) {
            v.add(new Violation("priority", r.priority() + " is outside 1..65535"));
        }
        if (r.ports() != null && !r.protocol().hasPorts()) {
            v.add(new Violation("startPort", "ports are only valid for tcp and udp, not " + r.protocol().apiName()));
        }
        if (r.icmp() != null && !r.protocol().isIcmp()) {
            v.add(new Violation("icmpType", "icmp type and code need protocol icmp or icmpv6, not " + r.protocol().apiName()));
        }
        List<Cidr> sources = normalized("sourceCidrs", r.sourceCidrs(), v);
        List<Cidr> destinations = normalized("destinationCidrs", r.destinationCidrs(), v);
        List<Cidr> exceptions = normalized("destinationExceptCidrs", r.destinationExceptCidrs(), v);
        List<String> vmIds = r.sourceVmIds().isEmpty() ? List.of() : ids("sourceVmIds", r.sourceVmIds(), v);
        checkScope(r.protocol(), sources, vmIds, destinations, exceptions, r.description(), network, v);
        if (!v.isEmpty()) {
            throw new ValidationException(v);
        }
        return new EgressRule(r.ruleId(), r.protocol(), r.action(), r.priority(), sources, vmIds, destinations, exceptions,
                r.ports(), r.icmp(), r.description());
    }

    private static List<Cidr> normalized(String field, List<Cidr> cidrs, List<Violation> v) {
        if (cidrs.size() > MAX_LIST_ENTRIES) {
            v.add(new Violation(field, "has " + cidrs.size() + " entries; at most " + MAX_LIST_ENTRIES + " are allowed"));
            return List.of();
        }
        return cidrs.size() <= 1 ? cidrs : List.copyOf(new TreeSet<>(cidrs));
    }

    /** The draft that validates to {@code r}. */
    public static RuleDraft toDraft(EgressRule r) {
        return new RuleDraft(r.protocol().apiName(), r.action() == null ? null : r.action().name(),
                r.priority() == EgressRule.DEFAULT_PRIORITY ? null : r.priority(),
                texts(r.sourceCidrs()), r.sourceVmIds().isEmpty() ? null : r.sourceVmIds(),
                texts(r.destinationCidrs()), texts(r.destinationExceptCidrs()),
                r.ports() == null ? null : r.ports().start(), r.ports() == null ? null : r.ports().end(),
                r.icmp() == null ? null : r.icmp().type(), r.icmp() == null ? null : r.icmp().code(),
                r.description());
    }

    private static List<String> texts(List<Cidr> cidrs) {
        return cidrs.isEmpty() ? null : cidrs.stream().map(Cidr::toString).toList();
    }

    /**
     * Validates a network draft for a tenant; omitted fields take their defaults (BASIC, ALLOW,
     * CloudStack mode, {@link Network#DEFAULT_RULE_QUOTA}).
     *
     * @throws ValidationException listing every violation
     */
    public Network validateNetwork(NetworkDraft d, String tenantId) {
        return validateNetwork(d, tenantId, Limits.defaults());
    }

    /**
     * Validates a network draft for a tenant under the operator's limits: a {@code ruleQuota} above
     * {@link Limits#rulesPerNetwork()} is a violation; an omitted one is {@link Network#DEFAULT_RULE_QUOTA}
     * or the limit, whichever is lower.
     *
     * @throws ValidationException listing every violation
     */
    public Network validateNetwork(NetworkDraft d, String tenantId, Limits limits) {
        List<Violation> v = new ArrayList<>();
        if (d.networkId() == null || !Identifiers.isValid(d.networkId())) {
            v.add(new Violation("networkId", d.networkId() == null ? "is required" : "is not a valid id (letters, digits, . _ : -; at most 64)"));
        }
        if (!Identifiers.isValid(tenantId)) {
            v.add(new Violation("tenantId", "is not a valid id"));
        }
        NetworkKind kind = NetworkKind.BASIC;
        if (d.kind() != null) {
            try {
                kind = NetworkKind.valueOf(d.kind().trim().toUpperCase(Locale.ROOT).replace('-', '_'));
            } catch (IllegalArgumentException e) {
                v.add(new Violation("kind", "unknown kind '" + Identifiers.abbreviate(d.kind()) + "': use basic or vpc_tier"));
            }
        }
        Cidr guest = null;
        if (d.guestCidr() == null) {
            v.add(new Violation("guestCidr", "is required"));
        } else {
            try {
                guest = Cidr.parse(d.guestCidr());
                if (!guest.isIpv4()) {
                    v.add(new Violation("guestCidr", "must be IPv4; give the IPv6 prefix as guestCidr6"));
                } else if (guestPrefixProblem(guest) != null) {
                    v.add(new Violation("guestCidr", guestPrefixProblem(guest)));
                }
            } catch (IllegalArgumentException e) {
                v.add(new Violation("guestCidr", e.getMessage()));
            }
        }
        Cidr guest6 = null;
        if (d.guestCidr6() != null) {
            try {
                guest6 = Cidr.parse(d.guestCidr6());
                if (guest6.isIpv4()) {
                    v.add(new Violation("guestCidr6", "must be an IPv6 prefix"));
                } else if (guestPrefixProblem(guest6) != null) {
                    v.add(new Violation("guestCidr6", guestPrefixProblem(guest6)));
                }
            } catch (IllegalArgumentException e) {
                v.add(new Violation("guestCidr6", e.getMessage()));
            }
        }
        DefaultPolicy policy = DefaultPolicy.ALLOW;
        if (d.defaultPolicy() != null) {
            policy = parsePolicy(d.defaultPolicy(), v);
        }
        int quota = limits.effectiveQuota(Network.DEFAULT_RULE_QUOTA);
        if (d.ruleQuota() != null) {
            if (d.ruleQuota() < 1) {
                v.add(new Violation("ruleQuota", d.ruleQuota() + " is outside 1.." + limits.rulesPerNetwork()));
            } else if (d.ruleQuota() > limits.rulesPerNetwork()) {
                v.add(new Violation("ruleQuota", d.ruleQuota() + " is above the operator's limit of " + limits.rulesPerNetwork()
                        + " rules per network"));
            } else {
                quota = d.ruleQuota();
            }
        }
        if (!v.isEmpty()) {
            throw new ValidationException(v);
        }
        return new Network(d.networkId(), tenantId, kind, guest, guest6, policy, Boolean.TRUE.equals(d.advanced()), quota,
                Boolean.TRUE.equals(d.keepEstablished()));
    }

    /**
     * Why a prefix is too wide to be a guest network (shorter than /{@value #MIN_GUEST_PREFIX_V4} for
     * IPv4, /{@value #MIN_GUEST_PREFIX_V6} for IPv6), or null when it is not.
     */
    public static String guestPrefixProblem(Cidr guest) {
        int min = guest.isIpv4() ? MIN_GUEST_PREFIX_V4 : MIN_GUEST_PREFIX_V6;
        if (guest.prefixLength() < min) {
            return guest + " is too wide for a guest network: the prefix must be /" + min + " or longer";
        }
        return null;
    }

    /** Parses {@code allow} or {@code deny}, case-insensitively. */
    public static DefaultPolicy parsePolicy(String text, List<Violation> v) {
        try {
            return DefaultPolicy.valueOf(text.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            v.add(new Violation("defaultPolicy", "unknown policy '" + Identifiers.abbreviate(text) + "': use allow or deny"));
            return DefaultPolicy.ALLOW;
        }
    }

    private static List<Cidr> cidrs(String field, List<String> texts, List<Violation> v) {
        if (texts == null) {
            return List.of();
        }
        if (!checkList(field, texts, v)) {
            return List.of();
        }
        TreeSet<Cidr> out = new TreeSet<>();
        for (String t : texts) {
            try {
                out.add(Cidr.parse(t));
            } catch (IllegalArgumentException e) {
                v.add(new Violation(field, e.getMessage()));
            }
        }
        return List.copyOf(out);
    }

    private static List<String> ids(String field, List<String> texts, List<Violation> v) {
        if (texts == null) {
            return List.of();
        }
        if (!checkList(field, texts, v)) {
            return List.of();
        }
        TreeSet<String> out = new TreeSet<>();
        for (String t : texts) {
            if (!Identifiers.isValid(t)) {
                v.add(new Violation(field, "'" + (t == null ? "null" : Identifiers.abbreviate(t)) + "' is not a valid VM id"));
            } else {
                out.add(t);
            }
        }
        return List.copyOf(out);
    }

    private static boolean checkList(String field, List<String> texts, List<Violation> v) {
        if (texts.isEmpty()) {
            v.add(new Violation(field, "is empty; omit it for the default"));
            return false;
        }
        if (texts.size() > MAX_LIST_ENTRIES) {
            v.add(new Violation(field, "has " + texts.size() + " entries; at most " + MAX_LIST_ENTRIES + " are allowed"));
            return false;
        }
        return true;
    }
}
