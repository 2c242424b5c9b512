package io.egressctl.cli.audit;

import io.egressctl.core.state.Decision;
import io.egressctl.core.state.NetworkState;
import io.egressctl.schemas.serde.Topics;
import org.apache.kafka.common.TopicPartition;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * One network's rule events replayed in log order from the start of its partition (the partition its key
 * maps to), up to a time: the end bound is the first record later than the time, found with the time index
 * ({@code offsetsForTimes}), so nothing past it is read. Call {@link #upTo} with growing times to see the
 * state at several times in one pass.
 *
 * <p>"At T" means after every record of the partition before the first one stamped later than T: the log
 * order decides, as it did for the compiler.
 */
final class NetworkReplay {

    private final AuditContext ctx;
    private final LogReader log;
    private final String networkId;
    private final byte[] key;
    private final TopicPartition partition;
    private final long startOffset;
    private final long endOffset;
    private final Replay replay;
    private long position;
    private long events;
    private long rejected;
    private long skipped;
    private long lastOffset = -1;

    NetworkReplay(AuditContext ctx, LogReader log, String networkId) {
        this.ctx = ctx;
        this.log = log;
        this.networkId = networkId;
        this.key = networkId.getBytes(StandardCharsets.UTF_8);
        List<TopicPartition> tps = log.partitions(ctx.ruleTopic);
        this.partition = tps.get(Topics.partitionFor(networkId, tps.size()));
        this.startOffset = log.beginning(List.of(partition)).get(partition);
        this.endOffset = log.end(List.of(partition)).get(partition);
        this.position = startOffset;
        this.replay = new Replay(ctx.registry());
    }

    /** The end bound for time {@code t}: the first offset stamped after t, else the noted end. */
    long boundFor(Instant t) {
        if (t == null) {
            return endOffset;
        }
        Map<TopicPartition, Long> end = Map.of(partition, endOffset);
        return Math.min(endOffset, log.offsetsAt(List.of(partition), t.plusMillis(1), end).get(partition));
    }

    /** Folds the records from where the last call stopped up to time {@code t} (null: the end). */
    void upTo(Instant t) {
        long bound = boundFor(t);
        if (bound <= position) {
            return;
        }
        LogReader.Range range = new LogReader.Range(partition, position, bound);
        log.read(List.of(range), r -> {
            if (r.key() == null || !Arrays.equals(r.key(), key)) {
                return;
            }
            Replay.Step step = replay.rule(r.topic(), r.key(), r.value(), r.offset());
            events++;
            lastOffset = r.offset();
            if (step.decision() == null) {
                skipped++;
            } else if (step.decision().outcome() == Decision.Outcome.REJECTED) {
                rejected++;
            }
        }, ctx.progress("replay " + networkId + " ", bound - position));
        position = bound;
    }

    /** The state so far; never null (a network without events has no definition and no rules). */
    NetworkState state() {
        NetworkState s = replay.state(networkId);
        return s != null ? s : new NetworkState(networkId);
    }

    TopicPartition partition() {
        return partition;
    }

    long startOffset() {
        return startOffset;
    }

    /** Offset up to which (exclusive) the partition has been read. */
    long position() {
        return position;
    }

    long events() {
        return events;
    }

    long rejected() {
        return rejected;
    }

    long skipped() {
        return skipped;
    }

    long lastOffset() {
        return lastOffset;
    }
}
