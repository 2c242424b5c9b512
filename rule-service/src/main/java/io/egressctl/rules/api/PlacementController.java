package io.egressctl.rules.api;

import io.egressctl.core.event.WorkloadChange;
import io.egressctl.rules.auth.Caller;
import io.egressctl.rules.publish.EventPublisher;
import io.egressctl.rules.views.NetworkNames;
import io.egressctl.rules.views.NetworkViews;
import io.egressctl.schemas.view.NetworkView;
import jakarta.servlet.http.HttpServletRequest;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PutMapping;
import org.springframework.web.bind.annotation.RequestAttribute;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

import java.util.Map;

/**
 * VM placements for upstream compute (operator role): the same WorkloadEvents compute may also
 * publish straight to Kafka. A placement names the VM's interface on its host, its identity there;
 * with {@code ?wait=applied} the answer comes once every affected host enforces it, which is the
 * gate compute holds a VM's boot on. Every event it publishes is bound to the network's owning
 * tenant ({@code networkTenantId}), so the log decides it only against that tenant's network.
 */
@RestController
@RequestMapping("/api/v1/networks/{networkId}/placements")
class PlacementController {

    private final NetworkViews views;
    private final NetworkNames names;
    private final EventPublisher publisher;
    private final ChangeWriter writer;
    private final io.egressctl.core.state.Limits limits;

    PlacementController(NetworkViews views, NetworkNames names, EventPublisher publisher, ChangeWriter writer,
                        io.egressctl.core.state.Limits limits) {
        this.views = views;
        this.names = names;
        this.publisher = publisher;
        this.writer = writer;
        this.limits = limits;
    }

    /** A {@code ResponseEntity}, or with {@code ?wait=} a {@code DeferredResult} of one (the wait holds no thread). */
    @PutMapping("/{vmId}")
    Object place(@RequestAttribute("egress.caller") Caller caller, @PathVariable String networkId,
                 @PathVariable String vmId, @RequestBody Requests.PlacementRequest body,
                 @RequestParam(required = false) String wait,
                 @RequestParam(required = false) String timeout,
                 HttpServletRequest request) {
        requireOperator(caller);
        Placements.Placement p = Placements.validate(networkId, vmId, body);
        NetworkView view = views.find(networkId).orElse(null);
        String tenant = Placements.owningTenant(networkId, view != null ? view.tenantId() : names.tenantOf(networkId).orElse(null), body);
        Placements.requireInsideGuestCidr(p, view);
        // Refused here, before anything is published. Two placements racing for one interface both
        // pass this check; the log then decides: NetworkState rejects the second of one network
        // (REJECTED INTERFACE_IN_USE), and a host fails closed on an interface two networks claim.
        Placements.requireInterfaceFree(p, view, views.interfaceHolder(p.hostId(), p.interfaceName()).orElse(null), views::find);
        NetworkView.VmView current = view == null ? null : view.vms().get(vmId);
        boolean move = current != null && !current.hostId().equals(p.hostId());
        String changeId = ChangeWriter.newId();
        WorkloadChange change = new WorkloadChange(changeId, move ? WorkloadChange.Operation.VM_MOVED : WorkloadChange.Operation.VM_PLACED,
                networkId, vmId, p.hostId(), move ? current.hostId() : null, p.interfaceName(), p.mac(), p.ipv4(), p.ipv6(),
                writer.audit(caller, request), tenant);
        FragmentBudget.check(view, limits, (copy, position) -> copy.applyWorkload(change, position));
        publisher.publish(change);
        return writer.answer(caller, Map.of("changeId", changeId, "vmId", vmId), networkId, wait, timeout, HttpStatus.OK);
    }

    /** A {@code ResponseEntity}, or with {@code ?wait=} a {@code DeferredResult} of one (the wait holds no thread). */
    @DeleteMapping("/{vmId}")
    Object remove(@RequestAttribute("egress.caller") Caller caller, @PathVariable String networkId,
                  @PathVariable String vmId,
                  @RequestParam(required = false) String wait,
                  @RequestParam(required = false) String timeout,
                  HttpServletRequest request) {
        requireOperator(caller);
        NetworkView view = views.find(networkId).orElseThrow(() -> ApiException.notFound("network " + networkId));
        NetworkView.VmView current = view.vms().get(vmId);
        if (current == null) {
            throw ApiException.notFound("vm " + vmId + " in network " + networkId);
        }
        String changeId = ChangeWriter.newId();
        publisher.publish(new WorkloadChange(changeId, WorkloadChange.Operation.VM_REMOVED, networkId, vmId, current.hostId(),
                null, null, null, writer.audit(caller, request)).boundTo(view.tenantId()));
        return writer.answer(caller, Map.of("changeId", changeId, "vmId", vmId), networkId, wait, timeout, HttpStatus.OK);
    }

    private static void requireOperator(Caller caller) {
        if (!caller.operator()) {
            throw new ApiException(HttpStatus.FORBIDDEN, "FORBIDDEN", "placements are managed by the operator role");
        }
    }
}
