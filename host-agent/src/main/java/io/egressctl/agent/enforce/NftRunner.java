package io.egressctl.agent.enforce;

import java.util.List;

/**
 * Runs the {@code nft} binary: the one OS dependency of the nftables enforcer, behind an interface
 * so unit tests use a fake with fault injection and integration tests the real binary. Input goes
 * through stdin ({@code nft -f -}), never through a shell or a command line built from text.
 */
public interface NftRunner {

    /** nft's arguments for one transaction read from stdin. */
    List<String> APPLY = List.of("-f", "-");

    /** nft's arguments for a transaction read from stdin that the kernel checks and does not commit. */
    List<String> CHECK = List.of("-c", "-f", "-");

    /**
     * Runs nft once.
     *
     * @param stdin what to write to nft's standard input (empty for none)
     * @param args  nft's arguments, for example {@code -f -} or {@code -j list table inet egressctl}
     * @return the exit code and both outputs
     * @throws EnforcementException when nft could not be started, or did not finish in time
     */
    Result run(String stdin, List<String> args) throws EnforcementException;

    /**
     * Starts nft once and returns at once, so the caller can work while nft does; {@link Pending#await}
     * gives what {@link #run} would have. This default runs nft to the end first.
     *
     * @throws EnforcementException when nft could not be started
     */
    default Pending start(String stdin, List<String> args) throws EnforcementException {
        Result r = run(stdin, args);
        return () -> r;
    }

    /** An nft run under way. */
    interface Pending {
        /**
         * Waits for the run to end.
         *
         * @throws EnforcementException when it did not finish in time or its output could not be read
         */
        Result await() throws EnforcementException;
    }

    /** What one nft run returned. */
    record Result(int exitCode, String stdout, String stderr) {

        public boolean ok() {
            return exitCode == 0;
        }

        /** stderr trimmed, or a note that it was empty: what an error report shows. */
        public String errorText() {
            String e = stderr == null ? "" : stderr.strip();
            return e.isEmpty() ? "(nft wrote nothing to stderr)" : e;
        }
    }
}
