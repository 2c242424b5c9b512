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
 * events, so they do not depend on which instance read what, or when. The instance killed is checked
 * to own partitions of the log at that moment (the group's assignment, and its own log), and the
 * survivor to take all of them over; every network is waited for in the view before its rules are
 * posted, so every post must be accepted.
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
            // A placement needs the network in the view: wait for it, bounded, instead of sleeping.
            assertThat(ControlPlane.eventually(Duration.ofSeconds(30), () -> api.get("/api/v1/networks/" + net, cp.tenantKey()).status() == 200))
                    .as("network %s in the API's view", net).isTrue();
            for (int v = 0; v < 4; v++) {
                ApiClient.Response r = api.put("/api/v1/networks/" + net + "/placements/vm" + v, cp.operatorKey(),
                        ControlPlane.placement(hosts.get((n + v) % hosts.size()), "tap-n" + n + "-vm" + v, "10.30." + n + "." + (10 + v)));
                assertThat(r.status()).as("%s", r.body()).isEqualTo(202);
            }
        }
        // Every network in the view with its four VMs before the first rule: a rule's sources must be its VMs.
        for (String net : networks) {
            assertThat(ControlPlane.eventually(Duration.ofSeconds(30), () -> {
                ApiClient.Response r = api.get("/api/v1/networks/" + net, cp.tenantKey());
                return r.status() == 200 && r.body().path("vms").size() == 4;
            })).as("network %s in the view with its 4 VMs", net).isTrue();
        }
        String lastChange = null;
        List<String> killedOwned = List.of();
        for (int i = 0; i < 160; i++) {
            if (i == 80) {
                // The instance killed must own partitions of the event log at that moment, or the kill proves nothing.
                killedOwned = assertBothOwnPartitions();
                cp.stopProcess("compiler-b", true);
            }
            String net = networks.get(i % networks.size());
            ApiClient.Response r = api.post("/api/v1/networks/" + net + "/egress-rules", cp.tenantKey(),
                    Map.of("protocol", "tcp", "startPort", 1000 + i, "sourceCidrs", List.of("10.30." + (i % networks.size()) + ".1" + (i % 4) + "/32")));
            assertThat(r.status()).as("%s", r.body()).isEqualTo(202);
            lastChange = r.text("changeId");
        }
        assertThat(killedOwned).as("partitions compiler-b owned when it was killed").isNotEmpty();
        // The survivor takes every partition over.
        assertThat(ControlPlane.eventually(Duration.ofSeconds(60), () -> {
            Map<String, List<String>> owners = owners();
            return owners.size() == 1 && owners.values().iterator().next().size() == PARTITIONS;
        })).as("compiler-a owns all %d partitions after the kill: %s", PARTITIONS, owners()).isTrue();
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

    static final int PARTITIONS = 6;

    /**
     * Waits (bounded) until the group is stable with both instances owning partitions of the event log,
     * and compiler-b's last assignment (its log's "assigned [...]" line) is one of them; returns it.
     */
    static List<String> assertBothOwnPartitions() {
        List<String>[] owned = new List[1];
        boolean ok = ControlPlane.eventually(Duration.ofSeconds(60), () -> {
            Map<String, List<String>> owners = owners();
            List<String> b = lastAssigned("compiler-b");
            owned[0] = b;
            return owners.size() == 2 && owners.values().stream().noneMatch(List::isEmpty)
                    && owners.values().stream().mapToInt(List::size).sum() == PARTITIONS
                    && !b.isEmpty() && owners.containsValue(b);
        });
        assertThat(ok).as("both instances own partitions before the kill (group: %s, compiler-b's last assignment: %s)",
                owners(), owned[0]).isTrue();
        return owned[0];
    }

    /** Member id to the partitions of the event log it owns (sorted "topic-p" names), for a stable group. */
    static Map<String, List<String>> owners() {
        try (org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(
                Map.of(org.apache.kafka.clients.admin.AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cp.env("KAFKA_BOOTSTRAP_SERVERS")))) {
            org.apache.kafka.clients.admin.ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group))
                    .describedGroups().get(group).get(10, java.util.concurrent.TimeUnit.SECONDS);
            if (d.groupState() != org.apache.kafka.common.GroupState.STABLE) {
                return Map.of();
            }
            Map<String, List<String>> out = new TreeMap<>();
            for (org.apache.kafka.clients.admin.MemberDescription m : d.members()) {
                out.put(m.consumerId(), m.assignment().topicPartitions().stream()
                        .filter(tp -> tp.topic().equals("egress.network-events")).map(Object::toString).sorted().toList());
            }
            return out;
        } catch (Exception e) {
            return Map.of();
        }
    }

    /** The partitions of compiler {@code name}'s last "assigned [...]" log line, empty after a later "revoked". */
    static List<String> lastAssigned(String name) {
        try {
            List<String> lines = java.nio.file.Files.readAllLines(cp.logFile(name));
            for (int i = lines.size() - 1; i >= 0; i--) {
                String l = lines.get(i);
                // The compiler listener's own lines (CompilerListener); the status listener's name other topics.
                if (l.contains("revoked [egress.network-events-")) {
                    return List.of();
                }
                java.util.regex.Matcher m = java.util.regex.Pattern.compile("assigned \\[((egress\\.network-events-[^]]*)?)]").matcher(l);
                if (m.find()) {
                    return java.util.Arrays.stream(m.group(1).split(",\\s*")).filter(t -> t.startsWith("egress.network-events-"))
                            .sorted().toList();
                }
            }
        } catch (java.io.IOException e) {
            // no log yet
        }
        return List.of();
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
