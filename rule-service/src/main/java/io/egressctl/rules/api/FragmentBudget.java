package io.egressctl.rules.api;

import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.VmPlacement;
import io.egressctl.core.state.Decision;
import io.egressctl.core.state.Limits;
import io.egressctl.core.state.NetworkState;
import io.egressctl.schemas.view.NetworkView;
import org.springframework.http.HttpStatus;

import java.util.Map;
import java.util.TreeMap;
import java.util.function.BiFunction;

/**
 * The operator's fragment budget checked before publishing: the change is decided on a copy of the
 * network as its view shows it, by the same fold the compiler runs ({@link NetworkState}), and a
 * {@code FRAGMENT_TOO_LARGE} verdict is refused with 409 and the fold's reason. The log still decides
 * (a change racing another can pass here and be rejected there), but a request that cannot fit is
 * told so at once and nothing is published.
 */
final class FragmentBudget {

    private FragmentBudget() {
    }

    /**
     * Refuses {@code change} when the fold would reject it as too large for a host's fragment.
     *
     * @param change decides the change on the copy at the given position (the view's version + 1)
     */
    static void check(NetworkView view, Limits limits, BiFunction<NetworkState, Long, Decision> change) {
        if (view == null || view.network() == null) {
            return;
        }
        Map<String, EgressRule> rules = new TreeMap<>();
        for (EgressRule r : view.ruleList()) {
            rules.put(r.ruleId(), r);
        }
        Map<String, VmPlacement> vms = new TreeMap<>();
        view.vms().forEach((id, p) -> vms.put(id, new VmPlacement(id, view.networkId(), p.hostId(), p.interfaceName(), p.mac(),
                p.ipv4(), p.ipv6())));
        NetworkState copy = NetworkState.restore(view.networkId(), view.network(), rules, vms, Map.of(), view.configVersion(),
                view.version(), limits);
        Decision d = change.apply(copy, view.version() + 1);
        if (d.outcome() == Decision.Outcome.REJECTED && "FRAGMENT_TOO_LARGE".equals(d.code())) {
            throw new ApiException(HttpStatus.CONFLICT, "FRAGMENT_TOO_LARGE", d.reason(),
                    Map.of("limitBytes", limits.fragmentBytes()));
        }
    }
}
