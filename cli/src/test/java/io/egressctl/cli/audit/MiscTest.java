package io.egressctl.cli.audit;

import io.egressctl.core.state.NetworkState;
import io.egressctl.events.RuleEvent;
import io.egressctl.schemas.registry.InMemorySchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

class MiscTest {

    @Test
    void avroRecordsBecomePlainJson() {
        Map<String, Object> m = AvroJson.of(Events.ruleCreated("net-1", 2, Events.tcp("r1", 80, null)));
        assertThat(Json.line(m)).isEqualTo("{\"eventId\":\"e2\",\"operation\":\"RULE_CREATED\",\"networkId\":\"net-1\","
                + "\"expectedVersion\":null,\"idempotencyKey\":null,\"network\":null,\"ruleBefore\":null,\"ruleAfter\":{\"ruleId\":\"r1\","
                + "\"protocol\":\"TCP\",\"action\":null,\"priority\":1000,\"sourceCidrs\":[],\"sourceVmIds\":[],\"destinationCidrs\":[],"
                + "\"destinationExceptCidrs\":[],\"startPort\":80,\"endPort\":80,\"icmpType\":null,\"icmpCode\":null,\"description\":null},"
                + "\"source\":{\"actor\":\"alice\",\"tenantId\":\"acme\",\"requestId\":\"req-2\",\"eventTime\":\"2024-05-01T10:00:02.000Z\","
                + "\"service\":\"rule-service\",\"serviceVersion\":\"0.1.0\"}}");
    }

    @Test
    void progressLineShowsRatePositionAndRemaining() {
        assertThat(Progress.line(250_000, 1_000_000, 2_000_000_000L, "egress.rule-events p3@41000"))
                .isEqualTo("250,000/1,000,000 (25%)  125,000 records/s  at egress.rule-events p3@41000  remaining 6s");
        assertThat(Progress.line(10, 0, 1_000_000_000L, null)).isEqualTo("10  10 records/s");
        // NONE prints nothing and never fails
        Progress.NONE.advance(5, "x");
        Progress.NONE.done();
    }

    @Test
    void theSyntheticHistoryReplaysToTheStateItPredicts() {
        SyntheticHistory h = new SyntheticHistory("t-", 7, 5, Instant.parse("2024-01-01T00:00:00Z"), 10);
        Replay replay = new Replay(new InMemorySchemaRegistryClient());
        for (int i = 0; i < 2_000; i++) {
            assertThat(h.time(h.index())).isEqualTo(Instant.parse("2024-01-01T00:00:00Z").plusMillis(10L * i));
            RuleEvent e = h.next();
            assertThat(replay.rule(e, e.getNetworkId(), i).accepted()).as("event %d %s", i, e.getOperation()).isTrue();
        }
        Map<String, Map<String, Integer>> expected = h.expected();
        assertThat(expected).hasSize(7);
        expected.forEach((net, rules) -> {
            NetworkState s = replay.state(net);
            assertThat(s.rules().keySet()).isEqualTo(rules.keySet());
            assertThat(rules.size()).isBetween(1, 5);
            s.rules().values().forEach(r -> assertThat(r.ports().start()).isEqualTo(rules.get(r.ruleId())));
        });
    }

    @Test
    void aParallelFoldEndsWithTheStatesOfASequentialOne() {
        InMemorySchemaRegistryClient registry = new InMemorySchemaRegistryClient();
        AvroSerializer<org.apache.avro.specific.SpecificRecord> ser = new AvroSerializer<>(registry);
        SyntheticHistory h = new SyntheticHistory("p-", 50, 6, Instant.parse("2024-01-01T00:00:00Z"), 1).withPlacements(4);
        List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < 5_000; i++) {
            var e = h.nextEvent();
            String key = e instanceof RuleEvent r ? r.getNetworkId() : ((io.egressctl.events.WorkloadEvent) e).getNetworkId();
            records.add(new ConsumerRecord<>("x.network-events", 0, i, key.getBytes(StandardCharsets.UTF_8),
                    ser.serialize("x.network-events", e)));
        }
        Replay sequential = new Replay(registry);
        records.forEach(r -> sequential.event(r.topic(), r.key(), r.value(), r.offset()));

        List<Replay> parts = new ArrayList<>();
        try (ParallelFold fold = new ParallelFold(3, i -> {
            Replay p = new Replay(registry);
            synchronized (parts) {
                parts.add(p);
            }
            return r -> p.event(r.topic(), r.key(), r.value(), r.offset());
        })) {
            for (int i = 0; i < records.size(); i += 700) {
                fold.accept(new TopicPartition("t", 0), records.subList(i, Math.min(records.size(), i + 700)));
            }
            fold.finish();
        }
        Replay merged = new Replay(registry);
        parts.forEach(merged::absorb);
        assertThat(merged.records()).isEqualTo(5_000);
        assertThat(merged.states().keySet()).isEqualTo(sequential.states().keySet());
        sequential.states().forEach((id, s) -> {
            assertThat(merged.state(id).rules()).isEqualTo(s.rules());
            assertThat(merged.state(id).configVersion()).isEqualTo(s.configVersion());
            assertThat(merged.state(id).vms()).isEqualTo(s.vms());
            assertThat(merged.state(id).version()).isEqualTo(s.version());
        });
    }
}
