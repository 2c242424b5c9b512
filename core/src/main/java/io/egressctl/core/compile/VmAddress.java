package io.egressctl.core.compile;

/**
 * A VM as its host enforces it: the interface its traffic enters the host from (its identity there),
 * its MAC and its addresses ({@code ipv4} or {@code ipv6} may be null). {@code interfaceName} is null
 * only for a VM placed by an event older than interface identity: a host cannot tell its traffic
 * apart and reports it as not enforced.
 */
public record VmAddress(String vmId, String interfaceName, String mac, String ipv4, String ipv6) {

    /** A VM without a known interface (legacy placements, tests of address handling). */
    public VmAddress(String vmId, String ipv4, String ipv6) {
        this(vmId, null, null, ipv4, ipv6);
    }
}
