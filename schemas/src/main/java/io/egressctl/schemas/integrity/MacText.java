package io.egressctl.schemas.integrity;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.function.Function;

/**
 * The text form of a MAC, {@code hmac-sha256:<keyId>:<base64url>}, and its check against the keys
 * held: shared by host updates ({@link UpdateMac}) and enforcement reports ({@link ReportMac}), which
 * differ only in the fields they cover and the domain tag in front of them.
 */
final class MacText {

    static final String ALGORITHM = "HmacSHA256";
    static final String PREFIX = "hmac-sha256:";

    private MacText() {
    }

    /** The MAC text {@code macOf} gives with {@code keys}' signing key, or null when there are no keys. */
    static String sign(UpdateKeys keys, Function<byte[], byte[]> macOf) {
        if (!keys.enabled()) {
            return null;
        }
        String id = keys.signingKeyId();
        return PREFIX + id + ":" + Base64.getUrlEncoder().withoutPadding().encodeToString(macOf.apply(keys.keys().get(id)));
    }

    /** An HMAC-SHA256 ready for {@code secret}. */
    static Mac hmac(byte[] secret) {
        try {
            Mac m = Mac.getInstance(ALGORITHM);
            m.init(new SecretKeySpec(secret, ALGORITHM));
            return m;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is not available", e);
        }
    }

    /**
     * Why {@code text} is not a MAC that {@code keys} vouch for, or null when it is: {@code macOf}
     * computes the expected MAC with the secret the text names. {@code holder} names who holds the keys
     * (for the reason), {@code unsigned} is the reason given when there is no MAC at all and
     * {@code mismatch} what a MAC that does not match means.
     */
    static String refusal(String text, UpdateKeys keys, Function<byte[], byte[]> macOf, String holder, String unsigned,
                          String mismatch) {
        if (text == null || text.isEmpty()) {
            return unsigned;
        }
        if (!text.startsWith(PREFIX)) {
            return "unknown MAC scheme (expected " + PREFIX + "<keyId>:<mac>)";
        }
        int colon = text.indexOf(':', PREFIX.length());
        if (colon < 0) {
            return "malformed MAC (expected " + PREFIX + "<keyId>:<mac>)";
        }
        String id = text.substring(PREFIX.length(), colon);
        byte[] secret = keys.keys().get(id);
        if (secret == null) {
            return "signed with key " + printable(id) + ", which " + holder + " does not hold " + keys.keys().keySet();
        }
        byte[] given;
        try {
            given = Base64.getUrlDecoder().decode(text.substring(colon + 1));
        } catch (IllegalArgumentException e) {
            return "malformed MAC (not base64url)";
        }
        return MessageDigest.isEqual(given, macOf.apply(secret)) ? null : "MAC does not match (key " + id + "): " + mismatch;
    }

    private static String printable(String s) {
        return s.length() > 32 ? s.substring(0, 32) + "..." : s.replaceAll("[^A-Za-z0-9._-]", "?");
    }
}
