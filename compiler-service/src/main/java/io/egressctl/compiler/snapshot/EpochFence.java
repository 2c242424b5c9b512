package io.egressctl.compiler.snapshot;

import io.egressctl.schemas.view.RedisKeys;
import redis.clients.jedis.exceptions.JedisDataException;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Fencing of the compiler's Redis writes by partition epoch ({@code egress:epoch:P}, see
 * {@link RedisKeys#epoch}). Every write script starts with {@link #PRELUDE}, which checks the writer's
 * epochs against the stored ones before the script writes anything and refuses the call whole with
 * an error reply {@code FENCED <epoch keys>} when one stored epoch is newer. The fence travels at the
 * end of a script's KEYS and ARGV ({@link #append}), so a script body reads its own KEYS[1..nk] and
 * ARGV[1..] as before and only uses {@code nk} instead of {@code #KEYS}.
 *
 * <p>A stored epoch that is missing or older than the writer's (Redis was emptied since) is set to
 * the writer's, so the fence is in force again from the first write after a loss. Epochs only grow:
 * {@link RedisSnapshotStore#claim} is an INCR on assignment.
 */
final class EpochFence {

    private EpochFence() {
    }

    /**
     * KEYS: the script's own keys, then one epoch key per fenced partition. ARGV: the script's own
     * arguments, then the writer's epoch of each of those partitions, then their number. Defines
     * {@code nk}, the number of the script's own keys.
     */
    static final String PRELUDE = """
            local nf = tonumber(ARGV[#ARGV])
            local nk = #KEYS - nf
            local na = #ARGV - 1 - nf
            local stale = {}
            for i = 1, nf do
              local cur = redis.call('GET', KEYS[nk + i])
              if cur and tonumber(cur) > tonumber(ARGV[na + i]) then stale[#stale + 1] = KEYS[nk + i] end
            end
            if #stale > 0 then return redis.error_reply('FENCED ' .. table.concat(stale, ' ')) end
            for i = 1, nf do
              local cur = redis.call('GET', KEYS[nk + i])
              if not cur or tonumber(cur) < tonumber(ARGV[na + i]) then redis.call('SET', KEYS[nk + i], ARGV[na + i]) end
            end
            """;

    private static final Pattern FENCED_KEY = Pattern.compile(Pattern.quote(RedisKeys.epoch(0).replaceAll("0$", "")) + "(\\d+)");

    /** Appends the fence of {@code epochs} (partition to the writer's epoch) to a script call's keys and arguments. */
    static void append(List<byte[]> keys, List<byte[]> args, Map<Integer, Long> epochs) {
        epochs.forEach((p, epoch) -> {
            keys.add(bytes(RedisKeys.epoch(p)));
            args.add(bytes(Long.toString(epoch)));
        });
        args.add(bytes(Integer.toString(epochs.size())));
    }

    /** The same, for a script called with string keys and arguments. */
    static void appendStrings(List<String> keys, List<String> args, Map<Integer, Long> epochs) {
        epochs.forEach((p, epoch) -> {
            keys.add(RedisKeys.epoch(p));
            args.add(Long.toString(epoch));
        });
        args.add(Integer.toString(epochs.size()));
    }

    /** The refusal in a script's error reply as a {@link FencedException}; other errors unchanged. */
    static RuntimeException translate(JedisDataException e) {
        String message = e.getMessage() == null ? "" : e.getMessage();
        if (!message.contains("FENCED")) {
            return e;
        }
        Set<Integer> partitions = new TreeSet<>();
        Matcher m = FENCED_KEY.matcher(message);
        while (m.find()) {
            partitions.add(Integer.parseInt(m.group(1)));
        }
        return new FencedException(partitions);
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
