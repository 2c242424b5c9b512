package io.egressctl.core.render;

import java.math.BigInteger;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A rendered script read back the way the kernel would hold it, for tests: named sets (type, flags,
 * elements with their comments), the default-verdict maps and the forward chain's rules; and a
 * packet evaluator that walks the forward chain as nft does (first lookup with a matching element
 * decides, else the VM's default, else the chain's policy accept). Only the renderer's own output
 * format is understood.
 */
final class RenderedTable {

    /** One element: its key fields as written, and its comment. */
    record Element(List<String> fields, String comment) {
        String ruleId() {
            return comment.replaceAll("^r=(\\S+) h=.*$", "$1");
        }
    }

    record SetDef(String name, String type, boolean interval, List<Element> elements) {
    }

    /** A packet: family, source and destination address, IP protocol number, port or ICMP type/code. */
    record Packet(boolean v4, String src, String dst, int proto, int port, int icmpType, int icmpCode) {
    }

    final Map<String, SetDef> sets = new LinkedHashMap<>();
    final Map<String, String> defaults4 = new LinkedHashMap<>();
    final Map<String, String> defaults6 = new LinkedHashMap<>();
    final Map<String, String> vmComments = new LinkedHashMap<>();
    final List<String> forward = new ArrayList<>();

    private static final Pattern ELEMENT = Pattern.compile("^(.*?) comment \"([^\"]*)\"$");
    private static final Pattern MAP_ELEMENT = Pattern.compile("^(\\S+) comment \"([^\"]*)\" : (accept|drop)$");
    private static final Pattern LOOKUP = Pattern.compile("^(.*) @(\\S+) (drop|accept) comment \"[^\"]*\"$");

    static RenderedTable parse(String script) {
        RenderedTable t = new RenderedTable();
        String[] lines = script.split("\n");
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i];
            if (line.startsWith("  set ") || line.startsWith("  map ")) {
                boolean map = line.startsWith("  map ");
                String name = line.substring(6, line.length() - 2);
                String type = null;
                boolean interval = false;
                List<String> raw = new ArrayList<>();
                for (i++; !lines[i].equals("  }"); i++) {
                    String l = lines[i].strip();
                    if (l.startsWith("type ")) {
                        type = l.substring(5);
                    } else if (l.equals("flags interval")) {
                        interval = true;
                    } else if (l.equals("elements = {")) {
                        for (i++; !lines[i].equals("    }"); i++) {
                            raw.add(lines[i].strip().replaceAll(",$", ""));
                        }
                    }
                }
                if (map) {
                    for (String el : raw) {
                        Matcher m = MAP_ELEMENT.matcher(el);
                        if (!m.matches()) {
                            throw new AssertionError("map element " + el);
                        }
                        (name.equals("def4") ? t.defaults4 : t.defaults6).put(m.group(1), m.group(3));
                        t.vmComments.put(m.group(1), m.group(2));
                    }
                } else {
                    List<Element> elements = new ArrayList<>();
                    for (String el : raw) {
                        Matcher m = ELEMENT.matcher(el);
                        if (!m.matches()) {
                            throw new AssertionError("set element " + el);
                        }
                        elements.add(new Element(List.of(m.group(1).split(" \\. ")), m.group(2)));
                    }
                    t.sets.put(name, new SetDef(name, type, interval, elements));
                }
            } else if (line.equals("  chain forward {")) {
                for (i++; !lines[i].equals("  }"); i++) {
                    t.forward.add(lines[i].strip());
                }
            }
        }
        return t;
    }

    /** The elements (set name and element) whose source field is {@code address}. */
    Map<String, List<Element>> elementsOf(String address) {
        Map<String, List<Element>> out = new LinkedHashMap<>();
        sets.forEach((name, s) -> {
            for (Element e : s.elements()) {
                if (e.fields().get(0).equals(address)) {
                    out.computeIfAbsent(name, k -> new ArrayList<>()).add(e);
                }
            }
        });
        return out;
    }

    /** Rule ids with an element for {@code address}, in set order. */
    List<String> rulesOf(String address) {
        List<String> out = new ArrayList<>();
        elementsOf(address).values().forEach(l -> l.forEach(e -> {
            if (!out.contains(e.ruleId())) {
                out.add(e.ruleId());
            }
        }));
        return out;
    }

    /** What the forward chain does with a packet: "accept" or "drop" (untouched traffic is accepted). */
    String verdict(Packet p) {
        for (String rule : forward) {
            Matcher m = LOOKUP.matcher(rule);
            if (!m.matches()) {
                continue;
            }
            SetDef s = sets.get(m.group(2));
            if (s == null) {
                throw new AssertionError("lookup of a missing set: " + rule);
            }
            List<String> key = List.of(m.group(1).split(" \\. "));
            for (Element e : s.elements()) {
                if (matches(key, e.fields(), p)) {
                    return m.group(3);
                }
            }
        }
        String d = (p.v4() ? defaults4 : defaults6).get(canonical(p.src()));
        return d == null ? "accept" : d;
    }

    /** Whether an element's fields match a packet, field by field as the lookup's key expressions say. */
    static boolean matches(List<String> key, List<String> fields, Packet p) {
        if (key.size() != fields.size()) {
            throw new AssertionError("key " + key + " has " + key.size() + " fields, element " + fields);
        }
        for (int i = 0; i < key.size(); i++) {
            String expr = key.get(i);
            String f = fields.get(i);
            if (expr.startsWith("ip daddr & ") || expr.startsWith("ip6 daddr & ")) {
                // An exact destination key: the packet's destination masked, compared with the element's address.
                boolean v4 = expr.startsWith("ip ");
                BigInteger mask = value(expr.substring(expr.indexOf("& ") + 2));
                BigInteger field = value(f);
                if (f.contains("/") || f.contains("-") || !field.and(mask).equals(field)) {
                    throw new AssertionError("element " + f + " of a masked key " + expr + " is not the first address of its prefix");
                }
                if (p.v4() != v4 || !value(p.dst()).and(mask).equals(field)) {
                    return false;
                }
                continue;
            }
            boolean ok = switch (expr) {
                case "ip saddr" -> p.v4() && inRange(p.src(), f);
                case "ip6 saddr" -> !p.v4() && inRange(p.src(), f);
                case "ip daddr" -> p.v4() && inRange(p.dst(), f);
                case "ip6 daddr" -> !p.v4() && inRange(p.dst(), f);
                case "meta l4proto" -> p.proto() == protoNumber(f);
                // th dport is read from any transport header; the set's keys hold tcp/udp only.
                case "th dport" -> (p.proto() == 6 || p.proto() == 17) && inNumbers(p.port(), f);
                // icmp type/code imply meta l4proto icmp (ipv6-icmp): nft adds that dependency.
                case "icmp type" -> p.v4() && p.proto() == 1 && inNumbers(p.icmpType(), f);
                case "icmp code" -> p.v4() && p.proto() == 1 && inNumbers(p.icmpCode(), f);
                case "icmpv6 type" -> !p.v4() && p.proto() == 58 && inNumbers(p.icmpType(), f);
                case "icmpv6 code" -> !p.v4() && p.proto() == 58 && inNumbers(p.icmpCode(), f);
                default -> throw new AssertionError("unknown key expression " + expr);
            };
            if (!ok) {
                return false;
            }
        }
        return true;
    }

    static int protoNumber(String name) {
        return switch (name) {
            case "tcp" -> 6;
            case "udp" -> 17;
            case "icmp" -> 1;
            case "ipv6-icmp" -> 58;
            default -> throw new AssertionError("protocol " + name);
        };
    }

    private static boolean inNumbers(int v, String f) {
        int dash = f.indexOf('-');
        if (dash < 0) {
            return v == Integer.parseInt(f);
        }
        return Integer.parseInt(f.substring(0, dash)) <= v && v <= Integer.parseInt(f.substring(dash + 1));
    }

    /** An address field: one address, a prefix or a {@code lo-hi} range. */
    static BigInteger[] range(String f) {
        int slash = f.indexOf('/');
        int dash = f.indexOf('-');
        if (slash >= 0) {
            BigInteger lo = value(f.substring(0, slash));
            int bits = f.contains(":") ? 128 : 32;
            int len = Integer.parseInt(f.substring(slash + 1));
            BigInteger size = BigInteger.ONE.shiftLeft(bits - len);
            if (!lo.mod(size).equals(BigInteger.ZERO)) {
                throw new AssertionError("prefix with host bits: " + f);
            }
            return new BigInteger[]{lo, lo.add(size).subtract(BigInteger.ONE)};
        }
        if (dash >= 0) {
            BigInteger lo = value(f.substring(0, dash));
            BigInteger hi = value(f.substring(dash + 1));
            if (lo.compareTo(hi) >= 0) {
                throw new AssertionError("empty or single-address range: " + f);
            }
            return new BigInteger[]{lo, hi};
        }
        BigInteger v = value(f);
        return new BigInteger[]{v, v};
    }

    private static boolean inRange(String address, String f) {
        if (address.contains(":") != f.contains(":")) {
            return false;
        }
        BigInteger[] r = range(f);
        BigInteger v = value(address);
        return r[0].compareTo(v) <= 0 && v.compareTo(r[1]) <= 0;
    }

    static BigInteger value(String literal) {
        try {
            // Literals only (the tests' own addresses): InetAddress resolves nothing for them.
            return new BigInteger(1, InetAddress.getByName(literal).getAddress());
        } catch (UnknownHostException e) {
            throw new AssertionError(e);
        }
    }

    static String canonical(String literal) {
        return io.egressctl.core.model.Cidr.parse(literal).addressText();
    }
}
