package io.egressctl.rules.changes;

import io.egressctl.schemas.view.RedisKeys;
import io.egressctl.testinfra.Infrastructure;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.UnifiedJedis;

import java.net.URI;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A change's status read from a real Redis ({@link Infrastructure}) as the compiler writes it: the
 * change record and each target host's applied state. A full read reads every host; a refresh reads
 * the announced hosts only and keeps what the last status said of the others, and both agree with
 * invariant 7 (a host counts once it ACKed a version at or above its target).
 */
class ChangeTrackerIT {

    private UnifiedJedis redis;
    private ChangeTracker tracker;
    private final String run = UUID.randomUUID().toString().substring(0, 8);
    private final String change = "ct-" + run;
    private final String net = "net-ct-" + run;

    @BeforeEach
    void start() {
        redis = new UnifiedJedis(URI.create(Infrastructure.get().env("REDIS_URL")));
        tracker = new ChangeTracker(redis);
    }

    @AfterEach
    void stop() {
        redis.del(RedisKeys.change(change));
        for (String h : hosts()) {
            redis.del(RedisKeys.hostApplied(h));
        }
        redis.close();
    }

    private List<String> hosts() {
        return List.of("h1-" + run, "h2-" + run, "h3-" + run);
    }

    private void record(long target) {
        StringBuilder targets = new StringBuilder("{");
        for (String h : hosts()) {
            targets.append(targets.length() > 1 ? "," : "").append("\\\"").append(h).append("\\\":").append(target);
        }
        targets.append('}');
        redis.set(RedisKeys.change(change), "{\"networkId\":\"" + net + "\",\"operation\":\"RULE_CREATED\",\"status\":\"COMPILED\","
                + "\"version\":\"" + target + "\",\"ruleId\":\"r-1\",\"compiledAt\":\"2026-12-04T00:00:00Z\",\"targets\":\"" + targets + "\"}");
    }

    private void ack(String host, long version) {
        redis.hset(RedisKeys.hostApplied(host), Map.of("v:" + net, String.valueOf(version), "status", "ACK", "at", "2026-12-04T00:00:01Z"));
    }

    @Test
    void aFullReadCountsEveryHostAtOrAboveItsTarget() {
        record(7);
        ack(hosts().get(0), 7);
        ack(hosts().get(1), 6); // an older version does not count
        ChangeStatus s = tracker.find(change).orElseThrow();
        assertThat(s.status()).isEqualTo("COMPILED");
        assertThat(s.hostsTotal()).isEqualTo(3);
        assertThat(s.hostsApplied()).isEqualTo(1);
        assertThat(s.pendingHosts()).containsExactlyInAnyOrder(hosts().get(1), hosts().get(2));
    }

    @Test
    void aRefreshReadsTheAnnouncedHostsAndKeepsWhatItKnewOfTheOthers() {
        record(7);
        ChangeStatus first = tracker.find(change).orElseThrow();
        assertThat(first.pendingHosts()).hasSize(3);

        ack(hosts().get(0), 7);
        ack(hosts().get(1), 7);
        ChangeStatus s = tracker.refresh(first, List.of(hosts().get(0))).orElseThrow();
        assertThat(s.pendingHosts()).as("h2 ACKed too, but only h1 was announced and read")
                .containsExactlyInAnyOrder(hosts().get(1), hosts().get(2));
        assertThat(s.hostsApplied()).isEqualTo(1);

        redis.hset(RedisKeys.hostApplied(hosts().get(2)), Map.of("status", "NACK", "error", "nft said no", "at", "2026-12-04T00:00:02Z"));
        s = tracker.refresh(s, List.of(hosts().get(1), hosts().get(2), "not-a-target")).orElseThrow();
        assertThat(s.pendingHosts()).containsExactly(hosts().get(2));
        assertThat(s.failedHosts()).extracting(ChangeStatus.FailedHost::error).containsExactly("nft said no");
        assertThat(s.status()).isEqualTo("COMPILED");

        ack(hosts().get(2), 8);
        s = tracker.refresh(s, List.of(hosts().get(2))).orElseThrow();
        assertThat(s.status()).isEqualTo("APPLIED");
        assertThat(s.failedHosts()).isEmpty();
        assertThat(s).as("the refresh agrees with a full read").isEqualTo(tracker.find(change).orElseThrow());
    }

    @Test
    void aRefreshOfAStatusNotReadAsCompiledReadsEveryHost() {
        record(7);
        ack(hosts().get(0), 7);
        ChangeStatus s = tracker.refresh(ChangeTracker.published(change, net), List.of()).orElseThrow();
        assertThat(s.hostsApplied()).as("the PUBLISHED stand-in knew no host: all read").isEqualTo(1);
        assertThat(s.pendingHosts()).hasSize(2);
        redis.del(RedisKeys.change(change));
        assertThat(tracker.refresh(s, List.of(hosts().get(0)))).as("the record is gone").isEmpty();
    }
}
