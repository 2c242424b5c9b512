package io.egressctl.core.validation;

/**
 * Network ids are scoped by tenant: two tenants may each have a network named {@code web}. What a
 * tenant names its network (the id it gives to {@code POST /networks} and sees in every answer) is
 * its <em>name</em>; what the log, Redis, host fragments and operators know the network by is its
 * <em>log id</em>, fixed when the network is created and recorded in its {@code NETWORK_CREATED}
 * event (so every replay decides the same):
 * <ul>
 *   <li>the name itself, when the tenant holds the name's claim (the first tenant to create a network
 *       under that name, and every network created before ids were scoped); such a name has no
 *       {@code :};</li>
 *   <li>{@code <tenantId>:<name>} otherwise (another tenant holds the name, or the name contains a
 *       {@code :}): {@link #scoped}.</li>
 * </ul>
 * Tenant ids of API keys cannot contain {@code :}, so a scoped log id is never another tenant's scoped
 * id, and a bare log id made by the API never contains {@code :}, so it is never a scoped one. A
 * tenant's name is its log id without its own {@code <tenantId>:} prefix ({@link #nameFor}), and a
 * name resolves to the tenant's bare log id or else its scoped one: the two are inverse.
 */
public final class NetworkIds {

    /** Separates the tenant from the name in a scoped log id. */
    public static final char SCOPE = ':';

    /** Longest log id: a tenant id, the separator and a name, each id at most 64 characters. */
    public static final int MAX_LOG_ID = 64 + 1 + 64;

    private NetworkIds() {
    }

    /** The scoped log id of {@code tenantId}'s network {@code name}. */
    public static String scoped(String tenantId, String name) {
        return tenantId + SCOPE + name;
    }

    /** True when {@code name} may be a bare log id made by the API (it could not be taken for a scoped one). */
    public static boolean mayBeBare(String name) {
        return name.indexOf(SCOPE) < 0;
    }

    /** The name {@code tenantId} knows its network of log id {@code logId} by. */
    public static String nameFor(String tenantId, String logId) {
        String prefix = tenantId + SCOPE;
        return logId.startsWith(prefix) && logId.length() > prefix.length() ? logId.substring(prefix.length()) : logId;
    }

    /** A valid log id: the characters of an id ({@link Identifiers}), at most {@link #MAX_LOG_ID} long. */
    public static boolean isValidLogId(String id) {
        if (id == null || id.length() <= 64) {
            return Identifiers.isValid(id);
        }
        // Longer than an id: its first 64 characters are one, and the rest use the same characters.
        return id.length() <= MAX_LOG_ID && Identifiers.isValid(id.substring(0, 64))
                && id.substring(64).chars().allMatch(c -> Identifiers.isValid("x" + (char) c));
    }

    /**
     * @throws ValidationException naming {@code field} when {@code id} is not a valid log id
     */
    public static String requireLogId(String field, String id) {
        if (id == null || id.isEmpty()) {
            throw new ValidationException(field, "is required");
        }
        if (!isValidLogId(id)) {
            throw new ValidationException(field, "'" + Identifiers.abbreviate(id) + "' is not a valid network id (letters, digits, . _ : -; at most "
                    + MAX_LOG_ID + ")");
        }
        return id;
    }
}
