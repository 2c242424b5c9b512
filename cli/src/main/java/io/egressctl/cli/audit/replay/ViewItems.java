package io.egressctl.cli.audit.replay;

import io.egressctl.cli.audit.Json;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.VmPlacement;
import io.egressctl.core.state.NetworkState;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.view.NetworkView;
import io.egressctl.schemas.view.RuleView;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * A network's compiled read model (the {@link NetworkView} the compiler writes to Redis) cut into items
 * that can be compared one by one: {@code network} (definition), {@code config version}, {@code rule <id>}
 * and {@code vm <id>}. Each item has a canonical text (equal when the contents are equal) and a display
 * text. A network that does not exist (never created, or deleted: the compiler then writes an empty view)
 * has no items.
 */
public final class ViewItems {

    /** One item's value. */
    record Item(String canonical, String display) {
    }

    static final String NETWORK = "network";
    static final String CONFIG_VERSION = "config version";
    static final String RULE = "rule ";
    static final String VM = "vm ";

    /** network, config version, rules, VMs; then by key. */
    static final java.util.Comparator<String> ORDER = java.util.Comparator.comparingInt(ViewItems::rank)
            .thenComparing(java.util.Comparator.naturalOrder());

    private ViewItems() {
    }

    private static int rank(String key) {
        return key.equals(NETWORK) ? 0 : key.equals(CONFIG_VERSION) ? 1 : key.startsWith(RULE) ? 2 : 3;
    }

    /** Items of a replayed state, the way {@link NetworkView#of} would write it. */
    static SortedMap<String, Item> of(NetworkState s) {
        SortedMap<String, Item> out = new TreeMap<>(ORDER);
        Network n = s.network();
        if (n == null) {
            return out;
        }
        out.put(NETWORK, network(n));
        out.put(CONFIG_VERSION, version(s.configVersion()));
        for (EgressRule r : s.rules().values()) {
            out.put(RULE + r.ruleId(), rule(RuleView.of(r, n.defaultPolicy())));
        }
        for (VmPlacement p : s.vms().values()) {
            out.put(VM + p.vmId(), vm(NetworkView.VmView.of(p)));
        }
        return out;
    }

    /** Items of a view read from Redis (null: no view, or the empty view of a deleted network). */
    static SortedMap<String, Item> of(NetworkView v) {
        SortedMap<String, Item> out = new TreeMap<>(ORDER);
        if (v == null) {
            return out;
        }
        out.put(NETWORK, network(v.tenantId(), v.kind(), v.guestCidr(), v.guestCidr6(), v.defaultPolicy(), v.advanced(),
                v.ruleQuota(), v.keepEstablished()));
        out.put(CONFIG_VERSION, version(v.configVersion()));
        if (v.rules() != null) {
            v.rules().forEach((id, r) -> out.put(RULE + id, rule(r)));
        }
        if (v.vms() != null) {
            v.vms().forEach((id, p) -> out.put(VM + id, vm(p)));
        }
        return out;
    }

    /** The current value of one item of a replayed state (null when absent). */
    static Item item(NetworkState s, String key) {
        Network n = s.network();
        if (n == null) {
            return null;
        }
        if (key.equals(NETWORK)) {
            return network(n);
        }
        if (key.equals(CONFIG_VERSION)) {
            return version(s.configVersion());
        }
        if (key.startsWith(RULE)) {
            EgressRule r = s.rules().get(key.substring(RULE.length()));
            return r == null ? null : rule(RuleView.of(r, n.defaultPolicy()));
        }
        if (key.startsWith(VM)) {
            VmPlacement p = s.vms().get(key.substring(VM.length()));
            return p == null ? null : vm(NetworkView.VmView.of(p));
        }
        return null;
    }

    static Item network(Network n) {
        var spec = EventMapper.toAvro(n);
        return network(n.tenantId(), spec.getKind().name().toLowerCase(), spec.getGuestCidr(), spec.getGuestCidr6(),
                n.defaultPolicy().name().toLowerCase(), n.advanced(), n.ruleQuota(), n.keepEstablished());
    }

    static Item network(String tenant, String kind, String cidr, String cidr6, String policy, boolean advanced, int quota,
                        boolean keepEstablished) {
        String canonical = String.join("|", String.valueOf(tenant), String.valueOf(kind), String.valueOf(cidr),
                String.valueOf(cidr6), String.valueOf(policy), String.valueOf(advanced), String.valueOf(quota))
                // Written only when set, so items of networks without it compare as they always did.
                + (keepEstablished ? "|keepEstablished" : "");
        StringBuilder d = new StringBuilder();
        d.append(String.valueOf(kind).replace('_', '-')).append(' ').append(cidr);
        if (cidr6 != null) {
            d.append(' ').append(cidr6);
        }
        d.append(" policy ").append(policy);
        if (advanced) {
            d.append(" advanced");
        }
        if (quota != Network.DEFAULT_RULE_QUOTA) {
            d.append(" quota ").append(quota);
        }
        if (keepEstablished) {
            d.append(" keep-established");
        }
        d.append(" tenant ").append(tenant);
        return new Item(canonical, d.toString());
    }

    static Item version(long v) {
        return new Item(Long.toString(v), Long.toString(v));
    }

    static Item rule(RuleView r) {
        return new Item(Json.line(r), text(r));
    }

    /** A VM as {@code host/interface [mac] addresses}; a VM placed without an interface shows its host alone. */
    static Item vm(NetworkView.VmView p) {
        String d = placementText(p.hostId(), p.interfaceName(), p.mac(), p.ipv4(), p.ipv6());
        return new Item(Json.line(p), d);
    }

    /** The words a placement is shown in: {@code host-1/tap-a1 52:54:00:12:34:56 10.1.1.10 fd00::10}. */
    public static String placementText(String host, String interfaceName, String mac, String ipv4, String ipv6) {
        return host + (interfaceName == null ? "" : "/" + interfaceName) + (mac == null ? "" : " " + mac)
                + (ipv4 == null ? "" : " " + ipv4) + (ipv6 == null ? "" : " " + ipv6);
    }

    /** A rule view in the words the history commands show a rule in ({@code history.RuleText}), with its effective action. */
    static String text(RuleView r) {
        List<String> parts = new ArrayList<>();
        parts.add(String.valueOf(r.protocol()));
        if (r.startPort() != null) {
            int end = r.endPort() == null ? r.startPort() : r.endPort();
            parts.add(end == r.startPort() ? "port " + r.startPort() : "ports " + r.startPort() + "-" + end);
        }
        if (r.icmpType() != null) {
            parts.add("type " + (r.icmpType() < 0 ? "any" : r.icmpType())
                    + (r.icmpCode() == null || r.icmpCode() < 0 ? "" : " code " + r.icmpCode()));
        }
        List<String> sources = new ArrayList<>();
        if (r.sourceCidrs() != null) {
            sources.addAll(r.sourceCidrs());
        }
        if (r.sourceVmIds() != null) {
            sources.addAll(r.sourceVmIds());
        }
        parts.add("from " + (sources.isEmpty() ? "all-vms" : String.join(",", sources)));
        parts.add("to " + (r.destinationCidrs() == null || r.destinationCidrs().isEmpty() ? "any" : String.join(",", r.destinationCidrs())));
        if (r.destinationExceptCidrs() != null && !r.destinationExceptCidrs().isEmpty()) {
            parts.add("except " + String.join(",", r.destinationExceptCidrs()));
        }
        parts.add(String.valueOf(r.action()));
        if (r.priority() != null && r.priority() != EgressRule.DEFAULT_PRIORITY) {
            parts.add("priority " + r.priority());
        }
        if (r.description() != null) {
            parts.add("\"" + r.description() + "\"");
        }
        return String.join(" ", parts);
    }

    /** Keys whose values differ between the two sides (absent on one side counts). */
    static List<String> differing(Map<String, Item> log, Map<String, Item> redis) {
        TreeMap<String, Boolean> keys = new TreeMap<>(ORDER);
        log.keySet().forEach(k -> keys.put(k, true));
        redis.keySet().forEach(k -> keys.put(k, true));
        List<String> out = new ArrayList<>();
        for (String k : keys.keySet()) {
            Item a = log.get(k);
            Item b = redis.get(k);
            if (a == null || b == null || !a.canonical().equals(b.canonical())) {
                out.add(k);
            }
        }
        return out;
    }
}
