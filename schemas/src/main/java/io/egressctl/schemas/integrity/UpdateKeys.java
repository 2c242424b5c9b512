package io.egressctl.schemas.integrity;

import java.util.Base64;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The keys that authenticate host updates, by key id: what the compiler signs with and what agents
 * accept. Given as {@code <keyId>:<base64 secret>} pairs separated by commas
 * ({@code EGRESS_UPDATE_KEYS}); the compiler signs with {@code signingKeyId} (by default the first
 * key), agents accept every key listed, which is how keys rotate (docs/operations.md, "Authenticated
 * host updates"). Secrets are at least 32 bytes.
 *
 * @param keys         secret by key id, in the order given
 * @param signingKeyId the key the compiler signs with; null when there are no keys
 */
public record UpdateKeys(Map<String, byte[]> keys, String signingKeyId) {

    /** Shortest secret accepted, in bytes (HMAC-SHA256's block of security). */
    public static final int MIN_SECRET_BYTES = 32;
    private static final Pattern KEY_ID = Pattern.compile("[A-Za-z0-9._-]{1,32}");

    /** No keys: updates are neither signed nor checked. */
    public static final UpdateKeys NONE = new UpdateKeys(Map.of(), null);

    public UpdateKeys {
        keys = Collections.unmodifiableMap(new LinkedHashMap<>(keys));
        if (signingKeyId != null && !keys.containsKey(signingKeyId)) {
            throw new IllegalArgumentException("the signing key id " + signingKeyId + " is not among the keys " + keys.keySet());
        }
    }

    /** True when there is at least one key. */
    public boolean enabled() {
        return !keys.isEmpty();
    }

    /**
     * The keys this process was given: {@code EGRESS_UPDATE_KEYS}, signing with
     * {@code EGRESS_UPDATE_SIGNING_KEY_ID} (default the first); {@link #NONE} when unset. For tools and
     * tests that write as an agent or the compiler would (the services read them through Spring).
     */
    public static UpdateKeys fromEnvironment() {
        return parse(System.getenv("EGRESS_UPDATE_KEYS"), System.getenv("EGRESS_UPDATE_SIGNING_KEY_ID"));
    }

    /**
     * Parses {@code <keyId>:<base64 secret>[,...]} (blank: {@link #NONE}); {@code signingKeyId} blank
     * means the first key.
     *
     * @throws IllegalArgumentException naming the entry that is not a key (never the secret)
     */
    public static UpdateKeys parse(String spec, String signingKeyId) {
        if (spec == null || spec.isBlank()) {
            if (signingKeyId != null && !signingKeyId.isBlank()) {
                throw new IllegalArgumentException("a signing key id is set (" + signingKeyId + ") but no keys are given");
            }
            return NONE;
        }
        Map<String, byte[]> keys = new LinkedHashMap<>();
        int n = 0;
        for (String entry : spec.split(",")) {
            n++;
            String e = entry.strip();
            int colon = e.indexOf(':');
            if (colon < 0) {
                throw new IllegalArgumentException("update key " + n + " is not <keyId>:<base64 secret>");
            }
            String id = e.substring(0, colon);
            if (!KEY_ID.matcher(id).matches()) {
                throw new IllegalArgumentException("update key " + n + ": key id must be 1-32 of [A-Za-z0-9._-]");
            }
            byte[] secret;
            try {
                secret = Base64.getDecoder().decode(e.substring(colon + 1));
            } catch (IllegalArgumentException ex) {
                throw new IllegalArgumentException("update key " + id + ": the secret is not base64");
            }
            if (secret.length < MIN_SECRET_BYTES) {
                throw new IllegalArgumentException("update key " + id + ": the secret has " + secret.length + " bytes, at least "
                        + MIN_SECRET_BYTES + " are needed");
            }
            if (keys.put(id, secret) != null) {
                throw new IllegalArgumentException("update key " + id + " is given twice");
            }
        }
        String signing = signingKeyId == null || signingKeyId.isBlank() ? keys.keySet().iterator().next() : signingKeyId.strip();
        return new UpdateKeys(keys, signing);
    }

    @Override
    public String toString() {
        return "UpdateKeys" + keys.keySet() + (signingKeyId == null ? "" : " signing with " + signingKeyId); // never the secrets
    }
}
