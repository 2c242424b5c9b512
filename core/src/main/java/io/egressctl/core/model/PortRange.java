package io.egressctl.core.model;

/**
 * An inclusive tcp/udp port range; a single port has {@code start == end}. Validated on creation.
 */
public record PortRange(int start, int end) {

    public PortRange {
        if (start < 1 || start > 65535) {
            throw new IllegalArgumentException("start port " + start + " is outside 1..65535");
        }
        if (end < 1 || end > 65535) {
            throw new IllegalArgumentException("end port " + end + " is outside 1..65535");
        }
        if (start > end) {
            throw new IllegalArgumentException("start port " + start + " is greater than end port " + end);
        }
    }

    /** One port. */
    public static PortRange single(int port) {
        return new PortRange(port, port);
    }

    public boolean isSingle() {
        return start == end;
    }
}
