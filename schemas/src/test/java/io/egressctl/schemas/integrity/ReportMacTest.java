package io.egressctl.schemas.integrity;

import io.egressctl.events.AppliedFragment;
import io.egressctl.events.EnforcementReport;
import io.egressctl.events.EnforcementStatus;
import io.egressctl.events.EnforcementTrigger;
import io.egressctl.events.RefusedFragment;
import io.egressctl.events.UnenforcedVm;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.List;
import java.util.function.Consumer;

import static io.egressctl.schemas.integrity.UpdateMacTest.K1;
import static io.egressctl.schemas.integrity.UpdateMacTest.K2;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ReportMacTest {

    static final ReportMac AGENT = new ReportMac(UpdateKeys.parse("k1:" + K1, null));

    static EnforcementReport report() {
        return EnforcementReport.newBuilder().setHostId("host-1").setStatus(EnforcementStatus.ACK).setTrigger(EnforcementTrigger.UPDATE)
                .setFragments(List.of(new AppliedFragment("net-1", 7L), new AppliedFragment("net-2", 3L)))
                .setAppliedHash("sha256:abc").setChangeIds(List.of("c-1", "c-2")).setError(null).setApplyMicros(1234L)
                .setEnforcer("nftables").setDriftRepairs(0L).setReportedAt(Instant.parse("2026-01-01T00:00:00Z"))
                .setUnenforced(List.of(new UnenforcedVm("net-1", "vm-9", "no interface")))
                .setRefused(List.of(new RefusedFragment("net-3", 5L, "the kernel refused it")))
                .build();
    }

    static EnforcementReport signedThen(Consumer<EnforcementReport> change) {
        EnforcementReport r = AGENT.sign(report());
        change.accept(r);
        return r;
    }

    @Test
    void aSignedReportVerifiesAndTheMacIsDeterministic() throws Exception {
        EnforcementReport r = AGENT.sign(report());
        assertThat(r.getMac()).startsWith("hmac-sha256:k1:");
        AGENT.verify(r);
        assertThat(AGENT.sign(report()).getMac()).isEqualTo(r.getMac());
        // The MAC travels with the record: it verifies after a round trip through Avro's encoding.
        AGENT.verify(EnforcementReport.fromByteBuffer(r.toByteBuffer()));
    }

    @Test
    void unsignedForgedAndAlteredReportsAreRefusedWithTheReason() {
        assertThatThrownBy(() -> AGENT.verify(report())).hasMessageStartingWith("not signed");
        EnforcementReport forged = new ReportMac(UpdateKeys.parse("k1:" + K2, null)).sign(report());
        assertThatThrownBy(() -> AGENT.verify(forged)).hasMessageStartingWith("MAC does not match (key k1)");
        EnforcementReport otherKey = new ReportMac(UpdateKeys.parse("k9:" + K2, null)).sign(report());
        assertThatThrownBy(() -> AGENT.verify(otherKey)).hasMessageContaining("signed with key k9");
        // Each field a forger would change to make a change count as applied, or to hide a failure.
        List<Consumer<EnforcementReport>> alterations = List.of(
                r -> r.setHostId("host-2"),
                r -> r.setStatus(EnforcementStatus.NACK),
                r -> r.setTrigger(EnforcementTrigger.BOOTSTRAP),
                r -> r.setFragments(List.of(new AppliedFragment("net-1", 8L), new AppliedFragment("net-2", 3L))),
                r -> r.setFragments(List.of(new AppliedFragment("net-1", 7L))),
                r -> r.setAppliedHash("sha256:abd"),
                r -> r.setChangeIds(List.of("c-1", "c-2", "c-3")),
                r -> r.setError(""),
                r -> r.setApplyMicros(1L),
                r -> r.setEnforcer("dry-run"),
                r -> r.setDriftRepairs(1L),
                r -> r.setReportedAt(Instant.parse("2026-01-01T00:00:01Z")),
                r -> r.setUnenforced(List.of()),
                r -> r.setRefused(List.of()),
                r -> r.setMac(r.getMac().substring(0, r.getMac().length() - 2) + "AA"),
                r -> r.setMac("hmac-sha256:k1"),
                r -> r.setMac("sha1:k1:abc"),
                r -> r.setMac("hmac-sha256:k1:***"));
        for (int i = 0; i < alterations.size(); i++) {
            EnforcementReport altered = signedThen(alterations.get(i));
            assertThatThrownBy(() -> AGENT.verify(altered)).as("alteration %d", i).isInstanceOf(ReportMac.RefusedReportException.class);
        }
    }

    @Test
    void fieldsCannotBeShiftedIntoEachOtherBecauseEachIsLengthPrefixed() {
        // The same characters split differently between two strings: a separator-based MAC could confuse these.
        EnforcementReport a = AGENT.sign(report());
        EnforcementReport b = report();
        b.setUnenforced(List.of(new UnenforcedVm("net-1", "vm-9no", " interface")));
        assertThat(AGENT.sign(b).getMac()).isNotEqualTo(a.getMac());
        EnforcementReport c = report();
        c.setChangeIds(List.of("c-1c-2"));
        assertThat(AGENT.sign(c).getMac()).isNotEqualTo(a.getMac());
    }

    @Test
    void rotationTheCompilerHoldingOldAndNewKeysAcceptsBoth() throws Exception {
        ReportMac compiler = new ReportMac(UpdateKeys.parse("k2:" + K2 + ",k1:" + K1, null));
        compiler.verify(AGENT.sign(report()));
        compiler.verify(new ReportMac(UpdateKeys.parse("k2:" + K2, null)).sign(report()));
    }

    @Test
    void withoutKeysNothingIsSignedOrChecked() throws Exception {
        ReportMac none = new ReportMac(UpdateKeys.NONE);
        assertThat(none.sign(report()).getMac()).isNull();
        none.verify(report());
        none.verify(signedThen(r -> r.setAppliedHash("anything")));
    }
}
