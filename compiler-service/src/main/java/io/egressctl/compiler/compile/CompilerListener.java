package io.egressctl.compiler.compile;

import io.egressctl.compiler.snapshot.SnapshotStore;
import io.egressctl.core.compile.CompileResult;
import io.egressctl.core.compile.CompilerEngine;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.state.Decision;
import io.egressctl.core.state.NetworkState;
import io.egressctl.core.validation.ValidationException;
import io.egressctl.events.HostUpdate;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.Topics;
import io.egressctl.schemas.view.NetworkView;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.kafka.listener.ConsumerSeekAware;
import org.springframework.stereotype.Component;
import tools.jackson.databind.json.JsonMapper;

import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The compiler's Kafka adapter. One listener thread owns the {@link CompilerEngine}; each batch is
 * decided in log order, its fragment updates written to the {@link SnapshotStore} (guarded by
 * version) and then published as HostUpdates keyed by host id; the producer is flushed before the
 * batch's offsets are committed. A record that cannot be decoded or is invalid goes to the topic's
 * dead-letter topic with the reason in headers and never stops the consumer.
 *
 * <p>On partition assignment the owned partitions are read from the beginning to rebuild the state
 * of their networks; writes that are not newer than the store's are not re-published.
 */
@Component
class CompilerListener implements ConsumerSeekAware {

    private static final Logger log = LoggerFactory.getLogger(CompilerListener.class);

    private final CompilerEngine engine = new CompilerEngine();
    private final Map<String, TopicPartition> networkPartitions = new HashMap<>();
    private final SnapshotStore store;
    private final Producer<String, SpecificRecord> producer;
    private final Producer<String, byte[]> dltProducer;
    private final AvroDeserializer<RuleEvent> ruleDeserializer;
    private final AvroDeserializer<WorkloadEvent> workloadDeserializer;
    private final JsonMapper json = JsonMapper.builder().build();
    private final Clock clock;
    private final MeterRegistry meters;
    private final Timer compileTimer;
    private final Counter fragmentsWritten;

    CompilerListener(SnapshotStore store, Producer<String, SpecificRecord> avroProducer, Producer<String, byte[]> dltProducer,
                     SchemaRegistryClient registry, MeterRegistry meters) {
        this.store = store;
        this.producer = avroProducer;
        this.dltProducer = dltProducer;
        this.ruleDeserializer = new AvroDeserializer<>(registry, RuleEvent.class);
        this.workloadDeserializer = new AvroDeserializer<>(registry, WorkloadEvent.class);
        this.clock = Clock.systemUTC();
        this.meters = meters;
        this.compileTimer = Timer.builder("egress.compiler.compile").description("decide + compile + write one event")
                .publishPercentiles(0.5, 0.99).register(meters);
        this.fragmentsWritten = Counter.builder("egress.compiler.fragments.written").register(meters);
    }

    @Override
    public void onPartitionsAssigned(Map<TopicPartition, Long> assignments, ConsumerSeekCallback callback) {
        // Rebuild the owned networks from the log: the log is the source of truth (invariant 1).
        log.info("assigned {}; replaying them from the beginning", assignments.keySet());
        callback.seekToBeginning(assignments.keySet());
    }

    @Override
    public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
        synchronized (engine) {
            networkPartitions.entrySet().removeIf(e -> {
                if (partitions.contains(e.getValue())) {
                    engine.forget(e.getKey());
                    return true;
                }
                return false;
            });
        }
        log.info("revoked {}; stopped writing for their networks", partitions);
    }

    @KafkaListener(id = "compiler", topics = {Topics.RULE_EVENTS, Topics.WORKLOAD_EVENTS}, groupId = "egress-compiler",
            batch = "true")
    void onBatch(List<ConsumerRecord<String, byte[]>> records) {
        synchronized (engine) {
            Set<String> resync = new LinkedHashSet<>();
            for (ConsumerRecord<String, byte[]> record : records) {
                process(record, resync);
            }
            for (String networkId : resync) {
                republish(networkId);
            }
            producer.flush();
        }
    }

    private void process(ConsumerRecord<String, byte[]> record, Set<String> resync) {
        Timer.Sample sample = Timer.start(meters);
        boolean ruleTopic = record.topic().equals(Topics.RULE_EVENTS);
        CompileResult result;
        String operation;
        try {
            if (ruleTopic) {
                RuleChange c = EventMapper.fromAvro(ruleDeserializer.deserialize(record.topic(), record.value()));
                requireKey(record, c.networkId());
                networkPartitions.put(c.networkId(), new TopicPartition(Topics.RULE_EVENTS, record.partition()));
                result = engine.onRuleChange(c, record.offset() + 1);
                operation = c.operation().name();
            } else {
                WorkloadChange c = EventMapper.fromAvro(workloadDeserializer.deserialize(record.topic(), record.value()));
                requireKey(record, c.networkId());
                networkPartitions.put(c.networkId(), new TopicPartition(Topics.RULE_EVENTS, record.partition()));
                result = engine.onWorkloadChange(c, record.offset() + 1);
                operation = c.operation().name();
            }
        } catch (SerializationException e) {
            deadLetter(record, "undecodable", e.getMessage());
            return;
        } catch (ValidationException | IllegalArgumentException | NullPointerException e) {
            deadLetter(record, "invalid", e.getMessage());
            return;
        }
        Decision d = result.decision();
        meters.counter("egress.compiler.events", "topic", record.topic(), "outcome", d.outcome().name()).increment();
        if (d.outcome() == Decision.Outcome.ALREADY_APPLIED) {
            // A redelivery: make sure what was decided before reached the store and the hosts.
            resync.add(result.networkId());
            return;
        }
        Map<String, Long> targets = new TreeMap<>();
        for (FragmentUpdate u : result.updates()) {
            publish(u);
            targets.put(u.hostId(), u.version());
        }
        if (d.isAccepted()) {
            writeView(result.networkId());
        }
        writeChange(result, operation, targets);
        sample.stop(compileTimer);
    }

    private void publish(FragmentUpdate u) {
        HostUpdate avro = EventMapper.toAvro(u, clock.instant());
        byte[] encoded;
        try {
            encoded = avro.toByteBuffer().array();
        } catch (java.io.IOException e) {
            throw new IllegalStateException("cannot encode HostUpdate", e);
        }
        SnapshotStore.WriteOutcome outcome = store.writeFragment(u, encoded);
        if (outcome != SnapshotStore.WriteOutcome.STALE) {
            // Snapshot first, then the log (invariant 4): an agent that read the snapshot before this
            // write finds the update in the log tail.
            producer.send(new ProducerRecord<>(Topics.HOST_UPDATES, u.hostId(), avro));
            fragmentsWritten.increment();
        }
    }

    private void republish(String networkId) {
        NetworkState s = engine.state(networkId);
        if (s == null) {
            return;
        }
        for (Map.Entry<String, Fragment> e : engine.fragments(networkId).entrySet()) {
            Fragment f = e.getValue();
            publish(new FragmentUpdate(e.getKey(), networkId, s.version(), f, f.hash(), List.of()));
        }
        if (s.network() != null) {
            writeView(networkId);
        }
    }

    private void writeView(String networkId) {
        NetworkState s = engine.state(networkId);
        if (s.network() == null) {
            store.writeNetworkView(networkId, null, s.version(), "");
            return;
        }
        store.writeNetworkView(networkId, s.network().tenantId(), s.version(), json.writeValueAsString(NetworkView.of(s)));
    }

    private void writeChange(CompileResult result, String operation, Map<String, Long> targets) {
        Decision d = result.decision();
        Map<String, String> fields = new LinkedHashMap<>();
        fields.put("networkId", result.networkId());
        fields.put("operation", operation);
        fields.put("status", d.isAccepted() ? "COMPILED" : "REJECTED");
        fields.put("version", Long.toString(result.networkVersion()));
        fields.put("targets", json.writeValueAsString(targets));
        fields.put("compiledAt", Instant.now(clock).toString());
        if (d.code() != null) {
            fields.put("code", d.code());
            fields.put("reason", d.reason());
        }
        if (d.ruleId() != null) {
            fields.put("ruleId", d.ruleId());
        }
        store.writeChange(result.eventId(), fields);
    }

    private static void requireKey(ConsumerRecord<String, byte[]> record, String networkId) {
        if (!networkId.equals(record.key())) {
            throw new ValidationException("key", "record key '" + record.key() + "' differs from networkId '" + networkId
                    + "'; events of a network must share its key to keep their order");
        }
    }

    private void deadLetter(ConsumerRecord<String, byte[]> record, String kind, String reason) {
        log.warn("dead-lettering {}-{}@{}: {}: {}", record.topic(), record.partition(), record.offset(), kind, reason);
        RecordHeaders headers = new RecordHeaders();
        headers.add("egress.dlt.kind", kind.getBytes(StandardCharsets.UTF_8));
        headers.add("egress.dlt.reason", String.valueOf(reason).getBytes(StandardCharsets.UTF_8));
        headers.add("egress.dlt.original", (record.topic() + "-" + record.partition() + "@" + record.offset()).getBytes(StandardCharsets.UTF_8));
        dltProducer.send(new ProducerRecord<>(Topics.dlt(record.topic()), null, record.key(), record.value(), headers));
        meters.counter("egress.compiler.dlt", "topic", record.topic(), "kind", kind).increment();
    }
}
