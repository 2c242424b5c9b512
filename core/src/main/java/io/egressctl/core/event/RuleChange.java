package io.egressctl.core.event;

import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;

/**
 * A requested change to a network's egress configuration: the domain form of a RuleEvent.
 * Whether it is accepted is decided in log order by {@link io.egressctl.core.state.NetworkState}.
 *
 * @param expectedVersion the network config version the writer saw, or null to skip the check
 * @param network         the network after the change (network operations), else null
 * @param ruleBefore      the rule as the writer saw it (update, delete), else null
 * @param ruleAfter       the rule after the change (create, update), else null
 */
public record RuleChange(String eventId, Operation operation, String networkId, Long expectedVersion,
                         String idempotencyKey, Network network, EgressRule ruleBefore, EgressRule ruleAfter,
                         Audit audit) {

    /** Stable operation codes, the same as the Avro RuleOperation symbols. */
    public enum Operation {
        NETWORK_CREATED, NETWORK_UPDATED, NETWORK_DELETED, RULE_CREATED, RULE_UPDATED, RULE_DELETED
    }

    /** The rule id this change is about, or null for network operations. */
    public String ruleId() {
        return ruleAfter != null ? ruleAfter.ruleId() : ruleBefore != null ? ruleBefore.ruleId() : null;
    }
}
