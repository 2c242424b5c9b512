package io.egressctl.cli.audit;

import io.egressctl.events.EnforcementReport;
import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.integrity.ReportMac;
import io.egressctl.schemas.integrity.UpdateKeys;
import io.egressctl.schemas.integrity.UpdateMac;

/**
 * How the records an audit reads check out against the stack's update keys, as the services check
 * them: an agent's enforcement report ({@link ReportMac}, as the compiler does) and the compiler's host
 * update ({@link UpdateMac#verifySignature}, as an agent does before it applies it).
 * Each is marked {@code yes} (signed with a key held), {@code no} (no MAC), {@code FORGED} (a MAC that
 * does not verify: another key, or the record changed), or {@code -} when there are no keys to check with.
 */
public final class Signatures {

    private final ReportMac reports;
    private final UpdateMac updates;

    public Signatures(UpdateKeys keys) {
        this.reports = new ReportMac(keys);
        this.updates = new UpdateMac(keys);
    }

    /** Whether there are keys to check with. */
    public boolean enabled() {
        return reports.enabled();
    }

    /** The mark of {@code record}, or null for a record that carries no signature (network events). */
    public String mark(Object record) {
        if (record instanceof EnforcementReport r) {
            return mark(r.getMac(), () -> reports.verify(r));
        }
        if (record instanceof HostUpdate u) {
            return mark(u.getMac(), () -> updates.verifySignature(u));
        }
        return null;
    }

    /** Whether a record so marked counts as the services would take it (signed, or nothing to check with). */
    public static boolean counts(String mark) {
        return "yes".equals(mark) || "-".equals(mark);
    }

    private interface Check {
        void run() throws Exception;
    }

    private String mark(String mac, Check check) {
        if (!enabled()) {
            return "-";
        }
        if (mac == null || mac.isEmpty()) {
            return "no";
        }
        try {
            check.run();
            return "yes";
        } catch (Exception e) {
            return "FORGED";
        }
    }
}
