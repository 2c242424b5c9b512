package io.egressctl.rules.cloudstack;

import io.egressctl.rules.auth.Caller;
import io.egressctl.rules.auth.KeyDigest;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.stereotype.Component;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * CloudStack key pairs from {@code egress.cloudstack-keys}: comma-separated
 * {@code apiKey:secretKey=tenantId:role:actor} entries, role {@code tenant} or {@code operator}. The
 * API key may not contain {@code :}; the secret may contain anything but {@code ,}.
 *
 * <p>API keys are kept as SHA-256 digests ({@link KeyDigest}) and a presented key is compared with
 * every configured one in constant time. The secret key is kept as given: verifying CloudStack's
 * HMAC-SHA1 signature needs the secret itself (a digest of it would not do). An API key listed twice
 * stops the service at start.
 */
@Component
public class CloudStackKeys {

    /** One key pair and the caller it authenticates. */
    public record KeyPair(KeyDigest apiKey, String secretKey, Caller caller) {

        @Override
        public String toString() {
            return "KeyPair[caller=" + caller + "]";
        }
    }

    private final List<KeyPair> pairs = new ArrayList<>();

    public CloudStackKeys(@Value("${egress.cloudstack-keys:}") String spec) {
        String[] list = (spec == null ? "" : spec).split(",");
        for (int i = 0; i < list.length; i++) {
            String e = list[i].trim();
            if (e.isEmpty()) {
                continue;
            }
            int eq = e.lastIndexOf('=');
            int colon = e.indexOf(':');
            String[] who = eq < 0 ? new String[0] : e.substring(eq + 1).split(":");
            if (eq < 0 || colon <= 0 || colon >= eq - 1 || who.length != 3 || who[0].isEmpty() || who[2].isEmpty()
                    || !(who[1].equals("tenant") || who[1].equals("operator"))) {
                throw new IllegalArgumentException("egress.cloudstack-keys entries are apiKey:secretKey=tenantId:tenant|operator:actor");
            }
            KeyDigest apiKey = KeyDigest.of(e.substring(0, colon));
            String secret = e.substring(colon + 1, eq);
            for (KeyPair seen : pairs) {
                if (seen.apiKey().matches(apiKey)) {
                    throw new IllegalArgumentException("egress.cloudstack-keys lists one API key twice (entry " + (i + 1)
                            + " repeats the API key of " + seen.caller().actor() + "@" + seen.caller().tenantId()
                            + "): each API key must name exactly one key pair");
                }
            }
            pairs.add(new KeyPair(apiKey, secret, new Caller(who[2], who[0], who[1].equals("operator"))));
        }
    }

    /** The key pair of an API key, if configured. Compares with every configured key, in constant time each. */
    public Optional<KeyPair> find(String apiKey) {
        if (apiKey == null) {
            return Optional.empty();
        }
        KeyDigest given = KeyDigest.of(apiKey);
        KeyPair found = null;
        for (KeyPair p : pairs) {
            if (p.apiKey().matches(given)) {
                found = p;
            }
        }
        return Optional.ofNullable(found);
    }

    public boolean isEmpty() {
        return pairs.isEmpty();
    }
}
