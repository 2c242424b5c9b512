package io.egressctl.schemas.integrity;

import io.egressctl.events.AppliedFragment;
import io.egressctl.events.EnforcementReport;
import io.egressctl.events.RefusedFragment;
import io.egressctl.events.UnenforcedVm;

import javax.crypto.Mac;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Authenticates enforcement reports: an agent holding update keys {@link #sign signs} each report it
 * writes to egress.enforcement-reports, and the compiler {@link #verify verifies} every report before
 * it takes it into the host's applied state, so that an ACK written by anything that can reach Kafka
 * but holds no key never makes a change count as applied. The keys are the update keys
 * ({@code EGRESS_UPDATE_KEYS}): the compiler and the agents hold them already, and rotation works the
 * same way (a report signed with any listed key is accepted).
 *
 * <p>The MAC is HMAC-SHA256 over a domain tag and every field of the report but the MAC itself, each
 * string length-prefixed (a reason or an error may hold any character, so no separator could be
 * trusted), in schema order: host id, status, trigger, fragments (count, then network id and version
 * of each), applied hash, change ids, error (absent marked apart from empty), apply micros, enforcer,
 * drift repairs, reportedAt in epoch milliseconds, unenforced VMs, refused networks. Written as
 * {@code hmac-sha256:<keyId>:<base64url>}.
 *
 * <p>What it does not stop: a genuine report captured and written again later. That can only make a
 * host look as it was (older versions, an older hash), never make a change count as applied that the
 * host did not report: a change counts once a report lists its network at its version or later.
 */
public final class ReportMac {

    private static final byte[] DOMAIN = "egressctl enforcement-report v1\n".getBytes(StandardCharsets.UTF_8);

    private final UpdateKeys keys;

    public ReportMac(UpdateKeys keys) {
        this.keys = keys;
    }

    /** True when reports are signed and checked (keys are configured). */
    public boolean enabled() {
        return keys.enabled();
    }

    /** {@code report} with its MAC set by the signing key; unchanged when there are no keys. */
    public EnforcementReport sign(EnforcementReport report) {
        if (!keys.enabled()) {
            return report;
        }
        report.setMac(MacText.sign(keys, secret -> mac(secret, report)));
        return report;
    }

    /** Why a report is refused. */
    public static final class RefusedReportException extends Exception {
        public RefusedReportException(String message) {
            super(message);
        }
    }

    /**
     * Checks {@code report}'s MAC. Without keys every report passes.
     *
     * @throws RefusedReportException with the reason: no MAC, an unknown key id, or a MAC that does not match
     */
    public void verify(EnforcementReport report) throws RefusedReportException {
        if (!keys.enabled()) {
            return;
        }
        String refusal = MacText.refusal(report.getMac(), keys, secret -> mac(secret, report), "this compiler",
                "not signed (the compiler holds update keys: only reports signed by an agent holding them count)",
                "written by something other than an agent holding the keys, or changed");
        if (refusal != null) {
            throw new RefusedReportException(refusal);
        }
    }

    static byte[] mac(byte[] secret, EnforcementReport r) {
        Mac m = MacText.hmac(secret);
        m.update(DOMAIN);
        text(m, r.getHostId());
        text(m, r.getStatus().name());
        text(m, r.getTrigger().name());
        number(m, r.getFragments().size());
        for (AppliedFragment f : r.getFragments()) {
            text(m, f.getNetworkId());
            number(m, f.getVersion());
        }
        text(m, r.getAppliedHash());
        number(m, r.getChangeIds().size());
        for (CharSequence id : r.getChangeIds()) {
            text(m, id);
        }
        text(m, r.getError());
        number(m, r.getApplyMicros());
        text(m, r.getEnforcer());
        number(m, r.getDriftRepairs());
        number(m, r.getReportedAt().toEpochMilli());
        number(m, r.getUnenforced().size());
        for (UnenforcedVm u : r.getUnenforced()) {
            text(m, u.getNetworkId());
            text(m, u.getVmId());
            text(m, u.getReason());
        }
        number(m, r.getRefused().size());
        for (RefusedFragment f : r.getRefused()) {
            text(m, f.getNetworkId());
            number(m, f.getVersion());
            text(m, f.getReason());
        }
        return m.doFinal();
    }

    /** A string as its UTF-8 length and bytes; null as length -1 (apart from the empty string). */
    private static void text(Mac m, CharSequence s) {
        if (s == null) {
            number(m, -1);
            return;
        }
        byte[] b = s.toString().getBytes(StandardCharsets.UTF_8);
        number(m, b.length);
        m.update(b);
    }

    private static void number(Mac m, long n) {
        m.update(ByteBuffer.allocate(Long.BYTES).putLong(n).array());
    }
}
