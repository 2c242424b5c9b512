package io.egressctl.schemas.view;

import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.VmPlacement;
import io.egressctl.core.state.NetworkState;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.events.NetworkSpec;
import io.egressctl.events.RuleSpec;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The read model of one network that the compiler publishes to Redis after every decision and the
 * rule-service reads: definition, rules (as their Avro JSON-friendly specs), VMs and versions.
 *
 * @param configVersion   version a writer sends back as If-Match
 * @param version         version of the compiled fragments
 * @param rules           rules by id
 * @param vms             VM id to placement
 * @param keepEstablished a rule that starts blocking a flow leaves established connections open (false
 *                        in views written before the setting existed, which is what those networks had)
 */
public record NetworkView(String networkId, String tenantId, String kind, String guestCidr, String guestCidr6,
                          String defaultPolicy, boolean advanced, int ruleQuota, long configVersion, long version,
                          Map<String, RuleView> rules, Map<String, VmView> vms, boolean keepEstablished) {

    /** A view of a network without {@code keepEstablished} (the default: new blocks end established flows). */
    public NetworkView(String networkId, String tenantId, String kind, String guestCidr, String guestCidr6,
                       String defaultPolicy, boolean advanced, int ruleQuota, long configVersion, long version,
                       Map<String, RuleView> rules, Map<String, VmView> vms) {
        this(networkId, tenantId, kind, guestCidr, guestCidr6, defaultPolicy, advanced, ruleQuota, configVersion, version,
                rules, vms, false);
    }

    /**
     * A VM's placement: its host, its interface there (its identity on the host) and MAC, and its
     * addresses. {@code interfaceName} is null only for a VM placed by an event older than interface
     * identity, which its host cannot enforce.
     */
    public record VmView(String hostId, String ipv4, String ipv6, String interfaceName, String mac) {

        /** A placement without an interface (as written before interfaces were in the contract). */
        public VmView(String hostId, String ipv4, String ipv6) {
            this(hostId, ipv4, ipv6, null, null);
        }

        /** The view of a placement. */
        public static VmView of(VmPlacement p) {
            return new VmView(p.hostId(), p.ipv4(), p.ipv6(), p.interfaceName(), p.mac());
        }
    }

    public static NetworkView of(NetworkState s) {
        Network n = s.network();
        Map<String, RuleView> rules = new TreeMap<>();
        for (EgressRule r : s.rules().values()) {
            rules.put(r.ruleId(), RuleView.of(r, n.defaultPolicy()));
        }
        return withRules(s, rules);
    }

    /** The view of a network with the given rules (the compiler fills them from its own cache). */
    public static NetworkView withRules(NetworkState s, Map<String, RuleView> rules) {
        Network n = s.network();
        Map<String, VmView> vms = new TreeMap<>();
        s.vms().forEach((id, p) -> vms.put(id, VmView.of(p)));
        return new NetworkView(n.networkId(), n.tenantId(), n.kind().name().toLowerCase(), n.guestCidr().toString(),
                n.guestCidr6() == null ? null : n.guestCidr6().toString(), n.defaultPolicy().name().toLowerCase(), n.advanced(),
                n.ruleQuota(), s.configVersion(), s.version(), rules, vms, n.keepEstablished());
    }

    /** Prefix of the hash field that holds one rule's view: {@code r:<ruleId>}. */
    public static final String RULE_FIELD = "r:";

    /**
     * Reads views of every writer version: a field a previous writer did not know (keepEstablished)
     * is absent from its JSON and reads as its default (false) rather than failing the read.
     */
    private static final tools.jackson.databind.json.JsonMapper JSON = tools.jackson.databind.json.JsonMapper.builder()
            .disable(tools.jackson.databind.DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES).build();

    /**
     * Reads a view from the network's Redis hash: field {@code version} the network's version, field
     * {@code json} the network and its VMs (its rules inline when an older writer wrote it), each
     * field {@code r:<ruleId>} one rule. Null when the
     * network does not exist or was deleted.
     */
    public static NetworkView fromHash(Map<String, String> hash) {
        String meta = hash == null ? null : hash.get("json");
        if (meta == null || meta.isEmpty()) {
            return null;
        }
        NetworkView v = JSON.readValue(meta, NetworkView.class);
        Map<String, RuleView> rules = new TreeMap<>(v.rules() == null ? Map.of() : v.rules());
        hash.forEach((field, value) -> {
            if (field.startsWith(RULE_FIELD)) {
                rules.put(field.substring(RULE_FIELD.length()), JSON.readValue(value, RuleView.class));
            }
        });
        // The hash's own version field is the network's version; the JSON's is that of the last change
        // to the network's definition or VMs (a writer need not re-render it for every rule change).
        String version = hash.get("version");
        return new NetworkView(v.networkId(), v.tenantId(), v.kind(), v.guestCidr(), v.guestCidr6(), v.defaultPolicy(),
                v.advanced(), v.ruleQuota(), v.configVersion(), version == null ? v.version() : Long.parseLong(version), rules,
                v.vms() == null ? Map.of() : v.vms(), v.keepEstablished());
    }

    /** The same view under another network id: how a tenant is shown its network (by its name, not its log id). */
    public NetworkView withNetworkId(String id) {
        return new NetworkView(id, tenantId, kind, guestCidr, guestCidr6, defaultPolicy, advanced, ruleQuota, configVersion, version,
                rules, vms, keepEstablished);
    }

    /** The network definition back as a core value. */
    public Network network() {
        return EventMapper.fromAvro(NetworkSpec.newBuilder()
                .setNetworkId(networkId).setTenantId(tenantId)
                .setKind(io.egressctl.events.NetworkKind.valueOf(kind.toUpperCase()))
                .setGuestCidr(guestCidr).setGuestCidr6(guestCidr6)
                .setDefaultPolicy(io.egressctl.events.DefaultPolicy.valueOf(defaultPolicy.toUpperCase()))
                .setAdvanced(advanced).setRuleQuota(ruleQuota).setKeepEstablished(keepEstablished).build());
    }

    /** A rule back as a core value (for duplicate checks and before-images), or null. */
    public EgressRule rule(String ruleId) {
        RuleView r = rules.get(ruleId);
        if (r == null) {
            return null;
        }
        boolean explicit = advanced;
        return EventMapper.fromAvro(RuleSpec.newBuilder()
                .setRuleId(r.ruleId())
                .setProtocol(io.egressctl.events.Protocol.valueOf(r.protocol().toUpperCase()))
                .setAction(explicit ? io.egressctl.events.RuleAction.valueOf(r.action().toUpperCase()) : null)
                .setPriority(r.priority() == null ? EgressRule.DEFAULT_PRIORITY : r.priority())
                .setSourceCidrs(r.sourceCidrs()).setSourceVmIds(r.sourceVmIds())
                .setDestinationCidrs(r.destinationCidrs()).setDestinationExceptCidrs(r.destinationExceptCidrs())
                .setStartPort(r.startPort()).setEndPort(r.endPort())
                .setIcmpType(r.icmpType()).setIcmpCode(r.icmpCode())
                .setDescription(r.description()).build());
    }

    /** All rules back as core values. */
    public List<EgressRule> ruleList() {
        return rules.keySet().stream().map(this::rule).toList();
    }
}
