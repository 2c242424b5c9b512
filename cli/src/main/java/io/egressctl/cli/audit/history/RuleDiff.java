package io.egressctl.cli.audit.history;

import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;

/**
 * What changed in a network between two states: its definition (created, deleted, changed) and its rules
 * (added, removed, changed, by rule id), with the names of the fields that differ. Pure.
 */
final class RuleDiff {

    /** Kinds of change, in the order they are listed. */
    public enum Kind {
        NETWORK_CREATED("network created"), NETWORK_DELETED("network deleted"), NETWORK_CHANGED("network changed"),
        ADDED("added"), REMOVED("removed"), CHANGED("changed");

        private final String label;

        Kind(String label) {
            this.label = label;
        }

        public String label() {
            return label;
        }
    }

    /**
     * One change; for network kinds {@code ruleId} is null and {@code before}/{@code after} are
     * {@link Network}s, else {@link EgressRule}s (null where absent).
     */
    public record Change(Kind kind, String ruleId, Object before, Object after, List<String> fields) {
    }

    private RuleDiff() {
    }

    public static List<Change> between(Network n1, Map<String, EgressRule> rules1, Network n2, Map<String, EgressRule> rules2) {
        List<Change> out = new ArrayList<>();
        if (n1 == null && n2 != null) {
            out.add(new Change(Kind.NETWORK_CREATED, null, null, n2, List.of()));
        } else if (n1 != null && n2 == null) {
            out.add(new Change(Kind.NETWORK_DELETED, null, n1, null, List.of()));
        } else if (n1 != null && !n1.equals(n2)) {
            out.add(new Change(Kind.NETWORK_CHANGED, null, n1, n2, networkFields(n1, n2)));
        }
        TreeSet<String> ids = new TreeSet<>(rules1.keySet());
        ids.addAll(rules2.keySet());
        for (String id : ids) {
            EgressRule a = rules1.get(id);
            EgressRule b = rules2.get(id);
            if (a == null) {
                out.add(new Change(Kind.ADDED, id, null, b, List.of()));
            } else if (b == null) {
                out.add(new Change(Kind.REMOVED, id, a, null, List.of()));
            } else if (!a.equals(b)) {
                out.add(new Change(Kind.CHANGED, id, a, b, ruleFields(a, b)));
            }
        }
        return out;
    }

    static List<String> ruleFields(EgressRule a, EgressRule b) {
        List<String> f = new ArrayList<>();
        diff(f, "protocol", a.protocol(), b.protocol());
        diff(f, "action", a.action(), b.action());
        diff(f, "priority", a.priority(), b.priority());
        diff(f, "sourceCidrs", a.sourceCidrs(), b.sourceCidrs());
        diff(f, "sourceVmIds", a.sourceVmIds(), b.sourceVmIds());
        diff(f, "destinationCidrs", a.destinationCidrs(), b.destinationCidrs());
        diff(f, "destinationExceptCidrs", a.destinationExceptCidrs(), b.destinationExceptCidrs());
        diff(f, "ports", a.ports(), b.ports());
        diff(f, "icmp", a.icmp(), b.icmp());
        diff(f, "description", a.description(), b.description());
        return f;
    }

    static List<String> networkFields(Network a, Network b) {
        List<String> f = new ArrayList<>();
        diff(f, "tenantId", a.tenantId(), b.tenantId());
        diff(f, "kind", a.kind(), b.kind());
        diff(f, "guestCidr", a.guestCidr(), b.guestCidr());
        diff(f, "guestCidr6", a.guestCidr6(), b.guestCidr6());
        diff(f, "defaultPolicy", a.defaultPolicy(), b.defaultPolicy());
        diff(f, "advanced", a.advanced(), b.advanced());
        diff(f, "ruleQuota", a.ruleQuota(), b.ruleQuota());
        return f;
    }

    private static void diff(List<String> out, String name, Object a, Object b) {
        if (!Objects.equals(a, b)) {
            out.add(name);
        }
    }
}
