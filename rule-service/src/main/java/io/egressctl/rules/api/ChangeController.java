package io.egressctl.rules.api;

import io.egressctl.rules.auth.Caller;
import io.egressctl.rules.changes.ChangeStatus;
import io.egressctl.rules.changes.ChangeTracker;
import io.egressctl.rules.changes.ChangeWaiters;
import io.egressctl.rules.views.NetworkNames;
import io.egressctl.rules.views.NetworkViews;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RequestAttribute;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;

/** Change status: published, compiled, applied on k of n hosts, or rejected with the reason. */
@RestController
@RequestMapping("/api/v1/changes")
class ChangeController {

    private final ChangeTracker tracker;
    private final ChangeWaiters waiters;
    private final NetworkViews views;

    ChangeController(ChangeTracker tracker, ChangeWaiters waiters, NetworkViews views) {
        this.tracker = tracker;
        this.waiters = waiters;
        this.views = views;
    }

    /**
     * The change's status; with {@code ?wait=} once it reached the level or the timeout passed (200
     * with the status so far), answered from a {@code DeferredResult} that holds no thread. The
     * caller's right to the change's network is checked before it waits, on the status as read then;
     * a change not recorded yet has no network to check, so it is checked again on the answer.
     *
     * @return a {@link ChangeStatus}, or a {@code DeferredResult} of one
     */
    @GetMapping("/{changeId}")
    Object get(@RequestAttribute("egress.caller") Caller caller, @PathVariable String changeId,
               @RequestParam(required = false) String wait, @RequestParam(required = false) String timeout) {
        if (wait == null) {
            return answer(caller, tracker.find(changeId).orElseThrow(() -> ApiException.notFound("change " + changeId)));
        }
        Duration t = ChangeWriter.parseTimeout(timeout);
        // A network's tenant never changes: checked once on a status that names it, the answer needs no
        // second look (thousands of waiters completed together would each read the view again).
        AtomicBoolean checked = new AtomicBoolean();
        return AsyncAnswer.of(waiters.await(changeId, null, wait, t, s -> {
            admit(caller, s);
            checked.set(s.networkId() != null);
        }), s -> checked.get() && s.networkId() != null ? NetworkNames.shown(caller, s) : answer(caller, s), t);
    }

    /**
     * Refuses (404, as for a change that does not exist) a caller whose tenant may not see the change's
     * network; a change not recorded yet names no network and passes.
     */
    private void admit(Caller caller, ChangeStatus s) {
        if (s.networkId() != null && !caller.operator()) {
            // Only the owner of the network may read its changes; a deleted network's changes stay readable to it.
            views.find(s.networkId()).filter(v -> !caller.canSee(v.tenantId()))
                    .ifPresent(v -> { throw ApiException.notFound("change " + s.changeId()); });
        }
    }

    /** The status, or 404 when the caller may not see it or no compiler has recorded the change. */
    private ChangeStatus answer(Caller caller, ChangeStatus s) {
        admit(caller, s);
        if (s.status().equals("PUBLISHED") && s.networkId() == null) {
            throw ApiException.notFound("change " + s.changeId());
        }
        return NetworkNames.shown(caller, s);
    }
}
