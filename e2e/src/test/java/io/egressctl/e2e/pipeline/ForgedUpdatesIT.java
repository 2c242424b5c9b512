package io.egressctl.e2e.pipeline;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.e2e.support.ControlPlane;
import io.egressctl.events.AppliedFragment;
import io.egressctl.events.EnforcementReport;
import io.egressctl.events.EnforcementStatus;
import io.egressctl.events.EnforcementTrigger;
import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.serde.Topics;
import io.egressctl.schemas.view.RedisKeys;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.UnifiedJedis;

import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Agents apply only what the compiler signed (issue 15, item 4), with the stack's update key (the
 * local stack makes one; {@code EGRESS_UPDATE_KEYS}): a host update that anything else writes to
 * egress.host-updates, however high its version, is refused and reported and changes nothing on the
 * host, and the next real change is applied as usual; an unsigned entry written into the host's Redis
 * snapshot makes a restarted agent hold its ruleset (not ready, with the reason) until the entry is
 * gone. The other way round, an enforcement report that no agent holding the keys signed (an ACK
 * claiming a host applied a change it never received) is refused by the compiler: the change stays
 * pending, the host's applied state is unchanged, and the agent's signed report then applies it.
 */
class ForgedUpdatesIT {

    @Test
    void updatesNotSignedByTheCompilerAreRefusedOnTheLogAndInTheSnapshot() throws Exception {
        Assumptions.assumeTrue(System.getenv("EGRESS_UPDATE_KEYS") != null && !System.getenv("EGRESS_UPDATE_KEYS").isBlank(),
                "the stack runs without update keys");
        ControlPlane cp = ControlPlane.shared();
        ApiClient api = cp.api();
        String host = cp.unique("forged-h");
        String net = cp.unique("forged");
        cp.startAgent(host);
        cp.networkWithVm(net, "10.53.0.0/24", "vm-f", host, "tap-f1", "10.53.0.11");
        ApiClient.Response rule = api.post("/api/v1/networks/" + net + "/egress-rules?wait=applied&timeout=30s", cp.tenantKey(),
                Map.of("protocol", "tcp", "startPort", 25));
        assertThat(rule.body().get("status").get("status").asString()).as("%s", rule.body()).isEqualTo("APPLIED");
        String inForce = cp.ruleset(host);
        assertThat(inForce).contains(rule.text("ruleId"));

        // 1. Anything that can write to Kafka publishes an "open everything" update with a huge version.
        Fragment open = new Fragment(net, DefaultPolicy.ALLOW, List.of(new VmAddress("vm-f", "tap-f1", null, "10.53.0.11", null)), List.of());
        HostUpdate forged = EventMapper.toAvro(new FragmentUpdate(host, net, 1_000_000, open, open.hash(), List.of()), Instant.now());
        cp.produce(Topics.HOST_UPDATES, host, forged);
        try (UnifiedJedis redis = new UnifiedJedis(URI.create(cp.env("REDIS_URL")))) {
            assertThat(ControlPlane.eventually(Duration.ofSeconds(30), () -> String.valueOf(
                    redis.hget(RedisKeys.hostApplied(host), "refused")).contains("not authenticated")))
                    .as("the agent reported the refusal: %s", redis.hgetAll(RedisKeys.hostApplied(host))).isTrue();
            assertThat(redis.hget(RedisKeys.hostApplied(host), "refused")).contains("1000000").contains(net);
        }
        assertThat(cp.ruleset(host)).as("the forged update changed nothing").isEqualTo(inForce);
        ApiClient.Response next = api.post("/api/v1/networks/" + net + "/egress-rules?wait=applied&timeout=30s", cp.tenantKey(),
                Map.of("protocol", "udp", "startPort", 53));
        assertThat(next.body().get("status").get("status").asString())
                .as("the forged version did not hide the next real one: %s", next.body()).isEqualTo("APPLIED");
        String afterNext = cp.ruleset(host);

        // 2. Anything that can write to Redis replaces the host's snapshot entry with an unsigned one.
        byte[] field = net.getBytes(StandardCharsets.UTF_8);
        byte[] key = RedisKeys.hostFragments(host).getBytes(StandardCharsets.UTF_8);
        try (UnifiedJedis redis = new UnifiedJedis(URI.create(cp.env("REDIS_URL")))) {
            byte[] real = redis.hget(key, field);
            assertThat(HostUpdate.fromByteBuffer(ByteBuffer.wrap(real)).getMac()).as("the compiler signs the snapshot too").startsWith("hmac-sha256:");
            HostUpdate unsigned = HostUpdate.fromByteBuffer(ByteBuffer.wrap(real));
            unsigned.setMac(null);
            unsigned.setFragment(EventMapper.toAvro(open));
            unsigned.setFragmentHash(open.hash());
            ByteBuffer b = unsigned.toByteBuffer();
            byte[] bytes = new byte[b.remaining()];
            b.get(bytes);
            redis.hset(key, field, bytes);
            cp.stopAgent(host, true);
            int port = cp.startAgentNotWaiting(host, Map.of());
            assertThat(ControlPlane.eventually(Duration.ofSeconds(60), () -> ControlPlane.health(port).contains("not signed by the compiler")))
                    .as("the restarted agent holds: %s", ControlPlane.health(port)).isTrue();
            assertThat(cp.ruleset(host)).as("the ruleset in force is kept").isEqualTo(afterNext);

            redis.hset(key, field, real); // what ./egressctl rebuild would write back
            assertThat(ControlPlane.eventually(Duration.ofSeconds(60), () -> ControlPlane.health(port).contains("\"UP\"")))
                    .as("ready again: %s", ControlPlane.health(port)).isTrue();
            assertThat(cp.ruleset(host)).isEqualTo(afterNext);
        } finally {
            cp.stopAgent(host, false);
        }
    }

    @Test
    void aForgedAckDoesNotMakeAChangeAppliedTheAgentsSignedOneDoes() throws Exception {
        Assumptions.assumeTrue(System.getenv("EGRESS_UPDATE_KEYS") != null && !System.getenv("EGRESS_UPDATE_KEYS").isBlank(),
                "the stack runs without update keys");
        ControlPlane cp = ControlPlane.shared();
        ApiClient api = cp.api();
        String host = cp.unique("forged-ack-h"); // no agent: the change waits for this host's report
        String net = cp.unique("forged-ack");
        ApiClient.Response placed = cp.networkWithVm(net, "10.55.0.0/24", "vm-a", host, "tap-a1", "10.55.0.11", "compiled");
        String changeId = placed.text("changeId");
        long version = placed.body().get("status").get("version").asLong();

        // Anything that can write to Kafka claims the host applied the change.
        EnforcementReport forged = EnforcementReport.newBuilder().setHostId(host).setStatus(EnforcementStatus.ACK)
                .setTrigger(EnforcementTrigger.UPDATE)
                .setFragments(List.of(AppliedFragment.newBuilder().setNetworkId(net).setVersion(version).build()))
                .setAppliedHash("forged").setChangeIds(List.of(changeId)).setError(null).setApplyMicros(1).setEnforcer("nftables")
                .setDriftRepairs(0).setReportedAt(Instant.now()).build();
        cp.produce(Topics.ENFORCEMENT_REPORTS, host, forged);
        ApiClient.Response waited = api.get("/api/v1/changes/" + changeId + "?wait=applied&timeout=3s", cp.operatorKey());
        assertThat(waited.body().get("status").asString()).as("the forged ACK counts for nothing: %s", waited.body()).isEqualTo("COMPILED");
        try (UnifiedJedis redis = new UnifiedJedis(URI.create(cp.env("REDIS_URL")))) {
            assertThat(redis.hgetAll(RedisKeys.hostApplied(host))).as("no applied state for the host").isEmpty();
        }

        // The same report, signed as the host's agent signs it: the change is applied.
        forged.setAppliedHash("genuine");
        cp.produce(Topics.ENFORCEMENT_REPORTS, host, ControlPlane.AGENT_REPORTS.sign(forged));
        ApiClient.Response applied = api.get("/api/v1/changes/" + changeId + "?wait=applied&timeout=30s", cp.operatorKey());
        assertThat(applied.body().get("status").asString()).as("%s", applied.body()).isEqualTo("APPLIED");
    }
}
