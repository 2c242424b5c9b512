package io.egressctl.core.state;

/**
 * The log-order verdict on one event for one network. Deterministic: the same event at the same
 * position over the same state always gets the same decision, on every replay.
 *
 * @param outcome        accepted, rejected, or already seen
 * @param code           stable reason code for rejections (e.g. {@code STALE_VERSION}), else null
 * @param reason         human-readable reason for rejections, else null
 * @param ruleId         the rule concerned (for a duplicate rule: the existing one's id), may be null
 */
public record Decision(Outcome outcome, String code, String reason, String ruleId) {

    /** What became of the event. */
    public enum Outcome {
        ACCEPTED,
        REJECTED,
        /** Already decided at this or a later log position (redelivery, replay): ignored. */
        ALREADY_APPLIED
    }

    public static Decision accepted(String ruleId) {
        return new Decision(Outcome.ACCEPTED, null, null, ruleId);
    }

    public static Decision rejected(String code, String reason, String ruleId) {
        return new Decision(Outcome.REJECTED, code, reason, ruleId);
    }

    public static Decision alreadyApplied() {
        return new Decision(Outcome.ALREADY_APPLIED, null, null, null);
    }

    public boolean isAccepted() {
        return outcome == Outcome.ACCEPTED;
    }
}
