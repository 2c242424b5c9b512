package io.egressctl.compiler.status;

import io.egressctl.compiler.snapshot.SnapshotStore;
import io.egressctl.events.AppliedFragment;
import io.egressctl.events.EnforcementReport;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.Topics;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.stereotype.Component;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Folds the agents' enforcement reports into each host's applied state in Redis, which change
 * status (k of n hosts applied) and convergence checks (expected vs applied hash) read.
 */
@Component
class EnforcementReportListener {

    private static final Logger log = LoggerFactory.getLogger(EnforcementReportListener.class);

    private final SnapshotStore store;
    private final AvroDeserializer<EnforcementReport> deserializer;

    EnforcementReportListener(SnapshotStore store, SchemaRegistryClient registry) {
        this.store = store;
        this.deserializer = new AvroDeserializer<>(registry, EnforcementReport.class);
    }

    @KafkaListener(id = "enforcement-status", topics = Topics.ENFORCEMENT_REPORTS, groupId = "${egress.compiler.status-group:egress-compiler-status}",
            batch = "true")
    void onReports(List<ConsumerRecord<String, byte[]>> records) {
        for (ConsumerRecord<String, byte[]> record : records) {
            EnforcementReport r;
            try {
                r = deserializer.deserialize(record.topic(), record.value());
            } catch (SerializationException e) {
                log.warn("skipping undecodable report {}-{}@{}: {}", record.topic(), record.partition(), record.offset(), e.getMessage());
                continue;
            }
            Map<String, String> fields = new LinkedHashMap<>();
            fields.put("status", r.getStatus().name());
            fields.put("hash", r.getAppliedHash());
            fields.put("trigger", r.getTrigger().name());
            fields.put("enforcer", r.getEnforcer());
            fields.put("applyMicros", Long.toString(r.getApplyMicros()));
            fields.put("at", r.getReportedAt().toString());
            fields.put("driftRepairs", Long.toString(r.getDriftRepairs()));
            fields.put("error", r.getError() == null ? "" : r.getError());
            for (AppliedFragment f : r.getFragments()) {
                fields.put("v:" + f.getNetworkId(), Long.toString(f.getVersion()));
            }
            store.writeApplied(r.getHostId(), fields);
        }
    }
}
