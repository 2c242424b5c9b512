package io.egressctl.core.render;

import java.math.BigInteger;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A rendered script read back the way the kernel would hold it, for tests, and a packet evaluator
 * that walks it as nft does. Only the renderer's own output is understood, but it is read as nft
 * reads it, not by the renderer's names:
 * <ul>
 *   <li>both tables ({@code table inet egressctl} and, on a bridged host, {@code table bridge
 *       egressctl}): every named set and map with its type, flags and elements (key fields, comment,
 *       mapped value), every chain with its hook, priority and rules;</li>
 *   <li>the evaluator runs a packet through the hooks a forwarded packet passes, in kernel order: on a
 *       bridged host the bridge family's prerouting chains (where {@code iifname} is the bridge port),
 *       then the inet prerouting and forward chains (where {@code iifname} is the bridge, as
 *       br_netfilter shows it); on a routed host the inet chains only (where {@code iifname} is the
 *       port). Base chains run in priority order, each ending in its policy (accept). Rules are
 *       interpreted statement by statement: matches on {@code meta mark|nfproto|l4proto},
 *       {@code ct state|mark}, addresses (masked too), ports and ICMP types/codes against literals,
 *       anonymous sets and named sets (concatenated keys, {@code !=} too); {@code meta mark set iifname
 *       map @m}, {@code ct mark set meta mark}, {@code vmap}, {@code jump}, {@code accept}/{@code drop};
 *       a protocol field a packet lacks makes its rule not match (nft's implicit dependencies), even
 *       under {@code !=}.</li>
 * </ul>
 * The packet is the first of its flow (conntrack state new, ct mark 0).
 */
final class RenderedTable {

    /** One element: its key fields as written, its comment (or null) and, in a map, the value it maps to (or null). */
    record Element(List<String> fields, String comment, String value) {
        String ruleId() {
            return comment.replaceAll("^r=(\\S+) h=.*$", "$1");
        }
    }

    /** A named set or map of one table. */
    record SetDef(String family, String name, boolean map, String type, boolean interval, List<Element> elements) {
    }

    /** A chain: its hook and priority when it is a base chain (hook null otherwise), and its rules as written. */
    record Chain(String family, String name, String hook, int priority, List<String> rules) {
    }

    /**
     * A packet entering the host from interface {@code iface}: family, source and destination address,
     * IP protocol number, source and destination port (tcp/udp), ICMP type and code.
     */
    record Packet(String iface, boolean v4, String src, String dst, int proto, int sport, int port, int icmpType, int icmpCode) {

        /** A packet from an ephemeral source port. */
        Packet(String iface, boolean v4, String src, String dst, int proto, int port, int icmpType, int icmpCode) {
            this(iface, v4, src, dst, proto, 40000, port, icmpType, icmpCode);
        }
    }

    /** Where the host's VM ports are plugged in, as the script's header says (routed when it does not). */
    final HostMode mode;
    /** Every named set and map, by family then name, in script order. */
    final Map<String, Map<String, SetDef>> named = new LinkedHashMap<>();
    /** Every chain, by family then name. */
    final Map<String, Map<String, Chain>> chains = new LinkedHashMap<>();
    /** The inet table's rule sets ({@code l<L>_...}), by name in script order. */
    final Map<String, SetDef> sets = new LinkedHashMap<>();
    /** Interface name to mark, from the table that marks ports ({@code inet} routed, {@code bridge} bridged). */
    final Map<String, String> ports = new LinkedHashMap<>();
    /** Marks of the host's VM ports ({@code set vms}). */
    final Set<String> vms = new LinkedHashSet<>();
    /** Mark to its IPv4 / IPv6 source address ({@code set addr4}, {@code set addr6}). */
    final Map<String, List<String>> addr4 = new LinkedHashMap<>();
    final Map<String, List<String>> addr6 = new LinkedHashMap<>();
    /** Mark to the default verdict ({@code map def}) and to its comment ("net N vm V"). */
    final Map<String, String> defaults = new LinkedHashMap<>();
    final Map<String, String> vmComments = new LinkedHashMap<>();
    /** The inet forward chain's and vm chain's rules as written. */
    final List<String> forward;
    final List<String> vm;

    private static final Pattern ELEMENT = Pattern.compile("^(.+?)(?: comment \"([^\"]*)\")?(?: : (\\S+))?$");
    private static final Pattern TABLE = Pattern.compile("^table (\\w+) (\\S+) \\{$");
    private static final Pattern HOOK = Pattern.compile("^type \\w+ hook (\\w+) priority ([\\w-]+); policy (\\w+);$");

    private RenderedTable(HostMode mode) {
        this.mode = mode;
        this.forward = new ArrayList<>();
        this.vm = new ArrayList<>();
    }

    static RenderedTable parse(String script) {
        Matcher header = Pattern.compile("(?m)^# egressctl host \\S+ hash \\S+ mode (\\w+)$").matcher(script);
        RenderedTable t = new RenderedTable(header.find() ? HostMode.valueOf(header.group(1).toUpperCase(Locale.ROOT)) : HostMode.ROUTED);
        String[] lines = script.split("\n");
        String family = null;
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i];
            Matcher tm = TABLE.matcher(line);
            if (tm.matches()) {
                family = tm.group(1);
                continue;
            }
            if (line.equals("}")) {
                family = null;
                continue;
            }
            if (family == null) {
                continue; // header notes, "table ..." and "delete table ..." commands
            }
            if (line.startsWith("  set ") || line.startsWith("  map ")) {
                boolean map = line.startsWith("  map ");
                String name = line.substring(6, line.length() - 2);
                String type = null;
                boolean interval = false;
                List<Element> elements = new ArrayList<>();
                for (i++; !lines[i].equals("  }"); i++) {
                    String l = lines[i].strip();
                    if (l.startsWith("type ")) {
                        type = l.substring(5);
                    } else if (l.equals("flags interval")) {
                        interval = true;
                    } else if (l.equals("elements = {")) {
                        for (i++; !lines[i].equals("    }"); i++) {
                            elements.add(element(lines[i].strip().replaceAll(",$", ""), map));
                        }
                    } else if (!l.equals("counter")) {
                        throw new AssertionError("unknown line in " + name + ": " + l);
                    }
                }
                t.named.computeIfAbsent(family, k -> new LinkedHashMap<>()).put(name, new SetDef(family, name, map, type, interval, elements));
            } else if (line.startsWith("  chain ")) {
                String name = line.substring(8, line.length() - 2);
                String hook = null;
                int priority = 0;
                List<String> rules = new ArrayList<>();
                for (i++; !lines[i].equals("  }"); i++) {
                    String l = lines[i].strip();
                    Matcher hm = HOOK.matcher(l);
                    if (hm.matches()) {
                        hook = hm.group(1);
                        priority = priority(hm.group(2));
                        if (!hm.group(3).equals("accept")) {
                            throw new AssertionError("a base chain with policy " + hm.group(3));
                        }
                    } else {
                        rules.add(l);
                    }
                }
                t.chains.computeIfAbsent(family, k -> new LinkedHashMap<>()).put(name, new Chain(family, name, hook, priority, rules));
            } else if (!line.isBlank()) {
                throw new AssertionError("unknown line in table " + family + ": " + line);
            }
        }
        t.index();
        return t;
    }

    private static Element element(String text, boolean map) {
        Matcher m = ELEMENT.matcher(text);
        if (!m.matches() || map != (m.group(3) != null)) {
            throw new AssertionError((map ? "map" : "set") + " element " + text);
        }
        List<String> fields = new ArrayList<>();
        for (String f : m.group(1).split(" \\. ")) {
            fields.add(f.startsWith("\"") ? f.substring(1, f.length() - 1) : f);
        }
        return new Element(List.copyOf(fields), m.group(2), m.group(3));
    }

    private static int priority(String p) {
        return switch (p) {
            case "raw" -> -300;
            case "mangle" -> -150;
            case "dstnat" -> -100;
            case "filter" -> 0;
            case "security" -> 50;
            case "srcnat" -> 100;
            default -> Integer.parseInt(p);
        };
    }

    /** The views tests read most: rule sets, ports, VM marks, addresses and defaults. */
    private void index() {
        Map<String, SetDef> inet = named.getOrDefault("inet", Map.of());
        inet.forEach((name, s) -> {
            if (name.matches("l\\d+_.*")) {
                sets.put(name, s);
            }
        });
        SetDef p = named.getOrDefault(mode == HostMode.BRIDGED ? "bridge" : "inet", Map.of()).get("ports");
        if (p != null) {
            p.elements().forEach(e -> ports.put(e.fields().get(0), e.value()));
        }
        if (inet.containsKey("vms")) {
            inet.get("vms").elements().forEach(e -> vms.add(e.fields().get(0)));
        }
        for (String a : List.of("addr4", "addr6")) {
            if (inet.containsKey(a)) {
                inet.get(a).elements().forEach(e -> (a.equals("addr4") ? addr4 : addr6)
                        .computeIfAbsent(e.fields().get(0), k -> new ArrayList<>()).add(e.fields().get(1)));
            }
        }
        if (inet.containsKey("def")) {
            inet.get("def").elements().forEach(e -> {
                defaults.put(e.fields().get(0), e.value());
                vmComments.put(e.fields().get(0), e.comment());
            });
        }
        Map<String, Chain> ic = chains.getOrDefault("inet", Map.of());
        if (ic.containsKey("forward")) {
            forward.addAll(ic.get("forward").rules());
        }
        if (ic.containsKey("vm")) {
            vm.addAll(ic.get("vm").rules());
        }
    }

    /** The mark of an interface's port, or null. */
    String markOf(String interfaceName) {
        return ports.get(interfaceName);
    }

    /** The rule set elements (set name and element) whose key starts with {@code mark}. */
    Map<String, List<Element>> elementsOf(String mark) {
        Map<String, List<Element>> out = new LinkedHashMap<>();
        sets.forEach((name, s) -> {
            for (Element e : s.elements()) {
                if (e.fields().get(0).equals(mark)) {
                    out.computeIfAbsent(name, k -> new ArrayList<>()).add(e);
                }
            }
        });
        return out;
    }

    /** Rule ids with an element for the port with {@code mark}, in set order. */
    List<String> rulesOf(String mark) {
        List<String> out = new ArrayList<>();
        elementsOf(mark).values().forEach(l -> l.forEach(e -> {
            if (!out.contains(e.ruleId())) {
                out.add(e.ruleId());
            }
        }));
        return out;
    }

    // ---- evaluation -------------------------------------------------------------------------------

    /** What a rule's evaluation came to: a verdict, or on to the next rule. */
    private enum Outcome { ACCEPT, DROP, NEXT }

    /** A packet on its way through the hooks: what the rules can read and set. */
    private final class Flight {
        final Packet p;
        long mark;
        long ctMark;
        int depth;

        Flight(Packet p) {
            this.p = p;
        }
    }

    /** The name {@code iifname} shows in the inet hooks for a packet from a bridge port (br_netfilter shows the bridge). */
    static final String BRIDGE = "br-of-the-port";

    /** What the host does with a packet: "accept" or "drop" (untouched traffic is accepted by every policy). */
    String verdict(Packet p) {
        Flight f = new Flight(p);
        List<Chain> path = new ArrayList<>();
        if (mode == HostMode.BRIDGED) {
            path.addAll(base("bridge", "prerouting"));
        }
        path.addAll(base("inet", "prerouting"));
        path.addAll(base("inet", "forward"));
        for (Chain c : path) {
            if (run(c, f) == Outcome.DROP) {
                return "drop";
            }
        }
        return "accept";
    }

    private List<Chain> base(String family, String hook) {
        return chains.getOrDefault(family, Map.of()).values().stream().filter(c -> hook.equals(c.hook()))
                .sorted(Comparator.comparingInt(Chain::priority)).toList();
    }

    private Outcome run(Chain c, Flight f) {
        if (++f.depth > 16) {
            throw new AssertionError("jumps nest too deep at chain " + c.name());
        }
        try {
            for (String rule : c.rules()) {
                Outcome o = rule(c.family(), tokens(rule), f);
                if (o != Outcome.NEXT) {
                    return o;
                }
            }
            return Outcome.NEXT;
        } finally {
            f.depth--;
        }
    }

    /** A value a packet field has, or none (the packet has no such header: the rule does not match). */
    private record Value(String kind, BigInteger number) {
    }

    private Outcome rule(String family, List<String> tok, Flight f) {
        int i = 0;
        while (i < tok.size()) {
            String t = tok.get(i);
            switch (t) {
                case "counter" -> {
                    i++;
                    continue;
                }
                case "comment" -> {
                    i += 2;
                    continue;
                }
                case "accept" -> {
                    return Outcome.ACCEPT;
                }
                case "drop" -> {
                    return Outcome.DROP;
                }
                case "jump" -> {
                    Chain target = chains.get(family).get(tok.get(i + 1));
                    if (target == null) {
                        throw new AssertionError("jump to a missing chain " + tok.get(i + 1));
                    }
                    Outcome o = run(target, f);
                    if (o != Outcome.NEXT) {
                        return o;
                    }
                    i += 2;
                    continue;
                }
                default -> {
                }
            }
            // A key: one or more fields joined by '.', each optionally masked.
            List<String> exprs = new ArrayList<>();
            List<Value> key = new ArrayList<>();
            boolean absent = false;
            while (true) {
                int width = width(tok, i);
                String expr = String.join(" ", tok.subList(i, i + width));
                i += width;
                Value v = read(family, expr, f);
                if (i < tok.size() && tok.get(i).equals("&")) {
                    BigInteger mask = literal(exprKind(expr), tok.get(i + 1));
                    expr += " & " + tok.get(i + 1);
                    i += 2;
                    v = v == null ? null : new Value(v.kind(), v.number().and(mask));
                }
                exprs.add(expr);
                absent |= v == null;
                key.add(v);
                if (i < tok.size() && tok.get(i).equals(".")) {
                    i++;
                    continue;
                }
                break;
            }
            String op = tok.get(i);
            if (op.equals("set")) {
                // '<field> set <expr> [map @m]'
                if (exprs.size() != 1) {
                    throw new AssertionError("set of a concatenation: " + tok);
                }
                int width = width(tok, i + 1);
                String src = String.join(" ", tok.subList(i + 1, i + 1 + width));
                i += 1 + width;
                Value v = read(family, src, f);
                if (i < tok.size() && tok.get(i).equals("map")) {
                    Element e = v == null ? null : lookup(family, tok.get(i + 1).substring(1), List.of(src), List.of(v));
                    if (e == null) {
                        return Outcome.NEXT; // no element: the statement breaks the rule
                    }
                    v = new Value(exprKind(exprs.get(0)), literal(exprKind(exprs.get(0)), e.value()));
                    i += 2;
                }
                if (v == null) {
                    return Outcome.NEXT;
                }
                write(exprs.get(0), v, f);
                continue;
            }
            if (op.equals("vmap")) {
                Element e = absent ? null : lookup(family, tok.get(i + 1).substring(1), exprs, key);
                if (e == null) {
                    return Outcome.NEXT;
                }
                return switch (e.value()) {
                    case "accept" -> Outcome.ACCEPT;
                    case "drop" -> Outcome.DROP;
                    default -> throw new AssertionError("verdict " + e.value());
                };
            }
            boolean negate = op.equals("!=");
            if (negate || op.equals("==")) {
                i++;
            }
            String rhs = tok.get(i++);
            if (absent) {
                return Outcome.NEXT; // the packet lacks a field of the match: nft's dependency fails first
            }
            boolean hit;
            if (rhs.startsWith("@")) {
                hit = lookup(family, rhs.substring(1), exprs, key) != null;
            } else if (rhs.startsWith("{")) {
                if (exprs.size() != 1) {
                    throw new AssertionError("anonymous set of a concatenation: " + tok);
                }
                hit = false;
                for (String item : rhs.substring(1, rhs.length() - 1).split(",")) {
                    hit |= within(exprKind(exprs.get(0)), item.strip(), key.get(0));
                }
            } else {
                if (exprs.size() != 1) {
                    throw new AssertionError("literal against a concatenation: " + tok);
                }
                hit = within(exprKind(exprs.get(0)), rhs, key.get(0));
            }
            if (hit == negate) {
                return Outcome.NEXT;
            }
        }
        return Outcome.NEXT;
    }

    /** How many tokens the field expression at {@code i} takes. */
    private static int width(List<String> tok, int i) {
        return switch (tok.get(i)) {
            case "iifname", "oifname" -> 1;
            case "meta", "ct", "ip", "ip6", "th", "tcp", "udp", "icmp", "icmpv6" -> 2;
            default -> throw new AssertionError("unknown expression at '" + String.join(" ", tok.subList(i, tok.size())) + "'");
        };
    }

    /** The kind of value an expression gives: how its literals are read. */
    private static String exprKind(String expr) {
        return switch (expr) {
            case "meta mark", "ct mark" -> "mark";
            case "meta nfproto" -> "nfproto";
            case "meta l4proto" -> "l4proto";
            case "ct state" -> "ctstate";
            case "iifname", "oifname" -> "ifname";
            case "ip saddr", "ip daddr" -> "ipv4";
            case "ip6 saddr", "ip6 daddr" -> "ipv6";
            case "th dport", "th sport", "tcp dport", "tcp sport", "udp dport", "udp sport" -> "port";
            case "icmp type" -> "icmp_type";
            case "icmpv6 type" -> "icmpv6_type";
            case "icmp code", "icmpv6 code" -> "number";
            default -> throw new AssertionError("unknown expression " + expr);
        };
    }

    /** The packet's value of a field in this family's hooks, or null when it has no such field. */
    private Value read(String family, String expr, Flight f) {
        Packet p = f.p;
        String kind = exprKind(expr);
        BigInteger n = switch (expr) {
            case "meta mark" -> BigInteger.valueOf(f.mark);
            case "ct mark" -> BigInteger.valueOf(f.ctMark);
            case "meta nfproto" -> BigInteger.valueOf(p.v4() ? 2 : 10);
            case "meta l4proto" -> BigInteger.valueOf(p.proto());
            case "ct state" -> BigInteger.valueOf(8); // new
            case "iifname" -> ifname(family.equals("inet") && mode == HostMode.BRIDGED ? BRIDGE : p.iface());
            case "oifname" -> throw new AssertionError("oifname: the evaluator knows no output interface");
            case "ip saddr" -> p.v4() ? value(p.src()) : null;
            case "ip daddr" -> p.v4() ? value(p.dst()) : null;
            case "ip6 saddr" -> p.v4() ? null : value(p.src());
            case "ip6 daddr" -> p.v4() ? null : value(p.dst());
            // th reads the transport header whatever it is: for other protocols a value no key holds.
            case "th dport" -> BigInteger.valueOf(p.proto() == 6 || p.proto() == 17 ? p.port() : -1);
            case "th sport" -> BigInteger.valueOf(p.proto() == 6 || p.proto() == 17 ? p.sport() : -1);
            case "tcp dport" -> p.proto() == 6 ? BigInteger.valueOf(p.port()) : null;
            case "tcp sport" -> p.proto() == 6 ? BigInteger.valueOf(p.sport()) : null;
            case "udp dport" -> p.proto() == 17 ? BigInteger.valueOf(p.port()) : null;
            case "udp sport" -> p.proto() == 17 ? BigInteger.valueOf(p.sport()) : null;
            // icmp type/code imply meta l4proto icmp (ipv6-icmp) and the family: nft adds both.
            case "icmp type" -> p.v4() && p.proto() == 1 ? BigInteger.valueOf(p.icmpType()) : null;
            case "icmp code" -> p.v4() && p.proto() == 1 ? BigInteger.valueOf(p.icmpCode()) : null;
            case "icmpv6 type" -> !p.v4() && p.proto() == 58 ? BigInteger.valueOf(p.icmpType()) : null;
            case "icmpv6 code" -> !p.v4() && p.proto() == 58 ? BigInteger.valueOf(p.icmpCode()) : null;
            default -> throw new AssertionError("unknown expression " + expr);
        };
        return n == null ? null : new Value(kind, n);
    }

    private static void write(String expr, Value v, Flight f) {
        switch (expr) {
            case "meta mark" -> f.mark = v.number().longValueExact();
            case "ct mark" -> f.ctMark = v.number().longValueExact();
            default -> throw new AssertionError("cannot set " + expr);
        }
    }

    /** The element of a named set or map matching a key, or null. */
    private Element lookup(String family, String name, List<String> exprs, List<Value> key) {
        SetDef s = named.getOrDefault(family, Map.of()).get(name);
        if (s == null) {
            throw new AssertionError("lookup of a missing set " + family + " " + name);
        }
        String[] types = s.type().split(" : ")[0].split(" \\. ");
        if (types.length != key.size()) {
            throw new AssertionError("key " + exprs + " has " + key.size() + " fields, set " + name + " of type " + s.type());
        }
        for (int k = 0; k < types.length; k++) {
            String want = typeKind(types[k]);
            if (!want.equals(key.get(k).kind()) && !(want.equals("number") && key.get(k).kind().equals("port"))) {
                throw new AssertionError("field " + exprs.get(k) + " (" + key.get(k).kind() + ") looked up in " + name + " of type " + s.type());
            }
        }
        for (Element e : s.elements()) {
            boolean all = true;
            for (int k = 0; k < key.size() && all; k++) {
                String field = e.fields().get(k);
                if (!s.interval() && (field.contains("/") || field.matches(".*\\d-\\d.*") && !key.get(k).kind().equals("ifname"))) {
                    throw new AssertionError("range " + field + " in the set " + name + " without flags interval");
                }
                if (exprs.get(k).contains(" & ") && !literal(key.get(k).kind(), field).equals(
                        literal(key.get(k).kind(), field).and(literal(key.get(k).kind(), exprs.get(k).substring(exprs.get(k).indexOf("& ") + 2))))) {
                    throw new AssertionError("element " + field + " of a masked key " + exprs.get(k) + " is not the first address of its prefix");
                }
                all = within(key.get(k).kind(), field, key.get(k));
            }
            if (all) {
                return e;
            }
        }
        return null;
    }

    private static String typeKind(String type) {
        return switch (type) {
            case "mark" -> "mark";
            case "ifname" -> "ifname";
            case "ipv4_addr" -> "ipv4";
            case "ipv6_addr" -> "ipv6";
            case "inet_proto" -> "l4proto";
            case "inet_service" -> "port";
            case "icmp_type" -> "icmp_type";
            case "icmpv6_type" -> "icmpv6_type";
            case "icmp_code", "icmpv6_code" -> "number";
            default -> throw new AssertionError("unknown set type " + type);
        };
    }

    /** Whether a value lies in what a literal (one value, a prefix or a {@code lo-hi} range) denotes. */
    private static boolean within(String kind, String literal, Value v) {
        if (kind.equals("ipv4") || kind.equals("ipv6")) {
            if (literal.contains(":") != kind.equals("ipv6")) {
                throw new AssertionError("address " + literal + " where an " + kind + " is read");
            }
            BigInteger[] r = range(literal);
            return r[0].compareTo(v.number()) <= 0 && v.number().compareTo(r[1]) <= 0;
        }
        if (!kind.equals("ifname") && !kind.equals("ctstate")) {
            int dash = literal.indexOf('-', 1);
            if (dash > 0 && Character.isDigit(literal.charAt(dash - 1)) && Character.isDigit(literal.charAt(dash + 1))) {
                BigInteger lo = literal(kind, literal.substring(0, dash));
                BigInteger hi = literal(kind, literal.substring(dash + 1));
                return lo.compareTo(v.number()) <= 0 && v.number().compareTo(hi) <= 0;
            }
        }
        if (kind.equals("ctstate")) {
            boolean hit = false;
            for (String s : literal.split(",")) {
                hit |= literal(kind, s).equals(v.number());
            }
            return hit;
        }
        return literal(kind, literal).equals(v.number());
    }

    /** A literal of a kind as a number. */
    private static BigInteger literal(String kind, String text) {
        return switch (kind) {
            case "mark" -> new BigInteger(text.startsWith("0x") ? text.substring(2) : text, text.startsWith("0x") ? 16 : 10);
            case "nfproto" -> BigInteger.valueOf(switch (text) {
                case "ipv4" -> 2;
                case "ipv6" -> 10;
                default -> throw new AssertionError("nfproto " + text);
            });
            case "l4proto" -> BigInteger.valueOf(protoNumber(text));
            case "ctstate" -> BigInteger.valueOf(switch (text) {
                case "invalid" -> 1;
                case "established" -> 2;
                case "related" -> 4;
                case "new" -> 8;
                case "untracked" -> 64;
                default -> throw new AssertionError("ct state " + text);
            });
            case "ifname" -> ifname(text);
            case "ipv4", "ipv6" -> value(text);
            case "port", "number" -> new BigInteger(text);
            case "icmp_type" -> BigInteger.valueOf(text.matches("\\d+") ? Integer.parseInt(text) : switch (text) {
                case "echo-reply" -> 0;
                case "destination-unreachable" -> 3;
                case "echo-request" -> 8;
                default -> throw new AssertionError("icmp type " + text);
            });
            case "icmpv6_type" -> BigInteger.valueOf(text.matches("\\d+") ? Integer.parseInt(text) : icmpv6Type(text));
            default -> throw new AssertionError("literal of kind " + kind);
        };
    }

    static int icmpv6Type(String name) {
        return switch (name) {
            case "destination-unreachable" -> 1;
            case "echo-request" -> 128;
            case "echo-reply" -> 129;
            case "mld-listener-query" -> 130;
            case "mld-listener-report" -> 131;
            case "mld-listener-done", "mld-listener-reduction" -> 132;
            case "nd-router-solicit" -> 133;
            case "nd-router-advert" -> 134;
            case "nd-neighbor-solicit" -> 135;
            case "nd-neighbor-advert" -> 136;
            case "nd-redirect" -> 137;
            case "mld2-listener-report" -> 143;
            default -> throw new AssertionError("icmpv6 type " + name);
        };
    }

    private static BigInteger ifname(String name) {
        return new BigInteger(1, name.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
    }

    /** A rule split into nft's tokens: words, a quoted string, a {@code { ... }} set as one token. */
    static List<String> tokens(String rule) {
        List<String> out = new ArrayList<>();
        int i = 0;
        while (i < rule.length()) {
            char c = rule.charAt(i);
            if (c == ' ') {
                i++;
            } else if (c == '"') {
                int end = rule.indexOf('"', i + 1);
                out.add(rule.substring(i, end + 1));
                i = end + 1;
            } else if (c == '{') {
                int end = rule.indexOf('}', i);
                out.add(rule.substring(i, end + 1));
                i = end + 1;
            } else {
                int end = rule.indexOf(' ', i);
                end = end < 0 ? rule.length() : end;
                out.add(rule.substring(i, end));
                i = end;
            }
        }
        return out;
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
