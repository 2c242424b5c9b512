package io.egressctl.core.render;

import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.hash.CanonicalHash;
import io.egressctl.core.memo.BoundedMemo;
import io.egressctl.core.model.Action;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.Protocol;
import io.egressctl.core.nft.NftChain;
import io.egressctl.core.nft.NftElement;
import io.egressctl.core.nft.NftRuleset;
import io.egressctl.core.nft.NftScript;
import io.egressctl.core.nft.NftSet;
import io.egressctl.core.nft.NftTable;
import io.egressctl.core.render.AddressSpans.Span;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Renders a host's fragments into one nftables script that replaces the product's tables in a single
 * transaction: it creates each table if absent, deletes it and defines it anew, so the kernel never
 * sees half a ruleset (invariant 5), and no other table is touched.
 *
 * <h2>A VM is its interface</h2>
 * A VM is known on its host by the interface it is plugged into, never by the source address its
 * guest sends from (invariant 8). Every VM interface of the host gets a packet mark
 * ({@link #marks}); on a {@link HostMode#ROUTED routed} host the inet table's prerouting chain sets it
 * from {@code iifname}, on a {@link HostMode#BRIDGED bridged} host a {@code table bridge egressctl}
 * prerouting chain sets it from the bridge port (in the inet hooks {@code iifname} is the bridge).
 * Everything below keys on that mark, so networks may share addresses on one host.
 *
 * <h2>Layout: a few lookups into shared sets, not a chain per VM</h2>
 * nft's cost (applying and listing) is about per kernel rule; set elements are far cheaper. So every
 * rule becomes set elements keyed by the mark of the VM's interface, and the vm chain holds only a
 * few dozen lookups:
 * <pre>
 * table inet egressctl
 *   set l&lt;L&gt;_&lt;shape&gt;&lt;4|6&gt;[_dst[&lt;len&gt;]][_b&lt;B&gt;]   one element per rule, VM and destination range,
 *                                        commented "r=&lt;rule id&gt; h=&lt;rule hash&gt;"; counter
 *                                        when rule counters are on
 *       key: mark [. daddr] then by shape
 *         all:   nothing more                       (every protocol)
 *         proto: . l4proto                          (tcp/udp without ports, ICMP without a type)
 *         port:  . l4proto . dport                  (tcp/udp with a port or port range)
 *         type:  . icmp(v6) type                    (any code)
 *         code:  . icmp(v6) type . icmp(v6) code
 *       daddr only when the rule has destinations or exceptions ("_dst"), else the lookup names the
 *       family ({@code meta nfproto ipv4}); flags interval when the key holds a range (destination or
 *       port), a plain hash set otherwise. A destination that is one prefix of length len, with exact
 *       other fields (one port, no port, an ICMP type), is an exact key instead: its first address, in
 *       a hash set "_dst&lt;len&gt;" whose lookup masks the packet's address
 *       ({@code ip daddr & 255.255.255.0}); hash elements cost nft and the kernel less than interval ones
 *   map ports (routed hosts)         interface name : mark
 *   map towards (routed hosts)       interface name : the port's towards mark T(m) = 0x44.. | (m &amp; 0xffffff)
 *   set vms, blocked                 the marks; the marks of interfaces several VMs claim
 *   set own                          m . m (flows the port started), m . T(m) (flows started towards it)
 *   set addr4 / addr6                mark . the VM's address: the source check (anti-spoofing)
 *   map def                          mark : accept | drop (the network's default), counter,
 *                                    commented "net &lt;network&gt; vm &lt;vm&gt;"
 *   chain prerouting (routed hosts)  meta mark set iifname map @ports
 *   chain forward (hook forward)     (routed) a packet with mark 0 towards a VM port gets T(m);
 *                                    meta mark @vms jump vm: interfaces that are no VM's are untouched;
 *                                    a new flow towards a VM (non-tcp, or a tcp SYN: not a flow
 *                                    picked up mid-stream) gets ct mark T(m)
 *   chain vm                         an interface several VMs claim dropped; ct state new ct mark set
 *                                    meta mark; established flows whose meta mark . ct mark is in
 *                                    own accepted (else decided by the rules); DHCP / ND from unspecified
 *                                    and link-local sources accepted; a source that is not the
 *                                    port's address dropped and counted; one lookup per set, in layer
 *                                    order, verdict drop (even layers) or accept (odd layers),
 *                                    commented with layer, verdict, shape and family;
 *                                    meta mark vmap @def
 * table bridge egressctl (bridged hosts)
 *   map ports; chain prerouting (priority -300)   meta mark set iifname map @ports
 *   map towards; chain forward (priority -200)    T(m) for packets towards a port (oifname there is the port)
 * </pre>
 * A VM whose placement names no interface cannot be told apart and gets nothing; an interface two VMs
 * claim gets a drop default and no addresses (fail closed). Both are in {@link Plan#unenforced()}.
 *
 * Keys carry no wildcard field ({@code 0.0.0.0/0}, {@code 0-65535}): the kernel's cost per element
 * grows with wildcards and ranges, so a field that would match everything is left out of the key and
 * the rule goes to the set of the narrower shape. A destination list minus its exceptions is
 * computed here as disjoint address ranges (a prefix where the range is one, {@code a-b} otherwise),
 * one element each.
 *
 * <h2>Layers, and why the first matching rule still decides</h2>
 * For each VM and address family the VM's rules are walked in evaluation order and each rule j gets
 * a layer: the smallest layer of j's verdict (even = DENY, odd = ALLOW) that is greater than the
 * layer of every earlier rule i of the VM with the <em>other</em> verdict whose match overlaps j's
 * (same family; protocols overlap, {@code all} overlapping every protocol; port or ICMP type/code
 * ranges intersect; destination ranges, exceptions applied, intersect). The chain looks the layers
 * up in increasing order, and every element of a layer carries the layer's verdict.
 *
 * <p>Before layering, a box (one destination range of a rule) that lies inside a box of an earlier
 * rule of the same VM is dropped: every packet it matches, that earlier rule matches too, so the rule
 * is never the first match for it. The reduced rule list gives every packet the same first match as
 * the original (by induction over the dropped boxes), and the claim below is about the reduced list.
 * Identical boxes (a rule repeated, or one ICMP rule written twice) are the common case; a rule left
 * with no box has no element at all.
 *
 * <p>Claim: for a packet p from VM v, the first lookup that matches gives the verdict of the first
 * of v's rules (in fragment order) that matches p, and when none does, no lookup matches and the
 * default map decides. Proof: the elements of a rule match exactly the packets from v its boxes
 * match, so with no matching rule no element matches. Otherwise let j be the first matching rule
 * and consider any matching rule i with layer(i) &lt;= layer(j). Rules of one layer share its verdict.
 * If layer(i) &lt; layer(j) and verdict(i) != verdict(j), i and j overlap (p matches both); i cannot
 * come before j (j is the first match), so i comes after j, and an overlapping later rule of the
 * other verdict was put in a layer above layer(j): contradiction. So every matching element in
 * layers up to layer(j) has verdict(j), j's own elements are in layer(j), and the first lookup that
 * matches, whichever of its elements matched, answers verdict(j). Earlier rules of the same verdict
 * need no ordering: whichever of them matches first gives the same answer. Lookups of one layer may
 * come in any order for the same reason. ∎
 *
 * <h2>Merged boxes</h2>
 * After layering, the boxes of one VM in one layer all carry the layer's verdict, so only their union
 * matters to the claim above: boxes bound for interval sets that touch along one dimension and agree
 * on the others become one (port ranges of one protocol to the same destinations, then destination
 * ranges with the same protocol and ports, a few rounds), and a box inside such a union is dropped.
 * Exact keys are left as they are (a hash element costs the kernel less than any range). The merged
 * element's comment names every rule it stands for ({@code r=a h=.. r=b h=..}, then {@code +n} past
 * nft's comment limit). Overlapping port ranges of one VM, common in real policies, thus cost one
 * interval element instead of one per rule and bucket.
 *
 * <h2>Interval sets refuse overlapping elements</h2>
 * The kernel's concatenated interval sets (pipapo) refuse an element that overlaps one already in the
 * set (File exists), and any set an identical one. Elements of different VMs never overlap (the
 * source address differs); identical boxes of one VM are gone (see above); a box that overlaps one
 * already placed in its set goes to the next "bucket": another set ({@code _b1}, {@code _b2}, ...)
 * with its own lookup in the same layer.
 *
 * <p>Names are stable (layer, shape, family, bucket; maps and the chain fixed), so a change of one
 * rule changes a few elements and an enforcer can send {@code delete element}/{@code add element}
 * instead of the whole table. Layers, buckets and sets depend only on each VM's own rules, so a
 * rule's elements are the same whatever else the host holds.
 *
 * <p>Limits: the number of layers grows with alternations of overlapping ALLOW and DENY rules of one
 * VM (each adds a layer, and each layer up to six lookups plus buckets); ordinary policies ("allow
 * these, deny the rest" or the reverse) need one or two. Layering is quadratic in the rules of one
 * VM, computed once per distinct list of rules in a network.
 *
 * Only typed, validated values reach the output (addresses, numbers, enum keywords, ids matching
 * {@code [A-Za-z0-9._:-]}); tenant text such as descriptions is never rendered. Thread-safe; the
 * output depends on the fragments alone, while the renderer remembers the plans of the networks it
 * rendered last, so that the next render of the same host plans only the networks that changed.
 *
 * <p>Header notes: the script starts with {@code #} lines (the host's hash, then one
 * {@code # shadowed: ...} note per rule left without an element for a VM). They are for people and
 * tools reading the script; nft skips them, and {@link #kernelInput} leaves them out of what it is
 * sent, since nft's scanner reads every byte of a comment (on a 10,000-rule host the notes were a
 * third of the script and a tenth of nft's time).
 */
public final class NftRenderer {

    /** Name of the product's own table. */
    public static final String TABLE = "egressctl";
    /** Address family of the table. */
    public static final String FAMILY = "inet";
    /** Longest comment nft accepts (libnftnl's NFTNL_UDATA_COMMENT_MAXLEN). */
    private static final int MAX_COMMENT = 128;

    private final boolean ruleCounters;
    private final HostMode mode;
    /**
     * The last plan of each network of the host rendered last, by network id: a host's update changes
     * a network or two, so the others are not planned again. Only networks of the latest render are
     * kept, so it holds one host's plans at most.
     */
    private final Map<String, NetworkPlan> lastPlans = new java.util.concurrent.ConcurrentHashMap<>();

    /**
     * A network's fragment, its plan and its hash. The hash is kept with the plan because a
     * fragment is a record: its {@code hashCode}, which a memo keyed by fragments pays on every
     * look-up, walks every rule, and the host hash needs every network's hash on every render.
     */
    private record NetworkPlan(Fragment fragment, List<VmPlan> vms, String hash) {
    }

    /** A renderer for a routed host without per-rule counters (see {@link #NftRenderer(boolean, HostMode)}). */
    public NftRenderer() {
        this(false, HostMode.ROUTED);
    }

    /** A renderer for a routed host. */
    public NftRenderer(boolean ruleCounters) {
        this(ruleCounters, HostMode.ROUTED);
    }

    /**
     * @param mode         how the host plugs its VMs in (where a packet's interface can be seen)
     * @param ruleCounters give every rule's set elements a packet and byte counter. Off by default:
     *                     a counter is a per-CPU allocation in the kernel for every element (on a
     *                     host with many cores, megabytes at 10,000 rules) and it costs nft about
     *                     a sixth of a full apply (measured by {@code ./egressctl bench agent}). The
     *                     default-verdict maps count per VM either way.
     */
    public NftRenderer(boolean ruleCounters, HostMode mode) {
        this.ruleCounters = ruleCounters;
        this.mode = java.util.Objects.requireNonNull(mode, "mode");
    }

    /** Where this renderer's table sees a VM's interface. */
    public HostMode mode() {
        return mode;
    }

    /** Whether rule elements carry counters. */
    public boolean ruleCounters() {
        return ruleCounters;
    }

    /** What a rule matches besides addresses. */
    enum Kind {
        /** tcp or udp (protocol 6 or 17) and a destination port range. */
        PORT,
        /** ICMP (protocol 1) or ICMPv6 (58), a type range and a code range. */
        ICMP,
        /** Every protocol. */
        ALL
    }

    /**
     * The key of a set: the source address, then only the fields that narrow the match, so no element
     * carries a wildcard field (the kernel's cost per element grows with wildcards and ranges).
     */
    public enum Shape {
        /** Every protocol: the source (and destination) address only. */
        ALL("all"),
        /** A protocol as a whole: tcp or udp without ports, ICMP without a type. */
        PROTO("proto"),
        /** tcp or udp and a destination port range. */
        PORT("port"),
        /** An ICMP type, any code. */
        TYPE("type"),
        /** An ICMP type and code. */
        CODE("code");

        private final String word;

        Shape(String word) {
            this.word = word;
        }

        public String word() {
            return word;
        }
    }

    /**
     * What a rule matches for one address family, the VM's source address aside: a destination range
     * and, by kind, a protocol ({@code proto}: 6, 17, 1 or 58) with a port range ({@code x}) or an
     * ICMP type range ({@code x}) and code range ({@code y}). Inclusive ranges.
     */
    record Box(Kind kind, Span dst, int proto, int x0, int x1, int y0, int y1) {

        boolean overlaps(Box o) {
            if (!dst.intersects(o.dst)) {
                return false;
            }
            if (kind == Kind.ALL || o.kind == Kind.ALL) {
                return true;
            }
            return proto == o.proto && x0 <= o.x1 && o.x0 <= x1 && y0 <= o.y1 && o.y0 <= y1;
        }

        /** True when every packet this box matches, {@code o} matches too. */
        boolean within(Box o) {
            if (!o.dst.contains(dst)) {
                return false;
            }
            if (o.kind == Kind.ALL) {
                return true;
            }
            return kind != Kind.ALL && proto == o.proto && o.x0 <= x0 && x1 <= o.x1 && o.y0 <= y0 && y1 <= o.y1;
        }

        boolean anywhere() {
            return dst.isAll();
        }

        /**
         * The prefix length under which this box is one exact key, or -1: a destination that is one
         * prefix (not everything) and, for ports, one port. Such a box is keyed by the destination
         * address masked to that length and goes to a hash set ({@code _dst<length>}); any other box
         * with a destination needs an interval set.
         */
        int exactPrefix() {
            if (anywhere()) {
                return -1;
            }
            boolean exact = switch (shape()) {
                case ALL, PROTO -> true;
                case PORT, TYPE -> x0 == x1;
                case CODE -> x0 == x1 && y0 == y1;
            };
            return exact ? AddressSpans.prefixLength(dst) : -1;
        }

        Shape shape() {
            return switch (kind) {
                case ALL -> Shape.ALL;
                case PORT -> x0 == 0 && x1 == 65535 ? Shape.PROTO : Shape.PORT;
                case ICMP -> x0 == 0 && x1 == 255 ? Shape.PROTO : y0 == 0 && y1 == 255 ? Shape.TYPE : Shape.CODE;
            };
        }

        /**
         * The key after the source address (with its leading separator), as nft reads it; with
         * {@code exact} the destination is its first address (the lookup masks the packet's).
         */
        String keyTail(Map<Span, String> spanTexts, boolean exact) {
            StringBuilder sb = new StringBuilder(48);
            if (!anywhere()) {
                sb.append(" . ").append(exact ? AddressSpans.address(dst.lo(), dst.v4()) : spanTexts.computeIfAbsent(dst, AddressSpans::text));
            }
            Shape shape = shape();
            if (shape == Shape.PROTO || shape == Shape.PORT) {
                sb.append(" . ").append(switch (proto) {
                    case 6 -> "tcp";
                    case 17 -> "udp";
                    case 1 -> "icmp";
                    default -> "ipv6-icmp";
                });
            }
            if (shape == Shape.PORT && !exact) {
                // An interval set (nft 1.0.6 cannot delete an element of a mark-keyed interval set
                // whose fields are all single values; written as a range, it can).
                sb.append(" . ").append(x0).append('-').append(x1);
            } else if (shape == Shape.PORT || shape == Shape.TYPE || shape == Shape.CODE) {
                sb.append(" . ").append(range(x0, x1));
            }
            if (shape == Shape.CODE) {
                sb.append(" . ").append(range(y0, y1));
            }
            return sb.toString();
        }

        private static String range(int lo, int hi) {
            return lo == hi ? Integer.toString(lo) : lo + "-" + hi;
        }
    }

    /**
     * One named set and the lookup rule that uses it. {@code prefix} is -1 for a set keyed by
     * destination ranges (or without destination), else the length its exact destination keys are
     * masked to.
     */
    public record LookupSet(int layer, Shape shape, boolean v4, boolean dst, int prefix, int bucket, List<NftElement> elements) {

        public String name() {
            return "l" + layer + "_" + shape.word() + (v4 ? "4" : "6") + (dst ? "_dst" : "") + (prefix < 0 ? "" : Integer.toString(prefix))
                    + (bucket == 0 ? "" : "_b" + bucket);
        }

        public boolean deny() {
            return layer % 2 == 0;
        }

        /** Whether the key has a range field (destination or port): an interval set. */
        public boolean interval() {
            return prefix < 0 && (dst || shape == Shape.PORT);
        }

        public String type() {
            String a = v4 ? "ipv4_addr" : "ipv6_addr";
            StringBuilder t = new StringBuilder("mark");
            if (dst) {
                t.append(" . ").append(a);
            }
            switch (shape) {
                case PROTO -> t.append(" . inet_proto");
                case PORT -> t.append(" . inet_proto . inet_service");
                case TYPE -> t.append(v4 ? " . icmp_type" : " . icmpv6_type");
                case CODE -> t.append(v4 ? " . icmp_type . icmp_code" : " . icmpv6_type . icmpv6_code");
                default -> {
                }
            }
            return t.toString();
        }

        /** The forward chain's rule that looks packets up in this set. */
        public String lookup() {
            String ip = v4 ? "ip" : "ip6";
            String icmp = v4 ? "icmp" : "icmpv6";
            // The key starts with the mark of the VM's interface. Without a destination address
            // nothing else in the key names the family (tcp, udp and port are the same in both), so
            // the lookup says it.
            StringBuilder k = new StringBuilder(dst ? "" : v4 ? "meta nfproto ipv4 " : "meta nfproto ipv6 ").append("meta mark");
            if (dst) {
                k.append(" . ").append(ip).append(" daddr");
                if (prefix >= 0 && prefix < (v4 ? 32 : 128)) {
                    k.append(" & ").append(AddressSpans.mask(prefix, v4));
                }
            }
            switch (shape) {
                case PROTO -> k.append(" . meta l4proto");
                case PORT -> k.append(" . meta l4proto . th dport");
                case TYPE -> k.append(" . ").append(icmp).append(" type");
                case CODE -> k.append(" . ").append(icmp).append(" type . ").append(icmp).append(" code");
                default -> {
                }
            }
            return k + " @" + name() + " " + (deny() ? "drop" : "accept") + " comment \"layer " + layer + " "
                    + (deny() ? "deny" : "allow") + " " + shape.word() + " ipv" + (v4 ? "4" : "6")
                    + (dst ? " by destination" : "") + (prefix < 0 ? "" : " /" + prefix) + (bucket == 0 ? "" : " bucket " + bucket) + "\"";
        }

        /**
         * Lookup order: layer, then shape, family, destination, exact prefix, bucket (any order within
         * a layer is right).
         */
        static long sortKey(int layer, Shape shape, boolean v4, boolean dst, int prefix, int bucket) {
            return ((((((long) layer * 5 + shape.ordinal()) * 2 + (v4 ? 0 : 1)) * 2 + (dst ? 1 : 0)) * 130 + prefix + 1) << 24) + bucket;
        }
    }

    /**
     * The whole layout of a host: rule sets in lookup order, the host's VM ports (interface, mark,
     * VM), the VMs it does not enforce and why, and the rules left without an element for a VM because
     * earlier rules of that VM decide every packet they match (one note each, for the script's header).
     */
    public record Plan(List<LookupSet> sets, List<Port> ports, List<Unenforced> unenforced, List<String> shadowed) {

        /** Networks with a VM this plan does not enforce: the host's applied hash and report leave them out. */
        public Set<String> unenforcedNetworks() {
            Set<String> out = new java.util.TreeSet<>();
            unenforced.forEach(u -> out.add(u.networkId()));
            return out;
        }
    }

    /**
     * A VM of the host's fragments that the plan renders no rules for, and why: its placement names no
     * interface (an event older than interface identity), or its interface is claimed by another VM
     * too (then the interface is rendered fail-closed: everything from it is dropped).
     */
    public record Unenforced(String networkId, String vmId, String reason) {
    }

    /**
     * One VM interface of the host and the mark its packets carry inside the table. {@code vmId} and
     * {@code networkId} are null for an interface claimed by several VMs (rendered fail-closed).
     */
    public static final class Port {
        private final int mark;
        private final String interfaceName;
        private final String networkId;
        private final String vmId;
        private final boolean keepEstablished;
        private final String defaultVerdict;
        private final VmPlan vm;

        Port(int mark, String interfaceName, VmPlan vm) {
            this.mark = mark;
            this.interfaceName = interfaceName;
            this.vm = vm;
            this.networkId = vm == null ? null : vm.networkId();
            this.vmId = vm == null ? null : vm.vmId();
            this.keepEstablished = vm != null && vm.keepEstablished();
            this.defaultVerdict = vm == null ? "drop" : vm.verdict();
        }

        public int mark() {
            return mark;
        }

        public String interfaceName() {
            return interfaceName;
        }

        public String networkId() {
            return networkId;
        }

        public String vmId() {
            return vmId;
        }

        public boolean keepEstablished() {
            return keepEstablished;
        }

        public String defaultVerdict() {
            return defaultVerdict;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Port p && mark == p.mark && interfaceName.equals(p.interfaceName) && java.util.Objects.equals(vm, p.vm);
        }

        @Override
        public int hashCode() {
            return mark * 31 + interfaceName.hashCode();
        }

        @Override
        public String toString() {
            return "Port[" + interfaceName + " " + markText() + " " + (vm == null ? "claimed twice" : networkId + "/" + vmId) + "]";
        }

        /** The mark as nft writes it. */
        public String markText() {
            return markText(mark);
        }

        static String markText(int mark) {
            return String.format("0x%08x", mark);
        }

        /** What decides this port's packets, as comparable keys: each rule element with its set, and the default. */
        Set<String> decisions() {
            Set<String> out = new HashSet<>();
            out.add("default " + defaultVerdict);
            if (vm != null) {
                for (FamilyPlan fam : new FamilyPlan[]{vm.v4(), vm.v6()}) {
                    if (fam == null) {
                        continue;
                    }
                    for (Placed p : fam.placed()) {
                        out.add(p.set() + (p.layer() % 2 == 0 ? " deny " : " allow ") + (fam.v4() ? "4" : "6") + p.keyTail());
                    }
                }
                out.add("addr " + vm.address4() + " " + vm.address6());
            }
            return out;
        }

        /** True unless every difference from {@code before} only lets more through (an allow added, a deny removed). */
        boolean mayBlockMoreThan(Port before) {
            if (before.vm == vm) {
                return false; // the same plan object: nothing changed
            }
            Set<String> was = before.decisions();
            Set<String> now = decisions();
            for (String d : now) {
                if (!was.contains(d) && !d.contains(" allow ")) {
                    return true;
                }
            }
            for (String d : was) {
                if (!now.contains(d) && !d.contains(" deny ")) {
                    return true;
                }
            }
            return false;
        }
    }

    /**
     * The ports whose established flows must end after {@code after} replaced {@code before}: ports
     * of networks without {@code keepEstablished} whose decisions may now block a flow they let
     * through (an element or default added, changed or removed, other than an added allow or a
     * removed deny), and ports that changed hands. A port new to the host has no flows of ours.
     * Conservative on purpose: ending an allowed flow's entry costs it nothing, its next packet is
     * decided again and accepted.
     */
    public static List<Port> portsToFlush(Plan before, Plan after) {
        if (before == null) {
            return List.of();
        }
        Map<String, Port> old = new HashMap<>();
        before.ports().forEach(p -> old.put(p.interfaceName(), p));
        List<Port> out = new ArrayList<>();
        for (Port p : after.ports()) {
            Port was = old.get(p.interfaceName());
            if (was == null || p.keepEstablished()) {
                continue;
            }
            boolean otherOwner = !java.util.Objects.equals(was.vmId(), p.vmId()) || !java.util.Objects.equals(was.networkId(), p.networkId())
                    || was.mark() != p.mark();
            if (otherOwner || p.mayBlockMoreThan(was)) {
                out.add(p);
            }
        }
        return out;
    }

    /** Renders the full replacement script for a host. */
    public String render(String hostId, SortedMap<String, Fragment> fragments) {
        return render(hostId, fragments, plan(fragments));
    }

    /** Renders the full replacement script for a host from its plan ({@link #plan(SortedMap)} of the same fragments). */
    public String render(String hostId, SortedMap<String, Fragment> fragments, Plan plan) {
        return NftScript.script(ruleset(hostId, fragments, plan));
    }

    /**
     * The host's ruleset as values (see {@link NftRuleset}): the tables of {@code plan}, and notes for
     * readers: the host and its hash, then one line per VM left unenforced and per rule left without
     * an element for a VM.
     */
    public NftRuleset ruleset(String hostId, SortedMap<String, Fragment> fragments, Plan plan) {
        List<String> notes = new ArrayList<>(1 + plan.unenforced().size() + plan.shadowed().size());
        notes.add("egressctl host " + safe(hostId) + " hash " + hostHash(fragments) + " mode " + mode.name().toLowerCase(java.util.Locale.ROOT));
        for (Unenforced u : plan.unenforced()) {
            notes.add("unenforced: net " + safe(u.networkId()) + " vm " + safe(u.vmId()) + ": " + u.reason().replace('\n', ' '));
        }
        for (String note : plan.shadowed()) {
            notes.add("shadowed: " + note);
        }
        return new NftRuleset(tables(plan), notes);
    }

    /** The host's ruleset of its fragments ({@link #ruleset(String, SortedMap, Plan)} of their plan). */
    public NftRuleset ruleset(String hostId, SortedMap<String, Fragment> fragments) {
        return ruleset(hostId, fragments, plan(fragments));
    }

    /**
     * What nft needs of a rendered script: the script from its first statement on, without the
     * header notes (see the class comment). The script itself when it has no header.
     */
    public static String kernelInput(String script) {
        if (!script.startsWith("#")) {
            return script;
        }
        int at = script.indexOf("\ntable ");
        return at < 0 ? script : script.substring(at + 1);
    }

    /** The tables' blocks ({@code table inet egressctl { ... }}, and the bridge table's on a bridged host). */
    public String renderTable(SortedMap<String, Fragment> fragments) {
        return NftScript.blocks(new NftRuleset(tables(plan(fragments)), List.of()));
    }

    /** Mark of the VM ports: the high byte tags the product's marks, the low 24 bits tell ports apart. */
    static final int MARK_TAG = 0x45000000;
    /**
     * Mark of packets towards a VM port ({@link #towards}): the port's low 24 bits under this tag. A
     * flow started towards the port is stamped with it, and {@code own} holds {@code m . T(m)}, so the
     * VM's replies in it pass, and no other port's packets do.
     */
    static final int TOWARDS_TAG = 0x44000000;

    /** The mark of packets towards the port with mark {@code m}. */
    static int towards(int m) {
        return TOWARDS_TAG | (m & 0x00FFFFFF);
    }

    /** The rules that let a VM work whatever its rules say, before the source check: unspecified and link-local sources. */
    static final List<String> BEFORE_SOURCE_CHECK = List.of(
            "ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept comment \"dhcp from no address\"",
            "ip6 saddr { ::, fe80::/10 } icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld2-listener-report } accept comment \"neighbour discovery from link-local\"",
            "ip6 saddr fe80::/10 udp sport 546 udp dport 547 accept comment \"dhcpv6 from link-local\"");
    /**
     * The same needs from the VM's own addresses, after the source check: DHCP to the broadcast
     * address only (a client whose unicast renewal is dropped falls back to rebinding, broadcast) and
     * neighbour discovery with the hop limit ND itself requires (255: never routed, RFC 4861).
     */
    static final List<String> AFTER_SOURCE_CHECK = List.of(
            "ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept comment \"dhcp\"",
            "ip6 hoplimit 255 icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept comment \"neighbour discovery\"");

    /** The forward chain's rules after the jump: a new flow towards a VM is stamped with the port's towards mark. */
    static final List<String> STAMP_TOWARDS = List.of(
            "ct state new meta mark & 0xff000000 == 0x44000000 meta l4proto != tcp ct mark set meta mark",
            "ct state new meta mark & 0xff000000 == 0x44000000 tcp flags & (syn | ack) == syn ct mark set meta mark");
    /** Marks packets towards a VM port (routed: inet forward chain; bridged: bridge forward chain). */
    static final String MARK_TOWARDS = "meta mark 0x00000000 meta mark set oifname map @towards";

    /** The plan's tables: the inet table, and on a bridged host the bridge table. */
    private List<NftTable> tables(Plan plan) {
        List<NftSet> sets = new ArrayList<>(plan.sets().size() + 8);
        List<String> ruleSetHeader = new ArrayList<>(3);
        for (LookupSet s : plan.sets()) {
            ruleSetHeader.clear();
            ruleSetHeader.add("type " + s.type());
            if (s.interval()) {
                ruleSetHeader.add("flags interval");
            }
            if (ruleCounters) {
                ruleSetHeader.add("counter");
            }
            sets.add(new NftSet(s.name(), false, ruleSetHeader, s.elements()));
        }
        int n = plan.ports().size();
        List<NftElement> ports = new ArrayList<>(n);
        List<NftElement> towards = new ArrayList<>(n);
        List<NftElement> blocked = new ArrayList<>();
        List<NftElement> vms = new ArrayList<>(n);
        List<NftElement> own = new ArrayList<>(2 * n);
        List<NftElement> addr4 = new ArrayList<>(n);
        List<NftElement> addr6 = new ArrayList<>(n);
        List<NftElement> defaults = new ArrayList<>(n);
        for (Port p : plan.ports()) {
            String m = p.markText();
            String name = "\"" + p.interfaceName() + "\"";
            ports.add(new NftElement(name, null, m));
            String t = Port.markText(towards(p.mark()));
            towards.add(new NftElement(name, null, t));
            vms.add(NftElement.of(m, null));
            own.add(NftElement.of(m + " . " + m, null));
            own.add(NftElement.of(m + " . " + t, null));
            if (p.vm == null) {
                blocked.add(NftElement.of(m, null));
            }
            String comment = p.vm == null ? "interface " + p.interfaceName() + " claimed twice" : p.vm.comment();
            if (p.vm != null && p.vm.address4() != null) {
                addr4.add(NftElement.of(m + " . " + p.vm.address4(), comment));
            }
            if (p.vm != null && p.vm.address6() != null) {
                addr6.add(NftElement.of(m + " . " + p.vm.address6(), comment));
            }
            defaults.add(new NftElement(m, comment, p.defaultVerdict()));
        }
        if (mode == HostMode.ROUTED) {
            sets.add(new NftSet("ports", true, List.of("type ifname : mark"), ports));
            sets.add(new NftSet("towards", true, List.of("type ifname : mark"), towards));
        }
        sets.add(new NftSet("vms", false, List.of("type mark"), vms));
        sets.add(new NftSet("blocked", false, List.of("type mark"), blocked));
        sets.add(new NftSet("own", false, List.of("type mark . mark"), own));
        sets.add(new NftSet("addr4", false, List.of("type mark . ipv4_addr"), addr4));
        sets.add(new NftSet("addr6", false, List.of("type mark . ipv6_addr"), addr6));
        sets.add(new NftSet("def", true, List.of("type mark : verdict", "counter"), defaults));
        List<NftChain> chains = new ArrayList<>(3);
        if (mode == HostMode.ROUTED) {
            chains.add(new NftChain("prerouting", "type filter hook prerouting priority raw; policy accept;",
                    List.of("meta mark set iifname map @ports")));
        }
        List<String> forward = new ArrayList<>(4);
        if (mode == HostMode.ROUTED) {
            forward.add(MARK_TOWARDS);
        }
        forward.add("meta mark @vms jump vm");
        forward.addAll(STAMP_TOWARDS);
        chains.add(new NftChain("forward", "type filter hook forward priority filter; policy accept;", forward));
        List<String> vm = new ArrayList<>(16 + plan.sets().size());
        vm.add("meta mark @blocked drop comment \"interface claimed by several VMs\"");
        vm.add("ct state new ct mark set meta mark");
        vm.add("ct state established,related meta mark . ct mark @own accept");
        vm.addAll(BEFORE_SOURCE_CHECK);
        vm.add("meta mark . ip saddr != @addr4 counter drop comment \"spoofed ipv4 source\"");
        vm.add("meta mark . ip6 saddr != @addr6 counter drop comment \"spoofed ipv6 source\"");
        vm.addAll(AFTER_SOURCE_CHECK);
        for (LookupSet s : plan.sets()) {
            vm.add(s.lookup());
        }
        vm.add("meta mark vmap @def");
        chains.add(new NftChain("vm", null, vm));
        List<NftTable> tables = new ArrayList<>(2);
        tables.add(new NftTable(FAMILY, TABLE, sets, chains));
        if (mode == HostMode.BRIDGED) {
            // Before br_netfilter's forward hook (priority 0) runs the inet forward chains: there
            // oifname is the bridge, here the bridge port.
            tables.add(new NftTable("bridge", TABLE,
                    List.of(new NftSet("ports", true, List.of("type ifname : mark"), ports),
                            new NftSet("towards", true, List.of("type ifname : mark"), towards)),
                    List.of(new NftChain("prerouting", "type filter hook prerouting priority -300; policy accept;",
                                    List.of("meta mark set iifname map @ports")),
                            new NftChain("forward", "type filter hook forward priority -200; policy accept;", List.of(MARK_TOWARDS)))));
        }
        return tables;
    }

    /**
     * What one rule adds to a host: an {@code add element} command per element of {@code ruleId},
     * then the vm chain's lookups of the sets they are in, then a {@code # shadowed: ...} note
     * (an nft comment) for each VM it gets no element for because earlier rules of that VM decide
     * every packet it matches. Empty when it covers no VM there or matches nothing.
     */
    public List<String> ruleStatements(SortedMap<String, Fragment> fragments, String ruleId) {
        String tag = "r=" + safe(ruleId) + " ";
        List<String> elements = new ArrayList<>();
        Set<String> lookups = new LinkedHashSet<>();
        Plan plan = plan(fragments);
        for (LookupSet s : plan.sets()) {
            for (NftElement e : s.elements()) {
                if (e.comment().startsWith(tag) || e.comment().contains(" " + tag)) {
                    elements.add("add element " + FAMILY + " " + TABLE + " " + s.name() + " { " + e.text() + " }");
                    lookups.add(s.lookup());
                }
            }
        }
        elements.addAll(lookups);
        for (String note : plan.shadowed()) {
            if (note.startsWith(tag)) {
                elements.add("# shadowed: " + note);
            }
        }
        return elements;
    }

    /** Hosts with at least this many rules and VMs (summed over networks) are planned in parallel. */
    private static final int PARALLEL_AT = 2_000;

    /**
     * The layered layout of a host (see the class comment). Networks are planned independently, in
     * parallel on a large host (the common fork-join pool); what depends on the whole host (the
     * marks of the interfaces, an interface claimed twice, the order of elements in a set) is settled
     * afterwards in network order, so the plan is the same either way.
     */
    public Plan plan(SortedMap<String, Fragment> fragments) {
        int size = 0;
        for (Fragment f : fragments.values()) {
            size += f.rules().size() + f.vms().size();
        }
        return plan(fragments, size >= PARALLEL_AT);
    }

    /** The network's plan: the one remembered when its fragment is unchanged, else a new one. */
    private List<VmPlan> networkPlan(Fragment f) {
        NetworkPlan last = lastPlans.get(f.networkId());
        // Fragments are immutable values: the same object (the common case) or an equal one.
        if (last != null && (last.fragment() == f || last.fragment().equals(f))) {
            return last.vms();
        }
        List<VmPlan> vms = planNetwork(f);
        lastPlans.put(f.networkId(), new NetworkPlan(f, vms, FRAGMENT_HASHES.get(f)));
        return vms;
    }

    /** {@link #plan(SortedMap)}, its networks planned in parallel or not. */
    Plan plan(SortedMap<String, Fragment> fragments, boolean parallel) {
        List<List<VmPlan>> networks = (parallel ? fragments.values().parallelStream() : fragments.values().stream())
                .map(this::networkPlan).toList();
        lastPlans.keySet().retainAll(fragments.keySet());
        List<Unenforced> unenforced = new ArrayList<>();
        // The VMs of every interface: a VM is its interface, so an interface claimed twice (two
        // networks' placements naming one tap on this host) can be neither's: it is rendered
        // fail-closed and both VMs are reported, whichever network sorts first.
        TreeMap<String, List<VmPlan>> byInterface = new TreeMap<>();
        for (List<VmPlan> network : networks) {
            for (VmPlan vm : network) {
                if (vm.interfaceName() == null) {
                    unenforced.add(new Unenforced(vm.networkId(), vm.vmId(),
                            "no interface in its placement (an event older than interface identity); re-send the placement with interfaceName"));
                } else {
                    byInterface.computeIfAbsent(vm.interfaceName(), k -> new ArrayList<>(1)).add(vm);
                }
            }
        }
        Map<String, Integer> marks = marks(byInterface.keySet());
        Map<Long, LookupSet> sets = new TreeMap<>();
        List<String> shadowed = new ArrayList<>();
        List<Port> ports = new ArrayList<>(byInterface.size());
        // Elements go into sets in network order (then VM order), as before interfaces: a port's
        // elements are the same whatever else the host holds, apart from its mark.
        Map<VmPlan, Port> portOf = new java.util.IdentityHashMap<>();
        for (Map.Entry<String, List<VmPlan>> e : byInterface.entrySet()) {
            int mark = marks.get(e.getKey());
            if (e.getValue().size() == 1) {
                Port p = new Port(mark, e.getKey(), e.getValue().get(0));
                portOf.put(e.getValue().get(0), p);
                ports.add(p);
            } else {
                StringBuilder who = new StringBuilder();
                for (VmPlan vm : e.getValue()) {
                    who.append(who.isEmpty() ? "" : ", ").append("vm ").append(vm.vmId()).append(" of network ").append(vm.networkId());
                }
                for (VmPlan vm : e.getValue()) {
                    unenforced.add(new Unenforced(vm.networkId(), vm.vmId(), "interface " + e.getKey()
                            + " is claimed by several VMs on this host (" + who + "): all its traffic is dropped"));
                }
                ports.add(new Port(mark, e.getKey(), null));
            }
        }
        for (List<VmPlan> network : networks) {
            for (VmPlan vm : network) {
                Port p = portOf.get(vm);
                if (p == null) {
                    continue;
                }
                String m = p.markText();
                if (vm.v4() != null) {
                    vm.v4().addTo(m, sets, shadowed);
                }
                if (vm.v6() != null) {
                    vm.v6().addTo(m, sets, shadowed);
                }
            }
        }
        return new Plan(List.copyOf(sets.values()), List.copyOf(ports), List.copyOf(unenforced), shadowed);
    }

    /**
     * A mark per interface: the tag in the high byte and 24 bits of the name's FNV-1a hash, the next
     * free value on a collision (names in order, so the result depends only on the set of names). A
     * mark stays the same while the interface stays on the host, so a change elsewhere does not touch
     * its elements; only a collision with a new name that sorts first can move it.
     */
    static Map<String, Integer> marks(Set<String> interfaceNames) {
        Map<String, Integer> out = new HashMap<>();
        Set<Integer> taken = new HashSet<>();
        for (String name : interfaceNames) {
            int h = 0x811c9dc5;
            for (int i = 0; i < name.length(); i++) {
                h ^= name.charAt(i);
                h *= 0x01000193;
            }
            int id = h & 0x00FFFFFF;
            while (id == 0 || !taken.add(id)) {
                id = (id + 1) & 0x00FFFFFF;
            }
            out.put(name, MARK_TAG | id);
        }
        return out;
    }

    /**
     * One VM of a network, planned: its interface (null: not enforceable), the network's default
     * verdict, the comment naming it, its addresses and per family its rule elements (null where it
     * has no address of that family).
     */
    record VmPlan(String networkId, String vmId, String interfaceName, boolean keepEstablished, String verdict, String comment,
                  String address4, String address6, FamilyPlan v4, FamilyPlan v6) {
    }

    /**
     * A VM in one family: its rule elements with the set each goes to (keys after the mark), and its
     * notes on rules left without one.
     */
    record FamilyPlan(boolean v4, List<Placed> placed, List<String> comments, List<String> shadowed, ElementMemo memo) {

        FamilyPlan(boolean v4, List<Placed> placed, List<String> comments, List<String> shadowed) {
            this(v4, placed, comments, shadowed, new ElementMemo());
        }

        void addTo(String mark, Map<Long, LookupSet> sets, List<String> notes) {
            List<NftElement> elements = memo.elements(mark, placed, comments);
            for (int i = 0; i < placed.size(); i++) {
                Placed p = placed.get(i);
                LookupSet s = sets.get(p.set());
                if (s == null) {
                    s = new LookupSet(p.layer(), p.shape(), v4, p.dst(), p.prefix(), p.bucket(), new ArrayList<>());
                    sets.put(p.set(), s);
                }
                s.elements().add(elements.get(i));
            }
            notes.addAll(shadowed);
        }
    }

    /**
     * A VM's elements for the mark they were last built with. A network's plan is kept while its
     * fragment is unchanged, and so are its elements: the next render of the host reuses the same
     * element values, and the enforcer's diff finds them equal at the cost of a reference comparison.
     * Not part of a plan's value (every memo equals every other).
     */
    static final class ElementMemo {
        private record Built(String mark, List<NftElement> elements) {
        }

        private volatile Built built;

        List<NftElement> elements(String mark, List<Placed> placed, List<String> comments) {
            Built b = built;
            if (b == null || !b.mark().equals(mark)) {
                List<NftElement> out = new ArrayList<>(placed.size());
                for (int i = 0; i < placed.size(); i++) {
                    out.add(NftElement.of(mark + placed.get(i).keyTail(), comments.get(i)));
                }
                b = new Built(mark, List.copyOf(out));
                built = b;
            }
            return b.elements();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof ElementMemo;
        }

        @Override
        public int hashCode() {
            return 0;
        }
    }

    /** The VMs of one network with their elements, in the network's VM order (no state shared with other networks). */
    private static List<VmPlan> planNetwork(Fragment f) {
        FragmentPlan fp = new FragmentPlan(f);
        String verdict = f.defaultPolicy() == DefaultPolicy.DENY ? "drop" : "accept";
        List<VmPlan> out = new ArrayList<>(f.vms().size());
        for (VmAddress vm : f.vms()) {
            String a4 = host(vm.ipv4(), true);
            String a6 = host(vm.ipv6(), false);
            String comment = "net " + safe(f.networkId()) + " vm " + safe(vm.vmId());
            // nft refuses the whole script when a comment is longer than this; two 64-character ids are.
            if (comment.length() > MAX_COMMENT) {
                comment = comment.substring(0, MAX_COMMENT);
            }
            String iface = vm.interfaceName();
            if (iface == null) {
                out.add(new VmPlan(f.networkId(), vm.vmId(), null, f.keepEstablished(), verdict, comment, a4, a6, null, null));
                continue;
            }
            BitSet covered = fp.covered(vm.vmId());
            String who = "vm " + safe(vm.vmId()) + " (" + iface + ")";
            out.add(new VmPlan(f.networkId(), vm.vmId(), iface, f.keepEstablished(), verdict, comment, a4, a6,
                    a4 == null ? null : fp.emit(covered, true, who),
                    a6 == null ? null : fp.emit(covered, false, who)));
        }
        return out;
    }

    /** A VM address as nft prints it, or null when absent or not a single address of the family. */
    private static String host(String address, boolean v4) {
        if (address == null) {
            return null;
        }
        try {
            Cidr c = Cidr.parse(address);
            return c.isIpv4() == v4 && c.isHost() ? c.addressText() : null;
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /** Where a box of a rule goes for a VM: its set (by sort key) and the key after the source address. */
    record Placed(int rule, List<Integer> alsoRules, int layer, Shape shape, boolean dst, int prefix, int bucket, long set, String keyTail) {
    }

    /** One fragment's rules, their boxes, and the placement per distinct list of covered rules. */
    private static final class FragmentPlan {

        private final Fragment fragment;
        private final Map<Cidr, Span> spans = new HashMap<>();
        private final Map<Span, String> spanTexts = new HashMap<>();
        private final List<List<Box>> boxes4;
        private final List<List<Box>> boxes6;
        private final String[] comments;
        private final Map<BitSet, List<Placed>> placed4 = new HashMap<>();
        private final Map<BitSet, List<Placed>> placed6 = new HashMap<>();
        private Map<String, BitSet> coveredByVm;

        FragmentPlan(Fragment f) {
            this.fragment = f;
            int n = f.rules().size();
            this.comments = new String[n];
            this.boxes4 = new ArrayList<>(java.util.Collections.nCopies(n, null));
            this.boxes6 = new ArrayList<>(java.util.Collections.nCopies(n, null));
        }

        /** The rules (indices, in order) that cover a VM. */
        BitSet covered(String vmId) {
            if (coveredByVm == null) {
                coveredByVm = new HashMap<>();
                List<CompiledRule> rules = fragment.rules();
                for (int i = 0; i < rules.size(); i++) {
                    for (String id : rules.get(i).vmIds()) {
                        coveredByVm.computeIfAbsent(id, k -> new BitSet()).set(i);
                    }
                }
            }
            return coveredByVm.getOrDefault(vmId, new BitSet());
        }

        private List<Box> boxes(int rule, boolean v4) {
            List<List<Box>> cache = v4 ? boxes4 : boxes6;
            List<Box> b = cache.get(rule);
            if (b == null) {
                b = NftRenderer.boxes(fragment.rules().get(rule), v4, spans);
                cache.set(rule, b);
            }
            return b;
        }

        private boolean deny(int rule) {
            return fragment.rules().get(rule).action() == Action.DENY;
        }

        private String comment(int rule) {
            if (comments[rule] == null) {
                CompiledRule r = fragment.rules().get(rule);
                comments[rule] = "r=" + safe(r.ruleId()) + " h=" + ruleHash(r);
            }
            return comments[rule];
        }

        /**
         * The rule elements of a VM ({@code who} names it in notes) covered by {@code rules}, and notes
         * on those left without one.
         */
        FamilyPlan emit(BitSet rules, boolean v4, String who) {
            List<Placed> placed = (v4 ? placed4 : placed6).computeIfAbsent(rules, r -> place(r, v4));
            BitSet withElements = new BitSet();
            placed.forEach(p -> {
                withElements.set(p.rule());
                p.alsoRules().forEach(withElements::set);
            });
            List<String> shadowed = new ArrayList<>(0);
            for (int rule = rules.nextSetBit(0); rule >= 0; rule = rules.nextSetBit(rule + 1)) {
                if (!withElements.get(rule) && !boxes(rule, v4).isEmpty()) {
                    shadowed.add(comment(rule) + " " + who + (v4 ? " ipv4" : " ipv6") + ": earlier rules decide every packet it matches");
                }
            }
            List<String> comments = new ArrayList<>(placed.size());
            for (Placed p : placed) {
                comments.add(p.alsoRules().isEmpty() ? comment(p.rule()) : mergedComment(p));
            }
            return new FamilyPlan(v4, placed, comments, shadowed);
        }

        /**
         * The comment of an element that is the union of several rules' boxes: their {@code r=<id>
         * h=<hash>} tags in rule order, as many as fit nft's comment limit, then {@code +n} for the rest.
         */
        private String mergedComment(Placed p) {
            StringBuilder sb = new StringBuilder(comment(p.rule()));
            int left = p.alsoRules().size();
            for (int rule : p.alsoRules()) {
                String tag = comment(rule);
                String more = " +" + (left - 1);
                if (sb.length() + 1 + tag.length() + (left > 1 ? more.length() : 0) > MAX_COMMENT) {
                    break;
                }
                sb.append(' ').append(tag);
                left--;
            }
            if (left > 0) {
                sb.append(" +").append(left);
            }
            return sb.toString();
        }

        /**
         * For one VM's rules in one family: boxes shadowed by an earlier box dropped, layers (see the
         * class comment), then boxes that overlap one already in their set moved to the next bucket.
         */
        private List<Placed> place(BitSet ruleSet, boolean v4) {
            int[] order = ruleSet.stream().toArray();
            // Boxes still able to decide a packet: a box inside a box of an earlier rule never is the
            // first match (that earlier rule matches every packet it matches), so it is left out.
            // Earlier boxes are kept per protocol (and "all"): a box can only lie inside, or overlap,
            // a box of its own protocol or of an "all" rule.
            List<List<Box>> live = new ArrayList<>(order.length);
            Map<Integer, List<Box>> earlier = new HashMap<>();
            List<Box> earlierAll = new ArrayList<>();
            for (int rule : order) {
                List<Box> kept = new ArrayList<>(2);
                for (Box b : boxes(rule, v4)) {
                    if (!withinAny(b, earlierAll) && (b.kind() == Kind.ALL || !withinAny(b, earlier.getOrDefault(b.proto(), List.of())))) {
                        kept.add(b);
                    }
                }
                for (Box b : kept) {
                    if (b.kind() == Kind.ALL) {
                        earlierAll.add(b);
                    } else {
                        earlier.computeIfAbsent(b.proto(), k -> new ArrayList<>()).add(b);
                    }
                }
                live.add(kept);
            }
            int[] layer = new int[order.length];
            for (int j = 0; j < order.length; j++) {
                List<Box> bj = live.get(j);
                layer[j] = -1;
                if (bj.isEmpty()) {
                    continue;
                }
                boolean deny = deny(order[j]);
                int floor = -1;
                for (int i = j - 1; i >= 0; i--) {
                    if (layer[i] > floor && deny(order[i]) != deny && overlap(live.get(i), bj)) {
                        floor = layer[i];
                    }
                }
                int l = floor + 1;
                if ((l % 2 == 0) != deny) {
                    l++;
                }
                layer[j] = l;
            }
            // Boxes of one layer share its verdict, so only their union matters: boxes that touch
            // along one dimension (ports, or destinations) and agree on the rest become one (see
            // the class comment, "Merged boxes").
            List<Merged> items = new ArrayList<>();
            for (int j = 0; j < order.length; j++) {
                for (Box b : live.get(j)) {
                    items.add(new Merged(b, layer[j], order[j], items.size()));
                }
            }
            items = merge(items);
            // Per set (layer, shape, destination or not): the boxes already placed, per bucket.
            Map<Long, List<List<Box>>> groups = new HashMap<>();
            List<Placed> out = new ArrayList<>(items.size());
            for (Merged m : items) {
                Box b = m.box;
                Shape shape = b.shape();
                boolean dst = !b.anywhere();
                int prefix = b.exactPrefix();
                // In an exact set, boxes overlap only when identical, and an identical box is
                // never live (it lies inside the earlier one): such sets need no second bucket.
                List<List<Box>> buckets = groups.computeIfAbsent(LookupSet.sortKey(m.layer, shape, v4, dst, prefix, 0),
                        k -> new ArrayList<>());
                int bucket = 0;
                while (bucket < buckets.size() && overlapsAny(buckets.get(bucket), b)) {
                    bucket++;
                }
                if (bucket == buckets.size()) {
                    buckets.add(new ArrayList<>());
                }
                buckets.get(bucket).add(b);
                out.add(new Placed(m.rules.get(0), m.rules.size() == 1 ? List.of() : List.copyOf(m.rules.subList(1, m.rules.size())),
                        m.layer, shape, dst, prefix, bucket, LookupSet.sortKey(m.layer, shape, v4, dst, prefix, bucket),
                        b.keyTail(spanTexts, prefix >= 0)));
            }
            return out;
        }

        /** A box of a layer and the rules (in order) whose boxes it is the union of; {@code seq} keeps the output order. */
        private static final class Merged {
            Box box;
            final int layer;
            final List<Integer> rules = new ArrayList<>(1);
            int seq;

            Merged(Box box, int layer, int rule, int seq) {
                this.box = box;
                this.layer = layer;
                this.rules.add(rule);
                this.seq = seq;
            }

            /** A box that only an interval set can hold (not one exact key): the only kind worth merging. */
            boolean interval() {
                return box.exactPrefix() < 0 && (!box.anywhere() || box.kind() == Kind.PORT);
            }

            void absorb(Merged o, Box union) {
                box = union;
                for (int r : o.rules) {
                    if (!rules.contains(r)) {
                        rules.add(r);
                    }
                }
                rules.sort(null);
            }
        }

        /**
         * Boxes of one layer that touch along one dimension and agree on every other become one: port
         * ranges of one protocol to the same destinations, then destination ranges of the same
         * protocol and ports, again until nothing changes (a few rounds). Only boxes bound for interval
         * sets take part: an exact key is cheaper to the kernel than any range, so two adjacent /24s
         * stay two hash elements. The union of a layer's boxes is unchanged, so the first match is too.
         */
        private static List<Merged> merge(List<Merged> items) {
            if (items.size() < 2) {
                return items;
            }
            List<Merged> now = items;
            for (int round = 0; round < 4; round++) {
                int before = now.size();
                now = mergeAlong(now, true);
                now = mergeAlong(now, false);
                if (now.size() == before) {
                    break;
                }
            }
            // A box (an exact key, say) inside a merged box of its layer adds nothing: same verdict.
            List<Merged> kept = new ArrayList<>(now.size());
            for (Merged m : now) {
                Merged container = null;
                for (Merged o : now) {
                    if (o != m && o.layer == m.layer && o.rules.size() > 1 && m.box.within(o.box) && !o.box.equals(m.box)) {
                        container = o;
                        break;
                    }
                }
                if (container == null) {
                    kept.add(m);
                } else {
                    container.absorb(m, container.box);
                    container.seq = Math.min(container.seq, m.seq);
                }
            }
            kept.sort(java.util.Comparator.comparingInt(m -> m.seq));
            return kept;
        }

        /** One sweep along ports ({@code ports}) or destinations. */
        private static List<Merged> mergeAlong(List<Merged> items, boolean ports) {
            Map<List<Object>, List<Merged>> groups = new java.util.LinkedHashMap<>();
            List<Merged> out = new ArrayList<>(items.size());
            for (Merged m : items) {
                Box b = m.box;
                if (!m.interval() || ports && b.kind() != Kind.PORT) {
                    out.add(m);
                    continue;
                }
                List<Object> key = ports ? List.of(m.layer, b.proto(), b.dst(), b.y0(), b.y1())
                        : List.of(m.layer, b.kind(), b.proto(), b.x0(), b.x1(), b.y0(), b.y1(), b.dst().v4());
                groups.computeIfAbsent(key, k -> new ArrayList<>()).add(m);
            }
            for (List<Merged> group : groups.values()) {
                if (group.size() == 1) {
                    out.add(group.get(0));
                    continue;
                }
                group.sort(ports ? java.util.Comparator.comparingInt(m -> m.box.x0())
                        : java.util.Comparator.comparing((Merged m) -> m.box.dst().lo()));
                Merged cur = group.get(0);
                for (int i = 1; i < group.size(); i++) {
                    Merged next = group.get(i);
                    Box c = cur.box;
                    Box n = next.box;
                    if (ports && n.x0() <= c.x1() + 1) {
                        cur.absorb(next, new Box(c.kind(), c.dst(), c.proto(), c.x0(), Math.max(c.x1(), n.x1()), c.y0(), c.y1()));
                    } else if (!ports && touches(c.dst(), n.dst())) {
                        Span u = new Span(c.dst().v4(), c.dst().lo(), c.dst().hi().compareTo(n.dst().hi()) >= 0 ? c.dst().hi() : n.dst().hi());
                        cur.absorb(next, new Box(c.kind(), u, c.proto(), c.x0(), c.x1(), c.y0(), c.y1()));
                    } else {
                        out.add(cur);
                        cur = next;
                    }
                    cur.seq = Math.min(cur.seq, next.seq);
                }
                out.add(cur);
            }
            return out;
        }

        /** True when {@code b} (starting at or after {@code a}'s start) overlaps {@code a} or starts right after it. */
        private static boolean touches(Span a, Span b) {
            return AddressSpans.union(List.of(a, b)).size() == 1;
        }

        private static boolean withinAny(Box b, List<Box> boxes) {
            for (Box x : boxes) {
                if (b.within(x)) {
                    return true;
                }
            }
            return false;
        }

        private static boolean overlapsAny(List<Box> bucket, Box b) {
            for (Box x : bucket) {
                if (x.overlaps(b)) {
                    return true;
                }
            }
            return false;
        }

        private static boolean overlap(List<Box> a, List<Box> b) {
            for (Box x : a) {
                for (Box y : b) {
                    if ((x.proto() == y.proto() || x.kind() == Kind.ALL || y.kind() == Kind.ALL) && x.overlaps(y)) {
                        return true;
                    }
                }
            }
            return false;
        }
    }

    /**
     * What a rule matches in one address family, as boxes with disjoint destination ranges (its
     * destinations, or everything, minus its exceptions); empty when it matches nothing there.
     */
    static List<Box> boxes(CompiledRule r, boolean v4) {
        return boxes(r, v4, new HashMap<>());
    }

    private static List<Box> boxes(CompiledRule r, boolean v4, Map<Cidr, Span> spans) {
        if (r.protocol() == (v4 ? Protocol.ICMPV6 : Protocol.ICMP)) {
            return List.of();
        }
        List<Span> dst;
        if (r.destinationCidrs().isEmpty() && r.destinationExceptCidrs().isEmpty()) {
            dst = List.of(AddressSpans.all(v4));
        } else {
            List<Span> include = new ArrayList<>();
            if (r.destinationCidrs().isEmpty()) {
                include.add(AddressSpans.all(v4));
            } else {
                for (Cidr c : r.destinationCidrs()) {
                    if (c.isIpv4() == v4) {
                        include.add(spans.computeIfAbsent(c, AddressSpans::of));
                    }
                }
            }
            List<Span> exclude = new ArrayList<>();
            for (Cidr c : r.destinationExceptCidrs()) {
                if (c.isIpv4() == v4) {
                    exclude.add(spans.computeIfAbsent(c, AddressSpans::of));
                }
            }
            dst = AddressSpans.minus(include, exclude);
        }
        List<Box> out = new ArrayList<>(dst.size());
        for (Span d : dst) {
            out.add(switch (r.protocol()) {
                case TCP, UDP -> {
                    int proto = r.protocol() == Protocol.TCP ? 6 : 17;
                    yield new Box(Kind.PORT, d, proto, r.ports() == null ? 0 : r.ports().start(),
                            r.ports() == null ? 65535 : r.ports().end(), 0, 0);
                }
                case ICMP, ICMPV6 -> {
                    boolean anyType = r.icmp() == null || r.icmp().anyType();
                    boolean anyCode = anyType || r.icmp().anyCode();
                    yield new Box(Kind.ICMP, d, v4 ? 1 : 58, anyType ? 0 : r.icmp().type(), anyType ? 255 : r.icmp().type(),
                            anyCode ? 0 : r.icmp().code(), anyCode ? 255 : r.icmp().code());
                }
                case ALL -> new Box(Kind.ALL, d, 0, 0, 0, 0, 0);
            });
        }
        return out;
    }

    /**
     * Hashes of rules and fragments seen by earlier renders. An agent renders its whole host on every
     * update, and hashing 10,000 rules again was a third of a render; values are immutable, so a hit
     * (equal content) gives the same hash. Bounded: cleared whole when full.
     */
    private static final BoundedMemo<CompiledRule, String> RULE_HASHES = new BoundedMemo<>(1 << 18, NftRenderer::computeRuleHash);
    private static final BoundedMemo<Fragment, String> FRAGMENT_HASHES = new BoundedMemo<>(1 << 18, Fragment::hash);

    /** First 12 hex digits of the rule's canonical hash: tags each element for drift checks. */
    static String ruleHash(CompiledRule r) {
        return RULE_HASHES.get(r);
    }

    /**
     * Built from explicit canonical fields (never a record's {@code toString}, whose format is the
     * JDK's to change): id, action, priority, protocol, destinations and exceptions as canonical CIDR
     * text joined by commas, ports as {@code start-end}, ICMP as {@code type/code}; absent fields empty.
     */
    static String computeRuleHash(CompiledRule r) {
        StringBuilder sb = new StringBuilder(96);
        sb.append(r.ruleId()).append('|').append(r.action().name()).append('|').append(r.priority()).append('|')
                .append(r.protocol().name()).append("|dst=");
        joinCidrs(sb, r.destinationCidrs()).append("|except=");
        joinCidrs(sb, r.destinationExceptCidrs()).append("|ports=");
        if (r.ports() != null) {
            sb.append(r.ports().start()).append('-').append(r.ports().end());
        }
        sb.append("|icmp=");
        if (r.icmp() != null) {
            sb.append(r.icmp().type()).append('/').append(r.icmp().code());
        }
        return CanonicalHash.sha256(sb.toString()).substring(0, 12);
    }

    private static StringBuilder joinCidrs(StringBuilder sb, List<Cidr> cidrs) {
        for (int i = 0; i < cidrs.size(); i++) {
            sb.append(i == 0 ? "" : ",").append(cidrs.get(i).toString());
        }
        return sb;
    }

    /** The host hash of {@code fragments}: the hashes remembered with the plans where the fragment is the same object. */
    private String hostHash(SortedMap<String, Fragment> fragments) {
        TreeMap<String, String> hashes = new TreeMap<>();
        fragments.forEach((n, f) -> {
            NetworkPlan p = lastPlans.get(n);
            hashes.put(n, p != null && p.fragment() == f ? p.hash() : FRAGMENT_HASHES.get(f));
        });
        return CanonicalHash.host(hashes);
    }

    /** Keeps only identifier characters, so nothing can close a quoted string or start a statement. */
    static String safe(String id) {
        if (id == null) {
            return "";
        }
        StringBuilder sb = new StringBuilder(id.length());
        for (char c : id.toCharArray()) {
            sb.append(Character.isLetterOrDigit(c) && c < 128 || c == '.' || c == '_' || c == ':' || c == '-' ? c : '_');
        }
        return sb.length() > 64 ? sb.substring(0, 64) : sb.toString();
    }
}
