package io.egressctl.compiler.snapshot;

import io.egressctl.compiler.snapshot.SnapshotStore.Batch;
import io.egressctl.compiler.snapshot.SnapshotStore.BatchResult;
import io.egressctl.compiler.snapshot.SnapshotStore.ChangeWrite;
import io.egressctl.compiler.snapshot.SnapshotStore.FragmentWrite;
import io.egressctl.compiler.snapshot.SnapshotStore.InterfaceWrite;
import io.egressctl.compiler.snapshot.SnapshotStore.ViewWrite;
import io.egressctl.compiler.snapshot.SnapshotStore.WriteOutcome;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.schemas.view.RedisKeys;
import io.egressctl.testinfra.Infrastructure;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.UnifiedJedis;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link RedisSnapshotStore} against a real Redis ({@link Infrastructure}: the local stack's, or a
 * container with {@code EGRESS_TEST_INFRA=testcontainers}): the chunked compare-and-set scripts keep every write's outcome in batch order across
 * chunk boundaries, never move a fragment or a view back, and apply partial view writes exactly.
 * Keys are those of the product with ids unique to this run; they are deleted afterwards.
 */
class RedisSnapshotStoreIT {

    private static UnifiedJedis redis;
    private static RedisSnapshotStore store;
    private static final String RUN = UUID.randomUUID().toString().substring(0, 8);
    private static final List<String> HOSTS = new ArrayList<>();
    private static final List<String> NETWORKS = new ArrayList<>();

    @BeforeAll
    static void connect() {
        redis = new UnifiedJedis(URI.create(Infrastructure.get().env("REDIS_URL")));
        store = new RedisSnapshotStore(redis);
    }

    @AfterAll
    static void cleanUp() {
        if (redis == null) {
            return;
        }
        for (String h : HOSTS) {
            redis.del(RedisKeys.hostVersions(h), RedisKeys.hostFragments(h), RedisKeys.hostApplied(h), RedisKeys.hostInterfaces(h));
            redis.srem(RedisKeys.hosts(), h);
            redis.srem(RedisKeys.appliedHosts(), h);
        }
        for (String n : NETWORKS) {
            redis.del(RedisKeys.network(n));
            redis.srem(RedisKeys.views(), n);
        }
        redis.del(RedisKeys.tenantNetworks("t-" + RUN));
        NETWORKS.forEach(n -> redis.srem(RedisKeys.networks(), n));
        redis.del(RedisKeys.change("it-" + RUN + "-change"));
        redis.close();
    }

    private static String host(int i) {
        String h = "it-" + RUN + "-h" + i;
        if (!HOSTS.contains(h)) {
            HOSTS.add(h);
        }
        return h;
    }

    private static String network(String name) {
        String n = "it-" + RUN + "-" + name;
        if (!NETWORKS.contains(n)) {
            NETWORKS.add(n);
        }
        return n;
    }

    private static FragmentWrite fragment(String host, String network, long version, String payload) {
        return new FragmentWrite(new FragmentUpdate(host, network, version, null, "", List.of()), payload.getBytes(StandardCharsets.UTF_8));
    }

    private static String stored(String host, String network) {
        byte[] b = redis.hget(RedisKeys.hostFragments(host).getBytes(StandardCharsets.UTF_8), network.getBytes(StandardCharsets.UTF_8));
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    @Test
    void anAckReplacesTheHostsVersionsAndANackKeepsThem() {
        String h = host(9_999);
        store.writeApplied(h, Map.of("status", "ACK", "hash", "h1", "v:net-a", "3", "v:net-b", "1"));

        // The host stopped enforcing net-b (a VM without an interface): its ACK leaves it out.
        store.replaceApplied(h, Map.of("status", "ACK", "hash", "h2", "v:net-a", "4", "unenforced", "[{\"networkId\":\"net-b\"}]"), "v:");
        assertThat(redis.hgetAll(RedisKeys.hostApplied(h))).containsEntry("v:net-a", "4").doesNotContainKey("v:net-b")
                .containsEntry("hash", "h2").containsEntry("unenforced", "[{\"networkId\":\"net-b\"}]");

        store.writeApplied(h, Map.of("status", "NACK", "error", "nft said no"));
        assertThat(redis.hgetAll(RedisKeys.hostApplied(h))).containsEntry("v:net-a", "4").containsEntry("status", "NACK");
        // indexed with its applied state, although it has no fragment: what audit verify --all reads, no SCAN
        assertThat(redis.sismember(RedisKeys.appliedHosts(), h)).isTrue();
        assertThat(redis.sismember(RedisKeys.hosts(), h)).isFalse();
    }

    /**
     * What completes the rule-service's {@code ?wait=} waiters: each change record written and each
     * host's applied state (ACK and NACK) is announced on its channel, by the same script that writes it.
     */
    @Test
    void changeRecordsAndAppliedStateAreAnnouncedAsTheyAreWritten() throws Exception {
        java.util.concurrent.BlockingQueue<String> heard = new java.util.concurrent.LinkedBlockingQueue<>();
        java.util.concurrent.CountDownLatch subscribed = new java.util.concurrent.CountDownLatch(2);
        redis.clients.jedis.JedisPubSub listener = new redis.clients.jedis.JedisPubSub() {
            @Override
            public void onSubscribe(String channel, int count) {
                subscribed.countDown();
            }

            @Override
            public void onMessage(String channel, String message) {
                heard.add(channel + " " + message);
            }
        };
        Thread t = new Thread(() -> {
            try (redis.clients.jedis.Jedis j = new redis.clients.jedis.Jedis(URI.create(Infrastructure.get().env("REDIS_URL")))) {
                j.subscribe(listener, RedisKeys.changesChannel(), RedisKeys.appliedChannel());
            }
        });
        t.start();
        String c1 = "c-" + RUN + "-1";
        String c2 = "c-" + RUN + "-2";
        String h = host(9_998);
        try {
            assertThat(subscribed.await(10, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
            store.write(new Batch(List.of(), List.of(), List.of(new ChangeWrite(c1, Map.of("status", "COMPILED")),
                    new ChangeWrite(c2, Map.of("status", "REJECTED")))));
            store.replaceApplied(h, Map.of("status", "ACK", "v:net-a", "4"), "v:");
            store.writeApplied(h, Map.of("status", "NACK", "error", "nft said no"));
            List<String> got = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                String m = heard.poll(10, java.util.concurrent.TimeUnit.SECONDS);
                assertThat(m).as("message %d of 4 (so far %s)", i + 1, got).isNotNull();
                got.add(m);
            }
            assertThat(got).containsExactly(RedisKeys.changesChannel() + " " + c1, RedisKeys.changesChannel() + " " + c2,
                    RedisKeys.appliedChannel() + " " + h, RedisKeys.appliedChannel() + " " + h);
            assertThat(redis.hgetAll(RedisKeys.hostApplied(h))).containsEntry("v:net-a", "4").containsEntry("status", "NACK")
                    .containsEntry("error", "nft said no");
        } finally {
            listener.unsubscribe();
            t.join(5_000);
            redis.del(RedisKeys.change(c1), RedisKeys.change(c2));
        }
    }

    @Test
    void fragmentOutcomesStayInBatchOrderAcrossChunksAndNeverMoveBack() {
        String net = network("frag");
        int n = 2 * RedisSnapshotStore.CHUNK + 57; // three script calls
        List<FragmentWrite> first = new ArrayList<>();
        IntStream.range(0, n).forEach(i -> first.add(fragment(host(i), net, 10, "v10-" + i)));
        BatchResult r1 = store.write(new Batch(first, List.of(), List.of()));
        assertThat(r1.fragments()).hasSize(n).containsOnly(WriteOutcome.WRITTEN);
        assertThat(redis.smembers(RedisKeys.hosts())).contains(host(0), host(n - 1));

        // One batch mixing, per host: the same version again, an older one, a newer one.
        List<FragmentWrite> second = new ArrayList<>();
        List<WriteOutcome> expected = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            switch (i % 3) {
                case 0 -> {
                    second.add(fragment(host(i), net, 10, "again-" + i));
                    expected.add(WriteOutcome.SAME);
                }
                case 1 -> {
                    second.add(fragment(host(i), net, 9, "older-" + i));
                    expected.add(WriteOutcome.STALE);
                }
                default -> {
                    second.add(fragment(host(i), net, 11, "v11-" + i));
                    expected.add(WriteOutcome.WRITTEN);
                }
            }
        }
        BatchResult r2 = store.write(new Batch(second, List.of(), List.of()));
        assertThat(r2.fragments()).containsExactlyElementsOf(expected);
        for (int i = 0; i < n; i++) {
            String want = i % 3 == 2 ? "v11-" + i : "v10-" + i;
            assertThat(stored(host(i), net)).as("host %d", i).isEqualTo(want);
            assertThat(redis.hget(RedisKeys.hostVersions(host(i)), net)).isEqualTo(i % 3 == 2 ? "11" : "10");
        }
    }

    @Test
    void viewWritesAreGuardedByVersionAndApplyFieldsExactly() {
        String tenant = "t-" + RUN;
        String a = network("view-a");
        String b = network("view-b");
        Map<String, String> rules = new LinkedHashMap<>();
        rules.put("r:1", "{\"id\":\"1\"}");
        rules.put("r:2", "{\"id\":\"2\"}");
        rules.put("r:3", "{\"id\":\"3\"}");
        BatchResult full = store.write(new Batch(List.of(), List.of(
                new ViewWrite(a, tenant, 5, "{\"meta\":5}", rules, List.of(), true),
                new ViewWrite(b, tenant, 7, "{\"meta\":7}", Map.of("r:9", "{}"), List.of(), true)), List.of()));
        assertThat(full.viewsWritten()).containsExactly(true, true);
        assertThat(redis.hgetAll(RedisKeys.network(a))).containsOnlyKeys("version", "json", "r:1", "r:2", "r:3");
        assertThat(redis.smembers(RedisKeys.tenantNetworks(tenant))).contains(a, b);
        assertThat(redis.smembers(RedisKeys.networks())).as("the index of all networks (no SCAN for the operator's list)").contains(a, b);

        // a: a partial write (one rule changed, one removed); b: an older version, refused whole.
        BatchResult partial = store.write(new Batch(List.of(), List.of(
                new ViewWrite(a, tenant, 6, "{\"meta\":6}", Map.of("r:2", "{\"id\":\"2\",\"v\":6}"), List.of("r:3"), false),
                new ViewWrite(b, tenant, 6, "{\"meta\":6}", Map.of(), List.of("r:9"), false)), List.of()));
        assertThat(partial.viewsWritten()).containsExactly(true, false);
        assertThat(redis.hgetAll(RedisKeys.network(a))).isEqualTo(Map.of("version", "6", "json", "{\"meta\":6}",
                "r:1", "{\"id\":\"1\"}", "r:2", "{\"id\":\"2\",\"v\":6}"));
        assertThat(redis.hgetAll(RedisKeys.network(b))).isEqualTo(Map.of("version", "7", "json", "{\"meta\":7}", "r:9", "{}"));

        // The same version again is not written either; a whole rewrite drops fields it does not name.
        assertThat(store.write(new Batch(List.of(), List.of(new ViewWrite(a, tenant, 6, "{}", Map.of(), List.of(), true)), List.of()))
                .viewsWritten()).containsExactly(false);
        assertThat(store.write(new Batch(List.of(), List.of(new ViewWrite(a, tenant, 8, "{\"meta\":8}", Map.of("r:5", "{}"), List.of(), true)),
                List.of())).viewsWritten()).containsExactly(true);
        assertThat(redis.hgetAll(RedisKeys.network(a))).isEqualTo(Map.of("version", "8", "json", "{\"meta\":8}", "r:5", "{}"));

        // A deleted network (empty JSON) leaves the tenant's index.
        assertThat(store.write(new Batch(List.of(), List.of(new ViewWrite(b, tenant, 9, "", Map.of(), List.of(), true)), List.of()))
                .viewsWritten()).containsExactly(true);
        assertThat(redis.smembers(RedisKeys.tenantNetworks(tenant))).contains(a).doesNotContain(b);
        assertThat(redis.smembers(RedisKeys.networks())).contains(a).doesNotContain(b);
        // every view hash written stays indexed, the deleted one's too: what a rebuild drops, no SCAN
        assertThat(redis.smembers(RedisKeys.views())).contains(a, b);
    }

    /**
     * Under Sentinel a write counts only once a replica holds it (WAIT): the stack's Redis has no
     * replica, so a store that wants one refuses the batch, the applied state and the checkpoint after
     * its timeout (the compiler then retries them), naming the setting; the writes themselves are on
     * the primary, and a store that wants none takes the same batch.
     */
    @Test
    void aStoreThatWantsAReplicaRefusesWritesNoReplicaAcknowledged() {
        RedisSnapshotStore wantsReplica = new RedisSnapshotStore(redis, 1, 50);
        String h = host(9_998);
        String n = network("acked");
        Batch batch = new Batch(List.of(fragment(h, n, 1, "p1")), List.of(), List.of());
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> wantsReplica.write(batch))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("on 0 replica(s)").hasMessageContaining("ack-replicas");
        assertThat(stored(h, n)).isEqualTo("p1");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> wantsReplica.writeApplied(h, Map.of("status", "ACK")))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("applied state");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> wantsReplica.writeCheckpoint(99_999, "{}", 0))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("checkpoint of partition 99999");
        redis.del(RedisKeys.checkpoint(99_999));
        assertThat(store.write(new Batch(List.of(fragment(h, n, 2, "p2")), List.of(), List.of())).fragments())
                .containsExactly(SnapshotStore.WriteOutcome.WRITTEN);
    }

    @Test
    void manyViewsInOneBatchSpanChunksInOrder() {
        int n = RedisSnapshotStore.CHUNK + 3;
        List<ViewWrite> views = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            views.add(new ViewWrite(network("many-" + i), null, 3, "{\"i\":" + i + "}", Map.of("r:x", "{}"), List.of(), true));
        }
        store.write(new Batch(List.of(), views, List.of()));
        List<ViewWrite> again = new ArrayList<>();
        List<Boolean> expected = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            long version = i % 2 == 0 ? 2 : 4;
            again.add(new ViewWrite(network("many-" + i), null, version, "{\"v\":" + version + "}", Map.of(), List.of(), false));
            expected.add(version == 4);
        }
        assertThat(store.write(new Batch(List.of(), again, List.of())).viewsWritten()).containsExactlyElementsOf(expected);
        assertThat(redis.hget(RedisKeys.network(network("many-1")), "json")).isEqualTo("{\"v\":4}");
        assertThat(redis.hget(RedisKeys.network(network("many-" + (n - 1))), "json")).isEqualTo("{\"i\":" + (n - 1) + "}");
    }

    @Test
    void changeStatusIsStoredWithAnExpiry() {
        String id = "it-" + RUN + "-change";
        store.write(new Batch(List.of(), List.of(), List.of(new ChangeWrite(id, Map.of("status", "COMPILED")))));
        assertThat(redis.get(RedisKeys.change(id))).contains("\"status\":\"COMPILED\"");
        assertThat(redis.ttl(RedisKeys.change(id))).isPositive();
        // indexed by its expiry, bounded as the statuses are: an expired entry goes with the next write
        Double expiry = redis.zscore(RedisKeys.changeExpiry(), id);
        assertThat(expiry).isNotNull();
        assertThat(expiry.longValue() - System.currentTimeMillis() / 1000).isBetween(redis.ttl(RedisKeys.change(id)) - 5,
                redis.ttl(RedisKeys.change(id)) + 5);
        String expired = "it-" + RUN + "-expired";
        redis.zadd(RedisKeys.changeExpiry(), System.currentTimeMillis() / 1000 - 1, expired);
        store.write(new Batch(List.of(), List.of(), List.of(new ChangeWrite(id, Map.of("status", "COMPILED")))));
        assertThat(redis.zscore(RedisKeys.changeExpiry(), expired)).isNull();
        redis.del(RedisKeys.change(id));
        redis.zrem(RedisKeys.changeExpiry(), id);
    }

    private static BatchResult interfaces(InterfaceWrite... writes) {
        return store.write(new Batch(List.of(), List.of(), List.of(), List.of(writes)));
    }

    @Test
    void interfaceClaimsHoldAgainstOtherNetworksAndReleasesOnlyFreeTheirOwnHolder() {
        String h = host(900);
        String key = RedisKeys.hostInterfaces(h);
        interfaces(new InterfaceWrite(h, "tap-a", "na/vm-1", true), new InterfaceWrite(h, "tap-b", "na/vm-2", true));
        assertThat(redis.hgetAll(key)).isEqualTo(Map.of("tap-a", "na/vm-1", "tap-b", "na/vm-2"));
        // Another network's claim does not take it; one of network "na1" is another network, not "na".
        interfaces(new InterfaceWrite(h, "tap-a", "nb/vm-9", true), new InterfaceWrite(h, "tap-a", "na1/vm-1", true));
        assertThat(redis.hget(key, "tap-a")).isEqualTo("na/vm-1");
        // Another VM of the same network takes it (the network's own log decided).
        interfaces(new InterfaceWrite(h, "tap-b", "na/vm-3", true));
        assertThat(redis.hget(key, "tap-b")).isEqualTo("na/vm-3");
        // A release frees only what names its holder.
        interfaces(new InterfaceWrite(h, "tap-a", "nb/vm-9", false), new InterfaceWrite(h, "tap-b", "na/vm-2", false));
        assertThat(redis.hgetAll(key)).isEqualTo(Map.of("tap-a", "na/vm-1", "tap-b", "na/vm-3"));
        // In one batch, in order: released, then claimed by another network.
        interfaces(new InterfaceWrite(h, "tap-a", "na/vm-1", false), new InterfaceWrite(h, "tap-a", "nb/vm-9", true));
        assertThat(redis.hgetAll(key)).isEqualTo(Map.of("tap-a", "nb/vm-9", "tap-b", "na/vm-3"));
    }

    @Test
    void interfaceWritesOfManyHostsSpanChunks() {
        int n = RedisSnapshotStore.CHUNK + 11;
        List<InterfaceWrite> claims = new ArrayList<>();
        IntStream.range(0, n).forEach(i -> claims.add(new InterfaceWrite(host(1000 + i), "tap-" + i, "na/vm-" + i, true)));
        store.write(new Batch(List.of(), List.of(), List.of(), claims));
        IntStream.range(0, n).forEach(i -> assertThat(redis.hget(RedisKeys.hostInterfaces(host(1000 + i)), "tap-" + i)).isEqualTo("na/vm-" + i));
        List<InterfaceWrite> releases = new ArrayList<>();
        IntStream.range(0, n).forEach(i -> releases.add(new InterfaceWrite(host(1000 + i), "tap-" + i, "na/vm-" + i, false)));
        store.write(new Batch(List.of(), List.of(), List.of(), releases));
        IntStream.range(0, n).forEach(i -> assertThat(redis.exists(RedisKeys.hostInterfaces(host(1000 + i)))).isFalse());
    }

    /** A partition number no compiler of the stack uses: its epoch and checkpoint keys are this run's. */
    private static final int PARTITION = 10_000 + new java.util.Random().nextInt(1_000_000);

    @Test
    void aWriterWithAnOlderEpochIsRefusedWholeAndItsCheckpointToo() {
        try {
            String h = host(20_000);
            String net = network("fenced");
            String change = "it-" + RUN + "-change";
            long old = store.claim(PARTITION);
            store.write(new Batch(List.of(fragment(h, net, 1, "old-1")), List.of(), List.of(), List.of(), Map.of(PARTITION, old)));
            store.writeCheckpoint(PARTITION, "{\"by\":\"old\"}", old);

            long current = store.claim(PARTITION); // another instance took the partition over
            assertThat(current).isGreaterThan(old);
            Batch stale = new Batch(List.of(fragment(h, net, 2, "old-2")),
                    List.of(new ViewWrite(net, "t-" + RUN, 2, "{}", Map.of(), List.of(), true)),
                    List.of(new ChangeWrite(change, Map.of("status", "COMPILED"))),
                    List.of(new InterfaceWrite(h, "tap-z", net + "/vm-1", true)), Map.of(PARTITION, old));
            assertThatThrownBy(() -> store.write(stale)).isInstanceOf(FencedException.class)
                    .satisfies(e -> assertThat(((FencedException) e).partitions()).containsExactly(PARTITION));
            assertThat(stored(h, net)).isEqualTo("old-1");
            assertThat(redis.exists(RedisKeys.network(net))).isFalse();
            assertThat(redis.exists(RedisKeys.change(change))).isFalse();
            assertThat(redis.exists(RedisKeys.hostInterfaces(h))).isFalse();
            assertThatThrownBy(() -> store.writeCheckpoint(PARTITION, "{\"by\":\"zombie\"}", old)).isInstanceOf(FencedException.class);
            assertThat(redis.get(RedisKeys.checkpoint(PARTITION))).isEqualTo("{\"by\":\"old\"}");

            // The owner's writes land.
            BatchResult r = store.write(new Batch(List.of(fragment(h, net, 2, "new-2")), List.of(), List.of(), List.of(), Map.of(PARTITION, current)));
            assertThat(r.fragments()).containsExactly(WriteOutcome.WRITTEN);
            store.writeCheckpoint(PARTITION, "{\"by\":\"owner\"}", current);
            assertThat(redis.get(RedisKeys.checkpoint(PARTITION))).isEqualTo("{\"by\":\"owner\"}");

            // Redis emptied of the epoch: the first writer sets it again, and an older one is refused after a newer wrote.
            redis.del(RedisKeys.epoch(PARTITION));
            store.write(new Batch(List.of(fragment(h, net, 3, "old-3")), List.of(), List.of(), List.of(), Map.of(PARTITION, old)));
            assertThat(redis.get(RedisKeys.epoch(PARTITION))).isEqualTo(Long.toString(old));
            store.write(new Batch(List.of(fragment(h, net, 4, "new-4")), List.of(), List.of(), List.of(), Map.of(PARTITION, current)));
            assertThat(redis.get(RedisKeys.epoch(PARTITION))).isEqualTo(Long.toString(current));
            assertThatThrownBy(() -> store.writeCheckpoint(PARTITION, "{}", old)).isInstanceOf(FencedException.class);
            assertThat(stored(h, net)).isEqualTo("new-4");
        } finally {
            redis.del(RedisKeys.epoch(PARTITION), RedisKeys.checkpoint(PARTITION));
        }
    }
}
