package io.egressctl.agent.enforce;

/**
 * The seam between the agent and the kernel's connection tracking: ends the established flows of
 * one VM port after a new block (issue 11: "a new block ends what it blocks"). The ruleset stamps
 * every flow a VM starts with its port's mark ({@code ct state new ct mark set meta mark}), so one
 * port's flows are the conntrack entries carrying that mark; each one's next packet is then
 * decided by the rules in force (TCP's loose pick-up makes it {@code new} again). Flows started
 * towards the VM carry mark 0 and are left alone. Called from the agent's one sync thread.
 */
public interface FlowTable {

    /** A flow table that ends nothing (the dry-run enforcer has no kernel flows). */
    FlowTable NONE = new FlowTable() {
        @Override
        public String name() {
            return "none";
        }

        @Override
        public long endFlows(int mark) {
            return 0;
        }
    };

    /** Short name for logs, e.g. {@code conntrack}. */
    String name();

    /**
     * Deletes every tracked flow whose conntrack mark is {@code mark}.
     *
     * @return how many entries were deleted (0 when there were none), or -1 when the tool did not say
     * @throws EnforcementException when the flows could not be ended (the tool is missing, not
     *                              permitted, or failed), with its own message
     */
    long endFlows(int mark) throws EnforcementException;

    /**
     * Deletes every tracked flow whose conntrack mark is one of {@code marks}: what an apply that
     * blocks more on several ports asks for. The default ends them one mark at a time; a table that
     * can do it in one go (one process, started ahead) overrides it, since the flows are ended before
     * the apply is reported and every process started is on that path.
     *
     * @return how many entries were deleted, or -1 when the tool did not say
     * @throws EnforcementException when the flows could not be ended, with the tool's own message
     */
    default long endFlows(java.util.List<Integer> marks) throws EnforcementException {
        long total = 0;
        for (int mark : marks) {
            long n = endFlows(mark);
            total = n < 0 || total < 0 ? -1 : total + n;
        }
        return total;
    }
}
