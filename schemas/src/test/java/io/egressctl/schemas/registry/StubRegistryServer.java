package io.egressctl.schemas.registry;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.apache.avro.Schema;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

/**
 * A loopback HTTP server that speaks the part of the Confluent Schema Registry REST protocol the client
 * uses, under a path prefix like Apicurio's {@code /apis/ccompat/v7}, backed by an
 * {@link InMemorySchemaRegistryClient}. Records every request. For unit tests only.
 */
final class StubRegistryServer implements AutoCloseable {

    static final String PREFIX = "/apis/ccompat/v7";
    private static final JsonMapper JSON = JsonMapper.builder().build();

    record Request(String method, String rawPath, String contentType, String accept, String authorization, String body) {
    }

    final InMemorySchemaRegistryClient backend = new InMemorySchemaRegistryClient();
    final List<Request> requests = new CopyOnWriteArrayList<>();
    volatile long delayMillis;

    private final HttpServer server;
    private final ExecutorService executor = Executors.newFixedThreadPool(4);

    StubRegistryServer() throws IOException {
        // without TCP_NODELAY the JDK server's separate header and body writes meet delayed ACKs: ~40 ms a call
        System.setProperty("sun.net.httpserver.nodelay", "true");
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/", this::handle);
        server.setExecutor(executor);
        server.start();
    }

    /** Base URL with the ccompat prefix, e.g. http://127.0.0.1:PORT/apis/ccompat/v7. */
    String url() {
        return root() + PREFIX;
    }

    String root() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    @Override
    public void close() {
        executor.shutdownNow(); // first: wakes a handler that is sleeping out a delay
        server.stop(0);
    }

    private void handle(HttpExchange exchange) throws IOException {
        try (exchange; InputStream in = exchange.getRequestBody()) {
            String body = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            String method = exchange.getRequestMethod();
            String rawPath = exchange.getRequestURI().getRawPath();
            requests.add(new Request(method, rawPath, exchange.getRequestHeaders().getFirst("Content-Type"),
                    exchange.getRequestHeaders().getFirst("Accept"), exchange.getRequestHeaders().getFirst("Authorization"), body));
            if (delayMillis > 0) {
                Thread.sleep(delayMillis);
            }
            if (rawPath.startsWith("/html/")) {
                send(exchange, 404, "text/html", "<html><body>404 Not Found</body></html>");
                return;
            }
            if (!rawPath.startsWith(PREFIX + "/")) { // what Apicurio 2.6 answers for a path it does not serve
                json(exchange, 404, JSON.createObjectNode().put("error_code", 404)
                        .put("message", "RESTEASY003210: Could not find resource for full path: " + rawPath));
                return;
            }
            List<String> p = new ArrayList<>();
            for (String segment : rawPath.substring(PREFIX.length() + 1).split("/")) {
                p.add(URLDecoder.decode(segment, StandardCharsets.UTF_8));
            }
            route(exchange, method, p, body);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void route(HttpExchange exchange, String method, List<String> p, String body) throws IOException {
        try {
            if (method.equals("POST") && p.size() == 3 && p.get(0).equals("subjects") && p.get(2).equals("versions")) {
                int id = backend.register(p.get(1), schemaOf(body));
                json(exchange, 200, JSON.createObjectNode().put("id", id));
            } else if (method.equals("POST") && p.size() == 2 && p.get(0).equals("subjects")) {
                Schema schema = schemaOf(body);
                OptionalInt id = backend.lookupId(p.get(1), schema);
                if (id.isEmpty()) {
                    error(exchange, 404, backend.latest(p.get(1)).isPresent() ? 40403 : 40401, "Schema not found");
                } else {
                    json(exchange, 200, JSON.createObjectNode().put("subject", p.get(1)).put("id", id.getAsInt())
                            .put("version", 1).put("schema", schema.toString()));
                }
            } else if (method.equals("GET") && p.size() == 3 && p.get(0).equals("schemas") && p.get(1).equals("ids")) {
                Schema schema = backend.schemaById(Integer.parseInt(p.get(2)));
                json(exchange, 200, JSON.createObjectNode().put("schema", schema.toString()));
            } else if (method.equals("GET") && p.size() == 4 && p.get(0).equals("subjects") && p.get(2).equals("versions")
                    && p.get(3).equals("latest")) {
                Optional<Schema> latest = backend.latest(p.get(1));
                if (latest.isEmpty()) {
                    error(exchange, 404, 40401, "Subject '" + p.get(1) + "' not found.");
                } else {
                    json(exchange, 200, JSON.createObjectNode().put("subject", p.get(1)).put("version", 1)
                            .put("id", backend.lookupId(p.get(1), latest.get()).getAsInt())
                            .put("schema", latest.get().toString()));
                }
            } else if (method.equals("POST") && p.size() == 5 && p.get(0).equals("compatibility")
                    && p.get(1).equals("subjects") && p.get(3).equals("versions") && p.get(4).equals("latest")) {
                if (backend.latest(p.get(2)).isEmpty()) {
                    error(exchange, 404, 40401, "Subject '" + p.get(2) + "' not found.");
                } else {
                    json(exchange, 200, JSON.createObjectNode().put("is_compatible", backend.isCompatible(p.get(2), schemaOf(body))));
                }
            } else {
                error(exchange, 405, 405, "Method not allowed: " + method + " " + String.join("/", p));
            }
        } catch (SchemaRegistryException e) {
            error(exchange, e.httpStatus(), e.errorCode(), e.getMessage());
        }
    }

    private static Schema schemaOf(String body) {
        return new Schema.Parser().parse(JSON.readTree(body).path("schema").stringValue());
    }

    private static void error(HttpExchange exchange, int status, int code, String message) throws IOException {
        json(exchange, status, JSON.createObjectNode().put("error_code", code).put("message", message));
    }

    private static void json(HttpExchange exchange, int status, ObjectNode node) throws IOException {
        send(exchange, status, "application/vnd.schemaregistry.v1+json", JSON.writeValueAsString(node));
    }

    private static void send(HttpExchange exchange, int status, String contentType, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", contentType);
        exchange.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }

    @Override
    public String toString() {
        return "StubRegistryServer" + Arrays.asList(url());
    }
}
