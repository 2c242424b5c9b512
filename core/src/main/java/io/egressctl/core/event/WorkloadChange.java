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
 * @param networkTenantId the tenant that owns {@code networkId}, as the producer knows it: the event is
 *                       decided only against a network of that tenant ({@code TENANT_MISMATCH} otherwise).
 *                       Null in events written before placements were bound to tenants: such an event
 *                       is decided as it always was, against whoever owns the network
 */
public record WorkloadChange(String eventId, Operation operation, String networkId, String vmId, String hostId,
                             String previousHostId, String interfaceName, String mac, String ipv4, String ipv6, Audit audit,
                             String networkTenantId) {

    /** A change not bound to a tenant (events older than tenant binding). */
    public WorkloadChange(String eventId, Operation operation, String networkId, String vmId, String hostId,
                          String previousHostId, String interfaceName, String mac, String ipv4, String ipv6, Audit audit) {
        this(eventId, operation, networkId, vmId, hostId, previousHostId, interfaceName, mac, ipv4, ipv6, audit, null);
    }

    /** This change, bound to the tenant that owns its network. */
    public WorkloadChange boundTo(String tenantId) {
        return new WorkloadChange(eventId, operation, networkId, vmId, hostId, previousHostId, interfaceName, mac, ipv4, ipv6, audit,
                tenantId);
    }

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
