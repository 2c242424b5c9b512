package io.egressctl.core.render;

import io.egressctl.core.model.Cidr;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Address arithmetic for the renderer: prefixes as inclusive ranges of one address family, unions
 * and differences as sorted, disjoint, non-adjacent ranges, and ranges back to the text nft reads
 * (a prefix where the range is one, {@code lo-hi} otherwise). Addresses are unsigned 128-bit numbers
 * held in two longs (IPv4 in the low one). Stateless.
 */
final class AddressSpans {

    private AddressSpans() {
    }

    /** An unsigned 128-bit address value. */
    record Addr(long hi, long lo) implements Comparable<Addr> {

        @Override
        public int compareTo(Addr o) {
            int c = Long.compareUnsigned(hi, o.hi);
            return c != 0 ? c : Long.compareUnsigned(lo, o.lo);
        }

        Addr next() {
            return lo == -1L ? new Addr(hi + 1, 0) : new Addr(hi, lo + 1);
        }

        Addr previous() {
            return lo == 0 ? new Addr(hi - 1, -1L) : new Addr(hi, lo - 1);
        }
    }

    private static final Addr ZERO = new Addr(0, 0);
    private static final Addr V4_MAX = new Addr(0, 0xFFFF_FFFFL);
    private static final Addr V6_MAX = new Addr(-1L, -1L);

    /** An inclusive range {@code [lo, hi]} of addresses of one family. */
    record Span(boolean v4, Addr lo, Addr hi) {

        boolean intersects(Span o) {
            return v4 == o.v4 && lo.compareTo(o.hi) <= 0 && o.lo.compareTo(hi) <= 0;
        }

        boolean contains(Span o) {
            return v4 == o.v4 && lo.compareTo(o.lo) <= 0 && o.hi.compareTo(hi) <= 0;
        }

        /** Every address of the family. */
        boolean isAll() {
            return lo.equals(ZERO) && hi.equals(v4 ? V4_MAX : V6_MAX);
        }

        /** Mixed: prefixes of one size differ only in high bits, which a plain sum keeps out of a hash table's index. */
        @Override
        public int hashCode() {
            long h = (lo.hi() * 31 + lo.lo()) * 0x9E3779B97F4A7C15L + hi.hi() * 31 + hi.lo();
            h *= 0x9E3779B97F4A7C15L;
            return (int) (h ^ (h >>> 32)) ^ (v4 ? 1 : 0);
        }
    }

    /** Every address of the family. */
    static Span all(boolean v4) {
        return new Span(v4, ZERO, v4 ? V4_MAX : V6_MAX);
    }

    static Span of(Cidr c) {
        boolean v4 = c.isIpv4();
        Addr a = value(c.addressText(), v4);
        int hostBits = (v4 ? 32 : 128) - c.prefixLength();
        // hi = a | (2^hostBits - 1), split over the two words.
        long lowOnes = hostBits >= 64 ? -1L : (1L << hostBits) - 1;
        long highOnes = hostBits <= 64 ? 0 : hostBits >= 128 ? -1L : (1L << (hostBits - 64)) - 1;
        return new Span(v4, a, new Addr(a.hi() | highOnes, a.lo() | lowOnes));
    }

    /** Sorted, disjoint, non-adjacent ranges covering exactly the union of {@code spans}. */
    static List<Span> union(List<Span> spans) {
        if (spans.size() <= 1) {
            return spans;
        }
        List<Span> sorted = new ArrayList<>(spans);
        sorted.sort(Comparator.comparing(Span::lo));
        List<Span> out = new ArrayList<>();
        for (Span s : sorted) {
            if (!out.isEmpty()) {
                Span last = out.get(out.size() - 1);
                boolean touches = last.hi().equals(last.v4() ? V4_MAX : V6_MAX) || last.hi().next().compareTo(s.lo()) >= 0;
                if (touches) {
                    if (s.hi().compareTo(last.hi()) > 0) {
                        out.set(out.size() - 1, new Span(last.v4(), last.lo(), s.hi()));
                    }
                    continue;
                }
            }
            out.add(s);
        }
        return out;
    }

    /** {@code include} minus {@code exclude}, both any lists of one family: sorted disjoint ranges. */
    static List<Span> minus(List<Span> include, List<Span> exclude) {
        List<Span> in = union(include);
        if (exclude.isEmpty()) {
            return in;
        }
        List<Span> ex = union(exclude);
        List<Span> out = new ArrayList<>();
        int k = 0;
        for (Span s : in) {
            Addr lo = s.lo();
            Addr hi = s.hi();
            while (k < ex.size() && ex.get(k).hi().compareTo(lo) < 0) {
                k++;
            }
            int j = k;
            while (lo != null && j < ex.size() && ex.get(j).lo().compareTo(hi) <= 0) {
                Span e = ex.get(j);
                if (e.lo().compareTo(lo) > 0) {
                    out.add(new Span(s.v4(), lo, e.lo().previous()));
                }
                lo = e.hi().compareTo(hi) >= 0 ? null : e.hi().next();
                j++;
            }
            if (lo != null) {
                out.add(new Span(s.v4(), lo, hi));
            }
        }
        return out;
    }

    /** nft text of a range: {@code a.b.c.d} for one address, a prefix where it is one, else {@code lo-hi}. */
    static String text(Span s) {
        int length = prefixLength(s);
        int bits = s.v4() ? 32 : 128;
        if (length == bits) {
            return address(s.lo(), s.v4());
        }
        if (length >= 0) {
            return address(s.lo(), s.v4()) + "/" + length;
        }
        return address(s.lo(), s.v4()) + "-" + address(s.hi(), s.v4());
    }

    /** The length of the prefix a range is (32 or 128 for one address), or -1 when it is no prefix. */
    static int prefixLength(Span s) {
        long xHi = s.lo().hi() ^ s.hi().hi();
        long xLo = s.lo().lo() ^ s.hi().lo();
        // A prefix: lo and hi differ exactly in the low k bits, all 0 in lo and all 1 in hi.
        boolean ones = xHi == 0 ? (xLo & (xLo + 1)) == 0 : xLo == -1L && (xHi & (xHi + 1)) == 0;
        if (!ones || (s.lo().hi() & xHi) != 0 || (s.lo().lo() & xLo) != 0) {
            return -1;
        }
        int hostBits = xHi == 0 ? 64 - Long.numberOfLeadingZeros(xLo) : 128 - Long.numberOfLeadingZeros(xHi);
        return (s.v4() ? 32 : 128) - hostBits;
    }

    /** The netmask of a prefix length as nft reads it ({@code 255.255.255.0}, {@code ffff:ffff::}). */
    static String mask(int length, boolean v4) {
        if (v4) {
            long m = length == 0 ? 0 : (0xFFFF_FFFFL << (32 - length)) & 0xFFFF_FFFFL;
            return address(new Addr(0, m), true);
        }
        long hi = length >= 64 ? -1L : length == 0 ? 0 : -1L << (64 - length);
        long lo = length <= 64 ? 0 : length >= 128 ? -1L : -1L << (128 - length);
        return address(new Addr(hi, lo), false);
    }

    /** Canonical text of an address (compressed IPv6, as {@link Cidr} and nft print it). */
    static String address(Addr a, boolean v4) {
        if (v4) {
            long v = a.lo();
            return ((v >> 24) & 0xFF) + "." + ((v >> 16) & 0xFF) + "." + ((v >> 8) & 0xFF) + "." + (v & 0xFF);
        }
        StringBuilder full = new StringBuilder(40);
        for (int g = 7; g >= 0; g--) {
            long word = g >= 4 ? a.hi() : a.lo();
            full.append(Long.toHexString((word >>> (16 * (g % 4))) & 0xFFFF));
            if (g > 0) {
                full.append(':');
            }
        }
        return Cidr.parse(full.toString()).addressText();
    }

    /** The numeric value of an address in {@link Cidr#addressText()} form. */
    static Addr value(String text, boolean v4) {
        if (v4) {
            long v = 0;
            for (String o : text.split("\\.")) {
                v = (v << 8) | Integer.parseInt(o);
            }
            return new Addr(0, v);
        }
        int gap = text.indexOf("::");
        List<String> head = groups(gap < 0 ? text : text.substring(0, gap));
        List<String> tail = gap < 0 ? List.of() : groups(text.substring(gap + 2));
        List<String> all = new ArrayList<>(head);
        for (int i = head.size() + tail.size(); i < 8; i++) {
            all.add("0");
        }
        all.addAll(tail);
        long hi = 0;
        long lo = 0;
        for (int i = 0; i < 8; i++) {
            long g = Integer.parseInt(all.get(i), 16);
            if (i < 4) {
                hi = (hi << 16) | g;
            } else {
                lo = (lo << 16) | g;
            }
        }
        return new Addr(hi, lo);
    }

    private static List<String> groups(String part) {
        return part.isEmpty() ? List.of() : List.of(part.split(":"));
    }
}
