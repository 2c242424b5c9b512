package io.egressctl.rules.cloudstack;

import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * A command's parameters by lower-cased name, first value only (as CloudStack reads them). Typed
 * getters answer CloudStack's own errors for missing and malformed values.
 */
final class Params {

    private final String command;
    private final Map<String, String> values = new HashMap<>();

    Params(String command, Map<String, String[]> raw) {
        this.command = command;
        raw.forEach((name, v) -> {
            if (v != null && v.length > 0 && v[0] != null) {
                values.putIfAbsent(name.toLowerCase(Locale.ROOT), v[0]);
            }
        });
    }

    String command() {
        return command;
    }

    /** The trimmed value, or null when absent or blank. */
    String text(String name) {
        String v = values.get(name);
        if (v == null) {
            return null;
        }
        String t = v.trim();
        return t.isEmpty() ? null : t;
    }

    String required(String name) {
        String v = text(name);
        if (v == null) {
            throw CloudStackError.missing(command, name);
        }
        return v;
    }

    Integer integer(String name) {
        String v = text(name);
        if (v == null) {
            return null;
        }
        try {
            return Integer.valueOf(v);
        } catch (NumberFormatException e) {
            throw CloudStackError.invalidValue(command, name, v);
        }
    }

    Boolean bool(String name) {
        String v = text(name);
        if (v == null) {
            return null;
        }
        if (v.equalsIgnoreCase("true")) {
            return Boolean.TRUE;
        }
        if (v.equalsIgnoreCase("false")) {
            return Boolean.FALSE;
        }
        throw CloudStackError.invalidValue(command, name, v);
    }
}
