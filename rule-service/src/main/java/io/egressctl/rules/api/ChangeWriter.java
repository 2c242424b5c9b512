package io.egressctl.rules.api;

import io.egressctl.core.event.Audit;
import io.egressctl.rules.auth.Caller;
import io.egressctl.rules.changes.ChangeStatus;
import io.egressctl.rules.changes.ChangeTracker;
import io.egressctl.rules.changes.ChangeWaiters;
import io.egressctl.rules.config.EgressProperties;
import io.egressctl.rules.logging.LogContext;
import io.egressctl.rules.views.NetworkNames;
import io.egressctl.schemas.view.RedisKeys;
import jakarta.servlet.http.HttpServletRequest;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.stereotype.Component;
import redis.clients.jedis.UnifiedJedis;
import redis.clients.jedis.params.SetParams;
import tools.jackson.databind.json.JsonMapper;

import java.net.URI;
import java.time.Clock;
import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.LinkedHashMap;
import java.util.Map;
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
    private final ChangeWaiters waiters;
    private final UnifiedJedis redis;
    /** The idempotency claims, counted once Redis's replicas hold them (ack-replicas in REDIS_URL). */
    private final io.egressctl.rules.config.ReplicatedClaims claims;
    private final String serviceVersion;
    private final Clock clock;

    @org.springframework.beans.factory.annotation.Autowired
    ChangeWriter(ChangeTracker tracker, ChangeWaiters waiters, UnifiedJedis redis, EgressProperties props) {
        this(tracker, waiters, redis, io.egressctl.rules.config.ReplicatedClaims.of(redis, props.redisUrl()), props.serviceVersion(),
                Clock.systemUTC());
    }

    ChangeWriter(ChangeTracker tracker, ChangeWaiters waiters, UnifiedJedis redis, io.egressctl.rules.config.ReplicatedClaims claims,
                 String serviceVersion, Clock clock) {
        this.tracker = tracker;
        this.waiters = waiters;
        this.redis = redis;
        this.claims = claims;
        this.serviceVersion = serviceVersion == null ? "dev" : serviceVersion;
        this.clock = clock;
    }

    Audit audit(Caller caller, HttpServletRequest request) {
        return new Audit(caller.actor(), caller.tenantId(), LogContext.requestId(request), clock.instant(), "rule-service",
                serviceVersion);
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
     * The ids of one write, fixed before anything is published: the change (event) id and the id of
     * what it creates (a rule or a network). A retry under the same idempotency key republishes the
     * same ids, which the log decides once (NetworkState ignores a copy of an event it accepted).
     */
    record Claim(String changeId, String entityId) {
        static Claim fresh() {
            return new Claim(newId(), newId());
        }
    }

    /**
     * What Redis keeps for an idempotency key: the request's fingerprint, the ids the key was claimed
     * with, when the current attempt started (0: the last attempt ended with its publish outcome
     * unknown, so a retry may republish at once) and which field names the created entity.
     */
    record ClaimRecord(String fingerprint, String changeId, String entityId, String entityField, long claimedAt) {
    }

    /**
     * How long an attempt holds its key before a retry may take it over: longer than a publish can take
     * ({@link io.egressctl.rules.publish.EventPublisher} waits at most 15 s for the broker), so a live
     * attempt is never doubled; a crashed one blocks its key for this long, not for a day.
     */
    static final Duration CLAIM_LEASE = Duration.ofSeconds(30);

    /**
     * The fingerprint of a request under an idempotency key: method, path (with the network id) and the
     * body as parsed, written back canonically (so blanks and field order do not count).
     */
    String fingerprint(HttpServletRequest request, Object body) {
        String canonical = body == null ? "" : CANONICAL.writeValueAsString(body);
        return io.egressctl.core.hash.CanonicalHash.sha256(request.getMethod() + " " + request.getRequestURI() + "\n" + canonical);
    }

    private static final JsonMapper CANONICAL = JsonMapper.builder()
            .enable(tools.jackson.databind.SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS).build();

    /** Runs {@code publish} with fresh ids, for a write without an idempotency key. */
    Map<String, Object> once(Function<Claim, Map<String, Object>> publish) {
        return publishClaimed(Claim.fresh(), publish);
    }

    /** Publishes under a claimed change id, which the rest of the request logs with. */
    private static Map<String, Object> publishClaimed(Claim claim, Function<Claim, Map<String, Object>> publish) {
        LogContext.changeId(claim.changeId());
        return publish.apply(claim);
    }

    /**
     * Runs {@code publish} once per idempotency key and request. A retry of the same request (same
     * {@code fingerprint}) gets the first outcome back with {@code idempotentReplay: true}; while the
     * first attempt is still publishing it gets 409 {@code REQUEST_IN_PROGRESS}; after an attempt that
     * crashed, or whose publish timed out, it republishes the same event (same change id and entity
     * id), which the log decides once. The same key with another request is 422
     * {@code IDEMPOTENCY_KEY_REUSED}. An attempt refused before publishing (400, 409, 422) releases the
     * key: nothing was published.
     *
     * @param entityField the name of the created entity's id in the answer ({@code ruleId}, {@code networkId})
     */
    Map<String, Object> once(Caller caller, String idempotencyKey, String fingerprint, String entityField,
                             Function<Claim, Map<String, Object>> publish) {
        return once(caller, idempotencyKey, fingerprint, entityField, null, publish);
    }

    /**
     * As {@link #once(Caller, String, String, String, Function)}, for a write whose entity id is given
     * by the request (a network's id) rather than made up ({@code entityId} null).
     */
    Map<String, Object> once(Caller caller, String idempotencyKey, String fingerprint, String entityField, String entityId,
                             Function<Claim, Map<String, Object>> publish) {
        if (idempotencyKey == null) {
            return once(publish);
        }
        checkIdempotencyKey(idempotencyKey);
        String key = RedisKeys.PREFIX + "idem:" + caller.tenantId() + ":" + idempotencyKey;
        for (int attempt = 0; attempt < 5; attempt++) {
            Claim fresh = entityId == null ? Claim.fresh() : new Claim(newId(), entityId);
            String mine = CANONICAL.writeValueAsString(new ClaimRecord(fingerprint, fresh.changeId(), fresh.entityId(), entityField,
                    clock.millis()));
            boolean claimed;
            try {
                claimed = claims.setIfAbsent(key, mine, SetParams.setParams().nx().ex(IDEMPOTENCY_TTL.toSeconds()));
            } catch (io.egressctl.rules.config.ReplicatedClaims.NotReplicatedException e) {
                // Nothing published: give the key back (a retry finds it free, or, if this delete is the
                // one lost, in progress until its lease ends), and answer 503.
                redis.del(key);
                throw e;
            }
            if (claimed) {
                return attempt(key, mine, fresh, publish);
            }
            String text = redis.get(key);
            if (text == null) {
                continue; // expired in between: claim it again
            }
            Map<String, String> stored = redis.hgetAll(key + ":result");
            if (!text.startsWith("{")) {
                // A claim of the previous release ("pending", no fingerprint): its answer, or wait for it.
                if (!stored.isEmpty()) {
                    return replay(stored);
                }
                throw new ApiException(HttpStatus.CONFLICT, "REQUEST_IN_PROGRESS", "a request with this Idempotency-Key is in progress");
            }
            ClaimRecord first = CANONICAL.readValue(text, ClaimRecord.class);
            if (!first.fingerprint().equals(fingerprint)) {
                throw new ApiException(HttpStatus.UNPROCESSABLE_CONTENT, "IDEMPOTENCY_KEY_REUSED",
                        "Idempotency-Key '" + idempotencyKey + "' was used for another request (another body, path or network); "
                                + "use a new key for a new request", Map.of("changeId", first.changeId()));
            }
            if (!stored.isEmpty()) {
                return replay(stored);
            }
            Claim claim = new Claim(first.changeId(), first.entityId());
            if (tracker.find(first.changeId()).isPresent()) {
                // The first attempt's event is in the log (the compiler decided it): its outcome is the answer.
                return replay(store(key, ids(claim, first.entityField())));
            }
            long age = clock.millis() - first.claimedAt();
            if (age >= 0 && age < CLAIM_LEASE.toMillis()) {
                long retryAfter = Math.max(1, (CLAIM_LEASE.toMillis() - age + 999) / 1000);
                throw new ApiException(HttpStatus.CONFLICT, "REQUEST_IN_PROGRESS",
                        "a request with this Idempotency-Key is in progress; retry after " + retryAfter + " s",
                        Map.of("retryAfterSeconds", retryAfter, "changeId", first.changeId()));
            }
            // The first attempt crashed or its publish timed out: take the key over, with the same ids.
            String taken = CANONICAL.writeValueAsString(new ClaimRecord(first.fingerprint(), first.changeId(), first.entityId(),
                    first.entityField(), clock.millis()));
            if (compareAndSet(key, text, taken)) {
                return attempt(key, taken, claim, publish);
            }
        }
        throw new ApiException(HttpStatus.CONFLICT, "REQUEST_IN_PROGRESS", "a request with this Idempotency-Key is in progress");
    }

    /** Refuses a key over 128 characters or with characters outside printable ASCII (400, before anything else). */
    static void checkIdempotencyKey(String key) {
        if (key.isEmpty() || key.length() > 128 || !key.chars().allMatch(c -> c >= 0x20 && c < 0x7f)) {
            String reason = key.length() > 128 ? "is " + key.length() + " characters long; at most 128 are allowed"
                    : "must be 1 to 128 printable ASCII characters";
            throw new ApiException(HttpStatus.BAD_REQUEST, "BAD_IDEMPOTENCY_KEY", "Idempotency-Key " + reason,
                    Map.of("errors", java.util.List.of(Map.of("field", "Idempotency-Key", "reason", reason))));
        }
    }

    private Map<String, Object> attempt(String key, String claimText, Claim claim, Function<Claim, Map<String, Object>> publish) {
        Map<String, Object> result;
        try {
            result = publishClaimed(claim, publish);
        } catch (ApiException e) {
            if (e.code().equals("PUBLISH_FAILED")) {
                // The event may be in the log all the same: keep the key and its ids, and let a retry
                // take it over at once (it republishes the same event, which the log decides once).
                ClaimRecord r = CANONICAL.readValue(claimText, ClaimRecord.class);
                compareAndSet(key, claimText, CANONICAL.writeValueAsString(
                        new ClaimRecord(r.fingerprint(), r.changeId(), r.entityId(), r.entityField(), 0)));
            } else {
                redis.del(key);
            }
            throw e;
        } catch (RuntimeException e) {
            redis.del(key);
            throw e;
        }
        Map<String, String> stored = new LinkedHashMap<>();
        result.forEach((k, v) -> stored.put(k, String.valueOf(v)));
        store(key, stored);
        return result;
    }

    private static Map<String, String> ids(Claim claim, String entityField) {
        Map<String, String> out = new LinkedHashMap<>();
        out.put("changeId", claim.changeId());
        if (entityField != null) {
            out.put(entityField, claim.entityId());
        }
        return out;
    }

    private Map<String, String> store(String key, Map<String, String> result) {
        redis.hset(key + ":result", result);
        redis.expire(key + ":result", IDEMPOTENCY_TTL.toSeconds());
        return result;
    }

    private static Map<String, Object> replay(Map<String, String> stored) {
        Map<String, Object> out = new LinkedHashMap<>(stored);
        out.put("idempotentReplay", true);
        return out;
    }

    private static final String CAS_SCRIPT = "if redis.call('get', KEYS[1]) == ARGV[1] then "
            + "redis.call('set', KEYS[1], ARGV[2], 'KEEPTTL') return 1 else return 0 end";

    private boolean compareAndSet(String key, String expected, String next) {
        Object r = redis.eval(CAS_SCRIPT, java.util.List.of(key), java.util.List.of(expected, next));
        return r instanceof Long l && l == 1L;
    }

    /**
     * The answer to a write: 202 with the change, or the status once {@code wait} is reached (201/200),
     * 202 with the status so far when the timeout passes first, 409 when the log rejected the change.
     * A wait holds no thread: the answer is then a {@code DeferredResult} that the change's
     * notifications complete ({@link ChangeWaiters}). The caller's right to the network was checked
     * before the change was published.
     *
     * @return a {@code ResponseEntity}, or a {@code DeferredResult} of one
     */
    Object answer(Caller caller, Map<String, Object> ids, String networkId, String wait, String timeout, HttpStatus whenDone) {
        String changeId = (String) ids.get("changeId");
        Map<String, Object> body = new LinkedHashMap<>(ids);
        URI location = URI.create("/api/v1/changes/" + changeId);
        if (wait == null) {
            ChangeStatus s = tracker.find(changeId).orElse(ChangeTracker.published(changeId, networkId));
            body.put("status", NetworkNames.shown(caller, s));
            return ResponseEntity.accepted().location(location).body(body);
        }
        Duration t = parseTimeout(timeout);
        return AsyncAnswer.of(waiters.await(changeId, networkId, wait, t, s -> { }), logged -> {
            ChangeStatus s = NetworkNames.shown(caller, logged);
            if (s.status().equals("REJECTED")) {
                throw new ApiException(HttpStatus.CONFLICT, s.code() == null ? "REJECTED" : s.code(),
                        "the change was rejected in log order: " + s.reason(), Map.of("changeId", changeId));
            }
            body.put("status", s);
            return ResponseEntity.status(s.reached(wait) ? whenDone : HttpStatus.ACCEPTED).location(location).body(body);
        }, t);
    }

    /**
     * The {@code timeout} of a wait: {@code 500ms}, {@code 5s} or ISO-8601 ({@code PT5S}), default 10 s.
     * Zero and negative values are refused (leave out {@code wait} to not wait); a value above
     * {@link ChangeTracker#MAX_WAIT} waits {@code MAX_WAIT} (the answer says so with 202 and the
     * status so far, as any wait that times out).
     */
    static Duration parseTimeout(String timeout) {
        if (timeout == null) {
            return Duration.ofSeconds(10);
        }
        String t = timeout.trim().toLowerCase(java.util.Locale.ROOT);
        Duration d;
        try {
            java.util.regex.Matcher m;
            if (t.startsWith("pt") || t.startsWith("-pt")) {
                d = Duration.parse(t.toUpperCase(java.util.Locale.ROOT));
            } else if ((m = MILLIS.matcher(t)).matches()) {
                d = m.group(1).length() > 12 ? ChangeTracker.MAX_WAIT.plusMillis(1) : Duration.ofMillis(Long.parseLong(m.group(1)));
                d = m.group().startsWith("-") ? d.negated() : d;
            } else if ((m = SECONDS.matcher(t)).matches()) {
                // Saturate first: a huge value is capped below, never wrapped into a negative one.
                double seconds = Double.parseDouble(m.group(1));
                d = seconds > ChangeTracker.MAX_WAIT.toSeconds() ? ChangeTracker.MAX_WAIT.plusMillis(1)
                        : Duration.ofMillis((long) Math.ceil(seconds * 1000));
                d = m.group().startsWith("-") ? d.negated() : d;
            } else {
                throw new NumberFormatException(t);
            }
        } catch (NumberFormatException | DateTimeParseException | ArithmeticException e) {
            throw badTimeout("must look like 500ms, 5s or PT5S");
        }
        if (d.isNegative() || d.isZero()) {
            throw badTimeout("must be positive (1ms to " + ChangeTracker.MAX_WAIT.toSeconds()
                    + "s); leave out wait to answer without waiting");
        }
        return d.compareTo(ChangeTracker.MAX_WAIT) > 0 ? ChangeTracker.MAX_WAIT : d;
    }

    private static final java.util.regex.Pattern MILLIS = java.util.regex.Pattern.compile("-?([0-9]{1,18})ms");
    private static final java.util.regex.Pattern SECONDS = java.util.regex.Pattern.compile("-?([0-9]{1,18}(?:\\.[0-9]{1,9})?)s");

    private static ApiException badTimeout(String reason) {
        return new ApiException(HttpStatus.BAD_REQUEST, "BAD_PARAMETER", "timeout " + reason,
                Map.of("errors", java.util.List.of(Map.of("field", "timeout", "reason", reason))));
    }
}
