package io.egressctl.rules.api;

import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.validation.Identifiers;
import io.egressctl.core.validation.ValidationException;
import io.egressctl.rules.auth.Caller;
import io.egressctl.rules.publish.EventPublisher;
import io.egressctl.rules.views.NetworkViews;
import io.egressctl.schemas.mapping.EventMapper;
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
 * publish straight to Kafka.
 */
@RestController
@RequestMapping("/api/v1/networks/{networkId}/placements")
class PlacementController {

    private final NetworkViews views;
    private final EventPublisher publisher;
    private final ChangeWriter writer;

    PlacementController(NetworkViews views, EventPublisher publisher, ChangeWriter writer) {
        this.views = views;
        this.publisher = publisher;
        this.writer = writer;
    }

    @PutMapping("/{vmId}")
    ResponseEntity<Map<String, Object>> place(@RequestAttribute("egress.caller") Caller caller, @PathVariable String networkId,
                                              @PathVariable String vmId, @RequestBody Requests.PlacementRequest body,
                                              @RequestParam(required = false) String wait,
                                              @RequestParam(required = false) String timeout,
                                              HttpServletRequest request) {
        requireOperator(caller);
        Identifiers.require("networkId", networkId);
        Identifiers.require("vmId", vmId);
        Identifiers.require("hostId", body.hostId());
        if (body.ipv4() == null && body.ipv6() == null) {
            throw new ValidationException("ipv4", "a VM needs an IPv4 or IPv6 address");
        }
        String v4 = EventMapper.address("ipv4", body.ipv4(), true);
        String v6 = EventMapper.address("ipv6", body.ipv6(), false);
        NetworkView view = views.find(networkId).orElse(null);
        if (view != null && v4 != null && !view.network().guestCidr().containsAddress(v4)) {
            throw new ValidationException("ipv4", v4 + " is outside the guest CIDR " + view.guestCidr());
        }
        NetworkView.VmView current = view == null ? null : view.vms().get(vmId);
        boolean move = current != null && !current.hostId().equals(body.hostId());
        String changeId = ChangeWriter.newId();
        publisher.publish(new WorkloadChange(changeId, move ? WorkloadChange.Operation.VM_MOVED : WorkloadChange.Operation.VM_PLACED,
                networkId, vmId, body.hostId(), move ? current.hostId() : null, v4, v6, writer.audit(caller, request)));
        return writer.answer(Map.of("changeId", changeId, "vmId", vmId), networkId, wait, timeout, HttpStatus.OK);
    }

    @DeleteMapping("/{vmId}")
    ResponseEntity<Map<String, Object>> remove(@RequestAttribute("egress.caller") Caller caller, @PathVariable String networkId,
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
                null, null, null, writer.audit(caller, request)));
        return writer.answer(Map.of("changeId", changeId, "vmId", vmId), networkId, wait, timeout, HttpStatus.OK);
    }

    private static void requireOperator(Caller caller) {
        if (!caller.operator()) {
            throw new ApiException(HttpStatus.FORBIDDEN, "FORBIDDEN", "placements are managed by the operator role");
        }
    }
}
