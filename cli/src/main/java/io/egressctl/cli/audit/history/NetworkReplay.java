package io.egressctl.cli.audit.history;

import io.egressctl.cli.audit.AuditContext;
import io.egressctl.cli.audit.log.LogReader;
import io.egressctl.cli.audit.replay.Replay;
import io.egressctl.core.state.Decision;
import io.egressctl.core.state.NetworkState;
import io.egressctl.schemas.serde.Topics;
import org.apache.kafka.common.TopicPartition;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Some networks' events (network, rule and workload events of the one log) replayed in log order from
 * the start of their partitions (the partitions
 * their keys map to), up to a time: the end bound of each partition is its first record stamped later
 * than the time, found with the time index ({@code offsetsForTimes}), so nothing past it is read. Every
 * partition is read once for all the networks it holds. Call {@link #upTo} with growing times to see the
 * states at several times in one pass.
 *
 * <p>"At T" means after every record of the partition before the first one stamped later than T: the log
 * order decides, as it did for the compiler.
 */
final class NetworkReplay {

    /** Per network: where it lives and what the replay met. */
    static final class Stats {
        final TopicPartition partition;
        long events;
        long rejected;
        long skipped;

        Stats(TopicPartition partition) {
            this.partition = partition;
        }
    }

    private final AuditContext ctx;
    private final LogReader log;
    private final Map<ByteBuffer, String> keys = new HashMap<>();
    private final Map<String, Stats> stats = new LinkedHashMap<>();
    private final List<TopicPartition> partitions;
    private final Map<TopicPartition, Long> start;
    private final Map<TopicPartition, Long> end;
    private final Map<TopicPartition, Long> position;
    private final Replay replay;

    NetworkReplay(AuditContext ctx, LogReader log, List<String> networks) {
        this.ctx = ctx;
        this.log = log;
        List<TopicPartition> all = log.partitions(ctx.eventTopic());
        TreeSet<Integer> used = new TreeSet<>();
        for (String n : networks) {
            TopicPartition tp = all.get(Topics.partitionFor(n, all.size()));
            used.add(tp.partition());
            keys.put(ByteBuffer.wrap(n.getBytes(StandardCharsets.UTF_8)), n);
            stats.put(n, new Stats(tp));
        }
        this.partitions = used.stream().map(all::get).toList();
        this.start = log.beginning(partitions);
        this.end = log.end(partitions);
        this.position = new HashMap<>(start);
        this.replay = new Replay(ctx.registry());
    }

    /** Folds the records from where the last call stopped up to time {@code t} (null: the end noted at start). */
    void upTo(Instant t) {
        Map<TopicPartition, Long> bound = t == null ? end : log.offsetsAt(partitions, t.plusMillis(1), end);
        List<LogReader.Range> ranges = new ArrayList<>();
        long total = 0;
        for (TopicPartition tp : partitions) {
            long b = Math.min(end.get(tp), bound.get(tp));
            long p = position.get(tp);
            if (b > p) {
                ranges.add(new LogReader.Range(tp, p, b));
                total += b - p;
                position.put(tp, b);
            }
        }
        if (ranges.isEmpty()) {
            return;
        }
        String label = stats.size() == 1 ? "replay " + stats.keySet().iterator().next() + " " : "replay ";
        log.read(ranges, r -> {
            String n = r.key() == null ? null : keys.get(ByteBuffer.wrap(r.key()));
            if (n == null) {
                return;
            }
            Replay.Step step = replay.event(r.topic(), r.key(), r.value(), r.offset());
            Stats s = stats.get(n);
            s.events++;
            if (step.decision() == null) {
                s.skipped++;
            } else if (step.decision().outcome() == Decision.Outcome.REJECTED) {
                s.rejected++;
            }
        }, ctx.progress(label, total));
    }

    /** The state so far; never null (a network without events has no definition and no rules). */
    NetworkState state(String networkId) {
        NetworkState s = replay.state(networkId);
        return s != null ? s : new NetworkState(networkId, replay.limits());
    }

    /** What the replay of one network read: its partition, the offsets read so far and its events. */
    StateCommand.Replayed replayed(String networkId) {
        Stats s = stats.get(networkId);
        return new StateCommand.Replayed(ctx.eventTopic(), s.partition.partition(), start.get(s.partition),
                position.get(s.partition), s.events, s.rejected, s.skipped);
    }
}
