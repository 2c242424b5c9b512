package io.egressctl.cli.chaos;

import java.util.List;

/**
 * Does one fault to the running control plane and brings the component back: {@link #inject} returns
 * once the killed (or paused) process runs again and is healthy. {@code ./egressctl chaos} does it
 * with {@code scripts/faults.sh} ({@link ScriptFaults}); the end-to-end tests with the processes of
 * their own fixture.
 */
public interface FaultInjector {

    /**
     * Every fault the suite knows, in the order it runs them by default: Redis emptied last, as the
     * state it takes away (checkpoints, views, snapshots of every host) weighs on every round after it.
     */
    List<String> FAULTS = List.of("compiler", "agent", "rule-service", "kafka", "registry", "compiler-pause", "redis");

    /** Kills (or pauses) and restarts; blocks until the component is back. */
    void inject(String fault) throws Exception;

    /** Undoes what the fault left behind once its round is measured (e.g. a second compiler); nothing by default. */
    default void after(String fault) throws Exception {
    }

    /** The host whose agent the {@code agent} fault kills, so the suite gives it VMs. */
    default String agentHost(List<String> hosts) {
        return hosts.size() > 1 ? hosts.get(1) : hosts.get(0);
    }
}
