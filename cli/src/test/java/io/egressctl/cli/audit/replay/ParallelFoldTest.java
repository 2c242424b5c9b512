package io.egressctl.cli.audit.replay;

import io.egressctl.cli.bench.SyntheticHistory;
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

import static org.assertj.core.api.Assertions.assertThat;

/** Folding on worker threads by key ends where folding in log order ends. */
class ParallelFoldTest {

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
