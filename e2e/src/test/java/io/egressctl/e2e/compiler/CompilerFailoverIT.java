package io.egressctl.e2e.compiler;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.e2e.support.ControlPlane;
import io.egressctl.schemas.view.RedisKeys;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.UnifiedJedis;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Horizontal scale under failure: two compiler instances share one consumer group (writing to
 * Redis database 1), one is killed with SIGKILL in the middle of a stream of changes, and the
 * survivor's snapshots must be, byte for byte and version for version, what the fixture's single
 * instance wrote to database 0 from the same log: versions are positions in the one log of network
 * events, so they do not depend on which instance read what, or when.
 */
class CompilerFailoverIT {

    static ControlPlane cp;
    static String group;
    static final List<String> hosts = new ArrayList<>();
    static final List<String> networks = new ArrayList<>();

    @BeforeAll
    static void startTwoInstances() {
        cp = ControlPlane.shared();
        group = cp.unique("failover");
        for (String name : List.of("compiler-a", "compiler-b")) {
            cp.startCompiler(name, Map.of(
                    "REDIS_URL", cp.env("REDIS_URL") + "/1",
                    "EGRESS_COMPILER_GROUP", group,
                    "EGRESS_COMPILER_STATUS_GROUP", group + "-status",
                    "EGRESS_CHECKPOINT_INTERVAL_MS", "500",
                    "EGRESS_SESSION_TIMEOUT_MS", "6000",
                    "EGRESS_HEARTBEAT_INTERVAL_MS", "1000"));
        }
    }

    @AfterAll
    static void stopInstances() {
        cp.stopProcess("compiler-a", false);
        cp.stopProcess("compiler-b", false);
    }

    @Test
    void killingOneOfTwoInstancesMidStreamEndsInTheSameSnapshotsAsOneInstance() {
        ApiClient api = cp.api();
        for (int i = 0; i < 4; i++) {
            hosts.add(cp.unique("fh" + i));
        }
        // Enough networks that both instances own some (six partitions, RangeAssignor).
        for (int n = 0; n < 8; n++) {
            String net = cp.unique("fnet" + n);
            networks.add(net);
            assertThat(api.post("/api/v1/networks", cp.tenantKey(), Map.of("networkId", net, "guestCidr", "10.30." + n + ".0/24")).status())
                    .isEqualTo(202);
            for (int v = 0; v < 4; v++) {
                ApiClient.Response r = api.put("/api/v1/networks/" + net + "/placements/vm" + v, cp.operatorKey(),
                        ControlPlane.placement(hosts.get((n + v) % hosts.size()), "tap-n" + n + "-vm" + v, "10.30." + n + "." + (10 + v)));
                assertThat(r.status()).as("%s", r.body()).isEqualTo(202);
            }
        }
        ControlPlane.sleep(1000);
        String lastChange = null;
        for (int i = 0; i < 160; i++) {
            if (i == 80) {
                cp.stopProcess("compiler-b", true);
            }
            String net = networks.get(i % networks.size());
            ApiClient.Response r = api.post("/api/v1/networks/" + net + "/egress-rules", cp.tenantKey(),
                    Map.of("protocol", "tcp", "startPort", 1000 + i, "sourceCidrs", List.of("10.30." + (i % networks.size()) + ".1" + (i % 4) + "/32")));
            assertThat(r.status()).as("%s", r.body()).isIn(202, 404);
            if (r.status() == 202) {
                lastChange = r.text("changeId");
            }
        }
        String finalChange = lastChange;
        assertThat(ControlPlane.eventually(Duration.ofSeconds(60),
                () -> api.get("/api/v1/changes/" + finalChange, cp.tenantKey()).status() == 200)).isTrue();

        try (UnifiedJedis db0 = new UnifiedJedis(URI.create(cp.env("REDIS_URL")));
             UnifiedJedis db1 = new UnifiedJedis(URI.create(cp.env("REDIS_URL") + "/1"))) {
            // Content (fragment hash or tombstone) first, for a readable failure; then every stored byte
            // and every version, which are functions of the log.
            boolean converged = ControlPlane.eventually(Duration.ofSeconds(90),
                    () -> content(db1).equals(content(db0)) && snapshot(db1).equals(snapshot(db0)));
            assertThat(differences(content(db0), content(db1))).as("(host/network) contents that differ").isEmpty();
            assertThat(differences(snapshot(db0), snapshot(db1))).as("stored bytes or versions that differ").isEmpty();
            assertThat(converged).isTrue();
            for (String net : networks) {
                // A network's version is its position in the one log: the same whoever compiled it.
                assertThat(db1.hget(RedisKeys.network(net), "version")).isEqualTo(db0.hget(RedisKeys.network(net), "version"));
            }
        }
    }

    /** host/network -> the fragment's content hash, or "tombstone". */
    static Map<String, String> content(UnifiedJedis redis) {
        Map<String, String> out = new TreeMap<>();
        for (String h : hosts) {
            Map<byte[], byte[]> f = redis.hgetAll(RedisKeys.hostFragments(h).getBytes(StandardCharsets.UTF_8));
            f.forEach((k, v) -> {
                try {
                    io.egressctl.events.HostUpdate u = io.egressctl.events.HostUpdate.fromByteBuffer(java.nio.ByteBuffer.wrap(v));
                    out.put(h + "/" + new String(k, StandardCharsets.UTF_8), u.getTombstone() ? "tombstone" : u.getFragmentHash());
                } catch (java.io.IOException e) {
                    throw new IllegalStateException(e);
                }
            });
        }
        return out;
    }

    static List<String> differences(Map<String, String> expected, Map<String, String> actual) {
        java.util.Set<String> keys = new java.util.TreeSet<>(expected.keySet());
        keys.addAll(actual.keySet());
        return keys.stream().filter(k -> !java.util.Objects.equals(expected.get(k), actual.get(k))).toList();
    }

    /** Every host's fragments (hex of the stored HostUpdate bytes) and versions, in a comparable form. */
    static Map<String, String> snapshot(UnifiedJedis redis) {
        Map<String, String> out = new TreeMap<>();
        for (String h : hosts) {
            Map<byte[], byte[]> f = redis.hgetAll(RedisKeys.hostFragments(h).getBytes(StandardCharsets.UTF_8));
            f.forEach((k, v) -> out.put(h + "/" + new String(k, StandardCharsets.UTF_8), HexFormat.of().formatHex(v)));
            redis.hgetAll(RedisKeys.hostVersions(h)).forEach((k, v) -> out.put(h + "/v/" + k, v));
        }
        return out;
    }
}
