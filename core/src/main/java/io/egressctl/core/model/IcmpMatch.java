package io.egressctl.core.model;

/**
 * ICMP type and code of a rule; -1 means any (CloudStack convention). A code needs a type.
 */
public record IcmpMatch(int type, int code) {

    /** Matches every ICMP message. */
    public static final IcmpMatch ANY = new IcmpMatch(-1, -1);

    public IcmpMatch {
        if (type < -1 || type > 255) {
            throw new IllegalArgumentException("icmp type " + type + " is outside -1..255");
        }
        if (code < -1 || code > 255) {
            throw new IllegalArgumentException("icmp code " + code + " is outside -1..255");
        }
        if (type == -1 && code != -1) {
            throw new IllegalArgumentException("icmp code " + code + " needs an icmp type");
        }
    }

    public boolean anyType() {
        return type == -1;
    }

    public boolean anyCode() {
        return code == -1;
    }
}
