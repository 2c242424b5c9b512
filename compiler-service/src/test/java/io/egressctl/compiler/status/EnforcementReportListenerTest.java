package io.egressctl.compiler.status;

import io.egressctl.compiler.snapshot.SnapshotStore;
import io.egressctl.events.AppliedFragment;
import io.egressctl.events.EnforcementReport;
import io.egressctl.events.EnforcementStatus;
import io.egressctl.events.EnforcementTrigger;
import io.egressctl.events.UnenforcedVm;
import io.egressctl.schemas.integrity.ReportMac;
import io.egressctl.schemas.integrity.UpdateKeys;
import io.egressctl.schemas.registry.InMemorySchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.Topics;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The fold of enforcement reports into {@code egress:host:{H}:applied}, against an in-memory hash
 * with the store's semantics: an ACK replaces the host's versions, a NACK keeps them, and the VMs a
 * host does not enforce are recorded.
 */
class EnforcementReportListenerTest {

    private final InMemorySchemaRegistryClient registry = new InMemorySchemaRegistryClient();
    private final AvroSerializer<EnforcementReport> serializer = new AvroSerializer<>(registry);
    private final HashStore store = new HashStore();
    private final io.micrometer.core.instrument.simple.SimpleMeterRegistry meters = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
    private EnforcementReportListener listener = listener(io.egressctl.schemas.integrity.UpdateKeys.NONE, false);

    private EnforcementReportListener listener(io.egressctl.schemas.integrity.UpdateKeys keys, boolean acceptUnsigned) {
        return new EnforcementReportListener(store, registry, new io.egressctl.compiler.compile.PipelineHealth(meters),
                new ReportMac(keys), acceptUnsigned, meters);
    }
    private long offset;

    private void fold(EnforcementReport r) {
        listener.onReports(List.of(new ConsumerRecord<>(Topics.ENFORCEMENT_REPORTS, 0, offset++, r.getHostId(),
                serializer.serialize(Topics.ENFORCEMENT_REPORTS, r))));
    }

    private static EnforcementReport report(EnforcementStatus status, String hash, Map<String, Long> versions, UnenforcedVm... unenforced) {
        return EnforcementReport.newBuilder().setHostId("host-1").setStatus(status).setTrigger(EnforcementTrigger.UPDATE)
                .setFragments(versions.entrySet().stream()
                        .map(e -> AppliedFragment.newBuilder().setNetworkId(e.getKey()).setVersion(e.getValue()).build()).toList())
                .setAppliedHash(hash).setChangeIds(List.of()).setError(status == EnforcementStatus.NACK ? "nft said no" : null)
                .setApplyMicros(10).setEnforcer("nftables").setDriftRepairs(0).setReportedAt(Instant.parse("2024-05-01T12:00:00Z"))
                .setUnenforced(List.of(unenforced)).build();
    }

    private static UnenforcedVm unenforced(String network, String vm, String reason) {
        return UnenforcedVm.newBuilder().setNetworkId(network).setVmId(vm).setReason(reason).build();
    }

    @Test
    void anAckRecordsItsVersionsAndNoUnenforcedVms() {
        fold(report(EnforcementStatus.ACK, "h1", Map.of("net-a", 3L, "net-b", 1L)));

        Map<String, String> applied = store.applied.get("host-1");
        assertThat(applied).containsEntry("v:net-a", "3").containsEntry("v:net-b", "1").containsEntry("hash", "h1")
                .containsEntry("status", "ACK").containsEntry("unenforced", "[]");
    }

    @Test
    void aNetworkLeftOutOfAnAckStopsCountingAsApplied() {
        fold(report(EnforcementStatus.ACK, "h1", Map.of("net-a", 3L, "net-b", 1L)));

        // net-b's VM lost its interface (or shares it with another VM): the host does not enforce it.
        fold(report(EnforcementStatus.ACK, "h2", Map.of("net-a", 3L),
                unenforced("net-b", "vm-7", "no interface in its placement")));

        Map<String, String> applied = store.applied.get("host-1");
        assertThat(applied).containsEntry("v:net-a", "3").doesNotContainKey("v:net-b").containsEntry("hash", "h2");
        assertThat(applied.get("unenforced"))
                .isEqualTo("[{\"networkId\":\"net-b\",\"vmId\":\"vm-7\",\"reason\":\"no interface in its placement\"}]");
    }

    @Test
    void aNackKeepsTheVersionsOfTheLastAck() {
        fold(report(EnforcementStatus.ACK, "h1", Map.of("net-a", 3L)));

        fold(report(EnforcementStatus.NACK, "h1", Map.of()));

        Map<String, String> applied = store.applied.get("host-1");
        assertThat(applied).containsEntry("v:net-a", "3").containsEntry("status", "NACK").containsEntry("error", "nft said no");
    }


    // ---- authenticated reports --------------------------------------------------------------------

    static final UpdateKeys KEYS = UpdateKeys.parse("k1:" + java.util.Base64.getEncoder().encodeToString(
            "0123456789abcdef0123456789abcdef".getBytes(java.nio.charset.StandardCharsets.UTF_8)), null);
    static final ReportMac AGENT = new ReportMac(KEYS);

    @Test
    void withKeysOnlySignedReportsAreFolded_aForgedAckChangesNothingAndIsCounted() {
        listener = listener(KEYS, false);
        fold(AGENT.sign(report(EnforcementStatus.ACK, "h1", Map.of("net-a", 3L))));
        assertThat(store.applied.get("host-1")).containsEntry("v:net-a", "3").containsEntry("hash", "h1");

        // Anything that can write to Kafka claims the host applied version 9 (what a pending change waits for).
        fold(report(EnforcementStatus.ACK, "forged", Map.of("net-a", 9L)));
        EnforcementReport wrongKey = new ReportMac(UpdateKeys.parse("k1:" + java.util.Base64.getEncoder().encodeToString(
                "fedcba9876543210fedcba9876543210".getBytes(java.nio.charset.StandardCharsets.UTF_8)), null))
                .sign(report(EnforcementStatus.ACK, "forged", Map.of("net-a", 9L)));
        fold(wrongKey);
        EnforcementReport altered = AGENT.sign(report(EnforcementStatus.ACK, "h2", Map.of("net-a", 4L)));
        altered.setFragments(List.of(AppliedFragment.newBuilder().setNetworkId("net-a").setVersion(9L).build()));
        fold(altered);
        assertThat(store.applied.get("host-1")).as("nothing forged was folded").containsEntry("v:net-a", "3").containsEntry("hash", "h1");
        assertThat(meters.counter("egress.compiler.reports.refused", "reason", "unsigned").count()).isEqualTo(1.0);
        assertThat(meters.counter("egress.compiler.reports.refused", "reason", "mac").count()).isEqualTo(2.0);

        fold(AGENT.sign(report(EnforcementStatus.ACK, "h4", Map.of("net-a", 4L))));
        assertThat(store.applied.get("host-1")).as("the next genuine report is folded").containsEntry("v:net-a", "4");
    }

    @Test
    void acceptingUnsignedReportsDuringAnUpgradeStillRefusesABadSignature() {
        listener = listener(KEYS, true);
        fold(report(EnforcementStatus.ACK, "old-agent", Map.of("net-a", 3L)));
        assertThat(store.applied.get("host-1")).containsEntry("hash", "old-agent");
        EnforcementReport altered = AGENT.sign(report(EnforcementStatus.ACK, "h2", Map.of("net-a", 4L)));
        altered.setAppliedHash("forged");
        fold(altered);
        assertThat(store.applied.get("host-1")).containsEntry("hash", "old-agent");
        assertThat(meters.counter("egress.compiler.reports.refused", "reason", "mac").count()).isEqualTo(1.0);
    }

    @Test
    void aForgedReportsHostIdIsLoggedWithoutLineBreaks() {
        assertThat(EnforcementReportListener.printable("host-1\n2026-01-01 INFO all fine")).isEqualTo("host-1?2026-01-01?INFO?all?fine");
        assertThat(EnforcementReportListener.printable("h".repeat(100))).hasSize(67).endsWith("...");
    }

    @Test
    void withoutKeysEveryReportIsFoldedAsBefore() {
        fold(report(EnforcementStatus.ACK, "h1", Map.of("net-a", 3L)));
        fold(AGENT.sign(report(EnforcementStatus.ACK, "h2", Map.of("net-a", 4L))));
        assertThat(store.applied.get("host-1")).containsEntry("v:net-a", "4").containsEntry("hash", "h2");
    }

    /** The applied hashes as the Redis store keeps them. */
    static final class HashStore implements SnapshotStore {
        final Map<String, Map<String, String>> applied = new HashMap<>();

        @Override
        public BatchResult write(Batch batch) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void writeApplied(String hostId, Map<String, String> fields) {
            applied.computeIfAbsent(hostId, h -> new HashMap<>()).putAll(fields);
        }

        @Override
        public void replaceApplied(String hostId, Map<String, String> fields, String replacedPrefix) {
            Map<String, String> hash = applied.computeIfAbsent(hostId, h -> new HashMap<>());
            hash.keySet().removeIf(k -> k.startsWith(replacedPrefix) && !fields.containsKey(k));
            hash.putAll(fields);
        }

        @Override
        public Optional<String> readCheckpoint(int partition) {
            return Optional.empty();
        }

        @Override
        public void writeCheckpoint(int partition, String checkpoint, long epoch) {
        }

        @Override
        public long claim(int partition) {
            return 1;
        }
    }
}
