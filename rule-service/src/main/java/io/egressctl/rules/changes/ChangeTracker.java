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
import java.util.Set;

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
        return status(changeId, null, null);
    }

    /**
     * {@code last} (a status this tracker read of the same change) brought up to date by reading the
     * change record and the applied state of {@code hosts} alone; the other hosts keep what
     * {@code last} says of them. What a waiter does when the compiler announces reports of some hosts:
     * a change to every host of a large network is announced once per host, and reading every host's
     * state each time made the work per change grow with the square of its hosts. Empty when the
     * record is gone.
     */
    public Optional<ChangeStatus> refresh(ChangeStatus last, java.util.Collection<String> hosts) {
        return status(last.changeId(), last, hosts);
    }

    /** The change's status: every target host read ({@code last} null), or only {@code hosts} on top of {@code last}. */
    private Optional<ChangeStatus> status(String changeId, ChangeStatus last, java.util.Collection<String> hosts) {
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
        // The hosts to read, and what is known of the others: in a refresh, a host last seen applied
        // stays applied (it ACKed a version that includes the change: invariant 7) and one last seen
        // pending stays pending with the failure last read, until it is read again.
        java.util.Set<String> toRead;
        java.util.Set<String> pendingBefore = Set.of();
        Map<String, ChangeStatus.FailedHost> failedBefore = Map.of();
        // A status not read from this record as COMPILED (none, the PUBLISHED stand-in, other targets): all read.
        boolean full = last == null || !"COMPILED".equals(last.status()) || last.hostsTotal() != targets.size();
        if (full) {
            toRead = targets.keySet();
        } else {
            toRead = new java.util.LinkedHashSet<>();
            pendingBefore = new java.util.HashSet<>(last.pendingHosts());
            failedBefore = new java.util.HashMap<>();
            for (ChangeStatus.FailedHost h : last.failedHosts()) {
                failedBefore.put(h.hostId(), h);
            }
            for (String h : hosts) {
                if (targets.containsKey(h)) {
                    toRead.add(h);
                }
            }
        }
        Map<String, List<String>> read = appliedStates(toRead, networkId);
        List<String> pending = new ArrayList<>();
        List<ChangeStatus.FailedHost> failed = new ArrayList<>();
        for (Map.Entry<String, Long> t : targets.entrySet()) {
            String host = t.getKey();
            List<String> applied = read.get(host);
            if (applied == null) {
                if (pendingBefore.contains(host)) {
                    pending.add(host);
                    ChangeStatus.FailedHost was = failedBefore.get(host);
                    if (was != null) {
                        failed.add(was);
                    }
                }
                continue;
            }
            // Invariant 7: only an ACKed version at or above the change's counts; an older one does not.
            String version = applied.get(0);
            if (version == null || Long.parseLong(version) < t.getValue()) {
                pending.add(host);
                if ("NACK".equals(applied.get(1))) {
                    failed.add(new ChangeStatus.FailedHost(host, applied.get(2), applied.get(3)));
                } else {
                    String refusal = refusal(applied.get(4), networkId, t.getValue());
                    if (refusal != null) {
                        failed.add(new ChangeStatus.FailedHost(host, refusal, applied.get(3)));
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
     * Each host's applied fields for {@code networkId} (version, status, error, time, refusals), by
     * host: one pipeline, one round trip for all of them. A change to every host
     * of a large network is read again each time the compiler announces another host's report, so one
     * round trip per host made each read take longer the more hosts the change has.
     */
    private Map<String, List<String>> appliedStates(java.util.Collection<String> hosts, String networkId) {
        if (hosts.isEmpty()) {
            return Map.of();
        }
        Map<String, redis.clients.jedis.Response<List<String>>> responses = new java.util.LinkedHashMap<>();
        try (redis.clients.jedis.AbstractPipeline p = redis.pipelined()) {
            for (String host : hosts) {
                responses.put(host, p.hmget(RedisKeys.hostApplied(host), "v:" + networkId, "status", "error", "at", "refused"));
            }
            p.sync();
        }
        Map<String, List<String>> out = new java.util.HashMap<>();
        responses.forEach((host, r) -> out.put(host, r.get()));
        return out;
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
