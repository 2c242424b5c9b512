package io.egressctl.core.validation;

import java.util.regex.Pattern;

/**
 * The one format for every identifier the system accepts (network, rule, VM, host, tenant ids):
 * letters, digits and {@code . _ : -}, 1 to 64 characters, starting with a letter or digit. Ids end
 * up in Kafka keys, Redis keys and nft comments, so nothing else may pass.
 */
public final class Identifiers {

    private static final Pattern ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._:-]{0,63}");

    private Identifiers() {
    }

    public static boolean isValid(String id) {
        return id != null && ID.matcher(id).matches();
    }

    /**
     * @throws ValidationException naming {@code field} when {@code id} is not a valid identifier
     */
    public static String require(String field, String id) {
        if (id == null || id.isEmpty()) {
            throw new ValidationException(field, "is required");
        }
        if (!isValid(id)) {
            throw new ValidationException(field, "'" + abbreviate(id) + "' is not a valid id (letters, digits, . _ : -; at most 64)");
        }
        return id;
    }

    static String abbreviate(String s) {
        String clean = s.replaceAll("\\p{Cntrl}", "?");
        return clean.length() > 40 ? clean.substring(0, 40) + "..." : clean;
    }
}
