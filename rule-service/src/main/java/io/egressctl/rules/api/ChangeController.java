package io.egressctl.rules.api;

import io.egressctl.rules.auth.Caller;
import io.egressctl.rules.changes.ChangeStatus;
import io.egressctl.rules.changes.ChangeTracker;
import io.egressctl.rules.views.NetworkViews;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RequestAttribute;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/** Change status: published, compiled, applied on k of n hosts, or rejected with the reason. */
@RestController
@RequestMapping("/api/v1/changes")
class ChangeController {

    private final ChangeTracker tracker;
    private final NetworkViews views;

    ChangeController(ChangeTracker tracker, NetworkViews views) {
        this.tracker = tracker;
        this.views = views;
    }

    @GetMapping("/{changeId}")
    ChangeStatus get(@RequestAttribute("egress.caller") Caller caller, @PathVariable String changeId,
                     @RequestParam(required = false) String wait, @RequestParam(required = false) String timeout) {
        ChangeStatus s = wait == null ? tracker.find(changeId).orElseThrow(() -> ApiException.notFound("change " + changeId))
                : tracker.await(changeId, null, wait, ChangeWriter.parseTimeout(timeout));
        if (s.networkId() != null && !caller.operator()) {
            // Only the owner of the network may read its changes; a deleted network's changes stay readable to it.
            views.find(s.networkId()).filter(v -> !caller.canSee(v.tenantId()))
                    .ifPresent(v -> { throw ApiException.notFound("change " + changeId); });
        }
        if (s.status().equals("PUBLISHED") && s.networkId() == null) {
            throw ApiException.notFound("change " + changeId);
        }
        return s;
    }
}
