package io.egressctl.cli.audit.verify;

import io.egressctl.cli.audit.Signatures;
import io.egressctl.events.AppliedFragment;
import io.egressctl.events.EnforcementReport;
import io.egressctl.events.EnforcementStatus;
import io.egressctl.events.EnforcementTrigger;
import io.egressctl.schemas.integrity.ReportMac;
import io.egressctl.schemas.integrity.UpdateKeys;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.Base64;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** The signature marks of {@code audit enforcement} and what counts for the host's held state. */
class EnforcementCommandTest {

    static final ReportMac KEYS = new ReportMac(UpdateKeys.parse("k1:" + Base64.getEncoder().encodeToString(new byte[32]), null));

    static EnforcementReport ack(long version, String hash, int second) {
        return EnforcementReport.newBuilder().setHostId("h1").setStatus(EnforcementStatus.ACK).setTrigger(EnforcementTrigger.UPDATE)
                .setFragments(List.of(new AppliedFragment("net-a", version))).setAppliedHash(hash).setChangeIds(List.of())
                .setError(null).setApplyMicros(1).setEnforcer("nftables").setDriftRepairs(0)
                .setReportedAt(Instant.parse("2026-01-01T00:00:00Z").plusSeconds(second)).build();
    }

    static final UpdateKeys UPDATE_KEYS = UpdateKeys.parse("k1:" + Base64.getEncoder().encodeToString(new byte[32]), null);

    @Test
    void eachReportAndHostUpdateIsMarkedAsTheServicesWouldTakeIt() {
        Signatures s = new Signatures(UPDATE_KEYS);
        assertThat(s.mark(KEYS.sign(ack(1, "a", 0)))).isEqualTo("yes");
        assertThat(s.mark(ack(1, "a", 0))).isEqualTo("no");
        EnforcementReport altered = KEYS.sign(ack(1, "a", 0));
        altered.setAppliedHash("b");
        assertThat(s.mark(altered)).isEqualTo("FORGED");
        assertThat(new Signatures(UpdateKeys.NONE).mark(ack(1, "a", 0))).as("no keys: not checked").isEqualTo("-");

        io.egressctl.schemas.integrity.UpdateMac compiler = new io.egressctl.schemas.integrity.UpdateMac(UPDATE_KEYS);
        io.egressctl.events.HostUpdate update = io.egressctl.events.HostUpdate.newBuilder().setHostId("h1").setNetworkId("net-a")
                .setVersion(3).setTombstone(true).setFragment(null).setFragmentHash("").setChangeIds(List.of())
                .setCompiledAt(Instant.parse("2026-01-01T00:00:00Z")).build();
        assertThat(s.mark(update)).isEqualTo("no");
        assertThat(s.mark(compiler.sign(update))).isEqualTo("yes");
        update.setVersion(4);
        assertThat(s.mark(update)).as("changed after signing").isEqualTo("FORGED");
        assertThat(s.mark("a network event")).isNull();
    }

    @Test
    void aForgedOrUnsignedLastReportDoesNotChangeWhatTheHostHeld() {
        EnforcementReport signed = KEYS.sign(ack(3, "real", 0));
        EnforcementReport forged = ack(9, "forged", 1);
        List<EnforcementCommand.Report> reports = List.of(new EnforcementCommand.Report(0, 0, 0, signed, "yes"),
                new EnforcementCommand.Report(1, 0, 1, forged, "no"));
        assertThat(EnforcementCommand.summary(reports)).contains("holds net-a=3").contains("applied hash real").doesNotContain("forged");
        assertThat(EnforcementCommand.table("h1", null, reports, 0)).contains("2 reports; 1 not signed with the update keys: listed, not counted");
        assertThat(EnforcementCommand.summary(List.of(new EnforcementCommand.Report(1, 0, 1, forged, "FORGED")))).isEqualTo("no signed report");
    }
}
