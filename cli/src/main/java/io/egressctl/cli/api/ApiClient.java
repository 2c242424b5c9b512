package io.egressctl.cli.api;

import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;

/** A small client of the rule-service REST API (JSON in, JSON out). Thread-safe. */
public final class ApiClient {

    /** A response: status code and parsed JSON body (null when empty). */
    public record Response(int status, JsonNode body, Map<String, java.util.List<String>> headers) {

        public String text(String field) {
            JsonNode n = body == null ? null : body.get(field);
            return n == null || n.isNull() ? null : n.asString();
        }
    }

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    private final JsonMapper json = JsonMapper.builder().build();
    private final String baseUrl;

    public ApiClient(String baseUrl) {
        this.baseUrl = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
    }

    public Response send(String method, String path, String apiKey, Object body, Map<String, String> headers) {
        try {
            HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(baseUrl + path)).timeout(Duration.ofSeconds(70));
            if (apiKey != null) {
                b.header("X-API-Key", apiKey);
            }
            headers.forEach(b::header);
            if (body == null) {
                b.method(method, HttpRequest.BodyPublishers.noBody());
            } else {
                String text = body instanceof String s ? s : json.writeValueAsString(body);
                b.header("Content-Type", "application/json").method(method, HttpRequest.BodyPublishers.ofString(text));
            }
            HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
            JsonNode parsed = r.body() == null || r.body().isBlank() ? null : json.readTree(r.body());
            return new Response(r.statusCode(), parsed, r.headers().map());
        } catch (IOException e) {
            throw new IllegalStateException(method + " " + path + " failed: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    public Response post(String path, String apiKey, Object body) {
        return send("POST", path, apiKey, body, Map.of());
    }

    public Response put(String path, String apiKey, Object body) {
        return send("PUT", path, apiKey, body, Map.of());
    }

    public Response get(String path, String apiKey) {
        return send("GET", path, apiKey, null, Map.of());
    }

    public Response delete(String path, String apiKey) {
        return send("DELETE", path, apiKey, null, Map.of());
    }
}
