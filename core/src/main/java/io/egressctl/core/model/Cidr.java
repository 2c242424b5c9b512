package io.egressctl.core.model;

import java.math.BigInteger;
import java.util.Arrays;

/**
 * An IPv4 or IPv6 network prefix. Parsing is strict: a prefix with host bits set is rejected with
 * the normalized form in the message, so a tenant never gets a rule that silently means something
 * else. A bare address is a host prefix (/32 or /128). Immutable and thread-safe.
 */
public final class Cidr implements Comparable<Cidr> {

    private final byte[] address;
    private final int prefixLength;
    /** Canonical text, computed on first use (benign race: every thread computes the same string). */
    private String text;

    private Cidr(byte[] address, int prefixLength) {
        this.address = address;
        this.prefixLength = prefixLength;
    }

    /**
     * Parses {@code a.b.c.d/n}, an IPv6 prefix, or a bare address.
     *
     * @throws IllegalArgumentException with a message fit for an API error when the text is malformed
     *                                  or has host bits set
     */
    public static Cidr parse(String text) {
        if (text == null || text.isBlank()) {
            throw new IllegalArgumentException("empty CIDR");
        }
        String t = text.trim();
        int slash = t.indexOf('/');
        String addrText = slash < 0 ? t : t.substring(0, slash);
        byte[] addr = parseAddress(addrText, text);
        int max = addr.length * 8;
        int prefix = max;
        if (slash >= 0) {
            String p = t.substring(slash + 1);
            if (p.isEmpty() || p.length() > 3 || !allDigits(p)) {
                throw new IllegalArgumentException("malformed CIDR '" + text + "': bad prefix length");
            }
            prefix = Integer.parseInt(p);
            if (prefix > max) {
                throw new IllegalArgumentException("malformed CIDR '" + text + "': prefix length " + prefix + " exceeds " + max);
            }
        }
        byte[] masked = mask(addr, prefix);
        if (!Arrays.equals(masked, addr)) {
            Cidr normalized = new Cidr(masked, prefix);
            throw new IllegalArgumentException("CIDR '" + text + "' has host bits set; did you mean " + normalized + "?");
        }
        return new Cidr(addr, prefix);
    }

    /** Parses like {@link #parse} but clears host bits instead of rejecting them. */
    public static Cidr parseLenient(String text) {
        try {
            return parse(text);
        } catch (IllegalArgumentException e) {
            String t = text == null ? "" : text.trim();
            int slash = t.indexOf('/');
            if (slash < 0 || !e.getMessage().contains("host bits")) {
                throw e;
            }
            byte[] addr = parseAddress(t.substring(0, slash), text);
            return new Cidr(mask(addr, Integer.parseInt(t.substring(slash + 1))), Integer.parseInt(t.substring(slash + 1)));
        }
    }

    private static byte[] parseAddress(String addrText, String original) {
        if (addrText.isEmpty()) {
            throw new IllegalArgumentException("malformed CIDR '" + original + "': no address");
        }
        if (addrText.indexOf(':') < 0) {
            return parseIpv4(addrText, original);
        }
        // Parsed by hand, never by InetAddress: a text InetAddress does not take for a literal
        // (".::1" for one) would be resolved as a host name, and a rule must never cause a DNS lookup.
        if (addrText.length() > 45) {
            throw new IllegalArgumentException("malformed CIDR '" + original + "': not an IPv6 address");
        }
        return parseIpv6(addrText, original);
    }

    private static byte[] parseIpv4(String addrText, String original) {
        String[] parts = addrText.split("\\.", -1);
        if (parts.length != 4) {
            throw new IllegalArgumentException("malformed CIDR '" + original + "': not an IPv4 or IPv6 address");
        }
        byte[] b = new byte[4];
        for (int i = 0; i < 4; i++) {
            String part = parts[i];
            if (part.isEmpty() || part.length() > 3 || !allDigits(part)) {
                throw new IllegalArgumentException("malformed CIDR '" + original + "': bad octet '" + part + "'");
            }
            if (part.length() > 1 && part.charAt(0) == '0') {
                // inet_aton reads a leading zero as octal, most parsers as decimal: refuse the ambiguity.
                throw new IllegalArgumentException("malformed CIDR '" + original + "': octet '" + part
                        + "' has a leading zero (octal or decimal?)");
            }
            int v = Integer.parseInt(part);
            if (v > 255) {
                throw new IllegalArgumentException("malformed CIDR '" + original + "': octet " + v + " exceeds 255");
            }
            b[i] = (byte) v;
        }
        return b;
    }

    /** RFC 4291 section 2.2 text forms: eight groups, one "::", an IPv4 tail; no zone ids. */
    private static byte[] parseIpv6(String text, String original) {
        IllegalArgumentException malformed =
                new IllegalArgumentException("malformed CIDR '" + original + "': not an IPv6 address");
        int gap = text.indexOf("::");
        if (gap >= 0 && text.indexOf("::", gap + 1) >= 0) {
            throw malformed;
        }
        String head = gap < 0 ? text : text.substring(0, gap);
        String tail = gap < 0 ? "" : text.substring(gap + 2);
        int[] headGroups = ipv6Groups(head, gap < 0, malformed);
        int[] tailGroups = ipv6Groups(tail, true, malformed);
        int count = headGroups.length + tailGroups.length;
        if (gap < 0 ? count != 8 : count > 7) {
            throw malformed;
        }
        byte[] out = new byte[16];
        for (int i = 0; i < headGroups.length; i++) {
            out[2 * i] = (byte) (headGroups[i] >> 8);
            out[2 * i + 1] = (byte) headGroups[i];
        }
        int offset = 8 - tailGroups.length;
        for (int i = 0; i < tailGroups.length; i++) {
            out[2 * (offset + i)] = (byte) (tailGroups[i] >> 8);
            out[2 * (offset + i) + 1] = (byte) tailGroups[i];
        }
        return out;
    }

    private static int[] ipv6Groups(String part, boolean ipv4TailAllowed, IllegalArgumentException malformed) {
        if (part.isEmpty()) {
            return new int[0];
        }
        String[] pieces = part.split(":", -1);
        int[] groups = new int[pieces.length + 1];
        int n = 0;
        for (int i = 0; i < pieces.length; i++) {
            String piece = pieces[i];
            if (piece.indexOf('.') >= 0) {
                if (!ipv4TailAllowed || i != pieces.length - 1) {
                    throw malformed;
                }
                byte[] v4;
                try {
                    v4 = parseIpv4(piece, piece);
                } catch (IllegalArgumentException e) {
                    throw malformed;
                }
                groups[n++] = ((v4[0] & 0xFF) << 8) | (v4[1] & 0xFF);
                groups[n++] = ((v4[2] & 0xFF) << 8) | (v4[3] & 0xFF);
                continue;
            }
            if (piece.isEmpty() || piece.length() > 4) {
                throw malformed;
            }
            int value = 0;
            for (int k = 0; k < piece.length(); k++) {
                int digit = Character.digit(piece.charAt(k), 16);
                if (digit < 0 || piece.charAt(k) > 'f') {
                    throw malformed;
                }
                value = value * 16 + digit;
            }
            groups[n++] = value;
        }
        return java.util.Arrays.copyOf(groups, n);
    }

    private static byte[] mask(byte[] addr, int prefix) {
        byte[] out = addr.clone();
        for (int i = 0; i < out.length; i++) {
            int bits = Math.max(0, Math.min(8, prefix - i * 8));
            out[i] = (byte) (out[i] & (0xFF << (8 - bits)));
        }
        return out;
    }

    /** True for an IPv4 prefix. */
    public boolean isIpv4() {
        return address.length == 4;
    }

    public int prefixLength() {
        return prefixLength;
    }

    /** True when this prefix covers a single address. */
    public boolean isHost() {
        return prefixLength == address.length * 8;
    }

    /** True when every address of {@code other} lies inside this prefix (same family only). */
    public boolean contains(Cidr other) {
        if (other.address.length != address.length || other.prefixLength < prefixLength) {
            return false;
        }
        return Arrays.equals(mask(other.address, prefixLength), address);
    }

    /** True when {@code ip} (a bare address) lies inside this prefix. */
    public boolean containsAddress(String ip) {
        return contains(parse(ip));
    }

    /** The address part, in canonical text form. */
    public String addressText() {
        if (isIpv4()) {
            return (address[0] & 0xFF) + "." + (address[1] & 0xFF) + "." + (address[2] & 0xFF) + "." + (address[3] & 0xFF);
        }
        return formatIpv6(address);
    }

    private static String formatIpv6(byte[] a) {
        int[] groups = new int[8];
        for (int i = 0; i < 8; i++) {
            groups[i] = ((a[2 * i] & 0xFF) << 8) | (a[2 * i + 1] & 0xFF);
        }
        // RFC 5952: compress the longest run (length >= 2) of zero groups, first one on ties.
        int bestStart = -1;
        int bestLen = 0;
        for (int i = 0; i < 8; ) {
            if (groups[i] == 0) {
                int j = i;
                while (j < 8 && groups[j] == 0) {
                    j++;
                }
                if (j - i > bestLen && j - i >= 2) {
                    bestStart = i;
                    bestLen = j - i;
                }
                i = j;
            } else {
                i++;
            }
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            if (i == bestStart) {
                sb.append("::");
                i += bestLen - 1;
                continue;
            }
            if (sb.length() > 0 && sb.charAt(sb.length() - 1) != ':') {
                sb.append(':');
            }
            sb.append(Integer.toHexString(groups[i]));
        }
        return sb.toString();
    }

    /** Canonical text: {@code address/prefix}. */
    @Override
    public String toString() {
        String t = text;
        if (t == null) {
            t = addressText() + "/" + prefixLength;
            text = t;
        }
        return t;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Cidr c && c.prefixLength == prefixLength && Arrays.equals(c.address, address);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(address) * 31 + prefixLength;
    }

    /** IPv4 before IPv6, then by address, then by prefix length. */
    @Override
    public int compareTo(Cidr o) {
        if (address.length != o.address.length) {
            return Integer.compare(address.length, o.address.length);
        }
        int c = new BigInteger(1, address).compareTo(new BigInteger(1, o.address));
        return c != 0 ? c : Integer.compare(prefixLength, o.prefixLength);
    }

    /** ASCII digits only (a loop, not a stream: this runs for every address of every event). */
    private static boolean allDigits(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < '0' || c > '9') {
                return false;
            }
        }
        return true;
    }
}
