package io.egressctl.rules.cloudstack;

import io.egressctl.core.event.RuleChange;
import io.egressctl.rules.changes.ChangeStatus;
import io.egressctl.rules.changes.ChangeTracker;
import io.egressctl.rules.publish.EventPublisher;
import io.egressctl.rules.auth.Caller;
import io.egressctl.rules.views.NetworkNames;
import io.egressctl.rules.views.NetworkViews;
import io.egressctl.schemas.view.NetworkView;
import io.egressctl.schemas.view.RedisKeys;
import org.springframework.stereotype.Component;
import redis.clients.jedis.UnifiedJedis;

import java.util.List;
import java.util.Optional;
import java.util.TreeSet;

/** The backend on the service's own components: NetworkViews, EventPublisher, ChangeTracker. */
@Component
class SpringCloudStackBackend implements CloudStackBackend {

    private final NetworkViews views;
    private final NetworkNames names;
    private final EventPublisher publisher;
    private final ChangeTracker tracker;
    private final UnifiedJedis redis;

    SpringCloudStackBackend(NetworkViews views, NetworkNames names, EventPublisher publisher, ChangeTracker tracker, UnifiedJedis redis) {
        this.views = views;
        this.names = names;
        this.publisher = publisher;
        this.tracker = tracker;
        this.redis = redis;
    }

    @Override
    public Optional<NetworkView> network(String networkId) {
        return views.find(networkId);
    }

    @Override
    public Optional<NetworkView> visible(Caller caller, String name) {
        return names.find(caller, name);
    }

    @Override
    public List<String> networkIds(String tenantId) {
        return views.networkIds(tenantId);
    }

    /**
     * Every network of every tenant: the compiler's index of network ids ({@link RedisKeys#networks}),
     * one SMEMBERS, never a SCAN of the keyspace (which walks every key Redis holds, and on a cluster
     * sees one node's keys only).
     */
    @Override
    public List<String> allNetworkIds() {
        return List.copyOf(new TreeSet<>(redis.smembers(RedisKeys.networks())));
    }

    @Override
    public void publish(RuleChange change) {
        publisher.publish(change);
    }

    @Override
    public Optional<ChangeStatus> change(String changeId) {
        return tracker.find(changeId);
    }
}
