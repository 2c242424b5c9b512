package io.egressctl.schemas.redis;

import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where Redis is and how it is deployed, parsed from the one setting every service and tool already
 * takes ({@code REDIS_URL}):
 * <ul>
 *   <li>{@code redis://[user:password@]host:port[/db]} (or {@code rediss://} for TLS): one server;</li>
 *   <li>{@code redis-sentinel://[user:password@]h1:p1,h2:p2,h3:p3[/db]?master=NAME}: a primary with
 *       replicas watched by Sentinels; clients ask the Sentinels for the current primary and follow a
 *       fail-over;</li>
 *   <li>{@code redis-cluster://[user:password@]h1:p1,h2:p2,...}: a Redis Cluster (database 0 only).</li>
 * </ul>
 * Query parameters: {@code master} (Sentinel: the monitored name, default {@code egress}),
 * {@code ack-replicas} (replicas that must hold a compiler write before its batch counts as done,
 * with {@code WAIT}; default 0 standalone, 1 with Sentinel) and {@code ack-timeout-ms} (default 2000).
 *
 * @param topology     how Redis is deployed
 * @param nodes        the server (standalone), the Sentinels, or the cluster's seed nodes
 * @param database     the database number (standalone and Sentinel)
 * @param user         ACL user or null
 * @param password     password or null
 * @param tls          TLS to the servers ({@code rediss}, {@code rediss-sentinel}, {@code rediss-cluster})
 * @param master       the Sentinel master name (Sentinel only)
 * @param ackReplicas  replicas a compiler write waits for (WAIT), 0: none
 * @param ackTimeoutMs how long such a WAIT may take
 */
public record RedisTarget(Topology topology, List<Node> nodes, int database, String user, String password, boolean tls,
                          String master, int ackReplicas, long ackTimeoutMs) {

    /** How Redis is deployed. */
    public enum Topology { STANDALONE, SENTINEL, CLUSTER }

    /** One host and port. */
    public record Node(String host, int port) {
        @Override
        public String toString() {
            return host + ":" + port;
        }
    }

    public RedisTarget {
        nodes = List.copyOf(nodes);
        if (nodes.isEmpty()) {
            throw new IllegalArgumentException("Redis URL names no host");
        }
        if (topology == Topology.STANDALONE && nodes.size() != 1) {
            throw new IllegalArgumentException("a redis:// URL names one server; for several use redis-sentinel:// or redis-cluster://");
        }
        if (topology == Topology.CLUSTER && database != 0) {
            throw new IllegalArgumentException("a Redis Cluster has database 0 only, the URL names " + database);
        }
        if (ackReplicas < 0 || ackTimeoutMs < 1) {
            throw new IllegalArgumentException("ack-replicas must be 0 or more and ack-timeout-ms positive");
        }
    }

    /**
     * Parses a Redis URL (see the type's description).
     *
     * @throws IllegalArgumentException naming what is wrong, for anything else
     */
    public static RedisTarget parse(String url) {
        if (url == null || url.isBlank()) {
            throw new IllegalArgumentException("REDIS_URL is empty; e.g. redis://127.0.0.1:6379 or redis-sentinel://h1:26379,h2:26379,h3:26379?master=egress");
        }
        String s = url.strip();
        int colon = s.indexOf("://");
        if (colon < 0) {
            throw new IllegalArgumentException("Redis URL '" + redact(s) + "' has no scheme (redis://, rediss://, redis-sentinel://, redis-cluster://)");
        }
        String scheme = s.substring(0, colon).toLowerCase(java.util.Locale.ROOT);
        Topology topology;
        boolean tls;
        switch (scheme) {
            case "redis" -> { topology = Topology.STANDALONE; tls = false; }
            case "rediss" -> { topology = Topology.STANDALONE; tls = true; }
            case "redis-sentinel" -> { topology = Topology.SENTINEL; tls = false; }
            case "rediss-sentinel" -> { topology = Topology.SENTINEL; tls = true; }
            case "redis-cluster" -> { topology = Topology.CLUSTER; tls = false; }
            case "rediss-cluster" -> { topology = Topology.CLUSTER; tls = true; }
            default -> throw new IllegalArgumentException("Redis URL scheme '" + scheme
                    + "' is not one of redis, rediss, redis-sentinel, rediss-sentinel, redis-cluster, rediss-cluster");
        }
        String rest = s.substring(colon + 3);
        String query = "";
        int q = rest.indexOf('?');
        if (q >= 0) {
            query = rest.substring(q + 1);
            rest = rest.substring(0, q);
        }
        String path = "";
        int slash = rest.indexOf('/');
        if (slash >= 0) {
            path = rest.substring(slash + 1);
            rest = rest.substring(0, slash);
        }
        String user = null;
        String password = null;
        int at = rest.lastIndexOf('@');
        if (at >= 0) {
            String info = rest.substring(0, at);
            rest = rest.substring(at + 1);
            int c = info.indexOf(':');
            if (c >= 0) {
                user = emptyToNull(decode(info.substring(0, c)));
                password = emptyToNull(decode(info.substring(c + 1)));
            } else {
                password = emptyToNull(decode(info));
            }
        }
        List<Node> nodes = new ArrayList<>();
        for (String part : rest.split(",")) {
            if (part.isBlank()) {
                continue;
            }
            nodes.add(node(part.strip(), topology == Topology.SENTINEL ? 26379 : 6379, url));
        }
        int database = 0;
        if (!path.isEmpty()) {
            try {
                database = Integer.parseInt(path);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("Redis URL '" + redact(s) + "': the path must be a database number, not '" + path + "'");
            }
            if (database < 0) {
                throw new IllegalArgumentException("Redis URL '" + redact(s) + "': database " + database + " is negative");
            }
        }
        Map<String, String> params = new LinkedHashMap<>();
        for (String kv : query.split("&")) {
            if (kv.isEmpty()) {
                continue;
            }
            int eq = kv.indexOf('=');
            String k = eq < 0 ? kv : kv.substring(0, eq);
            String v = eq < 0 ? "" : decode(kv.substring(eq + 1));
            if (!List.of("master", "ack-replicas", "ack-timeout-ms").contains(k)) {
                throw new IllegalArgumentException("Redis URL '" + redact(s) + "': unknown parameter '" + k
                        + "' (master, ack-replicas, ack-timeout-ms)");
            }
            params.put(k, v);
        }
        String master = params.getOrDefault("master", "egress");
        if (topology != Topology.SENTINEL && params.containsKey("master")) {
            throw new IllegalArgumentException("Redis URL '" + redact(s) + "': master= is for redis-sentinel:// only");
        }
        if (master.isBlank()) {
            throw new IllegalArgumentException("Redis URL '" + redact(s) + "': master= is empty");
        }
        int ackReplicas = intParam(params, "ack-replicas", topology == Topology.SENTINEL ? 1 : 0, s);
        long ackTimeout = intParam(params, "ack-timeout-ms", 2000, s);
        return new RedisTarget(topology, nodes, database, user, password, tls,
                topology == Topology.SENTINEL ? master : null, ackReplicas, ackTimeout);
    }

    private static int intParam(Map<String, String> params, String key, int dflt, String url) {
        String v = params.get(key);
        if (v == null) {
            return dflt;
        }
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("Redis URL '" + redact(url) + "': " + key + " must be a number, not '" + v + "'");
        }
    }

    private static Node node(String part, int defaultPort, String url) {
        String host = part;
        int port = defaultPort;
        int c = part.lastIndexOf(':');
        if (part.startsWith("[")) {
            int end = part.indexOf(']');
            if (end < 0) {
                throw new IllegalArgumentException("Redis URL '" + redact(url) + "': '" + part + "' is not host:port");
            }
            host = part.substring(1, end);
            c = part.indexOf(':', end);
        } else if (c >= 0) {
            host = part.substring(0, c);
        }
        if (c >= 0) {
            try {
                port = Integer.parseInt(part.substring(c + 1));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("Redis URL '" + redact(url) + "': '" + part + "' has no numeric port");
            }
        }
        if (host.isBlank() || port < 1 || port > 65535) {
            throw new IllegalArgumentException("Redis URL '" + redact(url) + "': '" + part + "' is not host:port");
        }
        return new Node(host, port);
    }

    private static String decode(String s) {
        return URLDecoder.decode(s, StandardCharsets.UTF_8);
    }

    private static String emptyToNull(String s) {
        return s == null || s.isEmpty() ? null : s;
    }

    /** The URL without its password, for messages. */
    static String redact(String url) {
        return url.replaceAll("(://[^@/]*:)[^@/]*@", "$1***@");
    }

    /** A standalone target as a URI (for the clients that take one). */
    URI standaloneUri() {
        Node n = nodes.get(0);
        return URI.create((tls ? "rediss" : "redis") + "://" + n.host() + ":" + n.port() + "/" + database);
    }

    @Override
    public String toString() {
        return topology.name().toLowerCase(java.util.Locale.ROOT) + " " + nodes + (master != null ? " master " + master : "")
                + (database != 0 ? " db " + database : "") + (user != null ? " user " + user : "") + (tls ? " tls" : "")
                + (ackReplicas > 0 ? " ack-replicas " + ackReplicas : "");
    }
}
