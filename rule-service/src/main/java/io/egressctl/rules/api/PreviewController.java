package io.egressctl.rules.api;

import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.FragmentCompiler;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.VmPlacement;
import io.egressctl.core.render.NftRenderer;
import io.egressctl.core.state.NetworkState;
import io.egressctl.core.validation.RuleValidator;
import io.egressctl.rules.auth.Caller;
import io.egressctl.rules.views.NetworkNames;
import io.egressctl.schemas.view.NetworkView;
import io.egressctl.schemas.view.RuleView;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestAttribute;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RestController;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Dry-run of a rule create: validates the rule against the network's current view, compiles the
 * network with it added, and answers which VMs and hosts it would reach and the nft statements it
 * would add there: one {@code add element} per element the rule gets in the host's shared sets
 * (keyed by each covered VM's address, commented {@code r=preview h=<hash>}), then the forward
 * chain's lookups of those sets. Nothing is published and nothing is written.
 *
 * <p>The path has a literal colon in its last segment ({@code egress-rules:preview}, the AIP-136
 * custom-method style); Spring's path patterns treat it as plain text, and a client may also send it
 * percent-encoded ({@code egress-rules%3Apreview}).
 */
@RestController
class PreviewController {

    /** The id the previewed rule carries in the rendered lines (a real create gets a fresh UUID). */
    static final String PREVIEW_RULE_ID = "preview";

    private final NetworkController networks;
    private final RuleValidator validator = new RuleValidator();
    private final FragmentCompiler compiler = new FragmentCompiler();
    private final NftRenderer renderer = new NftRenderer();

    private final io.egressctl.core.state.Limits limits;

    @org.springframework.beans.factory.annotation.Autowired
    PreviewController(NetworkController networks, io.egressctl.core.state.Limits limits) {
        this.networks = networks;
        this.limits = limits;
    }

    /** A preview under the default limits (tests). */
    PreviewController(NetworkController networks) {
        this(networks, io.egressctl.core.state.Limits.defaults());
    }

    @PostMapping("/api/v1/networks/{networkId}/egress-rules:preview")
    ResponseEntity<Map<String, Object>> preview(@RequestAttribute("egress.caller") Caller caller, @PathVariable String networkId,
                                                @RequestBody Requests.RuleRequest body) {
        NetworkView view = networks.visible(caller, networkId);
        return ResponseEntity.ok().eTag("\"" + view.configVersion() + "\"").body(preview(caller, view, body));
    }

    /** The preview as the operator sees it (tests). */
    Map<String, Object> preview(NetworkView view, Requests.RuleRequest body) {
        return preview(new Caller("test", "ops", true), view, body);
    }

    /**
     * The preview of {@code body} on {@code view} for {@code caller} (who sees the network by its name);
     * throws the same validation errors as a create.
     */
    Map<String, Object> preview(Caller caller, NetworkView view, Requests.RuleRequest body) {
        Network network = view.network();
        EgressRule rule = validator.validateRule(PREVIEW_RULE_ID, body.draft(), network);

        Map<String, Object> conflict = null;
        try {
            EgressRuleController.checkConflicts(caller, view, rule, limits);
        } catch (ApiException e) {
            conflict = new LinkedHashMap<>();
            conflict.put("code", e.code());
            conflict.put("detail", e.getMessage());
            conflict.putAll(e.properties());
        }

        Map<String, EgressRule> rules = new TreeMap<>();
        for (EgressRule r : view.ruleList()) {
            rules.put(r.ruleId(), r);
        }
        rules.put(rule.ruleId(), rule);
        Map<String, VmPlacement> vms = new TreeMap<>();
        view.vms().forEach((id, p) -> vms.put(id, new VmPlacement(id, view.networkId(), p.hostId(), p.interfaceName(), p.mac(), p.ipv4(), p.ipv6())));
        NetworkState state = NetworkState.restore(view.networkId(), network, rules, vms, Map.of(), view.configVersion(), 0);

        List<Map<String, Object>> hosts = new ArrayList<>();
        List<Map<String, Object>> affectedVms = new ArrayList<>();
        Set<String> allLines = new LinkedHashSet<>();
        for (Map.Entry<String, Fragment> e : compiler.compile(state).entrySet()) {
            String hostId = e.getKey();
            Fragment fragment = e.getValue();
            CompiledRule compiled = fragment.rules().stream().filter(r -> r.ruleId().equals(PREVIEW_RULE_ID)).findFirst().orElse(null);
            if (compiled == null) {
                continue;
            }
            List<String> lines = renderer.ruleStatements(new TreeMap<>(Map.of(view.networkId(), fragment)), PREVIEW_RULE_ID);
            allLines.addAll(lines);
            Map<String, Object> host = new LinkedHashMap<>();
            host.put("hostId", hostId);
            host.put("vmIds", compiled.vmIds());
            host.put("nftLines", lines);
            hosts.add(host);
            for (String vmId : compiled.vmIds()) {
                NetworkView.VmView vm = view.vms().get(vmId);
                Map<String, Object> v = new LinkedHashMap<>();
                v.put("vmId", vmId);
                v.put("hostId", hostId);
                if (vm.interfaceName() != null) {
                    v.put("interfaceName", vm.interfaceName());
                }
                if (vm.ipv4() != null) {
                    v.put("ipv4", vm.ipv4());
                }
                if (vm.ipv6() != null) {
                    v.put("ipv6", vm.ipv6());
                }
                affectedVms.add(v);
            }
        }

        Map<String, Object> out = new LinkedHashMap<>();
        out.put("networkId", NetworkNames.shown(caller, view.networkId()));
        out.put("configVersion", view.configVersion());
        out.put("rule", RuleView.of(rule, network.defaultPolicy()));
        out.put("affectedVms", affectedVms);
        out.put("affectedHosts", hosts.stream().map(h -> h.get("hostId")).toList());
        out.put("hosts", hosts);
        out.put("nftLines", List.copyOf(allLines));
        if (conflict != null) {
            out.put("conflict", conflict);
        }
        out.put("published", false);
        return out;
    }
}
