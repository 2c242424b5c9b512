package io.egressctl.rules.auth;

import io.egressctl.rules.config.EgressProperties;
import org.springframework.stereotype.Component;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * Resolves API keys to callers. Keys come from configuration ({@code egress.api-keys}); comparison
 * is constant-time so a key cannot be guessed by timing.
 */
@Component
public class ApiKeys {

    private final Map<String, Caller> callers = new HashMap<>();

    ApiKeys(EgressProperties props) {
        String spec = props.apiKeys() == null ? "" : props.apiKeys();
        for (String entry : spec.split(",")) {
            String e = entry.trim();
            if (e.isEmpty()) {
                continue;
            }
            int eq = e.indexOf('=');
            String[] parts = eq < 0 ? new String[0] : e.substring(eq + 1).split(":");
            if (eq <= 0 || parts.length != 3 || !(parts[1].equals("tenant") || parts[1].equals("operator"))) {
                throw new IllegalArgumentException("egress.api-keys entries are secret=tenantId:tenant|operator:actor");
            }
            callers.put(e.substring(0, eq), new Caller(parts[2], parts[0], parts[1].equals("operator")));
        }
    }

    /** The caller owning {@code key}, if any. */
    public Optional<Caller> resolve(String key) {
        if (key == null) {
            return Optional.empty();
        }
        byte[] given = key.getBytes(StandardCharsets.UTF_8);
        Caller found = null;
        for (Map.Entry<String, Caller> e : callers.entrySet()) {
            if (MessageDigest.isEqual(given, e.getKey().getBytes(StandardCharsets.UTF_8))) {
                found = e.getValue();
            }
        }
        return Optional.ofNullable(found);
    }
}
