package io.egressctl.rules.auth;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * The SHA-256 digest of a configured key, as the service keeps it in memory: the key itself is not
 * kept after start, so a heap dump or a debugger shows no usable key. Every configured digest is
 * compared in constant time ({@link MessageDigest#isEqual}) with the presented key's digest, all of
 * them on every lookup, so neither the content nor the position of a key can be learned by timing.
 */
public record KeyDigest(byte[] sha256) {

    /** The digest of {@code key} (its UTF-8 bytes). */
    public static KeyDigest of(String key) {
        try {
            return new KeyDigest(MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }

    /** True when both digests are equal; takes the same time whatever the bytes. */
    public boolean matches(KeyDigest other) {
        return MessageDigest.isEqual(sha256, other.sha256);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof KeyDigest d && matches(d);
    }

    @Override
    public int hashCode() {
        return java.util.Arrays.hashCode(sha256);
    }

    @Override
    public String toString() {
        // Never the digest itself: it is as good as the key for a lookup in this process's maps.
        return "KeyDigest[sha256]";
    }
}
