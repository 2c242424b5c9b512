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
 * @param failedHosts  of the pending hosts, those whose last report is a NACK (their apply failed and
 *                     they keep enforcing their last good state) or refused this change's network
 *                     while applying their other networks; each with the agent's error
 */
public record ChangeStatus(String changeId, String networkId, String operation, String status, String code,
                           String reason, Long version, String ruleId, int hostsTotal, int hostsApplied,
                           List<String> pendingHosts, String compiledAt, List<FailedHost> failedHosts) {

    /** A host whose last apply failed (NACK), with the error its agent reported. */
    public record FailedHost(String hostId, String error, String reportedAt) {
    }

    public ChangeStatus {
        failedHosts = failedHosts == null ? List.of() : List.copyOf(failedHosts);
    }

    /** A status without failed hosts. */
    public ChangeStatus(String changeId, String networkId, String operation, String status, String code, String reason, Long version,
                        String ruleId, int hostsTotal, int hostsApplied, List<String> pendingHosts, String compiledAt) {
        this(changeId, networkId, operation, status, code, reason, version, ruleId, hostsTotal, hostsApplied, pendingHosts, compiledAt,
                List.of());
    }

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
