package io.egressctl.rules.views;

import io.egressctl.rules.auth.Caller;
import io.egressctl.rules.changes.ChangeStatus;
import io.egressctl.schemas.view.NetworkView;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.assertj.core.api.Assertions.assertThat;

/** Tenant-scoped network names over an in-memory read model and name claims. */
class NetworkNamesTest {

    static final Caller ACME = new Caller("alice", "acme", false);
    static final Caller BETA = new Caller("bob", "beta", false);
    static final Caller OPS = new Caller("compute", "ops", true);

    final Map<String, NetworkView> views = new HashMap<>();
    final Map<String, String> claims = new HashMap<>();

    NetworkNames names() {
        return new NetworkNames(id -> Optional.ofNullable(views.get(id)), new NetworkNames.Claims() {
            @Override
            public String claim(String name, String tenant) {
                String before = claims.putIfAbsent(name, tenant);
                return before == null ? tenant : before;
            }

            @Override
            public String holder(String name) {
                return claims.get(name);
            }
        });
    }

    void create(Caller caller, String name) {
        String logId = names().allocate(caller.tenantId(), name);
        views.put(logId, new NetworkView(logId, caller.tenantId(), "basic", "10.1.0.0/24", null, "allow", false, 1000, 1, 1, Map.of(),
                Map.of()));
    }

    @Test
    void theFirstTenantToCreateANameGetsItAsTheLogIdAsBefore() {
        assertThat(names().allocate("acme", "web")).isEqualTo("web");
        create(ACME, "web");
        assertThat(names().allocate("acme", "web")).as("its own claim again (a retried create)").isEqualTo("web");
        assertThat(names().find(ACME, "web")).map(NetworkView::networkId).contains("web");
    }

    @Test
    void anotherTenantsNetworkOfTheSameNameGetsTheScopedLogIdAndIsFoundByItsName() {
        create(ACME, "web");
        assertThat(names().find(BETA, "web")).as("acme's network is not beta's").isEmpty();
        create(BETA, "web");
        assertThat(views).containsKeys("web", "beta:web");
        assertThat(names().find(BETA, "web")).map(NetworkView::networkId).contains("beta:web");
        assertThat(names().find(ACME, "web")).map(NetworkView::networkId).contains("web");
        assertThat(names().find(ACME, "beta:web")).as("a scoped id is no name of another tenant").isEmpty();
    }

    @Test
    void aNameStaysItsFirstTenantsAfterItsNetworkIsDeletedSoNoOtherTenantReusesTheLogId() {
        create(ACME, "web");
        views.remove("web");
        assertThat(names().allocate("beta", "web")).isEqualTo("beta:web");
        assertThat(names().allocate("acme", "web")).isEqualTo("web");
    }

    @Test
    void aNameHeldByANetworkWithoutAClaimIsNotTakenTooAfterRedisLostTheClaims() {
        views.put("web", new NetworkView("web", "acme", "basic", "10.1.0.0/24", null, "allow", false, 1000, 1, 1, Map.of(), Map.of()));
        assertThat(names().allocate("beta", "web")).isEqualTo("beta:web");
        assertThat(claims).doesNotContainKey("web");
    }

    @Test
    void aNameWithAColonIsAlwaysScopedByItsTenant() {
        assertThat(names().allocate("acme", "beta:web")).isEqualTo("acme:beta:web");
        create(ACME, "beta:web");
        create(ACME, "web");
        create(BETA, "web");
        assertThat(views).containsOnlyKeys("acme:beta:web", "web", "beta:web");
        assertThat(names().find(BETA, "web")).map(NetworkView::networkId).contains("beta:web");
        assertThat(names().find(BETA, "beta:web")).as("its own scoped log id is no name of beta's: it would tell that 'web' is held")
                .isEmpty();
        assertThat(names().find(ACME, "beta:web")).map(NetworkView::networkId).contains("acme:beta:web");
    }

    @Test
    void theOwnerOfANetworkIsKnownBeforeItsViewFromTheClaimOrTheScopedId() {
        assertThat(names().tenantOf("web")).as("never created through the API").isEmpty();
        names().allocate("acme", "web");
        names().allocate("beta", "web");
        assertThat(names().tenantOf("web")).contains("acme");
        assertThat(names().tenantOf("beta:web")).contains("beta");
        views.put("legacy", new NetworkView("legacy", "gamma", "basic", "10.1.0.0/24", null, "allow", false, 1000, 1, 1, Map.of(),
                Map.of()));
        assertThat(names().tenantOf("legacy")).as("the view decides when there is one").contains("gamma");
    }

    @Test
    void aTenantIsShownItsNamesAndNeverItsScopedLogIdsAnOperatorTheLogIds() {
        create(ACME, "web");
        create(BETA, "web");
        NetworkView scoped = views.get("beta:web");
        assertThat(NetworkNames.shown(BETA, scoped).networkId()).isEqualTo("web");
        assertThat(NetworkNames.shown(OPS, scoped).networkId()).isEqualTo("beta:web");
        assertThat(names().find(OPS, "beta:web")).isPresent();
        ChangeStatus s = new ChangeStatus("c1", "beta:web", "RULE_CREATED", "REJECTED", "STALE_VERSION",
                "network beta:web is at version 4, the change expected 2", 5L, "r1", 0, 0, List.of(), null);
        ChangeStatus shown = NetworkNames.shown(BETA, s);
        assertThat(shown.networkId()).isEqualTo("web");
        assertThat(shown.reason()).isEqualTo("network web is at version 4, the change expected 2");
        assertThat(NetworkNames.shown(OPS, s)).isSameAs(s);
    }
}
