package io.egressctl.rules.cloudstack;

import io.egressctl.core.event.RuleChange;
import io.egressctl.rules.auth.Caller;
import io.egressctl.rules.changes.ChangeStatus;
import io.egressctl.schemas.view.NetworkView;

import java.util.List;
import java.util.Optional;

/**
 * What the CloudStack endpoint needs of the rest of rule-service: the networks' read model, the
 * event log and change status. {@link SpringCloudStackBackend} wires the real ones.
 */
public interface CloudStackBackend {

    Optional<NetworkView> network(String networkId);

    /**
     * The network {@code caller} names {@code name} (for a tenant, its own network of that name, never
     * another tenant's; for an operator, the network of that log id), as stored (log id). By default a
     * network of that id the caller may see.
     */
    default Optional<NetworkView> visible(Caller caller, String name) {
        return network(name).filter(v -> caller.canSee(v.tenantId()));
    }

    /** Ids of a tenant's networks. */
    List<String> networkIds(String tenantId);

    /** Ids of every tenant's networks (operators with listall). */
    List<String> allNetworkIds();

    /** Publishes an accepted change and waits for the broker's acknowledgement. */
    void publish(RuleChange change);

    /** Status of a change, empty while no compiler has recorded it. */
    Optional<ChangeStatus> change(String changeId);
}
