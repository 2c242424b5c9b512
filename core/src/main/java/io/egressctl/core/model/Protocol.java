package io.egressctl.core.model;

import java.util.Locale;

/**
 * IP protocol an egress rule matches. {@link #ALL} matches every protocol and carries no ports;
 * {@link #ICMPV6} is IPv6's ICMP and needs a network with an IPv6 prefix.
 */
public enum Protocol {
    TCP, UDP, ICMP, ICMPV6, ALL;

    /** True for protocols whose rules may carry a port range. */
    public boolean hasPorts() {
        return this == TCP || this == UDP;
    }

    /** True for ICMP and ICMPv6, whose rules may carry a type and code. */
    public boolean isIcmp() {
        return this == ICMP || this == ICMPV6;
    }

    /** Lower-case API name ({@code tcp}, {@code udp}, {@code icmp}, {@code all}). */
    public String apiName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * Parses an API name, case-insensitively.
     *
     * @throws IllegalArgumentException naming the accepted values when {@code text} is unknown
     */
    public static Protocol parse(String text) {
        if (text != null) {
            for (Protocol p : values()) {
                if (p.name().equalsIgnoreCase(text.trim())) {
                    return p;
                }
            }
        }
        throw new IllegalArgumentException("unknown protocol '" + text + "': use tcp, udp, icmp, icmpv6 or all");
    }
}
