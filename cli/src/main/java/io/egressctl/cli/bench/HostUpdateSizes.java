package io.egressctl.cli.bench;

import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.KafkaDefaults;
import io.egressctl.schemas.serde.Topics;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the compiler published on egress.host-updates for a set of changes: each host update's size
 * (the record value, schema-registry wire format) and whether it is a delta, by the change ids it
 * carries. A bench notes the end offsets before its changes ({@link #endOffsets}) and reads from
 * there to the end after them ({@link #read}).
 */
final class HostUpdateSizes {

    /** One host update: its bytes on the log and whether it carried a delta. */
    record Update(int bytes, boolean delta) {
    }

    /** The host updates of some changes: how many, their mean size, how many were deltas, over how many changes. */
    record Window(int creates, int updates, double meanBytes, int deltas) {
    }

    private final Map<String, List<Update>> byChange;

    private HostUpdateSizes(Map<String, List<Update>> byChange) {
        this.byChange = byChange;
    }

    static Map<TopicPartition, Long> endOffsets(String bootstrap) {
        try (KafkaConsumer<String, byte[]> c = consumer(bootstrap)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo p : c.partitionsFor(Topics.HOST_UPDATES)) {
                tps.add(new TopicPartition(p.topic(), p.partition()));
            }
            return c.endOffsets(tps);
        }
    }

    /** The updates of {@code hosts} from {@code from} to the end offsets now, by change id (a coalesced update counts for each of its ids). */
    static HostUpdateSizes read(String bootstrap, String registryUrl, Map<TopicPartition, Long> from, Collection<String> hosts) {
        Map<String, List<Update>> out = new HashMap<>();
        if (from == null) {
            return new HostUpdateSizes(out);
        }
        Set<String> wanted = new HashSet<>(hosts);
        AvroDeserializer<HostUpdate> decode = new AvroDeserializer<>(new HttpSchemaRegistryClient(registryUrl), HostUpdate.class);
        try (KafkaConsumer<String, byte[]> c = consumer(bootstrap)) {
            Map<TopicPartition, Long> end = c.endOffsets(from.keySet());
            List<TopicPartition> open = new ArrayList<>();
            from.forEach((tp, offset) -> {
                if (end.getOrDefault(tp, 0L) > offset) {
                    open.add(tp);
                }
            });
            c.assign(open);
            open.forEach(tp -> c.seek(tp, from.get(tp)));
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (!open.isEmpty() && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, byte[]> r : c.poll(Duration.ofMillis(200))) {
                    if (r.offset() >= end.get(new TopicPartition(r.topic(), r.partition())) || !wanted.contains(r.key())) {
                        continue;
                    }
                    HostUpdate h = decode.deserialize(r.topic(), r.value());
                    Update u = new Update(r.value().length, EventMapper.isDelta(h));
                    for (String id : h.getChangeIds()) {
                        out.computeIfAbsent(id, k -> new ArrayList<>()).add(u);
                    }
                }
                open.removeIf(tp -> c.position(tp) >= end.get(tp));
            }
        }
        return new HostUpdateSizes(out);
    }

    Window window(List<String> changeIds) {
        int creates = 0;
        int updates = 0;
        long bytes = 0;
        int deltas = 0;
        for (String id : changeIds) {
            if (id == null) {
                continue;
            }
            creates++;
            for (Update u : byChange.getOrDefault(id, List.of())) {
                updates++;
                bytes += u.bytes();
                deltas += u.delta() ? 1 : 0;
            }
        }
        return new Window(creates, updates, updates == 0 ? Double.NaN : (double) bytes / updates, deltas);
    }

    private static KafkaConsumer<String, byte[]> consumer(String bootstrap) {
        return new KafkaConsumer<>(KafkaDefaults.client(bootstrap, ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false),
                new StringDeserializer(), new ByteArrayDeserializer());
    }
}
