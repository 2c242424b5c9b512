package io.egressctl.rules.cloudstack;

import io.egressctl.core.model.Cidr;
import io.egressctl.core.validation.RuleDraft;
import io.egressctl.core.validation.ValidationException;
import io.egressctl.core.validation.Violation;
import io.egressctl.schemas.view.NetworkView;
import io.egressctl.schemas.view.RuleView;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Maps between CloudStack's egress firewall rules and ours: createEgressFirewallRule parameters to
 * a {@link RuleDraft}, and a rule to CloudStack's {@code firewallrule} object (FirewallResponse).
 */
final class FirewallRules {

    private FirewallRules() {
    }

    /**
     * The draft of a createEgressFirewallRule request. {@code cidrlist} defaults to the network's CIDR,
     * which is our "every VM of the network" (no source list); an entry equal to the guest CIDR or
     * {@code 0.0.0.0/0} (which CloudStack also accepts) means the same.
     */
    static RuleDraft draft(Params p, NetworkView network) {
        String protocol = p.required("protocol").toLowerCase(Locale.ROOT);
        List<String> sources = list(p.text("cidrlist"));
        if (sources != null && sources.stream().anyMatch(c -> wholeNetwork(c, network))) {
            sources = null;
        }
        List<String> destinations = list(p.text("destcidrlist"));
        return new RuleDraft(protocol, null, null, sources, null, destinations, null,
                p.integer("startport"), p.integer("endport"), p.integer("icmptype"), p.integer("icmpcode"), null);
    }

    /** A comma-separated CloudStack list; null when absent or empty. */
    static List<String> list(String text) {
        if (text == null) {
            return null;
        }
        List<String> out = new ArrayList<>();
        for (String s : text.split(",")) {
            if (!s.isBlank()) {
                out.add(s.trim());
            }
        }
        return out.isEmpty() ? null : out;
    }

    private static boolean wholeNetwork(String cidr, NetworkView network) {
        try {
            Cidr c = Cidr.parse(cidr);
            return c.prefixLength() == 0 || c.toString().equals(network.guestCidr())
                    || (network.guestCidr6() != null && c.toString().equals(Cidr.parse(network.guestCidr6()).toString()));
        } catch (IllegalArgumentException e) {
            return false; // the validator names it
        }
    }

    /** CloudStack's parameter name for one of our rule fields. */
    static String parameterName(String field) {
        return switch (field) {
            case "sourceCidrs", "sourceVmIds" -> "cidrlist";
            case "destinationCidrs", "destinationExceptCidrs" -> "destcidrlist";
            case "startPort" -> "startport";
            case "endPort" -> "endport";
            case "icmpType" -> "icmptype";
            case "icmpCode" -> "icmpcode";
            default -> field.toLowerCase(Locale.ROOT);
        };
    }

    /** A validation failure as CloudStack's 431, naming its parameters. */
    static CloudStackError invalid(String command, ValidationException e) {
        String reasons = e.violations().stream().map((Violation v) -> parameterName(v.field()) + ": " + v.reason())
                .collect(Collectors.joining("; "));
        return CloudStackError.param("Unable to execute API command " + command.toLowerCase(Locale.ROOT) + " due to invalid value. "
                + reasons);
    }

    /**
     * The rule as CloudStack's {@code firewallrule} (field order as FirewallResponse declares them).
     *
     * @param operator operators see {@code fordisplay} (an admin-only field in CloudStack)
     */
    static Map<String, Object> toCloudStack(RuleView r, NetworkView network, CloudStackStore.RuleMeta meta, boolean operator) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", meta != null && meta.customId() != null ? meta.customId() : r.ruleId());
        m.put("protocol", r.protocol());
        if (r.startPort() != null) {
            m.put("startport", r.startPort());
        }
        if (r.endPort() != null) {
            m.put("endport", r.endPort());
        }
        m.put("networkid", network.networkId());
        m.put("state", "Active");
        m.put("cidrlist", String.join(",", sources(r, network)));
        if (r.protocol().startsWith("icmp")) {
            m.put("icmptype", r.icmpType() == null ? -1 : r.icmpType());
            m.put("icmpcode", r.icmpCode() == null ? -1 : r.icmpCode());
        }
        m.put("tags", List.of());
        if (operator) {
            m.put("fordisplay", meta == null || meta.forDisplay() == null || meta.forDisplay());
        }
        m.put("destcidrlist", r.destinationCidrs() == null ? "" : String.join(",", r.destinationCidrs()));
        m.put("traffictype", "Egress");
        return m;
    }

    /**
     * Source CIDRs as CloudStack shows them: the rule's list, the network's CIDR for a rule on the
     * whole network, or the /32 (/128) of each placed VM for a rule by VM ids.
     */
    static List<String> sources(RuleView r, NetworkView network) {
        if (r.sourceCidrs() != null && !r.sourceCidrs().isEmpty()) {
            return r.sourceCidrs();
        }
        if (r.sourceVmIds() == null || r.sourceVmIds().isEmpty()) {
            return List.of(network.guestCidr());
        }
        List<String> out = new ArrayList<>();
        for (String vm : r.sourceVmIds()) {
            NetworkView.VmView v = network.vms() == null ? null : network.vms().get(vm);
            if (v != null && v.ipv4() != null) {
                out.add(v.ipv4() + "/32");
            }
            if (v != null && v.ipv6() != null) {
                out.add(v.ipv6() + "/128");
            }
        }
        return out;
    }

    /** The network as CloudStack's {@code network} object (a subset of NetworkResponse). */
    static Map<String, Object> network(NetworkView n) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", n.networkId());
        m.put("name", n.networkId());
        m.put("displaytext", n.networkId());
        m.put("traffictype", "Guest");
        m.put("cidr", n.guestCidr());
        if (n.guestCidr6() != null) {
            m.put("ip6cidr", n.guestCidr6());
        }
        m.put("state", "Implemented");
        m.put("type", "Isolated");
        m.put("acltype", "Account");
        m.put("account", n.tenantId());
        m.put("ispersistent", false);
        m.put("restartrequired", false);
        m.put("specifyipranges", false);
        m.put("canusefordeploy", true);
        m.put("tags", List.of());
        m.put("egressdefaultpolicy", "allow".equalsIgnoreCase(n.defaultPolicy()));
        return m;
    }
}
