package io.egressctl.core.model;

import java.util.Objects;

/**
 * Where a VM of a network runs and its addresses. {@code ipv4} or {@code ipv6} may be null, not both.
 */
public record VmPlacement(String vmId, String networkId, String hostId, String ipv4, String ipv6) {

    public VmPlacement {
        Objects.requireNonNull(vmId, "vmId");
        Objects.requireNonNull(networkId, "networkId");
        Objects.requireNonNull(hostId, "hostId");
    }
}
