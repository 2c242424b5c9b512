package io.egressctl.agent.enforce;

import java.io.IOException;
import java.util.Optional;
import java.util.concurrent.Executor;

/**
 * One process kept started and idle, waiting for its input, so that starting it (with
 * {@code ip netns exec}) is off the path of the run that needs it: {@link #take} hands it over, and
 * {@link #refill} starts the next one in the background once that run is over. Used by the nft runner
 * and the conntrack flow table, whose tools read the kernel only once they read their input. A spare
 * that died is not handed over; one started too many ends on its empty input. Thread-safe.
 */
final class SpareProcess {

    /** Starts the process (the same command every time). */
    @FunctionalInterface
    interface Starter {
        Process start() throws EnforcementException;
    }

    private final Starter starter;
    private final Executor background;
    /** The idle process, or null. Guarded by this. */
    private Process spare;

    /** @param background where the next spare is started (off the caller's path) */
    SpareProcess(Starter starter, Executor background) {
        this.starter = starter;
        this.background = background;
    }

    /** The spare, if one is alive (it is then no longer the spare), else null: the caller starts its own. */
    synchronized Process take() {
        Process p = spare;
        spare = null;
        return p != null && p.isAlive() ? p : null;
    }

    /** Starts the next spare in the background. */
    void refill() {
        background.execute(this::startOne);
    }

    private void startOne() {
        try {
            Process p = starter.start();
            synchronized (this) {
                if (spare == null) {
                    spare = p;
                    return;
                }
            }
            p.getOutputStream().close(); // one spare is enough: this one ends on its empty input
        } catch (EnforcementException | IOException e) {
            // The next run starts its own process and says why if it cannot.
        }
    }

    /** The idle process, if one is alive (tests, logs). */
    synchronized Optional<ProcessHandle> handle() {
        return spare != null && spare.isAlive() ? Optional.of(spare.toHandle()) : Optional.empty();
    }
}
