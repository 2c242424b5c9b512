package io.egressctl.rules.cloudstack;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * CloudStack's request signature, as {@code ApiServer.verifyRequest} computes it: every parameter
 * but {@code signature} (apiKey, signatureVersion and expires included), sorted by name
 * ({@code Collections.sort}, i.e. by the names as sent), each {@code name=URLEncoder.encode(first
 * value, UTF-8)} with {@code +} replaced by {@code %20}, joined with {@code &}, the whole string
 * lower-cased, HMAC-SHA1 with the secret key, Base64. Pure and thread-safe.
 */
public final class Signatures {

    private Signatures() {
    }

    /**
     * The string to sign.
     *
     * @param lowerCaseSort sort by the lower-cased names instead of the names as sent: what the
     *                      CloudStack developer guide describes ("lower case the entire command string and
     *                      sort it"); it differs from the server's own order only for names that differ in case
     */
    public static String canonical(Map<String, String[]> params, boolean lowerCaseSort) {
        List<String> names = new ArrayList<>();
        for (String name : params.keySet()) {
            if (!name.equalsIgnoreCase("signature")) {
                names.add(name);
            }
        }
        names.sort(lowerCaseSort ? Comparator.comparing((String n) -> n.toLowerCase(Locale.ROOT)).thenComparing(Comparator.naturalOrder())
                : Comparator.naturalOrder());
        StringBuilder sb = new StringBuilder();
        for (String name : names) {
            String[] values = params.get(name);
            String value = values == null || values.length == 0 || values[0] == null ? "" : values[0];
            if (sb.length() > 0) {
                sb.append('&');
            }
            sb.append(name).append('=').append(encode(value));
        }
        return sb.toString().toLowerCase(Locale.ROOT);
    }

    /** {@code URLEncoder.encode(value, UTF-8)} with {@code +} as {@code %20}, as CloudStack encodes. */
    public static String encode(String value) {
        return URLEncoder.encode(value, StandardCharsets.UTF_8).replace("+", "%20");
    }

    /** Base64(HMAC-SHA1(secret, canonical)). */
    public static String sign(String canonical, String secretKey) {
        try {
            Mac mac = Mac.getInstance("HmacSHA1");
            mac.init(new SecretKeySpec(secretKey.getBytes(StandardCharsets.UTF_8), "HmacSHA1"));
            return Base64.getEncoder().encodeToString(mac.doFinal(canonical.getBytes(StandardCharsets.UTF_8)));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA1 is not available", e);
        }
    }

    /** Signs {@code params} as a client would (the server's canonical order). */
    public static String sign(Map<String, String[]> params, String secretKey) {
        return sign(canonical(params, false), secretKey);
    }

    /**
     * True when {@code signature} signs {@code params} with {@code secretKey}, in the server's order or
     * the guide's. Constant-time comparison.
     */
    public static boolean matches(Map<String, String[]> params, String secretKey, String signature) {
        // A "+" sent unencoded in a query string arrives as a space.
        byte[] given = signature.replace(' ', '+').getBytes(StandardCharsets.UTF_8);
        String exact = canonical(params, false);
        boolean ok = MessageDigest.isEqual(given, sign(exact, secretKey).getBytes(StandardCharsets.UTF_8));
        String guide = canonical(params, true);
        if (!guide.equals(exact)) {
            ok |= MessageDigest.isEqual(given, sign(guide, secretKey).getBytes(StandardCharsets.UTF_8));
        }
        return ok;
    }
}
