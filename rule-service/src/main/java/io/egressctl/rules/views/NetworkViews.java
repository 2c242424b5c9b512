package io.egressctl.rules.views;

import io.egressctl.schemas.view.NetworkView;
import io.egressctl.schemas.view.RedisKeys;
import org.springframework.stereotype.Component;
import redis.clients.jedis.UnifiedJedis;

import java.util.List;
import java.util.Optional;
import java.util.Set;

/** Reads the networks' read model that the compiler keeps in Redis. Thread-safe. */
@Component
public class NetworkViews {

    private final UnifiedJedis redis;

    NetworkViews(UnifiedJedis redis) {
        this.redis = redis;
    }

    /** The network's current view, empty when it does not exist (or was deleted). */
    public Optional<NetworkView> find(String networkId) {
        return Optional.ofNullable(NetworkView.fromHash(redis.hgetAll(RedisKeys.network(networkId))));
    }

    /**
     * The VM that holds {@code interfaceName} on {@code hostId} ({@code networkId/vmId}), across
     * networks, as the compilers' index has it; empty when no VM does.
     */
    public Optional<String> interfaceHolder(String hostId, String interfaceName) {
        return Optional.ofNullable(redis.hget(RedisKeys.hostInterfaces(hostId), interfaceName));
    }

    /** Ids of a tenant's networks. */
    public List<String> networkIds(String tenantId) {
        Set<String> ids = redis.smembers(RedisKeys.tenantNetworks(tenantId));
        return ids.stream().sorted().toList();
    }
}
