package io.egressctl.compiler.snapshot;

import io.egressctl.core.compile.FragmentUpdate;

import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Where the compiler materializes its output for readers that were not listening: per-host fragment
 * snapshots (agent bootstrap, invariant 4), network views (rule-service reads), change status,
 * which VM holds each host interface (rule-service checks placements against it), hosts' applied
 * state and the compiler's own checkpoints. Fragment and view writes are guarded by version, so
 * replays and redeliveries never move a value backwards (invariant 3); interface writes are guarded
 * by their holder. A batch is written in one round trip.
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

    /** One fragment (or tombstone) write with its encoded HostUpdate. */
    record FragmentWrite(FragmentUpdate update, byte[] encodedHostUpdate) {
    }

    /**
     * A network read-model write: the network's JSON (empty for a deleted network), the rule fields
     * that changed ({@code r:<ruleId>} to JSON), the rule fields to remove, and whether the hash is
     * replaced whole (first write of this writer, or a deleted network).
     */
    record ViewWrite(String networkId, String tenantId, long version, String json, Map<String, String> ruleFields,
                     List<String> removedFields, boolean full) {
    }

    /** The status of one change. */
    record ChangeWrite(String changeId, Map<String, String> fields) {
    }

    /**
     * One change to a host's interface index ({@code egress:host:{H}:interfaces}, interface name to
     * {@code networkId/vmId}). A claim sets the field to {@code holder} unless a VM of another network
     * holds it (the first claim stands; the host fails closed on the interface anyway); a release
     * deletes the field only while it still names {@code holder}, so a late release never frees an
     * interface another VM has claimed since.
     */
    record InterfaceWrite(String hostId, String interfaceName, String holder, boolean claim) {
    }

    /**
     * Everything one consumer batch produced; interface writes apply in list order per host.
     *
     * @param epochs the writer's fencing epoch of each input partition it owns ({@link #claim}): the
     *               batch is refused whole with {@link FencedException} when one of them is older than
     *               the store's (another instance took that partition over); empty: not fenced
     */
    record Batch(List<FragmentWrite> fragments, List<ViewWrite> views, List<ChangeWrite> changes, List<InterfaceWrite> interfaces,
                 Map<Integer, Long> epochs) {

        /** A batch that is not fenced. */
        public Batch(List<FragmentWrite> fragments, List<ViewWrite> views, List<ChangeWrite> changes, List<InterfaceWrite> interfaces) {
            this(fragments, views, changes, interfaces, Map.of());
        }

        /** A batch that changes no interface claims and is not fenced. */
        public Batch(List<FragmentWrite> fragments, List<ViewWrite> views, List<ChangeWrite> changes) {
            this(fragments, views, changes, List.of(), Map.of());
        }
    }

    /** What a batch write did: each fragment's outcome and whether each view was written, in order. */
    record BatchResult(List<WriteOutcome> fragments, List<Boolean> viewsWritten) {
    }

    /** Writes a batch in one round trip (two when indexes change). */
    BatchResult write(Batch batch);

    /** Records what a host reported as applied (fields set, others kept: a NACK keeps the versions of the last ACK). */
    void writeApplied(String hostId, Map<String, String> fields);

    /**
     * Records an ACK, which lists every version the host holds: sets {@code fields} and, in the same
     * atomic step, removes every field starting with {@code replacedPrefix} that {@code fields} does
     * not set (a network the host no longer reports as applied stops counting as applied).
     */
    void replaceApplied(String hostId, Map<String, String> fields, String replacedPrefix);

    /** The checkpoint of one input partition, if any. */
    Optional<String> readCheckpoint(int partition);

    /**
     * Replaces the checkpoint of one input partition (one key, so the write is atomic), unless another
     * instance took the partition over since this writer claimed it.
     *
     * @param epoch the writer's epoch of the partition ({@link #claim}); 0: not fenced
     * @throws FencedException when the store holds a newer epoch for the partition (nothing written)
     */
    void writeCheckpoint(int partition, String checkpoint, long epoch);

    /**
     * Takes over the writes of one input partition: bumps the partition's fencing epoch and returns it.
     * From then on, batches and checkpoints carrying an older epoch for the partition are refused, so
     * an instance that lost the partition (paused past its session timeout, say) cannot write.
     * Called on assignment, before the checkpoint is read.
     */
    long claim(int partition);
}
