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
import redis.clients.jedis.params.ScanParams;
import redis.clients.jedis.resps.ScanResult;

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

    @Override
    public List<String> allNetworkIds() {
        TreeSet<String> ids = new TreeSet<>();
        String pattern = RedisKeys.tenantNetworks("*");
        String cursor = ScanParams.SCAN_POINTER_START;
        do {
            ScanResult<String> page = redis.scan(cursor, new ScanParams().match(pattern).count(500));
            for (String key : page.getResult()) {
                ids.addAll(redis.smembers(key));
            }
            cursor = page.getCursor();
        } while (!cursor.equals(ScanParams.SCAN_POINTER_START));
        return List.copyOf(ids);
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
