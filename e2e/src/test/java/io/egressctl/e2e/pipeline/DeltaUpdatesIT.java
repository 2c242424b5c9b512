package io.egressctl.e2e.pipeline;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.FragmentDelta;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.core.host.HostState;
import io.egressctl.e2e.support.ControlPlane;
import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.integrity.UpdateKeys;
import io.egressctl.schemas.integrity.UpdateMac;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.Topics;
import io.egressctl.schemas.view.RedisKeys;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.UnifiedJedis;

import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Host updates as rule-keyed deltas on the real stack (issue 13, item 3): once a network's fragment
 * on a host holds enough rules, a change goes to egress.host-updates as a delta that carries the
 * changed rule only, a small part of the whole fragment the snapshot holds; the agent applies it to
 * the version it holds and its ACK's hash is the compiler's. A delta whose base is not the version
 * the agent holds (here: one signed with the stack's key against a version that never was) makes
 * the agent read its snapshot again; it keeps enforcing what the log says, and the next real change
 * is applied.
 */
class DeltaUpdatesIT {

    @Test
    void aChangeToALargeNetworkTravelsAsADeltaAndIsAppliedAndAGapIsReadFromTheSnapshot() throws Exception {
        ControlPlane cp = ControlPlane.shared();
        ApiClient api = cp.api();
        String host = cp.unique("delta-h");
        String net = cp.unique("delta");
        int agentPort = cp.startAgentNotWaiting(host, Map.of());
        try {
            assertThat(ControlPlane.eventually(Duration.ofSeconds(60), () -> ControlPlane.health(agentPort).contains("\"UP\"")))
                    .as("the agent is up: %s", ControlPlane.health(agentPort)).isTrue();
            cp.networkWithVm(net, "10.54.0.0/24", "vm-d", host, "tap-d1", "10.54.0.11");
            for (int i = 0; i < 24; i++) {
                ApiClient.Response r = api.post("/api/v1/networks/" + net + "/egress-rules?wait=compiled&timeout=30s", cp.tenantKey(),
                        Map.of("protocol", "tcp", "startPort", 2000 + i));
                assertThat(r.status()).as("%s", r.body()).isEqualTo(201);
            }
            TopicPartition tp = new TopicPartition(Topics.HOST_UPDATES, partitionOf(cp, host));
            long from = endOffset(cp, tp);

            // 1. One more rule: a delta with that rule alone, applied, the ACK's hash the compiler's.
            ApiClient.Response rule = api.post("/api/v1/networks/" + net + "/egress-rules?wait=applied&timeout=30s", cp.tenantKey(),
                    Map.of("protocol", "udp", "startPort", 53));
            assertThat(rule.body().get("status").get("status").asString()).as("%s", rule.body()).isEqualTo("APPLIED");
            List<ConsumerRecord<String, byte[]>> records = read(cp, tp, from, host);
            HostUpdate logged = null;
            int loggedBytes = 0;
            AvroDeserializer<HostUpdate> decode = new AvroDeserializer<>(new HttpSchemaRegistryClient(cp.env("SCHEMA_REGISTRY_URL")), HostUpdate.class);
            for (ConsumerRecord<String, byte[]> r : records) {
                HostUpdate h = decode.deserialize(r.topic(), r.value());
                if (net.equals(h.getNetworkId())) {
                    logged = h;
                    loggedBytes = r.value().length;
                }
            }
            assertThat(logged).as("the change's host update on %s from offset %d", tp, from).isNotNull();
            assertThat(EventMapper.isDelta(logged)).as("a delta: %s", logged).isTrue();
            FragmentDelta delta = EventMapper.deltaFromAvro(logged);
            assertThat(delta.upserts()).extracting(r -> r.ruleId()).containsExactly(rule.text("ruleId"));
            assertThat(delta.removedRuleIds()).isEmpty();
            assertThat(cp.ruleset(host)).contains("r=" + rule.text("ruleId") + " ");
            try (UnifiedJedis redis = new UnifiedJedis(URI.create(cp.env("REDIS_URL")))) {
                byte[] whole = redis.hget(RedisKeys.hostFragments(host).getBytes(StandardCharsets.UTF_8), net.getBytes(StandardCharsets.UTF_8));
                HostUpdate stored = HostUpdate.fromByteBuffer(ByteBuffer.wrap(whole));
                assertThat(stored.getDelta()).as("the snapshot is whole").isNull();
                assertThat(stored.getVersion()).isEqualTo(logged.getVersion());
                assertThat(loggedBytes).as("the delta on the log against the whole fragment in the snapshot (%d bytes)", whole.length)
                        .isLessThan(whole.length / 4);
                assertThat(redis.hget(RedisKeys.hostApplied(host), "hash")).as("the ACK's hash is the compiler's")
                        .isEqualTo(expectedHash(redis, host));

                // 2. A signed delta against a version the agent does not hold: it reads its snapshot again.
                // The stack's update keys reach the services through the environment (none: updates unsigned).
                UpdateMac mac = new UpdateMac(UpdateKeys.fromEnvironment());
                Fragment held = EventMapper.fromAvro(stored).fragment();
                Fragment next = new Fragment(net, held.defaultPolicy(), held.vms(), held.rules().subList(1, held.rules().size()),
                        held.keepEstablished());
                long version = stored.getVersion() + 1_000;
                HostUpdate gap = mac.sign(EventMapper.toAvroDelta(new FragmentUpdate(host, net, version, next, next.hash(), List.of()),
                        FragmentDelta.between(stored.getVersion() + 999, held, next), Instant.now()));
                String inForce = cp.ruleset(host);
                long gapsBefore = (long) ControlPlane.metric(agentPort, "egress.agent.delta.gaps");
                cp.produce(Topics.HOST_UPDATES, host, gap);
                assertThat(ControlPlane.eventually(Duration.ofSeconds(30), () -> (long) ControlPlane.metric(agentPort, "egress.agent.delta.gaps") > gapsBefore))
                        .as("the agent counted the gap").isTrue();
                assertThat(ControlPlane.eventually(Duration.ofSeconds(30), () -> "BOOTSTRAP".equals(redis.hget(RedisKeys.hostApplied(host), "trigger"))))
                        .as("and bootstrapped again from the snapshot: %s", redis.hgetAll(RedisKeys.hostApplied(host))).isTrue();
                assertThat(cp.ruleset(host)).as("what the log says is still in force").isEqualTo(inForce);
                assertThat(redis.hget(RedisKeys.hostApplied(host), "hash")).isEqualTo(expectedHash(redis, host));
            }

            // 3. The next real change, a delta against the snapshot's version, is applied.
            ApiClient.Response again = api.post("/api/v1/networks/" + net + "/egress-rules?wait=applied&timeout=30s", cp.tenantKey(),
                    Map.of("protocol", "tcp", "startPort", 8443));
            assertThat(again.body().get("status").get("status").asString()).as("%s", again.body()).isEqualTo("APPLIED");
            assertThat(cp.ruleset(host)).contains("r=" + again.text("ruleId") + " ");
        } finally {
            cp.stopAgent(host, false);
        }
    }

    /** The host hash of the whole fragments the compiler wrote for {@code host} (what its ACK must report). */
    static String expectedHash(UnifiedJedis redis, String host) throws Exception {
        TreeMap<String, Fragment> live = new TreeMap<>();
        for (Map.Entry<byte[], byte[]> e : redis.hgetAll(RedisKeys.hostFragments(host).getBytes(StandardCharsets.UTF_8)).entrySet()) {
            HostUpdate u = HostUpdate.fromByteBuffer(ByteBuffer.wrap(e.getValue()));
            if (!u.getTombstone()) {
                live.put(u.getNetworkId(), EventMapper.fromAvro(u).fragment());
            }
        }
        return HostState.hashOf(live);
    }

    static int partitionOf(ControlPlane cp, String host) {
        try (KafkaConsumer<String, byte[]> c = consumer(cp)) {
            return Topics.partitionFor(host, c.partitionsFor(Topics.HOST_UPDATES).size());
        }
    }

    static long endOffset(ControlPlane cp, TopicPartition tp) {
        try (KafkaConsumer<String, byte[]> c = consumer(cp)) {
            return c.endOffsets(List.of(tp)).get(tp);
        }
    }

    /** {@code host}'s records of {@code tp} from {@code from} to the end. */
    static List<ConsumerRecord<String, byte[]>> read(ControlPlane cp, TopicPartition tp, long from, String host) {
        List<ConsumerRecord<String, byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<String, byte[]> c = consumer(cp)) {
            long end = c.endOffsets(List.of(tp)).get(tp);
            c.assign(List.of(tp));
            c.seek(tp, from);
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (c.position(tp) < end && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, byte[]> r : c.poll(Duration.ofMillis(200))) {
                    if (host.equals(r.key())) {
                        out.add(r);
                    }
                }
            }
        }
        return out;
    }

    static KafkaConsumer<String, byte[]> consumer(ControlPlane cp) {
        return new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, cp.env("KAFKA_BOOTSTRAP_SERVERS"),
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false), new StringDeserializer(), new ByteArrayDeserializer());
    }
}
