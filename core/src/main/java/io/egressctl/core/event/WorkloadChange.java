package io.egressctl.core.event;

/**
 * A VM placement change from upstream compute: the domain form of a WorkloadEvent.
 *
 * @param vmId           null for {@link Operation#HOST_DRAINED}
 * @param hostId         the VM's host after the change; for removals and drains, the host it leaves
 * @param previousHostId the host a moved VM leaves, else null
 * @param interfaceName  the VM's interface on {@code hostId} (tap/vnet/veth); null in events written
 *                       before interfaces were part of the contract
 * @param mac            the interface's MAC, optional
 */
public record WorkloadChange(String eventId, Operation operation, String networkId, String vmId, String hostId,
                             String previousHostId, String interfaceName, String mac, String ipv4, String ipv6, Audit audit) {

    /** A change without an interface (events older than interface identity). */
    public WorkloadChange(String eventId, Operation operation, String networkId, String vmId, String hostId,
                          String previousHostId, String ipv4, String ipv6, Audit audit) {
        this(eventId, operation, networkId, vmId, hostId, previousHostId, null, null, ipv4, ipv6, audit);
    }

    /** Stable operation codes, the same as the Avro WorkloadOperation symbols. */
    public enum Operation {
        VM_PLACED, VM_MOVED, VM_REMOVED, HOST_DRAINED
    }
}
