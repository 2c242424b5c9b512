package io.egressctl.rules.api;

import io.egressctl.core.event.RuleChange;
import io.egressctl.core.model.Network;
import io.egressctl.core.state.Limits;
import io.egressctl.core.validation.RuleValidator;
import io.egressctl.core.validation.ValidationException;
import io.egressctl.core.validation.Violation;
import io.egressctl.rules.auth.Caller;
import io.egressctl.rules.publish.EventPublisher;
import io.egressctl.rules.views.NetworkNames;
import io.egressctl.rules.views.NetworkViews;
import io.egressctl.schemas.view.NetworkView;
import jakarta.servlet.http.HttpServletRequest;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PatchMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestAttribute;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Guest networks: create, read, change the default egress policy or keepEstablished, delete. A tenant
 * names its networks in its own namespace ({@link NetworkNames}): the {@code networkId} it posts and
 * sees is its name, whatever the network's log id, and another tenant's network of the same name is
 * neither found nor in the way.
 */
@RestController
@RequestMapping("/api/v1/networks")
class NetworkController {

    private final NetworkViews views;
    private final NetworkNames names;
    private final EventPublisher publisher;
    private final ChangeWriter writer;
    private final Limits limits;
    private final RuleValidator validator = new RuleValidator();

    NetworkController(NetworkViews views, NetworkNames names, EventPublisher publisher, ChangeWriter writer, Limits limits) {
        this.views = views;
        this.names = names;
        this.publisher = publisher;
        this.writer = writer;
        this.limits = limits;
    }

    /** A {@code ResponseEntity}, or with {@code ?wait=} a {@code DeferredResult} of one (the wait holds no thread). */
    @PostMapping
    Object create(@RequestAttribute("egress.caller") Caller caller,
                  @RequestBody Requests.NetworkRequest body,
                  @RequestParam(required = false) String wait,
                  @RequestParam(required = false) String timeout,
                  @RequestHeader(name = "Idempotency-Key", required = false) String idempotencyKey,
                  HttpServletRequest request) {
        Network named = validator.validateNetwork(body.draft(), caller.tenantId(), limits);
        String name = named.networkId();
        String fingerprint = idempotencyKey == null ? null : writer.fingerprint(request, body);
        AtomicReference<String> logId = new AtomicReference<>();
        Map<String, Object> ids = writer.once(caller, idempotencyKey, fingerprint, "networkId", name, claim -> {
            // Checked inside the claim: a retry of a create that went through finds it done (its stored
            // answer), not NETWORK_EXISTS. Only the caller's own networks count: another tenant's network
            // of this name is not in the way, and nothing in the answer tells that it exists.
            if (names.find(caller, name).isPresent()) {
                throw new ApiException(HttpStatus.CONFLICT, "NETWORK_EXISTS", "network " + name + " already exists");
            }
            int owned = views.networkIds(caller.tenantId()).size();
            if (owned >= limits.networksPerTenant()) {
                throw new ApiException(HttpStatus.CONFLICT, "NETWORK_LIMIT_EXCEEDED", "tenant " + caller.tenantId() + " already has "
                        + owned + " networks, the operator's limit of networks per tenant is " + limits.networksPerTenant(),
                        Map.of("limit", limits.networksPerTenant()));
            }
            Network network = named.withNetworkId(names.allocate(caller.tenantId(), name));
            logId.set(network.networkId());
            publisher.publish(new RuleChange(claim.changeId(), RuleChange.Operation.NETWORK_CREATED, network.networkId(), null,
                    idempotencyKey, network, null, null, writer.audit(caller, request)));
            return Map.of("changeId", claim.changeId(), "networkId", NetworkNames.shown(caller, network.networkId()));
        });
        // An idempotent replay did not run the publish: the network's log id is then read back.
        String published = logId.get() != null ? logId.get() : names.find(caller, name).map(NetworkView::networkId).orElse(name);
        return writer.answer(caller, ids, published, wait, timeout, HttpStatus.CREATED);
    }

    @GetMapping
    List<NetworkView> list(@RequestAttribute("egress.caller") Caller caller) {
        List<NetworkView> out = new ArrayList<>();
        for (String id : views.networkIds(caller.tenantId())) {
            views.find(id).ifPresent(v -> out.add(NetworkNames.shown(caller, v)));
        }
        return out;
    }

    @GetMapping("/{networkId}")
    ResponseEntity<NetworkView> get(@RequestAttribute("egress.caller") Caller caller, @PathVariable String networkId) {
        NetworkView v = visible(caller, networkId);
        return ResponseEntity.ok().eTag("\"" + v.configVersion() + "\"").body(NetworkNames.shown(caller, v));
    }

    /** A {@code ResponseEntity}, or with {@code ?wait=} a {@code DeferredResult} of one (the wait holds no thread). */
    @PatchMapping("/{networkId}")
    Object patch(@RequestAttribute("egress.caller") Caller caller, @PathVariable String networkId,
                 @RequestBody Requests.NetworkPatch body,
                 @RequestHeader(name = "If-Match", required = false) String ifMatch,
                 @RequestParam(required = false) String wait,
                 @RequestParam(required = false) String timeout,
                 HttpServletRequest request) {
        NetworkView v = visible(caller, networkId);
        Long expected = ChangeWriter.expectedVersion(ifMatch, v.configVersion());
        Network updated = patched(v.network(), body);
        Map<String, Object> ids = writer.once(claim -> {
            String changeId = claim.changeId();
            publisher.publish(new RuleChange(changeId, RuleChange.Operation.NETWORK_UPDATED, v.networkId(), expected, null,
                    updated, null, null, writer.audit(caller, request)));
            return Map.of("changeId", changeId, "networkId", networkId);
        });
        return writer.answer(caller, ids, v.networkId(), wait, timeout, HttpStatus.OK);
    }

    /** A {@code ResponseEntity}, or with {@code ?wait=} a {@code DeferredResult} of one (the wait holds no thread). */
    @DeleteMapping("/{networkId}")
    Object delete(@RequestAttribute("egress.caller") Caller caller, @PathVariable String networkId,
                  @RequestHeader(name = "If-Match", required = false) String ifMatch,
                  @RequestParam(required = false) String wait,
                  @RequestParam(required = false) String timeout,
                  HttpServletRequest request) {
        NetworkView v = visible(caller, networkId);
        Long expected = ChangeWriter.expectedVersion(ifMatch, v.configVersion());
        if (!v.vms().isEmpty()) {
            // As in CloudStack: a network with VMs cannot go; compute removes its VMs first.
            throw new ApiException(HttpStatus.CONFLICT, "NETWORK_IN_USE", "network " + networkId + " still has "
                    + v.vms().size() + " VMs placed; remove them first", Map.of("vms", v.vms().size()));
        }
        Map<String, Object> ids = writer.once(claim -> {
            String changeId = claim.changeId();
            publisher.publish(new RuleChange(changeId, RuleChange.Operation.NETWORK_DELETED, v.networkId(), expected, null,
                    null, null, null, writer.audit(caller, request)));
            return Map.of("changeId", changeId, "networkId", networkId);
        });
        return writer.answer(caller, ids, v.networkId(), wait, timeout, HttpStatus.OK);
    }

    /** The network with a patch's settings; a field left out keeps its value, and at least one is given. */
    static Network patched(Network current, Requests.NetworkPatch body) {
        if (body.defaultPolicy() == null && body.keepEstablished() == null) {
            throw new ValidationException("defaultPolicy", "is required: allow or deny (or give keepEstablished: true or false)");
        }
        Network updated = current;
        if (body.defaultPolicy() != null) {
            List<Violation> violations = new ArrayList<>();
            var policy = RuleValidator.parsePolicy(body.defaultPolicy(), violations);
            if (!violations.isEmpty()) {
                throw new ValidationException(violations);
            }
            updated = updated.withDefaultPolicy(policy);
        }
        if (body.keepEstablished() != null) {
            updated = updated.withKeepEstablished(body.keepEstablished());
        }
        return updated;
    }

    /** The operator's limits the API checks writes against. */
    Limits limits() {
        return limits;
    }

    /**
     * The caller's network of that name (an operator's: of that log id), as stored: its {@code networkId}
     * is the log id, which events carry. Another tenant's network answers 404, as a missing one.
     */
    NetworkView visible(Caller caller, String networkId) {
        return names.find(caller, networkId).orElseThrow(() -> ApiException.notFound("network " + networkId));
    }
}
