package io.egressctl.core.validation;

/**
 * The one format for every identifier the system accepts (network, rule, VM, host, tenant ids):
 * letters, digits and {@code . _ : -}, 1 to 64 characters, starting with a letter or digit. Ids end
 * up in Kafka keys, Redis keys and nft comments, so nothing else may pass.
 */
public final class Identifiers {

    private Identifiers() {
    }

    public static boolean isValid(String id) {
        // [A-Za-z0-9][A-Za-z0-9._:-]{0,63}, checked with a loop: this runs for every id of every event.
        if (id == null || id.isEmpty() || id.length() > 64) {
            return false;
        }
        for (int i = 0; i < id.length(); i++) {
            char c = id.charAt(i);
            boolean alnum = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9';
            if (!alnum && (i == 0 || c != '.' && c != '_' && c != ':' && c != '-')) {
                return false;
            }
        }
        return true;
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
