package io.egressctl.rules.views;

import io.egressctl.core.validation.NetworkIds;
import io.egressctl.rules.auth.Caller;
import io.egressctl.rules.changes.ChangeStatus;
import io.egressctl.schemas.view.NetworkView;
import io.egressctl.schemas.view.RedisKeys;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.stereotype.Component;
import redis.clients.jedis.UnifiedJedis;
import redis.clients.jedis.params.SetParams;

import java.util.Optional;
import java.util.function.Function;

/**
 * Tenant-scoped network names ({@link NetworkIds}): a tenant addresses and sees its networks by the
 * names it gave them, whatever their log ids; an operator addresses and sees log ids. Another tenant's
 * network is never found by a name, so every answer about it is the answer about a name nobody holds.
 * Thread-safe.
 */
@Component
public class NetworkNames {

    /** The claims of bare log ids. */
    public interface Claims {

        /** Claims a bare log id for a tenant (SET NX) and answers the tenant that holds it. */
        String claim(String name, String tenantId);

        /** The tenant that holds the bare log id {@code name}, or null. */
        String holder(String name);
    }

    private final Function<String, Optional<NetworkView>> views;
    private final Claims claims;

    @Autowired
    NetworkNames(NetworkViews views, UnifiedJedis redis, io.egressctl.rules.config.EgressProperties props) {
        this(views, redis, io.egressctl.rules.config.ReplicatedClaims.of(redis, props.redisUrl()));
    }

    NetworkNames(NetworkViews views, UnifiedJedis redis, io.egressctl.rules.config.ReplicatedClaims replicated) {
        this(views::find, new Claims() {
            @Override
            public String claim(String name, String tenant) {
                String key = RedisKeys.nameClaim(name);
                // Never expires: a name stays its first tenant's bare log id, also after that network is
                // deleted, so another tenant's network of that name always has the scoped id. Counted once
                // the replicas hold it (a 503 otherwise, before anything is published): a fail-over must
                // not give the name to a second tenant while the first one's network uses it.
                if (replicated.setIfAbsent(key, tenant, SetParams.setParams().nx())) {
                    return tenant;
                }
                String holder = redis.get(key);
                return holder == null ? tenant : holder;
            }

            @Override
            public String holder(String name) {
                return redis.get(RedisKeys.nameClaim(name));
            }
        });
    }

    public NetworkNames(Function<String, Optional<NetworkView>> views, Claims claims) {
        this.views = views;
        this.claims = claims;
    }

    /**
     * The caller's network named {@code name}: for a tenant, its network whose log id is the name or its
     * scoped form (never another tenant's); for an operator, the network of log id {@code name}.
     */
    public Optional<NetworkView> find(Caller caller, String name) {
        if (caller.operator()) {
            return views.apply(name);
        }
        // A log id with the caller's own prefix is shown without it, so it is no name of the caller's:
        // looking it up bare would let a tenant tell a scoped network (another tenant holds the name)
        // from a bare one.
        if (!name.startsWith(caller.tenantId() + NetworkIds.SCOPE)) {
            Optional<NetworkView> bare = views.apply(name).filter(v -> caller.tenantId().equals(v.tenantId()));
            if (bare.isPresent()) {
                return bare;
            }
        }
        return views.apply(NetworkIds.scoped(caller.tenantId(), name)).filter(v -> caller.tenantId().equals(v.tenantId()));
    }

    /**
     * The log id of a new network {@code name} of {@code tenantId}: the name itself when it may be bare,
     * no other tenant's network holds it and the tenant holds (or now takes) its claim; else the scoped
     * id. Decided before publishing; the log records it, so no replay depends on this choice again.
     */
    public String allocate(String tenantId, String name) {
        if (NetworkIds.mayBeBare(name)
                && views.apply(name).map(v -> tenantId.equals(v.tenantId())).orElse(true)
                && tenantId.equals(claims.claim(name, tenantId))) {
            return name;
        }
        return NetworkIds.scoped(tenantId, name);
    }

    /**
     * The tenant that owns, or last created through the API, the network of log id {@code networkId},
     * also before the compiler wrote its view (a placement right after the create): its view's tenant,
     * else the tenant of a scoped log id, else the holder of a bare id's claim. Empty when no tenant
     * ever created it through the API. A placement bound to it is decided in log order, so one for a
     * network deleted meanwhile is rejected there, never kept for whoever creates the id next.
     */
    public Optional<String> tenantOf(String networkId) {
        Optional<NetworkView> view = views.apply(networkId);
        if (view.isPresent()) {
            return Optional.of(view.get().tenantId());
        }
        int scope = networkId.indexOf(NetworkIds.SCOPE);
        if (scope > 0) {
            return Optional.of(networkId.substring(0, scope));
        }
        return Optional.ofNullable(claims.holder(networkId));
    }

    /** What {@code caller} calls the network of log id {@code networkId}. */
    public static String shown(Caller caller, String networkId) {
        return caller.operator() || networkId == null ? networkId : NetworkIds.nameFor(caller.tenantId(), networkId);
    }

    /**
     * {@code text} (a reason, a message) as {@code caller} may read it: the network's scoped log id
     * replaced by the caller's name for it. A tenant never sees its network's scoped log id, which
     * would tell that another tenant holds the name.
     */
    public static String shownText(Caller caller, String networkId, String text) {
        String name = shown(caller, networkId);
        return text == null || name == null || name.equals(networkId) ? text : text.replace(networkId, name);
    }

    /** The change status as {@code caller} sees it: its network by the caller's name, in its reason too. */
    public static ChangeStatus shown(Caller caller, ChangeStatus s) {
        String name = shown(caller, s.networkId());
        if (name == null || name.equals(s.networkId())) {
            return s;
        }
        return new ChangeStatus(s.changeId(), name, s.operation(), s.status(), s.code(), shownText(caller, s.networkId(), s.reason()),
                s.version(), s.ruleId(), s.hostsTotal(), s.hostsApplied(), s.pendingHosts(), s.compiledAt(), s.failedHosts());
    }

    /** The view as {@code caller} sees it: its network id is the caller's name for it. */
    public static NetworkView shown(Caller caller, NetworkView v) {
        String id = shown(caller, v.networkId());
        return id.equals(v.networkId()) ? v : v.withNetworkId(id);
    }
}
