package io.egressctl.core.hash;

import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.VmAddress;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;

/**
 * Content versions: sha256 over canonical bytes, never {@code hashCode()}. Collections are written
 * in a fixed order (VMs by id, rules in evaluation order, networks by id) so equal states hash
 * equal on every machine and every replay.
 */
public final class CanonicalHash {

    private CanonicalHash() {
    }

    private static final HexFormat HEX = HexFormat.of();
    /** One digest per thread: looking the algorithm up for every hash cost as much as small hashes. */
    private static final ThreadLocal<MessageDigest> SHA256 = ThreadLocal.withInitial(() -> {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    });

    /** Canonical text of a fragment: one line per field, VM and rule. */
    public static String canonical(Fragment f) {
        StringBuilder sb = new StringBuilder(128 + 96 * (f.vms().size() + f.rules().size()));
        sb.append("network=").append(f.networkId()).append('\n');
        sb.append("policy=").append(f.defaultPolicy()).append('\n');
        if (f.keepEstablished()) {
            sb.append("keepEstablished=true\n");
        }
        for (VmAddress vm : byVmId(f.vms())) {
            sb.append("vm=").append(vm.vmId()).append(',').append(nullToEmpty(vm.ipv4())).append(',')
                    .append(nullToEmpty(vm.ipv6()));
            // Interface and MAC are written only when present, so the hash of content without them
            // (fragments compiled before interfaces were in the contract) is what it always was.
            if (vm.interfaceName() != null || vm.mac() != null) {
                sb.append(",if=").append(nullToEmpty(vm.interfaceName())).append(",mac=").append(nullToEmpty(vm.mac()));
            }
            sb.append('\n');
        }
        for (CompiledRule r : f.rules()) {
            sb.append("rule=").append(r.ruleId()).append('|').append(r.action()).append('|').append(r.priority())
                    .append('|').append(r.protocol()).append("|vms=").append(String.join(",", r.vmIds()))
                    .append("|dst=").append(r.destinationCidrs()).append("|except=").append(r.destinationExceptCidrs())
                    .append("|ports=").append(r.ports() == null ? "" : r.ports().start() + "-" + r.ports().end())
                    .append("|icmp=").append(r.icmp() == null ? "" : r.icmp().type() + "/" + r.icmp().code())
                    .append('\n');
        }
        return sb.toString();
    }

    /** The VMs by id; the compiler already lists them so, and then nothing is copied or sorted. */
    private static List<VmAddress> byVmId(List<VmAddress> vms) {
        for (int i = 1; i < vms.size(); i++) {
            if (vms.get(i - 1).vmId().compareTo(vms.get(i).vmId()) > 0) {
                List<VmAddress> sorted = new java.util.ArrayList<>(vms);
                sorted.sort(java.util.Comparator.comparing(VmAddress::vmId));
                return sorted;
            }
        }
        return vms;
    }

    /** sha256 hex of a fragment's canonical text. */
    public static String of(Fragment f) {
        return sha256(canonical(f));
    }

    /**
     * The host hash: sha256 over {@code networkId=fragmentHash} lines in network order. The compiler's
     * expected hash and the agent's applied hash are both computed with this (invariant 6).
     */
    public static String host(SortedMap<String, String> fragmentHashByNetwork) {
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, String> e : fragmentHashByNetwork.entrySet()) {
            sb.append(e.getKey()).append('=').append(e.getValue()).append('\n');
        }
        return sha256(sb.toString());
    }

    /** sha256 hex of UTF-8 text. */
    public static String sha256(String text) {
        MessageDigest md = SHA256.get();
        md.reset();
        return HEX.formatHex(md.digest(text.getBytes(StandardCharsets.UTF_8)));
    }

    private static String nullToEmpty(String s) {
        return s == null ? "" : s;
    }
}
