package io.egressctl.rules.cloudstack;

import io.egressctl.rules.auth.Caller;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.stereotype.Component;

import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * CloudStack key pairs from {@code egress.cloudstack-keys}: comma-separated
 * {@code apiKey:secretKey=tenantId:role:actor} entries, role {@code tenant} or {@code operator}. The
 * API key may not contain {@code :}; the secret may contain anything but {@code ,}.
 */
@Component
public class CloudStackKeys {

    /** One key pair and the caller it authenticates. */
    public record KeyPair(String apiKey, String secretKey, Caller caller) {

        @Override
        public String toString() {
            return "KeyPair[apiKey=" + apiKey + ", caller=" + caller + "]";
        }
    }

    private final Map<String, KeyPair> byApiKey = new HashMap<>();

    public CloudStackKeys(@Value("${egress.cloudstack-keys:}") String spec) {
        for (String entry : (spec == null ? "" : spec).split(",")) {
            String e = entry.trim();
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
            String apiKey = e.substring(0, colon);
            String secret = e.substring(colon + 1, eq);
            if (byApiKey.put(apiKey, new KeyPair(apiKey, secret, new Caller(who[2], who[0], who[1].equals("operator")))) != null) {
                throw new IllegalArgumentException("egress.cloudstack-keys lists API key " + apiKey + " twice");
            }
        }
    }

    /** The key pair of an API key, if configured. */
    public Optional<KeyPair> find(String apiKey) {
        return apiKey == null ? Optional.empty() : Optional.ofNullable(byApiKey.get(apiKey));
    }

    public boolean isEmpty() {
        return byApiKey.isEmpty();
    }
}
