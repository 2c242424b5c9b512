package io.egressctl.rules.changes;

import java.util.List;

/**
 * Where a change is on its way to the kernels.
 *
 * @param status       PUBLISHED (in the log, not compiled yet), COMPILED (fragments written, hosts
 *                     pending), APPLIED (every affected host ACKed a version that includes it) or
 *                     REJECTED (decided against in log order; see code and reason)
 * @param hostsTotal   hosts whose fragments the change touched
 * @param hostsApplied of those, hosts that acknowledged a version including it
 * @param pendingHosts hosts still to acknowledge
 */
public record ChangeStatus(String changeId, String networkId, String operation, String status, String code,
                           String reason, Long version, String ruleId, int hostsTotal, int hostsApplied,
                           List<String> pendingHosts, String compiledAt) {

    public boolean isFinal() {
        return status.equals("APPLIED") || status.equals("REJECTED");
    }

    /** True when the change has reached {@code level} (compiled or applied) or can never reach it. */
    public boolean reached(String level) {
        return switch (level) {
            case "compiled" -> !status.equals("PUBLISHED");
            case "applied" -> isFinal();
            default -> true;
        };
    }
}
