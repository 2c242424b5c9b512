package io.egressctl.cli.audit.history;

import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.events.NetworkSpec;
import io.egressctl.events.RuleSpec;
import io.egressctl.schemas.mapping.EventMapper;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * One-line summaries of rules and networks for tables, e.g.
 * {@code tcp port 80 from 10.20.0.11/32 to any} or {@code basic 10.20.0.0/24 policy allow}.
 */
final class RuleText {

    private RuleText() {
    }

    public static String of(EgressRule r) {
        return r == null ? null : of(EventMapper.toAvro(r));
    }

    public static String of(Network n) {
        return n == null ? null : of(EventMapper.toAvro(n));
    }

    /** The rule as stated (null when there is none). */
    public static String of(RuleSpec r) {
        if (r == null) {
            return null;
        }
        List<String> parts = new ArrayList<>();
        parts.add(lower(r.getProtocol()));
        if (r.getStartPort() != null) {
            int end = r.getEndPort() == null ? r.getStartPort() : r.getEndPort();
            parts.add(end == r.getStartPort() ? "port " + r.getStartPort() : "ports " + r.getStartPort() + "-" + end);
        }
        if (r.getIcmpType() != null) {
            int type = r.getIcmpType();
            Integer code = r.getIcmpCode();
            parts.add("type " + (type < 0 ? "any" : type) + (code == null || code < 0 ? "" : " code " + code));
        }
        List<String> sources = new ArrayList<>();
        r.getSourceCidrs().forEach(c -> sources.add(c.toString()));
        r.getSourceVmIds().forEach(v -> sources.add(v.toString()));
        parts.add("from " + (sources.isEmpty() ? "all-vms" : String.join(",", sources)));
        parts.add("to " + (r.getDestinationCidrs().isEmpty() ? "any" : join(r.getDestinationCidrs())));
        if (!r.getDestinationExceptCidrs().isEmpty()) {
            parts.add("except " + join(r.getDestinationExceptCidrs()));
        }
        if (r.getAction() != null) {
            parts.add(lower(r.getAction()));
        }
        if (r.getPriority() != EgressRule.DEFAULT_PRIORITY) {
            parts.add("priority " + r.getPriority());
        }
        return String.join(" ", parts);
    }

    /** The network definition (null when there is none). */
    public static String of(NetworkSpec n) {
        if (n == null) {
            return null;
        }
        StringBuilder sb = new StringBuilder();
        sb.append(lower(n.getKind()).replace('_', '-')).append(' ').append(n.getGuestCidr());
        if (n.getGuestCidr6() != null) {
            sb.append(' ').append(n.getGuestCidr6());
        }
        sb.append(" policy ").append(lower(n.getDefaultPolicy()));
        if (n.getAdvanced()) {
            sb.append(" advanced");
        }
        if (n.getRuleQuota() != 1000) {
            sb.append(" quota ").append(n.getRuleQuota());
        }
        sb.append(" tenant ").append(n.getTenantId());
        return sb.toString();
    }

    private static String join(List<? extends CharSequence> items) {
        return String.join(",", items);
    }

    private static String lower(Object o) {
        return String.valueOf(o).toLowerCase(Locale.ROOT);
    }
}
