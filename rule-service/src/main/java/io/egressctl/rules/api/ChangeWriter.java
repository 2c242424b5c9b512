package io.egressctl.rules.api;

import io.egressctl.core.event.Audit;
import io.egressctl.rules.auth.Caller;
import io.egressctl.rules.changes.ChangeStatus;
import io.egressctl.rules.changes.ChangeTracker;
import io.egressctl.rules.config.EgressProperties;
import io.egressctl.schemas.view.RedisKeys;
import jakarta.servlet.http.HttpServletRequest;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.stereotype.Component;
import redis.clients.jedis.UnifiedJedis;
import redis.clients.jedis.params.SetParams;

import java.net.URI;
import java.time.Clock;
import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.function.Function;

/**
 * What every write shares: the audit block, If-Match, idempotency keys, and the answer (202 with the
 * change id, or, with {@code ?wait=compiled|applied}, the status once reached).
 */
@Component
class ChangeWriter {

    private static final Duration IDEMPOTENCY_TTL = Duration.ofHours(24);

    private final ChangeTracker tracker;
    private final UnifiedJedis redis;
    private final String serviceVersion;
    private final Clock clock = Clock.systemUTC();

    ChangeWriter(ChangeTracker tracker, UnifiedJedis redis, EgressProperties props) {
        this.tracker = tracker;
        this.redis = redis;
        this.serviceVersion = props.serviceVersion() == null ? "dev" : props.serviceVersion();
    }

    Audit audit(Caller caller, HttpServletRequest request) {
        String requestId = Optional.ofNullable(request.getHeader("X-Request-Id")).filter(s -> s.length() <= 128)
                .orElse(UUID.randomUUID().toString());
        return new Audit(caller.actor(), caller.tenantId(), requestId, clock.instant(), "rule-service", serviceVersion);
    }

    static String newId() {
        return UUID.randomUUID().toString();
    }

    /** The version in an If-Match header ({@code "12"} or {@code 12}), or null when absent. */
    static Long ifMatch(String header) {
        if (header == null || header.isBlank() || header.equals("*")) {
            return null;
        }
        String v = header.trim().replace("W/", "").replace("\"", "");
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new ApiException(HttpStatus.BAD_REQUEST, "BAD_IF_MATCH", "If-Match must be the network's ETag, e.g. \"12\"");
        }
    }

    /**
     * The version an If-Match header expects (null when absent), refused with 412 when it is not the
     * network's current version.
     */
    static Long expectedVersion(String ifMatchHeader, long current) {
        Long expected = ifMatch(ifMatchHeader);
        checkVersion(expected, current);
        return expected;
    }

    /** Refuses a write whose If-Match is not the network's current version (412). */
    static void checkVersion(Long expected, long current) {
        if (expected != null && expected != current) {
            throw new ApiException(HttpStatus.PRECONDITION_FAILED, "STALE_VERSION",
                    "the network is at version " + current + ", the request expected " + expected,
                    Map.of("currentVersion", current));
        }
    }

    /**
     * Runs {@code publish} once per idempotency key: a retry with the same key gets the first
     * request's ids back instead of a second change.
     */
    Map<String, Object> once(Caller caller, String idempotencyKey, Function<String, Map<String, Object>> publish) {
        String changeId = newId();
        if (idempotencyKey == null) {
            return publish.apply(changeId);
        }
        if (idempotencyKey.length() > 128 || idempotencyKey.chars().anyMatch(Character::isISOControl)) {
            throw new ApiException(HttpStatus.BAD_REQUEST, "BAD_IDEMPOTENCY_KEY", "Idempotency-Key must be at most 128 printable characters");
        }
        String key = RedisKeys.PREFIX + "idem:" + caller.tenantId() + ":" + idempotencyKey;
        String claimed = redis.set(key, "pending", SetParams.setParams().nx().ex(IDEMPOTENCY_TTL.toSeconds()));
        if (claimed == null) {
            Map<String, String> first = redis.hgetAll(key + ":result");
            if (first.isEmpty()) {
                throw new ApiException(HttpStatus.CONFLICT, "REQUEST_IN_PROGRESS", "a request with this Idempotency-Key is in progress");
            }
            Map<String, Object> out = new LinkedHashMap<>(first);
            out.put("idempotentReplay", true);
            return out;
        }
        try {
            Map<String, Object> result = publish.apply(changeId);
            Map<String, String> stored = new LinkedHashMap<>();
            result.forEach((k, v) -> stored.put(k, String.valueOf(v)));
            redis.hset(key + ":result", stored);
            redis.expire(key + ":result", IDEMPOTENCY_TTL.toSeconds());
            return result;
        } catch (RuntimeException e) {
            redis.del(key);
            throw e;
        }
    }

    /** The answer to a write: 202 with the change, or the status once {@code wait} is reached. */
    ResponseEntity<Map<String, Object>> answer(Map<String, Object> ids, String networkId, String wait, String timeout,
                                               HttpStatus whenDone) {
        String changeId = (String) ids.get("changeId");
        Map<String, Object> body = new LinkedHashMap<>(ids);
        URI location = URI.create("/api/v1/changes/" + changeId);
        if (wait == null) {
            body.put("status", tracker.find(changeId).orElse(ChangeTracker.published(changeId, networkId)));
            return ResponseEntity.accepted().location(location).body(body);
        }
        ChangeStatus s = tracker.await(changeId, networkId, wait, parseTimeout(timeout));
        if (s.status().equals("REJECTED")) {
            throw new ApiException(HttpStatus.CONFLICT, s.code() == null ? "REJECTED" : s.code(),
                    "the change was rejected in log order: " + s.reason(), Map.of("changeId", changeId));
        }
        body.put("status", s);
        return ResponseEntity.status(s.reached(wait) ? whenDone : HttpStatus.ACCEPTED).location(location).body(body);
    }

    static Duration parseTimeout(String timeout) {
        if (timeout == null) {
            return Duration.ofSeconds(10);
        }
        String t = timeout.trim().toLowerCase();
        try {
            if (t.startsWith("pt")) {
                return Duration.parse(timeout.trim());
            }
            if (t.endsWith("ms")) {
                return Duration.ofMillis(Long.parseLong(t.substring(0, t.length() - 2)));
            }
            if (t.endsWith("s")) {
                return Duration.ofMillis((long) (Double.parseDouble(t.substring(0, t.length() - 1)) * 1000));
            }
            return Duration.parse(timeout);
        } catch (NumberFormatException | DateTimeParseException e) {
            throw new ApiException(HttpStatus.BAD_REQUEST, "BAD_PARAMETER", "timeout must look like 500ms, 5s or PT5S");
        }
    }
}
