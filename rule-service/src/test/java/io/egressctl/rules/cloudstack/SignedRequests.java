package io.egressctl.rules.cloudstack;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * Signs requests the way a CloudStack client does, written out here independently of
 * {@link Signatures} so the tests check the server against the algorithm rather than against itself.
 */
final class SignedRequests {

    static final DateTimeFormatter EXPIRES = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ssZ").withZone(ZoneOffset.UTC);

    private SignedRequests() {
    }

    /** {@code params} plus apiKey, response=json, signatureVersion=3, expires (when not null) and signature. */
    static Map<String, String[]> signed(String apiKey, String secret, Map<String, String> params, Instant expires) {
        Map<String, String> all = new LinkedHashMap<>(params);
        all.put("apiKey", apiKey);
        all.putIfAbsent("response", "json");
        if (expires != null) {
            all.put("signatureVersion", "3");
            all.put("expires", EXPIRES.format(expires));
        }
        all.put("signature", signature(all, secret));
        Map<String, String[]> out = new LinkedHashMap<>();
        all.forEach((k, v) -> out.put(k, new String[] {v}));
        return out;
    }

    /** Sort by name, name=URLEncoder(value) with %20 for spaces, join with &, lower-case, HMAC-SHA1, Base64. */
    static String signature(Map<String, String> params, String secret) {
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, String> e : new TreeMap<>(params).entrySet()) {
            if (e.getKey().equalsIgnoreCase("signature")) {
                continue;
            }
            sb.append(sb.length() == 0 ? "" : "&").append(e.getKey()).append('=')
                    .append(URLEncoder.encode(e.getValue(), StandardCharsets.UTF_8).replace("+", "%20"));
        }
        return hmac(sb.toString().toLowerCase(), secret);
    }

    static String hmac(String text, String secret) {
        try {
            Mac mac = Mac.getInstance("HmacSHA1");
            mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA1"));
            return Base64.getEncoder().encodeToString(mac.doFinal(text.getBytes(StandardCharsets.UTF_8)));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static Map<String, String[]> raw(Map<String, String> params) {
        Map<String, String[]> out = new LinkedHashMap<>();
        params.forEach((k, v) -> out.put(k, new String[] {v}));
        return out;
    }
}
