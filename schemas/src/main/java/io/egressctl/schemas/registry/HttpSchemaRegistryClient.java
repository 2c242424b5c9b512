package io.egressctl.schemas.registry;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

import org.apache.avro.Schema;
import org.apache.avro.SchemaParseException;

import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

/**
 * {@link SchemaRegistryClient} over the Confluent Schema Registry REST protocol, with
 * {@link java.net.http.HttpClient}. Works against Confluent Schema Registry, Apicurio's ccompat API
 * (base URL {@code http://host:port/apis/ccompat/v7}), Karapace and Redpanda.
 *
 * <p>Calls used: {@code POST /subjects/{subject}/versions} (register), {@code POST /subjects/{subject}}
 * (look up), {@code GET /schemas/ids/{id}}, {@code GET /subjects/{subject}/versions/latest} and
 * {@code POST /compatibility/subjects/{subject}/versions/latest}.
 *
 * <p>Ids are cached both ways and forever (a global id never changes its schema): schema to id per
 * subject, and id to schema. Connect timeout 2 s and request timeout 5 s by default. Several base URLs
 * may be given (comma-separated, as Confluent's {@code schema.registry.url}); a URL that cannot be
 * reached is skipped for the next. Optional HTTP basic auth from a {@code user:password} string, or from
 * the user info of the URL. Thread-safe.
 */
public final class HttpSchemaRegistryClient implements SchemaRegistryClient {

    /** Comma-separated base URL(s) of the registry; same key as Confluent's serializers. */
    public static final String SCHEMA_REGISTRY_URL_CONFIG = "schema.registry.url";
    /** {@code user:password} for HTTP basic auth; same key as Confluent's serializers. */
    public static final String BASIC_AUTH_USER_INFO_CONFIG = "basic.auth.user.info";
    /** {@code USER_INFO} or {@code URL} (Confluent's key); when absent, USER_INFO if a user info is set. */
    public static final String BASIC_AUTH_CREDENTIALS_SOURCE_CONFIG = "basic.auth.credentials.source";

    public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(2);
    public static final Duration DEFAULT_REQUEST_TIMEOUT = Duration.ofSeconds(5);

    /** Content type of the Confluent REST API (v1). */
    public static final String CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";
    private static final String ACCEPT =
            "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json; qs=0.9, application/json; qs=0.5";

    private static final JsonMapper JSON = JsonMapper.builder().build();

    private final List<String> baseUrls;
    private final String authorization;
    private final Duration requestTimeout;
    private final HttpClient http;
    /** Index of the base URL that answered last; the next call starts there. */
    private volatile int preferred;

    private final ConcurrentMap<Integer, Schema> schemasById = new ConcurrentHashMap<>();
    /** subject -> (schema JSON text -> id). Keyed by text because {@link Schema#equals} ignores docs. */
    private final ConcurrentMap<String, ConcurrentMap<String, Integer>> idsBySubject = new ConcurrentHashMap<>();

    /** A client of the registry at {@code baseUrl} (one URL or a comma-separated list), no auth. */
    public HttpSchemaRegistryClient(String baseUrl) {
        this(baseUrl, null);
    }

    /**
     * A client of the registry at {@code baseUrl} (one URL or a comma-separated list) with basic auth from
     * {@code basicAuthUserInfo} ({@code user:password}); a null or blank user info means no auth unless
     * the URL carries one.
     */
    public HttpSchemaRegistryClient(String baseUrl, String basicAuthUserInfo) {
        this(splitUrls(baseUrl), basicAuthUserInfo, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT);
    }

    /** Full control: base URLs tried in order, optional {@code user:password}, and both timeouts. */
    public HttpSchemaRegistryClient(List<String> baseUrls, String basicAuthUserInfo, Duration connectTimeout,
            Duration requestTimeout) {
        Objects.requireNonNull(baseUrls, "baseUrls");
        this.requestTimeout = Objects.requireNonNull(requestTimeout, "requestTimeout");
        List<String> urls = new ArrayList<>();
        String urlUserInfo = null;
        for (String raw : baseUrls) {
            if (raw == null || raw.isBlank()) {
                continue;
            }
            URI uri;
            try {
                uri = URI.create(raw.trim());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("invalid schema registry URL '" + raw.trim() + "': " + e.getMessage(), e);
            }
            String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
            if (!scheme.equals("http") && !scheme.equals("https") || uri.getHost() == null) {
                throw new IllegalArgumentException(
                        "invalid schema registry URL '" + redact(raw.trim()) + "': expected http(s)://host[:port][/path]");
            }
            if (uri.getRawUserInfo() != null && urlUserInfo == null) {
                urlUserInfo = decode(uri.getRawUserInfo());
            }
            String clean = scheme + "://" + hostPort(uri) + (uri.getRawPath() == null ? "" : uri.getRawPath());
            while (clean.endsWith("/")) {
                clean = clean.substring(0, clean.length() - 1);
            }
            urls.add(clean);
        }
        if (urls.isEmpty()) {
            throw new IllegalArgumentException("no schema registry URL given (config " + SCHEMA_REGISTRY_URL_CONFIG + ")");
        }
        this.baseUrls = List.copyOf(urls);
        String userInfo = basicAuthUserInfo != null && !basicAuthUserInfo.isBlank() ? basicAuthUserInfo : urlUserInfo;
        this.authorization = userInfo == null ? null
                : "Basic " + Base64.getEncoder().encodeToString(userInfo.getBytes(StandardCharsets.UTF_8));
        this.http = HttpClient.newBuilder()
                .connectTimeout(Objects.requireNonNull(connectTimeout, "connectTimeout"))
                .version(HttpClient.Version.HTTP_1_1)
                .followRedirects(HttpClient.Redirect.NORMAL)
                .build();
    }

    /**
     * A client from Kafka-style configs: {@value #SCHEMA_REGISTRY_URL_CONFIG} (String, comma-separated, or
     * a collection of strings), {@value #BASIC_AUTH_USER_INFO_CONFIG} and
     * {@value #BASIC_AUTH_CREDENTIALS_SOURCE_CONFIG} ({@code USER_INFO} or {@code URL}).
     */
    public static HttpSchemaRegistryClient fromConfig(Map<String, ?> configs) {
        Object url = configs.get(SCHEMA_REGISTRY_URL_CONFIG);
        List<String> urls = new ArrayList<>();
        if (url instanceof Collection<?> c) {
            c.forEach(u -> urls.addAll(splitUrls(String.valueOf(u))));
        } else if (url != null) {
            urls.addAll(splitUrls(String.valueOf(url)));
        }
        if (urls.isEmpty()) {
            throw new IllegalArgumentException("missing config " + SCHEMA_REGISTRY_URL_CONFIG
                    + " (e.g. http://127.0.0.1:18081/apis/ccompat/v7)");
        }
        Object source = configs.get(BASIC_AUTH_CREDENTIALS_SOURCE_CONFIG);
        Object userInfo = configs.get(BASIC_AUTH_USER_INFO_CONFIG);
        String sourceName = source == null ? "" : String.valueOf(source).trim().toUpperCase(Locale.ROOT);
        String effectiveUserInfo;
        switch (sourceName) {
            case "", "USER_INFO" -> effectiveUserInfo = userInfo == null ? null : String.valueOf(userInfo);
            case "URL" -> effectiveUserInfo = null; // taken from the URL's user info by the constructor
            default -> throw new IllegalArgumentException("unsupported " + BASIC_AUTH_CREDENTIALS_SOURCE_CONFIG + " '"
                    + source + "': expected USER_INFO or URL");
        }
        return new HttpSchemaRegistryClient(urls, effectiveUserInfo, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT);
    }

    /** The base URLs this client calls, without user info or trailing slash. */
    public List<String> baseUrls() {
        return baseUrls;
    }

    @Override
    public int register(String subject, Schema schema) {
        String text = schemaText(schema);
        Integer cached = cachedId(subject, text);
        if (cached != null) {
            return cached;
        }
        Response r = call("POST", "/subjects/" + segment(subject) + "/versions", body(text));
        if (!r.ok()) {
            throw r.error("registry rejected schema for subject " + subject + " (" + schema.getFullName() + ")");
        }
        int id = readId(r, "register " + subject);
        remember(subject, text, schema, id);
        return id;
    }

    @Override
    public OptionalInt lookupId(String subject, Schema schema) {
        String text = schemaText(schema);
        Integer cached = cachedId(subject, text);
        if (cached != null) {
            return OptionalInt.of(cached);
        }
        Response r = call("POST", "/subjects/" + segment(subject), body(text));
        if (r.registryNotFound()) {
            return OptionalInt.empty();
        }
        if (!r.ok()) {
            throw r.error("registry failed to look up schema " + schema.getFullName() + " in subject " + subject);
        }
        int id = readId(r, "look up in " + subject);
        remember(subject, text, schema, id);
        return OptionalInt.of(id);
    }

    @Override
    public Schema schemaById(int id) {
        Schema cached = schemasById.get(id);
        if (cached != null) {
            return cached;
        }
        Response r = call("GET", "/schemas/ids/" + id, null);
        if (r.registryNotFound()) {
            throw r.error("schema id " + id + " is unknown to the schema registry");
        }
        if (!r.ok()) {
            throw r.error("registry failed to return schema id " + id);
        }
        Schema schema = readSchema(r, "schema id " + id);
        Schema previous = schemasById.putIfAbsent(id, schema);
        return previous != null ? previous : schema;
    }

    @Override
    public Optional<Schema> latest(String subject) {
        Response r = call("GET", "/subjects/" + segment(subject) + "/versions/latest", null);
        if (r.registryNotFound()) {
            return Optional.empty();
        }
        if (!r.ok()) {
            throw r.error("registry failed to return the latest schema of subject " + subject);
        }
        Schema schema = readSchema(r, "latest version of subject " + subject);
        JsonNode id = r.json().path("id");
        if (id.isInt()) {
            schemasById.putIfAbsent(id.intValue(), schema);
            idsBySubject.computeIfAbsent(subject, s -> new ConcurrentHashMap<>()).putIfAbsent(schemaText(schema), id.intValue());
        }
        return Optional.of(schema);
    }

    @Override
    public boolean isCompatible(String subject, Schema schema) {
        Response r = call("POST", "/compatibility/subjects/" + segment(subject) + "/versions/latest", body(schemaText(schema)));
        if (r.registryNotFound()) {
            return true; // no version yet: anything may be registered first
        }
        if (!r.ok()) {
            throw r.error("registry failed to check compatibility of " + schema.getFullName() + " with subject " + subject);
        }
        JsonNode flag = r.json().path("is_compatible");
        if (!flag.isBoolean()) {
            throw new SchemaRegistryException("schema registry at " + r.url + " answered a compatibility check without"
                    + " is_compatible: " + abbreviate(r.body), r.status, 0);
        }
        return flag.booleanValue();
    }

    @Override
    public String toString() {
        return "HttpSchemaRegistryClient" + baseUrls;
    }

    // ---------------------------------------------------------------------------------------------------

    private Integer cachedId(String subject, String text) {
        Map<String, Integer> ids = idsBySubject.get(subject);
        return ids == null ? null : ids.get(text);
    }

    private void remember(String subject, String text, Schema schema, int id) {
        idsBySubject.computeIfAbsent(subject, s -> new ConcurrentHashMap<>()).put(text, id);
        schemasById.putIfAbsent(id, schema);
    }

    private static String schemaText(Schema schema) {
        return Objects.requireNonNull(schema, "schema").toString();
    }

    private static String body(String schemaText) {
        ObjectNode node = JSON.createObjectNode();
        node.put("schema", schemaText);
        return JSON.writeValueAsString(node);
    }

    private static int readId(Response r, String what) {
        JsonNode id = r.json().path("id");
        if (!id.isInt()) {
            throw new SchemaRegistryException("schema registry at " + r.url + " answered " + what + " without a numeric id: "
                    + abbreviate(r.body), r.status, 0);
        }
        return id.intValue();
    }

    private static Schema readSchema(Response r, String what) {
        JsonNode json = r.json();
        String type = json.path("schemaType").asString("AVRO");
        if (!type.isEmpty() && !type.equalsIgnoreCase("AVRO")) {
            throw new SchemaRegistryException(what + " at " + r.url + " is a " + type + " schema, not Avro", r.status, 0);
        }
        JsonNode text = json.path("schema");
        if (!text.isString()) {
            throw new SchemaRegistryException("schema registry at " + r.url + " answered " + what + " without a schema: "
                    + abbreviate(r.body), r.status, 0);
        }
        try {
            return new Schema.Parser().parse(text.stringValue());
        } catch (SchemaParseException e) {
            throw new SchemaRegistryException(what + " from " + r.url + " is not a valid Avro schema: " + e.getMessage(),
                    r.status, 0, e);
        }
    }

    private Response call(String method, String path, String body) {
        int start = preferred;
        List<String> failures = new ArrayList<>();
        Throwable lastCause = null;
        for (int i = 0; i < baseUrls.size(); i++) {
            int index = (start + i) % baseUrls.size();
            String url = baseUrls.get(index);
            HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url + path))
                    .timeout(requestTimeout)
                    .header("Accept", ACCEPT);
            if (authorization != null) {
                request.header("Authorization", authorization);
            }
            if (body != null) {
                request.header("Content-Type", CONTENT_TYPE)
                        .method(method, HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8));
            } else {
                request.method(method, HttpRequest.BodyPublishers.noBody());
            }
            try {
                HttpResponse<String> response = http.send(request.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
                preferred = index;
                return new Response(url + path, response.statusCode(), response.body() == null ? "" : response.body());
            } catch (IOException e) {
                lastCause = e;
                failures.add(url + " (" + describe(e) + ")");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new SchemaRegistryUnreachableException(
                        "interrupted while calling the schema registry at " + url + path, e);
            }
        }
        String where = baseUrls.size() == 1 ? "schema registry at " + baseUrls.get(0) + " is unreachable: "
                + describe(lastCause) : "no schema registry is reachable: " + String.join(", ", failures);
        throw new SchemaRegistryUnreachableException(where, lastCause);
    }

    private static String describe(Throwable e) {
        if (e == null) {
            return "unknown error";
        }
        StringBuilder sb = new StringBuilder();
        Throwable t = e;
        for (int depth = 0; t != null && depth < 4; depth++, t = t.getCause()) {
            if (depth > 0) {
                sb.append(" <- ");
            }
            sb.append(t.getClass().getSimpleName());
            if (t.getMessage() != null && !t.getMessage().isBlank()) {
                sb.append(": ").append(t.getMessage());
            }
            if (t.getCause() == t) {
                break;
            }
        }
        return sb.toString();
    }

    private static String abbreviate(String body) {
        String oneLine = body.replaceAll("\\s+", " ").trim();
        return oneLine.length() <= 500 ? oneLine : oneLine.substring(0, 500) + "...";
    }

    /** Percent-encodes one path segment (RFC 3986 unreserved characters stay as they are). */
    static String segment(String value) {
        Objects.requireNonNull(value, "subject");
        if (value.isEmpty()) {
            throw new IllegalArgumentException("empty subject");
        }
        StringBuilder sb = new StringBuilder();
        for (byte b : value.getBytes(StandardCharsets.UTF_8)) {
            int c = b & 0xff;
            if (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
                sb.append((char) c);
            } else {
                sb.append('%').append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
                        .append(Character.toUpperCase(Character.forDigit(c & 0xf, 16)));
            }
        }
        return sb.toString();
    }

    private static List<String> splitUrls(String urls) {
        List<String> out = new ArrayList<>();
        if (urls != null) {
            for (String u : urls.split(",")) {
                if (!u.isBlank()) {
                    out.add(u.trim());
                }
            }
        }
        return out;
    }

    private static String hostPort(URI uri) {
        String host = uri.getHost();
        if (host.indexOf(':') >= 0 && !host.startsWith("[")) {
            host = "[" + host + "]";
        }
        return uri.getPort() < 0 ? host : host + ":" + uri.getPort();
    }

    private static String decode(String rawUserInfo) {
        return java.net.URLDecoder.decode(rawUserInfo.replace("+", "%2B"), StandardCharsets.UTF_8);
    }

    private static String redact(String url) {
        return url.replaceFirst("//[^/@]*@", "//***@");
    }

    /** One answer of the registry. */
    private static final class Response {
        final String url;
        final int status;
        final String body;
        private JsonNode json;

        Response(String url, int status, String body) {
            this.url = url;
            this.status = status;
            this.body = body;
        }

        boolean ok() {
            return status >= 200 && status < 300;
        }

        /** The body as JSON; a non-JSON body of a 2xx answer is an error. */
        JsonNode json() {
            if (json == null) {
                try {
                    json = JSON.readTree(body);
                } catch (JacksonException e) {
                    throw new SchemaRegistryException("schema registry at " + url + " answered HTTP " + status
                            + " with a body that is not JSON: " + abbreviate(body), status, 0, e);
                }
            }
            return json;
        }

        /** Confluent error_code of an error body, 0 when there is none. */
        int errorCode() {
            try {
                JsonNode node = JSON.readTree(body);
                JsonNode code = node == null ? null : node.path("error_code");
                return code != null && code.isInt() ? code.intValue() : 0;
            } catch (JacksonException e) {
                return 0;
            }
        }

        /**
         * A 404 that the registry itself sent for a missing subject, version or schema: Confluent error codes
         * 404xx (40401 subject, 40402 version, 40403 schema not found, ...). A 404 for a path the server does
         * not serve at all (a wrong base URL: an HTML page, or Apicurio's own error_code 404) is not one.
         */
        boolean registryNotFound() {
            if (status != 404) {
                return false;
            }
            int code = errorCode();
            return code >= 40400 && code <= 40499;
        }

        SchemaRegistryException error(String what) {
            String hint = status == 404 && !registryNotFound()
                    ? " (the server does not serve this path: is the base URL right? Apicurio's is .../apis/ccompat/v7)"
                    : status == 401 || status == 403 ? " (check " + BASIC_AUTH_USER_INFO_CONFIG + ")" : "";
            return new SchemaRegistryException(what + ": HTTP " + status + " " + abbreviate(body) + hint + " [" + url + "]",
                    status, errorCode());
        }
    }
}
