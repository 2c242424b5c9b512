package io.egressctl.rules.auth;

import io.egressctl.rules.config.EgressProperties;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.stereotype.Component;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Resolves API keys to callers. Keys come from configuration ({@code egress.api-keys}, comma-separated
 * {@code secret=tenantId:tenant|operator:actor} entries) and are kept only as SHA-256 digests
 * ({@link KeyDigest}); a presented key's digest is compared in constant time with every configured
 * digest, so a key can be guessed neither by timing nor from the heap. A key listed twice stops the
 * service at start: two entries for one key would leave which caller it is to the order of the list.
 */
@Component
public class ApiKeys {

    private record Entry(KeyDigest digest, Caller caller) {
    }

    private final List<Entry> entries = new ArrayList<>();

    @Autowired
    ApiKeys(EgressProperties props) {
        this(props.apiKeys());
    }

    /** Keys from a specification as in {@code egress.api-keys}. */
    public ApiKeys(String spec) {
        String[] list = (spec == null ? "" : spec).split(",");
        for (int i = 0; i < list.length; i++) {
            String e = list[i].trim();
            if (e.isEmpty()) {
                continue;
            }
            int eq = e.indexOf('=');
            String[] parts = eq < 0 ? new String[0] : e.substring(eq + 1).split(":");
            if (eq <= 0 || parts.length != 3 || parts[0].isEmpty() || parts[2].isEmpty()
                    || !(parts[1].equals("tenant") || parts[1].equals("operator"))) {
                throw new IllegalArgumentException("egress.api-keys entry " + (i + 1)
                        + " is malformed: entries are secret=tenantId:tenant|operator:actor");
            }
            KeyDigest digest = KeyDigest.of(e.substring(0, eq));
            for (int j = 0; j < entries.size(); j++) {
                if (entries.get(j).digest().matches(digest)) {
                    // The key is not printed: the message goes to logs.
                    throw new IllegalArgumentException("egress.api-keys lists one key twice (entry " + (i + 1) + " repeats the key of "
                            + entries.get(j).caller().actor() + "@" + entries.get(j).caller().tenantId()
                            + "): each key must authenticate exactly one caller");
                }
            }
            entries.add(new Entry(digest, new Caller(parts[2], parts[0], parts[1].equals("operator"))));
        }
    }

    /** The caller owning {@code key}, if any. Compares with every configured key, in constant time each. */
    public Optional<Caller> resolve(String key) {
        if (key == null) {
            return Optional.empty();
        }
        KeyDigest given = KeyDigest.of(key);
        Caller found = null;
        for (Entry e : entries) {
            if (e.digest().matches(given)) {
                found = e.caller();
            }
        }
        return Optional.ofNullable(found);
    }
}
