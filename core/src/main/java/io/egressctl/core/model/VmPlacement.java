package io.egressctl.core.model;

import java.util.Objects;

/**
 * Where a VM of a network runs, the interface it is plugged into on that host, and its addresses.
 * {@code ipv4} or {@code ipv6} may be null, not both. {@code interfaceName} is the VM's identity on
 * the host (its tap/vnet/veth); null only for a placement written before interfaces were part of
 * the contract, which no host can enforce (see docs/architecture.md). {@code mac} is optional.
 */
public record VmPlacement(String vmId, String networkId, String hostId, String interfaceName, String mac, String ipv4, String ipv6) {

    public VmPlacement {
        Objects.requireNonNull(vmId, "vmId");
        Objects.requireNonNull(networkId, "networkId");
        Objects.requireNonNull(hostId, "hostId");
    }

    /** A placement without an interface (as written before interfaces were in the contract). */
    public VmPlacement(String vmId, String networkId, String hostId, String ipv4, String ipv6) {
        this(vmId, networkId, hostId, null, null, ipv4, ipv6);
    }
}
