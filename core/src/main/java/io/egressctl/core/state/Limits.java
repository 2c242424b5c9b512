package io.egressctl.core.state;

import java.util.function.Function;

/**
 * Limits the operator sets for the whole deployment, passed as a value to every place that decides
 * a network's state (the compiler's fold, the API's early checks, audit replay), so that all of them
 * decide the same. A tenant's {@code ruleQuota} can only be lower than {@link #rulesPerNetwork}.
 *
 * @param rulesPerNetwork   most rules one network may hold (a tenant's quota is at most this)
 * @param networksPerTenant most networks one tenant may have (checked by the API: a tenant's networks
 *                          are spread over partitions, so no single fold sees them all)
 * @param fragmentBytes     largest size a (host, network) fragment may have, as bounded by
 *                          {@link FragmentSize}; keeps every HostUpdate under the broker's record limit
 */
public record Limits(int rulesPerNetwork, int networksPerTenant, long fragmentBytes) {

    /** Default rules per network. */
    public static final int DEFAULT_RULES_PER_NETWORK = 10_000;
    /** Default networks per tenant. */
    public static final int DEFAULT_NETWORKS_PER_TENANT = 1_000;
    /**
     * Default fragment budget: 900 KiB, under Kafka's default record limit of 1 MiB
     * ({@code max.request.size} 1,048,576) with room for the record's key, headers and the other
     * fields of the HostUpdate.
     */
    public static final long DEFAULT_FRAGMENT_BYTES = 900L * 1024;

    public Limits {
        if (rulesPerNetwork < 1 || networksPerTenant < 1 || fragmentBytes < 1024) {
            throw new IllegalArgumentException("limits must be positive (fragment budget at least 1024 bytes): " + rulesPerNetwork
                    + ", " + networksPerTenant + ", " + fragmentBytes);
        }
    }

    /** The documented defaults. */
    public static Limits defaults() {
        return new Limits(DEFAULT_RULES_PER_NETWORK, DEFAULT_NETWORKS_PER_TENANT, DEFAULT_FRAGMENT_BYTES);
    }

    /**
     * Limits from settings looked up by name ({@code EGRESS_MAX_RULES_PER_NETWORK},
     * {@code EGRESS_MAX_NETWORKS_PER_TENANT}, {@code EGRESS_MAX_FRAGMENT_BYTES}); a missing or blank
     * one keeps its default. The same names configure the services and the CLI's replay.
     */
    public static Limits from(Function<String, String> settings) {
        return new Limits(
                (int) number(settings, "EGRESS_MAX_RULES_PER_NETWORK", DEFAULT_RULES_PER_NETWORK),
                (int) number(settings, "EGRESS_MAX_NETWORKS_PER_TENANT", DEFAULT_NETWORKS_PER_TENANT),
                number(settings, "EGRESS_MAX_FRAGMENT_BYTES", DEFAULT_FRAGMENT_BYTES));
    }

    private static long number(Function<String, String> settings, String name, long fallback) {
        String v = settings.apply(name);
        if (v == null || v.isBlank()) {
            return fallback;
        }
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + " must be a whole number, not '" + v + "'", e);
        }
    }

    /** The rule quota a network actually has: its own, never above the operator's limit. */
    public int effectiveQuota(int ruleQuota) {
        return Math.min(ruleQuota, rulesPerNetwork);
    }
}
