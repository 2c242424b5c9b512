package io.egressctl.cli.audit;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Parsed {@code --name value}, {@code --name=value} and value-less {@code --flag} options. Which options
 * take no value is given up front, so a value that starts with a dash (a relative time like {@code -1h})
 * is read as a value. Options may repeat ({@link #all}); {@link #get} returns the last one.
 */
public final class Options {

    private final Map<String, List<String>> values = new LinkedHashMap<>();
    private final List<String> positionals = new ArrayList<>();

    private Options() {
    }

    /**
     * @param flags option names (without the leading dashes) that take no value
     * @throws UsageException for an option that needs a value and has none
     */
    public static Options parse(String[] args, Set<String> flags) {
        Options o = new Options();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.startsWith("--") && a.length() > 2) {
                String name = a.substring(2);
                String value;
                int eq = name.indexOf('=');
                if (eq >= 0) {
                    value = name.substring(eq + 1);
                    name = name.substring(0, eq);
                } else if (flags.contains(name)) {
                    value = "true";
                } else if (i + 1 < args.length) {
                    value = args[++i];
                } else {
                    throw new UsageException("option --" + name + " needs a value");
                }
                o.values.computeIfAbsent(name, k -> new ArrayList<>()).add(value);
            } else {
                o.positionals.add(a);
            }
        }
        return o;
    }

    public boolean has(String name) {
        return values.containsKey(name);
    }

    /** The last value of {@code name}, or null. */
    public String get(String name) {
        List<String> v = values.get(name);
        return v == null ? null : v.get(v.size() - 1);
    }

    public String get(String name, String defaultValue) {
        String v = get(name);
        return v == null ? defaultValue : v;
    }

    /** @throws UsageException when the option is missing or blank */
    public String require(String name) {
        String v = get(name);
        if (v == null || v.isBlank()) {
            throw new UsageException("--" + name + " is required");
        }
        return v;
    }

    /** Every value of a repeatable option, in order. */
    public List<String> all(String name) {
        return values.getOrDefault(name, List.of());
    }

    public List<String> positionals() {
        return positionals;
    }

    /** @throws UsageException naming the first option not in {@code allowed} or any positional argument */
    public void check(Set<String> allowed) {
        for (String name : values.keySet()) {
            if (!allowed.contains(name)) {
                throw new UsageException("unknown option --" + name);
            }
        }
        if (!positionals.isEmpty()) {
            throw new UsageException("unexpected argument '" + positionals.get(0) + "'");
        }
    }

    /** A positive int option, or the default. */
    public int intValue(String name, int defaultValue) {
        String v = get(name);
        if (v == null) {
            return defaultValue;
        }
        try {
            int n = Integer.parseInt(v.trim().replace("_", ""));
            if (n <= 0) {
                throw new NumberFormatException();
            }
            return n;
        } catch (NumberFormatException e) {
            throw new UsageException("--" + name + " must be a positive integer, was '" + v + "'");
        }
    }
}
