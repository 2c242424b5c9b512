package io.egressctl.core.render;

/**
 * How a hypervisor host plugs its VMs in, which decides where the agent's table can see the
 * interface a packet entered from.
 */
public enum HostMode {
    /**
     * Each VM's tap/veth is routed by the host: the inet family's prerouting hook sees the VM's own
     * interface as {@code iifname}, so the table's own prerouting chain marks the packet.
     */
    ROUTED,
    /**
     * A Linux bridge per guest network with each VM's tap as a bridge port (CloudStack KVM, Neutron
     * linuxbridge). br_netfilter hands bridged IP traffic to the inet hooks, but there {@code iifname}
     * is the bridge, not the port; so a bridge-family table marks the packet by its port first.
     */
    BRIDGED;

    /** Parses {@code routed} or {@code bridged} (any case). */
    public static HostMode parse(String text) {
        if (text != null) {
            for (HostMode m : values()) {
                if (m.name().equalsIgnoreCase(text.strip())) {
                    return m;
                }
            }
        }
        throw new IllegalArgumentException("host mode '" + text + "' is neither routed nor bridged");
    }
}
