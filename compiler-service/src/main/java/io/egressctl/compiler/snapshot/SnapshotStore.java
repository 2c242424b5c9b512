package io.egressctl.compiler.snapshot;

import io.egressctl.core.compile.FragmentUpdate;

import java.util.Map;

/**
 * Where the compiler materializes its output for readers that were not listening: per-host fragment
 * snapshots (agent bootstrap, invariant 4), network views (rule-service reads), change status and
 * hosts' applied state. Every write is guarded by version so replays and redeliveries never move a
 * value backwards (invariant 3).
 */
public interface SnapshotStore {

    /** How a guarded fragment write went. */
    enum WriteOutcome {
        /** Stored: it was newer than what the store held. */
        WRITTEN,
        /** The store already holds this very version. */
        SAME,
        /** The store holds a newer version; nothing written. */
        STALE
    }

    /** Writes one (host, network) fragment or tombstone if its version is not older than the stored one. */
    WriteOutcome writeFragment(FragmentUpdate update, byte[] encodedHostUpdate);

    /** Writes a network's read model if {@code version} is newer; an empty json marks a deleted network. */
    void writeNetworkView(String networkId, String tenantId, long version, String json);

    /** Records the status of a change (created or overwritten). */
    void writeChange(String changeId, Map<String, String> fields);

    /** Records what a host reported as applied. */
    void writeApplied(String hostId, Map<String, String> fields);
}
