package io.egressctl.e2e.api;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.e2e.support.ControlPlane;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Eight clients hammering one network at once on the real stack: no accepted write is lost, writers
 * racing at the same version (If-Match) have exactly one winner, and one Idempotency-Key makes one
 * rule however many copies of the request arrive together.
 */
class ConcurrentWritersIT {

    static final int CLIENTS = 8;
    static final int RULES_PER_CLIENT = 25;

    static ControlPlane cp;
    static ApiClient api;
    static Published published;
    static ExecutorService pool;

    @BeforeAll
    static void start() {
        cp = ControlPlane.shared();
        api = cp.api();
        published = new Published(cp);
        pool = Executors.newFixedThreadPool(CLIENTS);
    }

    @AfterAll
    static void stop() throws InterruptedException {
        pool.shutdownNow();
        pool.awaitTermination(10, TimeUnit.SECONDS);
        published.close();
    }

    static String network(String prefix, String cidr) {
        String id = cp.unique(prefix);
        ApiClient.Response r = api.post("/api/v1/networks?wait=compiled&timeout=30s", cp.tenantKey(), Map.of("networkId", id, "guestCidr", cidr));
        assertThat(r.status()).as("%s", r.body()).isEqualTo(201);
        return id;
    }

    static String rules(String net) {
        return "/api/v1/networks/" + net + "/egress-rules";
    }

    /** Runs {@code CLIENTS} tasks released at the same instant; returns their results in client order. */
    static <T> List<T> together(int n, java.util.function.IntFunction<Callable<T>> task) throws Exception {
        CountDownLatch ready = new CountDownLatch(n);
        CountDownLatch go = new CountDownLatch(1);
        List<Future<T>> futures = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Callable<T> c = task.apply(i);
            futures.add(pool.submit(() -> {
                ready.countDown();
                go.await();
                return c.call();
            }));
        }
        ready.await();
        go.countDown();
        List<T> out = new ArrayList<>();
        for (Future<T> f : futures) {
            out.add(f.get(5, TimeUnit.MINUTES));
        }
        return out;
    }

    /** Waits for a 202's change to be decided; true when it was accepted (compiled or applied). */
    static boolean accepted(ApiClient client, String changeId) {
        ApiClient.Response s = client.get("/api/v1/changes/" + changeId + "?wait=compiled&timeout=30s", cp.tenantKey());
        assertThat(s.status()).as("%s", s.body()).isEqualTo(200);
        String status = s.text("status");
        assertThat(status).as("change %s", changeId).isIn("COMPILED", "APPLIED", "REJECTED");
        return !status.equals("REJECTED");
    }

    static Map<String, JsonNode> ruleList(String net) {
        ApiClient.Response r = api.get(rules(net), cp.tenantKey());
        assertThat(r.status()).isEqualTo(200);
        Map<String, JsonNode> out = new HashMap<>();
        r.body().forEach(n -> out.put(n.get("ruleId").asString(), n));
        return out;
    }

    @Test
    void eightClientsCreatingRulesAtOnceLoseNoUpdate() throws Exception {
        String net = network("conc", "10.60.0.0/24");
        List<List<ApiClient.Response>> all = together(CLIENTS, client -> () -> {
            ApiClient own = new ApiClient(cp.apiUrl());
            List<ApiClient.Response> answers = new ArrayList<>();
            for (int i = 0; i < RULES_PER_CLIENT; i++) {
                answers.add(own.post(rules(net) + "?wait=compiled&timeout=30s", cp.tenantKey(),
                        Map.of("protocol", "tcp", "startPort", port(client, i), "description", "client " + client + " rule " + i)));
            }
            return answers;
        });
        Map<String, Integer> portOfRule = new HashMap<>();
        for (int client = 0; client < CLIENTS; client++) {
            for (int i = 0; i < RULES_PER_CLIENT; i++) {
                ApiClient.Response r = all.get(client).get(i);
                assertThat(r.status()).as("client %d rule %d: %s", client, i, r.body()).isIn(201, 202);
                if (r.status() == 202) {
                    assertThat(accepted(api, r.text("changeId"))).as("change of client %d rule %d", client, i).isTrue();
                }
                assertThat(portOfRule.put(r.text("ruleId"), port(client, i))).as("rule ids are distinct").isNull();
            }
        }
        Map<String, JsonNode> list = ruleList(net);
        assertThat(list).hasSize(CLIENTS * RULES_PER_CLIENT);
        assertThat(list.keySet()).containsExactlyInAnyOrderElementsOf(portOfRule.keySet());
        portOfRule.forEach((ruleId, port) -> assertThat(list.get(ruleId).get("startPort").asInt()).as("rule %s", ruleId).isEqualTo(port));
    }

    static int port(int client, int i) {
        return 10_000 + client * 100 + i;
    }

    @Test
    void writersRacingAtTheSameVersionHaveExactlyOneWinner() throws Exception {
        String net = network("race", "10.61.0.0/24");
        Set<String> winners = new HashSet<>();
        for (int round = 0; round < 6; round++) {
            String etag = Published.header(api.get("/api/v1/networks/" + net, cp.tenantKey()), "ETag");
            int r0 = round;
            List<ApiClient.Response> answers = together(CLIENTS, client -> () -> new ApiClient(cp.apiUrl()).send("POST",
                    rules(net) + "?wait=compiled&timeout=30s", cp.tenantKey(),
                    Map.of("protocol", "udp", "startPort", 20_000 + r0 * 100 + client), Map.of("If-Match", etag)));
            List<String> won = new ArrayList<>();
            for (ApiClient.Response r : answers) {
                if (r.status() == 201 || r.status() == 202 && accepted(api, r.text("changeId"))) {
                    won.add(r.text("ruleId"));
                } else if (r.status() != 202) {
                    // Refused up front (the view had moved on) or decided against in log order.
                    assertThat(r.status()).as("%s", r.body()).isIn(412, 409);
                    assertThat(r.body().get("code").asString()).as("%s", r.body()).isEqualTo("STALE_VERSION");
                }
            }
            assertThat(won).as("round %d at version %s: %s", round, etag, answers.stream().map(ApiClient.Response::status).toList()).hasSize(1);
            winners.addAll(won);
            assertThat(ruleList(net).keySet()).as("after round %d", round).containsExactlyInAnyOrderElementsOf(winners);
        }
    }

    @Test
    void writersThatRetryOnAStaleVersionAllLandWithoutLoss() throws Exception {
        String net = network("retry", "10.62.0.0/24");
        int perClient = 4;
        List<List<String>> ids = together(CLIENTS, client -> () -> {
            ApiClient own = new ApiClient(cp.apiUrl());
            List<String> mine = new ArrayList<>();
            for (int i = 0; i < perClient; i++) {
                for (int attempt = 0; ; attempt++) {
                    assertThat(attempt).as("client %d rule %d attempts", client, i).isLessThan(200);
                    String etag = Published.header(own.get("/api/v1/networks/" + net, cp.tenantKey()), "ETag");
                    ApiClient.Response r = own.send("POST", rules(net) + "?wait=compiled&timeout=30s", cp.tenantKey(),
                            Map.of("protocol", "tcp", "startPort", 30_000 + client * 100 + i), Map.of("If-Match", etag));
                    if (r.status() == 201 || r.status() == 202 && accepted(own, r.text("changeId"))) {
                        mine.add(r.text("ruleId"));
                        break;
                    }
                    if (r.status() != 202) {
                        assertThat(r.status()).as("%s", r.body()).isIn(409, 412);
                        assertThat(r.body().get("code").asString()).isEqualTo("STALE_VERSION");
                    }
                }
            }
            return mine;
        });
        Set<String> all = new HashSet<>();
        ids.forEach(all::addAll);
        assertThat(all).hasSize(CLIENTS * perClient);
        assertThat(ruleList(net).keySet()).containsExactlyInAnyOrderElementsOf(all);
    }

    @Test
    void eightConcurrentIdenticalPostsWithOneIdempotencyKeyCreateOneRule() throws Exception {
        String net = network("idem", "10.63.0.0/24");
        String key = cp.unique("idem-key");
        Map<String, Object> rule = Map.of("protocol", "tcp", "startPort", 443, "description", "retried by a flaky client");
        List<ApiClient.Response> answers = together(CLIENTS, client -> () -> new ApiClient(cp.apiUrl()).send("POST",
                rules(net) + "?wait=compiled&timeout=30s", cp.tenantKey(), rule, Map.of("Idempotency-Key", key)));
        Set<String> ruleIds = new HashSet<>();
        for (ApiClient.Response r : answers) {
            if (r.status() == 201 || r.status() == 202) {
                ruleIds.add(r.text("ruleId"));
            } else {
                // A copy arriving while the first is being published is told so, and creates nothing.
                assertThat(r.status()).as("%s", r.body()).isEqualTo(409);
                assertThat(r.body().get("code").asString()).isEqualTo("REQUEST_IN_PROGRESS");
            }
        }
        assertThat(ruleIds).as("rule ids answered: %s", answers.stream().map(ApiClient.Response::status).toList()).hasSize(1);
        String ruleId = ruleIds.iterator().next();
        ControlPlane.sleep(Published.SETTLE.toMillis());
        assertThat(ruleList(net).keySet()).containsExactly(ruleId);

        // A later retry gets the same answer back and publishes nothing.
        Published.Snapshot before = published.snapshot(net, cp.tenantKey());
        ApiClient.Response retry = api.send("POST", rules(net) + "?wait=compiled&timeout=30s", cp.tenantKey(), rule, Map.of("Idempotency-Key", key));
        assertThat(retry.status()).as("%s", retry.body()).isEqualTo(201);
        assertThat(retry.text("ruleId")).isEqualTo(ruleId);
        assertThat(retry.body().get("idempotentReplay").asBoolean()).isTrue();
        published.assertNothingSince(before);
    }
}
