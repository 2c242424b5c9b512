package io.egressctl.schemas.redis;

import redis.clients.jedis.ConnectionPoolConfig;
import redis.clients.jedis.DefaultJedisClientConfig;
import redis.clients.jedis.HostAndPort;
import redis.clients.jedis.Jedis;
import redis.clients.jedis.JedisClientConfig;
import redis.clients.jedis.JedisCluster;
import redis.clients.jedis.JedisPooled;
import redis.clients.jedis.JedisSentineled;
import redis.clients.jedis.UnifiedJedis;

import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The one place every service and tool gets its Redis client from: standalone ({@link JedisPooled}),
 * Sentinel ({@link JedisSentineled}: asks the Sentinels for the primary and moves its pool when they
 * announce a fail-over) or Cluster ({@link JedisCluster}), as {@link RedisTarget} says.
 */
public final class RedisClients {

    private RedisClients() {
    }

    /** A pooled client for {@code url} (see {@link RedisTarget#parse}). */
    public static UnifiedJedis create(String url) {
        return create(RedisTarget.parse(url), false);
    }

    /**
     * A pooled client for {@code target}.
     *
     * @param checkOnBorrow PING each pooled connection when it is borrowed: after Redis restarted (or the
     *                      primary changed) each idle connection is dead, and without the check each one
     *                      fails the call that borrowed it before the pool drops it
     */
    public static UnifiedJedis create(RedisTarget target, boolean checkOnBorrow) {
        ConnectionPoolConfig pool = new ConnectionPoolConfig();
        pool.setTestOnBorrow(checkOnBorrow);
        JedisClientConfig server = serverConfig(target);
        return switch (target.topology()) {
            case STANDALONE -> new JedisPooled(hostAndPort(target.nodes().get(0)), server, pool);
            case SENTINEL -> new JedisSentineled(target.master(), server, pool, hostsAndPorts(target.nodes()), sentinelConfig(target));
            case CLUSTER -> new JedisCluster(hostsAndPorts(target.nodes()), server, pool);
        };
    }

    /**
     * One plain connection to the server that takes writes now (standalone: the server; Sentinel: the
     * primary the first Sentinel that answers names; Cluster: the first seed node), e.g. for a pub/sub
     * subscription. A caller that loses it calls this again, and so follows a fail-over.
     */
    public static Jedis connectPrimary(RedisTarget target) {
        return new Jedis(primary(target), serverConfig(target));
    }

    /** Where the primary is now (for Sentinel, as the first Sentinel that answers says). */
    public static HostAndPort primary(RedisTarget target) {
        if (target.topology() != RedisTarget.Topology.SENTINEL) {
            return hostAndPort(target.nodes().get(0));
        }
        RuntimeException last = null;
        for (RedisTarget.Node sentinel : target.nodes()) {
            try (Jedis s = new Jedis(hostAndPort(sentinel), sentinelConfig(target))) {
                List<String> addr = s.sentinelGetMasterAddrByName(target.master());
                if (addr != null && addr.size() == 2) {
                    return new HostAndPort(addr.get(0), Integer.parseInt(addr.get(1)));
                }
                last = new IllegalStateException("Sentinel " + sentinel + " does not know master '" + target.master() + "'");
            } catch (RuntimeException e) {
                last = e;
            }
        }
        throw new IllegalStateException("no Sentinel of " + target.nodes() + " named the primary of '" + target.master() + "'", last);
    }

    private static JedisClientConfig serverConfig(RedisTarget t) {
        // A WAIT that times out answers after ack-timeout-ms: the socket must outwait it (Jedis's default
        // of 2 s equals the default ack timeout, and the read timed out first: a connection error instead
        // of "not acknowledged").
        DefaultJedisClientConfig.Builder b = DefaultJedisClientConfig.builder().ssl(t.tls())
                .socketTimeoutMillis((int) Math.min(Integer.MAX_VALUE, Math.max(2_000, t.ackTimeoutMs() + 2_000)));
        if (t.topology() != RedisTarget.Topology.CLUSTER) {
            b.database(t.database());
        }
        if (t.user() != null) {
            b.user(t.user());
        }
        if (t.password() != null) {
            b.password(t.password());
        }
        return b.build();
    }

    /** Sentinels take no database and, here, the same credentials and TLS as the servers. */
    private static JedisClientConfig sentinelConfig(RedisTarget t) {
        DefaultJedisClientConfig.Builder b = DefaultJedisClientConfig.builder().ssl(t.tls());
        if (t.user() != null) {
            b.user(t.user());
        }
        if (t.password() != null) {
            b.password(t.password());
        }
        return b.build();
    }

    private static HostAndPort hostAndPort(RedisTarget.Node n) {
        return new HostAndPort(n.host(), n.port());
    }

    private static Set<HostAndPort> hostsAndPorts(List<RedisTarget.Node> nodes) {
        Set<HostAndPort> out = new LinkedHashSet<>();
        nodes.forEach(n -> out.add(hostAndPort(n)));
        return out;
    }
}
