package io.egressctl.core.compile;

import io.egressctl.core.model.Cidr;

import java.util.List;

/**
 * The size of a fragment once encoded as the Avro {@code Fragment} record of a HostUpdate, computed
 * from the fragment alone, so that the fold can refuse a change whose HostUpdate would not fit in a
 * Kafka record before anything is sent. It follows Avro's binary encoding (as the project's and
 * Confluent's serializers write it: each array in one block): a string is a zig-zag varint length
 * and its UTF-8 bytes, an int or enum index a zig-zag varint, a union branch a varint (1 byte here),
 * a boolean 1 byte, an array a varint count, its items and a 0 (just the 0 when empty).
 * FragmentSizeTest (schemas) encodes worst-case fragments and checks the figure byte for byte.
 */
public final class FragmentSize {

    private FragmentSize() {
    }

    /** Bytes of {@code f} encoded as the Avro {@code Fragment} record. */
    public static long bound(Fragment f) {
        long n = varint(f.defaultPolicy().ordinal()) + 1; // defaultPolicy, keepEstablished
        n += array(f.vms().size());
        for (VmAddress v : f.vms()) {
            n += string(v.vmId()) + optional(v.ipv4()) + optional(v.ipv6()) + optional(v.interfaceName()) + optional(v.mac());
        }
        n += array(f.rules().size());
        for (CompiledRule r : f.rules()) {
            n += bound(r);
        }
        return n;
    }

    /** Bytes of one compiled rule. */
    public static long bound(CompiledRule r) {
        long n = string(r.ruleId()) + varint(r.action().ordinal()) + varint(r.priority()) + varint(r.protocol().ordinal());
        n += array(r.vmIds().size());
        for (String vm : r.vmIds()) {
            n += string(vm);
        }
        n += cidrs(r.destinationCidrs()) + cidrs(r.destinationExceptCidrs());
        n += optionalInt(r.ports() == null ? null : r.ports().start()) + optionalInt(r.ports() == null ? null : r.ports().end());
        n += optionalInt(r.icmp() == null ? null : r.icmp().type()) + optionalInt(r.icmp() == null ? null : r.icmp().code());
        return n;
    }

    private static long cidrs(List<Cidr> cidrs) {
        long n = array(cidrs.size());
        for (Cidr c : cidrs) {
            n += string(c.toString());
        }
        return n;
    }

    private static long array(int size) {
        return size == 0 ? 1 : varint(size) + 1;
    }

    private static long optional(String s) {
        return 1 + (s == null ? 0 : string(s));
    }

    private static long optionalInt(Integer i) {
        return 1 + (i == null ? 0 : varint(i));
    }

    private static long string(String s) {
        long bytes = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            // A surrogate pair is 4 UTF-8 bytes: 2 per unit. Other units: 1, 2 or 3.
            bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : Character.isSurrogate(c) ? 2 : 3;
        }
        return varint(bytes) + bytes;
    }

    /** Bytes of {@code v} as a zig-zag varint. */
    private static long varint(long v) {
        long z = (v << 1) ^ (v >> 63);
        int bytes = 1;
        while ((z & ~0x7FL) != 0) {
            z >>>= 7;
            bytes++;
        }
        return bytes;
    }
}
