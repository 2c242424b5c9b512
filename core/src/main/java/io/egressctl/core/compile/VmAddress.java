package io.egressctl.core.compile;

/** A VM's addresses as a host enforces them; {@code ipv4} or {@code ipv6} may be null. */
public record VmAddress(String vmId, String ipv4, String ipv6) {
}
