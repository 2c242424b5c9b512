package io.egressctl.schemas.registry;

/**
 * Tells a schema registry outage from a record that is poison by content. A record whose decoding
 * failed because the registry could not be asked (no answer, a timeout, an answer other than "not
 * found": 5xx, 429, an authentication error) is not poison: the same bytes decode once the registry
 * answers, so a consumer retries it and never dead-letters or skips it. Only the registry's own "this
 * schema id does not exist" (404), and bytes that do not decode while the registry answers, make a
 * record poison. One rule for every consumer of the product's topics.
 */
public final class RegistryOutage {

    private RegistryOutage() {
    }

    /** True when {@code e} (or a cause of it) is a registry failure other than an answered "not found". */
    public static boolean isOutage(Throwable e) {
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (c instanceof SchemaRegistryUnreachableException) {
                return true;
            }
            if (c instanceof SchemaRegistryException r) {
                return !r.isNotFound();
            }
            if (c.getCause() == c) {
                break;
            }
        }
        return false;
    }
}
