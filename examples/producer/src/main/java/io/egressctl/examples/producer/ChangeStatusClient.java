package io.egressctl.examples.producer;

import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Reads a change's status from rule-service: {@code GET /api/v1/changes/{changeId}?wait=…&timeout=…}
 * with an API key (the operator's reads every network's changes, a tenant's only its own networks').
 * A change the compiler has not decided yet answers 404; while the compiler rebuilds its read model
 * every request answers 503 with {@code Retry-After}. Both mean: ask again.
 */
public final class ChangeStatusClient {

    /** How long one request asks the server to wait (the server caps waits at 60 s). */
    private static final Duration SERVER_WAIT = Duration.ofSeconds(5);

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(3)).build();
    private final JsonMapper json = JsonMapper.builder().build();
    private final String apiUrl;
    private final String apiKey;

    public ChangeStatusClient(String apiUrl, String apiKey) {
        this.apiUrl = stripSlash(Objects.requireNonNull(apiUrl, "apiUrl"));
        this.apiKey = Objects.requireNonNull(apiKey, "apiKey");
    }

    /** The level a caller waits for: {@code compiled} (decided and compiled) or {@code applied} (every host ACKed). */
    public enum Level {
        COMPILED, APPLIED;

        String parameter() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /**
     * What the API said about a change.
     *
     * @param status       PUBLISHED (not decided yet: no answer but 404 so far), COMPILED, APPLIED or REJECTED
     * @param code         the rejection's code (e.g. STALE_VERSION, INTERFACE_IN_USE), else null
     * @param version      the network's version after the change (its position in the log), null before a decision
     * @param pendingHosts hosts that have not acknowledged a version including the change
     */
    public record Status(String changeId, String status, String code, String reason, Long version, int hostsTotal,
                         int hostsApplied, List<String> pendingHosts) {

        /** Whether {@code level} is reached, or can never be (a rejection). */
        public boolean reached(Level level) {
            return switch (status) {
                case "REJECTED", "APPLIED" -> true;
                case "COMPILED" -> level == Level.COMPILED;
                default -> false;
            };
        }
    }

    /**
     * Asks until the change reaches {@code level}, is rejected, or {@code timeout} passes; returns the
     * last status seen ({@code PUBLISHED} when the compiler never recorded the change in that time).
     */
    public Status await(String changeId, Level level, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        Status last = new Status(changeId, "PUBLISHED", null, null, null, 0, 0, List.of());
        while (true) {
            long leftMillis = Math.max(1, Duration.ofNanos(deadline - System.nanoTime()).toMillis());
            Duration wait = Duration.ofMillis(Math.min(leftMillis, SERVER_WAIT.toMillis()));
            HttpResponse<String> r = get("/api/v1/changes/" + URLEncoder.encode(changeId, StandardCharsets.UTF_8)
                    + "?wait=" + level.parameter() + "&timeout=" + wait.toMillis() + "ms", wait.plusSeconds(5));
            if (r != null && r.statusCode() == 200) {
                last = parse(changeId, json.readTree(r.body()));
            } else if (r != null && r.statusCode() != 404 && r.statusCode() != 503) {
                throw new IllegalStateException("GET /api/v1/changes/" + changeId + " answered " + r.statusCode() + ": " + r.body());
            }
            if (last.reached(level) || System.nanoTime() - deadline >= 0) {
                return last;
            }
            if (r == null || r.statusCode() != 200) {
                // 404 answers at once when the change is unknown; 503 while rebuilding: do not spin.
                sleep(Math.min(200, leftMillis));
            }
        }
    }

    private HttpResponse<String> get(String path, Duration requestTimeout) {
        HttpRequest req = HttpRequest.newBuilder(URI.create(apiUrl + path)).timeout(requestTimeout)
                .header("X-API-Key", apiKey).header("Accept", "application/json").GET().build();
        try {
            return http.send(req, HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            return null; // rule-service restarting: ask again until the deadline
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while reading change status", e);
        }
    }

    private static Status parse(String changeId, JsonNode b) {
        List<String> pending = new ArrayList<>();
        b.path("pendingHosts").forEach(h -> pending.add(h.asString()));
        return new Status(changeId, b.path("status").asString(), text(b, "code"), text(b, "reason"),
                b.hasNonNull("version") ? b.get("version").asLong() : null, b.path("hostsTotal").asInt(),
                b.path("hostsApplied").asInt(), pending);
    }

    private static String text(JsonNode b, String field) {
        return b.hasNonNull(field) ? b.get(field).asString() : null;
    }

    private static String stripSlash(String url) {
        return url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while reading change status", e);
        }
    }
}
