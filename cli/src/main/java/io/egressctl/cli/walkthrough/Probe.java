package io.egressctl.cli.walkthrough;

import java.util.List;

/**
 * A probe of real traffic from a VM of the data center in namespaces ({@code scripts/datacenter.sh probe}).
 *
 * @param vmId  the VM as the control plane knows it ({@code vm-1})
 * @param dcVm  the VM in the data center (its tap without {@code tap-}: {@code vm1})
 * @param kind  {@code tcp}, {@code udp}, {@code ping} or {@code spoof}
 * @param args  tcp/udp: destination, port; ping: destination; spoof: source address, destination
 */
public record Probe(String vmId, String dcVm, String kind, List<String> args) {

    /** The probe's outcomes: the answer came back, or did not (twice). */
    public static final String PASS = "pass";
    public static final String BLOCKED = "blocked";

    public Probe {
        args = List.copyOf(args);
    }

    /** What the table shows: {@code tcp 198.51.100.10:80}, {@code ping 198.51.100.10}, {@code udp from 10.1.0.99 (spoofed)}. */
    public String label() {
        return switch (kind) {
            case "tcp", "udp" -> kind + " " + args.get(0) + ":" + args.get(1);
            case "ping" -> "ping " + args.get(0);
            case "spoof" -> "udp from " + args.get(0) + " (spoofed)";
            default -> kind + " " + String.join(" ", args);
        };
    }

    /** The arguments of {@code datacenter.sh probe}. */
    public List<String> command() {
        List<String> c = new java.util.ArrayList<>(List.of(dcVm, kind));
        c.addAll(args);
        return c;
    }
}
