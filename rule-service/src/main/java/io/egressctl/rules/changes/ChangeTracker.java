package io.egressctl.rules.changes;

import io.egressctl.schemas.view.RedisKeys;
import org.springframework.stereotype.Component;
import redis.clients.jedis.UnifiedJedis;
import tools.jackson.core.type.TypeReference;
import tools.jackson.databind.json.JsonMapper;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Answers change status from the compiler's change record and the hosts' applied versions
 * (invariant 7: a host counts only once it has ACKed a version that includes the change). Waiting for
 * a level is {@link ChangeWaiters}'.
 */
@Component
public class ChangeTracker {

    /** Longest wait a caller may ask for ({@code ?timeout=} above it waits this long). */
    public static final Duration MAX_WAIT = Duration.ofSeconds(60);

    private final UnifiedJedis redis;
    private final JsonMapper json = JsonMapper.builder().build();

    ChangeTracker(UnifiedJedis redis) {
        this.redis = redis;
    }

    /** The status of a change; empty when no compiler has recorded it (yet). */
    public Optional<ChangeStatus> find(String changeId) {
        Map<String, String> f;
        try {
            String text = redis.get(RedisKeys.change(changeId));
            if (text == null) {
                return Optional.empty();
            }
            f = json.readValue(text, new TypeReference<Map<String, String>>() { });
        } catch (redis.clients.jedis.exceptions.JedisDataException e) {
            // Written by a compiler of the previous release (a hash) during a rolling upgrade.
            f = redis.hgetAll(RedisKeys.change(changeId));
            if (f.isEmpty()) {
                return Optional.empty();
            }
        }
        String networkId = f.get("networkId");
        Map<String, Long> targets = json.readValue(f.getOrDefault("targets", "{}"), new TypeReference<Map<String, Long>>() { });
        List<String> pending = new ArrayList<>();
        List<ChangeStatus.FailedHost> failed = new ArrayList<>();
        for (Map.Entry<String, Long> t : targets.entrySet()) {
            // Invariant 7: only an ACKed version at or above the change's counts; an older one does not.
            List<String> applied = redis.hmget(RedisKeys.hostApplied(t.getKey()), "v:" + networkId, "status", "error", "at", "refused");
            String version = applied.get(0);
            if (version == null || Long.parseLong(version) < t.getValue()) {
                pending.add(t.getKey());
                if ("NACK".equals(applied.get(1))) {
                    failed.add(new ChangeStatus.FailedHost(t.getKey(), applied.get(2), applied.get(3)));
                } else {
                    String refusal = refusal(applied.get(4), networkId, t.getValue());
                    if (refusal != null) {
                        failed.add(new ChangeStatus.FailedHost(t.getKey(), refusal, applied.get(3)));
                    }
                }
            }
        }
        String status = f.get("status");
        if (status.equals("COMPILED") && pending.isEmpty()) {
            status = "APPLIED";
        }
        Long version = f.containsKey("version") ? Long.valueOf(f.get("version")) : null;
        return Optional.of(new ChangeStatus(changeId, networkId, f.get("operation"), status, f.get("code"), f.get("reason"),
                version, f.get("ruleId"), targets.size(), targets.size() - pending.size(), pending, f.get("compiledAt"), failed));
    }

    /**
     * The reason a host gave for refusing {@code networkId} at a version at or above {@code atLeast}
     * while it applied its other networks (its report's {@code refused} list), or null.
     */
    private String refusal(String refusedJson, String networkId, long atLeast) {
        if (refusedJson == null || refusedJson.isEmpty() || refusedJson.equals("[]")) {
            return null;
        }
        try {
            List<Map<String, Object>> list = json.readValue(refusedJson, new TypeReference<List<Map<String, Object>>>() { });
            for (Map<String, Object> r : list) {
                if (networkId.equals(r.get("networkId")) && r.get("version") instanceof Number v && v.longValue() >= atLeast) {
                    return "refused on this host (its other networks are applied): " + r.get("reason");
                }
            }
        } catch (RuntimeException e) {
            return null; // unreadable: the host stays pending without a reason
        }
        return null;
    }

    /** The status of a change that is in the log but not compiled yet. */
    public static ChangeStatus published(String changeId, String networkId) {
        return new ChangeStatus(changeId, networkId, null, "PUBLISHED", null, null, null, null, 0, 0, List.of(), null);
    }
}
