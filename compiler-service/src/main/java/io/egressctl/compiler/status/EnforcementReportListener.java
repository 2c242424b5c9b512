package io.egressctl.compiler.status;

import io.egressctl.compiler.compile.PipelineHealth;
import io.egressctl.compiler.snapshot.SnapshotStore;
import io.egressctl.schemas.registry.RegistryOutage;
import io.egressctl.events.AppliedFragment;
import io.egressctl.events.EnforcementReport;
import io.egressctl.events.EnforcementStatus;
import io.egressctl.events.RefusedFragment;
import io.egressctl.events.UnenforcedVm;
import io.egressctl.schemas.integrity.ReportMac;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.Topics;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.stereotype.Component;
import tools.jackson.databind.json.JsonMapper;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Folds the agents' enforcement reports into each host's applied state in Redis
 * ({@code egress:host:{H}:applied}), which change status (k of n hosts applied: the host's
 * {@code v:<networkId>} against the change's version) and convergence checks (expected vs applied
 * hash) read.
 *
 * <p>An ACK lists every version the host holds, except networks with a VM it did not enforce (no
 * interface in the placement, an interface claimed twice); so an ACK replaces the host's
 * {@code v:} fields: a network missing from it loses its field and no change of that network counts
 * as applied on the host. A NACK keeps the versions of the last ACK (the kernel still holds that
 * state). Both record the VMs not enforced as a JSON list in the field {@code unenforced}
 * ({@code [{"networkId":..,"vmId":..,"reason":..}]}, {@code []} when none) for status and audit,
 * and the network versions it refused while it applied the others in the field {@code refused}
 * ({@code [{"networkId":..,"version":..,"reason":..}]}; such a network's {@code v:} field is the
 * version it keeps in force, or absent when it never held one).
 *
 * <p>With update keys ({@code EGRESS_UPDATE_KEYS}) only reports an agent signed with one of them are
 * folded ({@link ReportMac}): a report written by anything else that reaches Kafka, however it claims
 * a host applied a change, is refused, counted ({@code egress.compiler.reports.refused}) and logged,
 * and changes nothing. {@code acceptUnsigned} lets unsigned reports in (agents older than signed
 * reports, during their upgrade); a signed report that does not verify is refused either way.
 */
@Component
public class EnforcementReportListener {

    private static final Logger log = LoggerFactory.getLogger(EnforcementReportListener.class);

    /** Prefix of the applied-version fields, {@code v:<networkId>}. */
    static final String VERSION_PREFIX = "v:";
    /** Field with the JSON list of the VMs the host does not enforce. */
    static final String UNENFORCED = "unenforced";
    /** Field with the JSON list of the network versions the host refused while applying the others. */
    static final String REFUSED = "refused";
    private static final JsonMapper JSON = JsonMapper.builder().build();

    static final String ID = "enforcement-status";

    /** At most one warning per this many milliseconds about refused reports (a fleet of old agents must not flood the log). */
    private static final long WARN_EVERY_MILLIS = 10_000;

    private final SnapshotStore store;
    private final AvroDeserializer<EnforcementReport> deserializer;
    private final PipelineHealth health;
    private final ReportMac reportMac;
    private final boolean acceptUnsigned;
    private final Counter refusedUnsigned;
    private final Counter refusedMac;
    private long lastWarnAt;
    private long refusedSinceWarn;

    @Autowired
    public EnforcementReportListener(SnapshotStore store, SchemaRegistryClient registry, PipelineHealth health, ReportMac reportMac,
                                     @Value("${egress.compiler.accept-unsigned-reports:false}") boolean acceptUnsigned,
                                     MeterRegistry meters) {
        this.store = store;
        this.deserializer = new AvroDeserializer<>(registry, EnforcementReport.class);
        this.health = health;
        this.reportMac = reportMac;
        this.acceptUnsigned = acceptUnsigned;
        this.refusedUnsigned = refused(meters, "unsigned");
        this.refusedMac = refused(meters, "mac");
        if (reportMac.enabled() && acceptUnsigned) {
            log.warn("egress.compiler.accept-unsigned-reports is on: unsigned enforcement reports count (signed ones are checked);"
                    + " turn it off once every agent signs its reports");
        }
    }

    private static Counter refused(MeterRegistry meters, String reason) {
        return Counter.builder("egress.compiler.reports.refused").tag("reason", reason)
                .description("enforcement reports not folded into the hosts' applied state: unsigned, or a MAC that does not verify")
                .register(meters);
    }

    /**
     * A batch of reports. A Redis or registry failure fails the batch, which is retried from its first
     * report ({@code NeverSkipErrorHandler}; writing a report again is harmless); only a report that is
     * undecodable while the registry answers is skipped, with a warning.
     */
    @KafkaListener(id = ID, topics = Topics.ENFORCEMENT_REPORTS, groupId = "${egress.compiler.status-group:egress-compiler-status}",
            batch = "true")
    public void onReports(List<ConsumerRecord<String, byte[]>> records) {
        for (ConsumerRecord<String, byte[]> record : records) {
            EnforcementReport r;
            try {
                r = deserializer.deserialize(record.topic(), record.value());
            } catch (SerializationException e) {
                if (RegistryOutage.isOutage(e)) {
                    throw e;
                }
                log.warn("skipping undecodable report {}-{}@{}: {}", record.topic(), record.partition(), record.offset(), e.getMessage());
                continue;
            }
            if (!authentic(r, record)) {
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
            fields.put(UNENFORCED, unenforcedJson(r.getUnenforced()));
            fields.put(REFUSED, refusedJson(r.getRefused()));
            for (AppliedFragment f : r.getFragments()) {
                fields.put(VERSION_PREFIX + f.getNetworkId(), Long.toString(f.getVersion()));
            }
            if (r.getStatus() == EnforcementStatus.ACK) {
                store.replaceApplied(r.getHostId(), fields, VERSION_PREFIX);
            } else {
                store.writeApplied(r.getHostId(), fields);
            }
        }
        health.succeeded(ID);
    }

    /** True when {@code r} may be folded: no keys, a MAC that verifies, or no MAC while unsigned reports are accepted. */
    private boolean authentic(EnforcementReport r, ConsumerRecord<String, byte[]> record) {
        if (!reportMac.enabled() || (acceptUnsigned && (r.getMac() == null || r.getMac().isEmpty()))) {
            return true;
        }
        try {
            reportMac.verify(r);
            return true;
        } catch (ReportMac.RefusedReportException e) {
            (r.getMac() == null || r.getMac().isEmpty() ? refusedUnsigned : refusedMac).increment();
            refusedSinceWarn++;
            long now = System.currentTimeMillis();
            if (now - lastWarnAt >= WARN_EVERY_MILLIS) {
                log.warn("refused {} enforcement report(s) since the last warning; this one {} for host {} at {}-{}@{}: {}",
                        refusedSinceWarn, r.getStatus(), printable(r.getHostId()), record.topic(), record.partition(), record.offset(),
                        e.getMessage());
                lastWarnAt = now;
                refusedSinceWarn = 0;
            }
            return false;
        }
    }

    /** A host id from a report nobody vouches for, safe to log: no line breaks or control characters, at most 64 characters. */
    static String printable(CharSequence hostId) {
        String s = String.valueOf(hostId);
        s = s.length() > 64 ? s.substring(0, 64) + "..." : s;
        return s.replaceAll("[^A-Za-z0-9._:@-]", "?");
    }

    /** The report's refused network versions as JSON ({@code [{"networkId":..,"version":..,"reason":..}]}), in the report's order. */
    static String refusedJson(List<RefusedFragment> refused) {
        List<Map<String, Object>> out = new ArrayList<>(refused.size());
        for (RefusedFragment f : refused) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("networkId", f.getNetworkId());
            m.put("version", f.getVersion());
            m.put("reason", f.getReason());
            out.add(m);
        }
        return JSON.writeValueAsString(out);
    }

    /** The report's unenforced VMs as JSON, in the report's order. */
    static String unenforcedJson(List<UnenforcedVm> unenforced) {
        List<Map<String, String>> out = new ArrayList<>(unenforced.size());
        for (UnenforcedVm u : unenforced) {
            Map<String, String> m = new LinkedHashMap<>();
            m.put("networkId", u.getNetworkId());
            m.put("vmId", u.getVmId());
            m.put("reason", u.getReason());
            out.add(m);
        }
        return JSON.writeValueAsString(out);
    }
}
