package io.egressctl.schemas.integrity;

import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.events.HostUpdate;

import javax.crypto.Mac;
import java.nio.charset.StandardCharsets;

/**
 * Authenticates host updates: the compiler {@link #sign signs} each one it writes (to
 * egress.host-updates and to the Redis snapshot alike, since both carry the same record), and an agent
 * {@link #verify verifies} every update before it takes it into its state, so that a record written by
 * anything that can reach Kafka or Redis but does not hold a key is refused, not applied.
 *
 * <p>The MAC is HMAC-SHA256 over the update's canonical fields, one per line: a domain tag, host id,
 * network id, version, tombstone, fragment hash, change ids (joined by commas), compiledAt in epoch
 * milliseconds. The fragment itself is covered through its hash: {@link #verify} checks that the
 * fragment it carries hashes to the signed value. A delta update ({@code delta} set, no fragment) is
 * signed over the same fields: its delta is covered through the hash of the fragment it gives when
 * applied to its base, which the reader checks. Written as {@code hmac-sha256:<keyId>:<base64url>}.
 * Deterministic: the same update signed with the same key gives the same bytes (replays compare them).
 */
public final class UpdateMac {

    private static final byte[] DOMAIN = "egressctl host-update v1\n".getBytes(StandardCharsets.UTF_8);

    private final UpdateKeys keys;

    public UpdateMac(UpdateKeys keys) {
        this.keys = keys;
    }

    public UpdateKeys keys() {
        return keys;
    }

    /** True when updates are signed and checked (keys are configured). */
    public boolean enabled() {
        return keys.enabled();
    }

    /** {@code update} with its MAC set by the signing key; unchanged when there are no keys. */
    public HostUpdate sign(HostUpdate update) {
        if (!keys.enabled()) {
            return update;
        }
        update.setMac(MacText.sign(keys, secret -> mac(secret, update)));
        return update;
    }

    /** Why an update is refused. */
    public static final class RefusedUpdateException extends Exception {
        public RefusedUpdateException(String message) {
            super(message);
        }
    }

    /**
     * Checks {@code update} (and {@code decoded}, its mapping to core values: the fragment whose hash
     * must be the signed one). Without keys every update passes.
     *
     * @throws RefusedUpdateException with the reason: no MAC, an unknown key id, a MAC that does not
     *                                match, or a fragment that does not hash to the signed value
     */
    public void verify(HostUpdate update, FragmentUpdate decoded) throws RefusedUpdateException {
        if (!keys.enabled()) {
            return;
        }
        verifySignature(update);
        String expected = decoded.fragment() == null ? "" : decoded.fragment().hash();
        if (!decoded.isTombstone() && !expected.equals(update.getFragmentHash())) {
            throw new RefusedUpdateException("the fragment does not hash to the signed fragmentHash: changed after signing");
        }
    }

    /**
     * Checks the MAC over {@code update}'s signed fields alone, not yet its fragment: what a reader
     * can check of a delta before it applies it to its base (the whole fragment's hash is checked
     * after). Without keys every update passes.
     *
     * @throws RefusedUpdateException with the reason: no MAC, an unknown key id, or a MAC that does not match
     */
    public void verifySignature(HostUpdate update) throws RefusedUpdateException {
        if (!keys.enabled()) {
            return;
        }
        String refusal = MacText.refusal(update.getMac(), keys, secret -> mac(secret, update), "this agent",
                "not signed (agents hold update keys: only the compiler's signed updates are applied)",
                "written by something other than the compiler, or changed");
        if (refusal != null) {
            throw new RefusedUpdateException(refusal);
        }
    }

    static byte[] mac(byte[] secret, HostUpdate u) {
        Mac m = MacText.hmac(secret);
        m.update(DOMAIN);
        line(m, String.valueOf(u.getHostId()));
        line(m, String.valueOf(u.getNetworkId()));
        line(m, Long.toString(u.getVersion()));
        line(m, Boolean.toString(u.getTombstone()));
        line(m, String.valueOf(u.getFragmentHash()));
        StringBuilder ids = new StringBuilder();
        for (CharSequence c : u.getChangeIds()) {
            ids.append(ids.isEmpty() ? "" : ",").append(c);
        }
        line(m, ids.toString());
        line(m, Long.toString(u.getCompiledAt().toEpochMilli()));
        return m.doFinal();
    }

    private static void line(Mac m, String field) {
        m.update(field.getBytes(StandardCharsets.UTF_8));
        m.update((byte) '\n');
    }
}
