package io.egressctl.rules.api;

import io.egressctl.core.event.RuleChange;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.state.Limits;
import io.egressctl.core.validation.RuleValidator;
import io.egressctl.rules.auth.Caller;
import io.egressctl.rules.publish.EventPublisher;
import io.egressctl.rules.views.NetworkNames;
import io.egressctl.rules.views.NetworkViews;
import io.egressctl.schemas.view.NetworkView;
import io.egressctl.schemas.view.RuleView;
import jakarta.servlet.http.HttpServletRequest;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.PutMapping;
import org.springframework.web.bind.annotation.RequestAttribute;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

import java.util.List;
import java.util.Map;

/** Egress rules of a network: create, list, read, update, delete. */
@RestController
@RequestMapping("/api/v1/networks/{networkId}/egress-rules")
class EgressRuleController {

    private final NetworkController networks;
    private final EventPublisher publisher;
    private final ChangeWriter writer;
    private final Limits limits;
    private final RuleValidator validator = new RuleValidator();

    EgressRuleController(NetworkController networks, NetworkViews views, EventPublisher publisher, ChangeWriter writer,
                         Limits limits) {
        this.networks = networks;
        this.publisher = publisher;
        this.writer = writer;
        this.limits = limits;
    }

    /** A {@code ResponseEntity}, or with {@code ?wait=} a {@code DeferredResult} of one (the wait holds no thread). */
    @PostMapping
    Object create(@RequestAttribute("egress.caller") Caller caller, @PathVariable String networkId,
                  @RequestBody Requests.RuleRequest body,
                  @RequestHeader(name = "If-Match", required = false) String ifMatch,
                  @RequestHeader(name = "Idempotency-Key", required = false) String idempotencyKey,
                  @RequestParam(required = false) String wait,
                  @RequestParam(required = false) String timeout,
                  HttpServletRequest request) {
        NetworkView view = networks.visible(caller, networkId);
        Long expected = ChangeWriter.expectedVersion(ifMatch, view.configVersion());
        Network network = view.network();
        String fingerprint = idempotencyKey == null ? null : writer.fingerprint(request, body);
        Map<String, Object> ids = writer.once(caller, idempotencyKey, fingerprint, "ruleId", claim -> {
            String ruleId = claim.entityId();
            EgressRule rule = validator.validateRule(ruleId, body.draft(), network);
            checkConflicts(caller, view, rule, limits);
            RuleChange change = new RuleChange(claim.changeId(), RuleChange.Operation.RULE_CREATED, view.networkId(), expected, idempotencyKey,
                    null, null, rule, writer.audit(caller, request));
            FragmentBudget.check(view, limits, (copy, position) -> copy.applyRule(change, position));
            publisher.publish(change);
            return Map.of("changeId", claim.changeId(), "ruleId", ruleId);
        });
        return writer.answer(caller, ids, view.networkId(), wait, timeout, HttpStatus.CREATED);
    }

    @GetMapping
    List<RuleView> list(@RequestAttribute("egress.caller") Caller caller, @PathVariable String networkId,
                        @RequestParam(required = false) String protocol,
                        @RequestParam(required = false) String vmId) {
        NetworkView view = networks.visible(caller, networkId);
        return view.rules().values().stream()
                .filter(r -> protocol == null || r.protocol().equalsIgnoreCase(protocol))
                .filter(r -> vmId == null || coversVm(view, r, vmId))
                .toList();
    }

    @GetMapping("/{ruleId}")
    ResponseEntity<RuleView> get(@RequestAttribute("egress.caller") Caller caller, @PathVariable String networkId,
                                 @PathVariable String ruleId) {
        NetworkView view = networks.visible(caller, networkId);
        RuleView r = view.rules().get(ruleId);
        if (r == null) {
            throw ApiException.notFound("rule " + ruleId);
        }
        return ResponseEntity.ok().eTag("\"" + view.configVersion() + "\"").body(r);
    }

    /** A {@code ResponseEntity}, or with {@code ?wait=} a {@code DeferredResult} of one (the wait holds no thread). */
    @PutMapping("/{ruleId}")
    Object update(@RequestAttribute("egress.caller") Caller caller, @PathVariable String networkId,
                  @PathVariable String ruleId, @RequestBody Requests.RuleRequest body,
                  @RequestHeader(name = "If-Match", required = false) String ifMatch,
                  @RequestParam(required = false) String wait,
                  @RequestParam(required = false) String timeout,
                  HttpServletRequest request) {
        NetworkView view = networks.visible(caller, networkId);
        EgressRule before = existing(view, ruleId);
        Long expected = ChangeWriter.expectedVersion(ifMatch, view.configVersion());
        EgressRule after = validator.validateRule(ruleId, body.draft(), view.network());
        checkConflicts(caller, view, after, limits);
        Map<String, Object> ids = writer.once(claim -> {
            String changeId = claim.changeId();
            RuleChange change = new RuleChange(changeId, RuleChange.Operation.RULE_UPDATED, view.networkId(), expected, null,
                    null, before, after, writer.audit(caller, request));
            FragmentBudget.check(view, limits, (copy, position) -> copy.applyRule(change, position));
            publisher.publish(change);
            return Map.of("changeId", changeId, "ruleId", ruleId);
        });
        return writer.answer(caller, ids, view.networkId(), wait, timeout, HttpStatus.OK);
    }

    /** A {@code ResponseEntity}, or with {@code ?wait=} a {@code DeferredResult} of one (the wait holds no thread). */
    @DeleteMapping("/{ruleId}")
    Object delete(@RequestAttribute("egress.caller") Caller caller, @PathVariable String networkId,
                  @PathVariable String ruleId,
                  @RequestHeader(name = "If-Match", required = false) String ifMatch,
                  @RequestParam(required = false) String wait,
                  @RequestParam(required = false) String timeout,
                  HttpServletRequest request) {
        NetworkView view = networks.visible(caller, networkId);
        EgressRule before = existing(view, ruleId);
        Long expected = ChangeWriter.expectedVersion(ifMatch, view.configVersion());
        Map<String, Object> ids = writer.once(claim -> {
            String changeId = claim.changeId();
            publisher.publish(new RuleChange(changeId, RuleChange.Operation.RULE_DELETED, view.networkId(), expected, null,
                    null, before, null, writer.audit(caller, request)));
            return Map.of("changeId", changeId, "ruleId", ruleId);
        });
        return writer.answer(caller, ids, view.networkId(), wait, timeout, HttpStatus.OK);
    }

    private static EgressRule existing(NetworkView view, String ruleId) {
        EgressRule rule = view.rule(ruleId);
        if (rule == null) {
            throw ApiException.notFound("rule " + ruleId);
        }
        return rule;
    }

    /**
     * Fast feedback on what the log would reject anyway: duplicates and the quota (the network's own,
     * never above the operator's limit of rules per network).
     */
    static void checkConflicts(Caller caller, NetworkView view, EgressRule rule, Limits limits) {
        String key = rule.matchKey();
        for (EgressRule existing : view.ruleList()) {
            if (!existing.ruleId().equals(rule.ruleId()) && existing.matchKey().equals(key)) {
                throw new ApiException(HttpStatus.CONFLICT, "DUPLICATE_RULE", "an identical rule exists: " + existing.ruleId(),
                        Map.of("existingRuleId", existing.ruleId()));
            }
        }
        int quota = limits.effectiveQuota(view.ruleQuota());
        if (!view.rules().containsKey(rule.ruleId()) && view.rules().size() >= quota) {
            throw new ApiException(HttpStatus.CONFLICT, "QUOTA_EXCEEDED", "network " + NetworkNames.shown(caller, view.networkId()) + " already has its quota of "
                    + quota + " rules" + (quota < view.ruleQuota() ? " (the operator's limit of rules per network)" : ""),
                    Map.of("quota", quota));
        }
    }

    private static boolean coversVm(NetworkView view, RuleView r, String vmId) {
        NetworkView.VmView vm = view.vms().get(vmId);
        io.egressctl.core.model.Cidr v4 = vm == null || vm.ipv4() == null ? null : io.egressctl.core.model.Cidr.parse(vm.ipv4());
        io.egressctl.core.model.Cidr v6 = vm == null || vm.ipv6() == null ? null : io.egressctl.core.model.Cidr.parse(vm.ipv6());
        return io.egressctl.core.model.EgressRule.covers(r.sourceCidrs().stream().map(io.egressctl.core.model.Cidr::parse).toList(),
                r.sourceVmIds(), vmId, v4, v6);
    }
}
