package io.egressctl.core.render;

import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.hash.CanonicalHash;
import io.egressctl.core.model.Action;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.Protocol;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * Renders a host's fragments into one nftables script that replaces the product's table in a single
 * transaction: it creates the table if absent, deletes it and defines it anew, so the kernel never
 * sees half a ruleset (invariant 5), and no other table is touched.
 *
 * <pre>
 * table inet egressctl
 *   set d4_H / d6_H  (flags interval): one per distinct destination list of two or more prefixes,
 *                    named by a hash of its content, shared by every rule and VM that uses it
 *   map vm4 / vm6:   VM address : jump vm_H
 *   chain forward    (hook forward): ct established,related accept; ip saddr vmap @vm4; ip6 saddr vmap @vm6
 *   chain vm_H       one per VM: its rules in evaluation order, then the network's default verdict
 * </pre>
 *
 * Names are stable: a VM's chain is {@code vm_} plus 12 hex digits of sha256(network id, VM id), and
 * a set's name is a hash of its elements, so a change to one rule or one VM changes only the objects
 * it touches and an enforcer can replace just those (an incremental transaction) instead of the whole
 * table. A single destination prefix is matched inline (no set); lists become named sets because every
 * anonymous set is a kernel object of its own and thousands of them made a 10,000-rule apply take
 * seconds.
 *
 * Only typed, validated values reach the output (addresses, numbers, enum keywords, ids matching
 * {@code [A-Za-z0-9._:-]}); tenant text such as descriptions is never rendered. Stateless and
 * thread-safe.
 */
public final class NftRenderer {

    /** Name of the product's own table. */
    public static final String TABLE = "egressctl";
    /** Address family of the table. */
    public static final String FAMILY = "inet";
    /** Longest comment nft accepts (libnftnl's NFTNL_UDATA_COMMENT_MAXLEN). */
    private static final int MAX_COMMENT = 128;

    /** Renders the full replacement script for a host. */
    public String render(String hostId, SortedMap<String, Fragment> fragments) {
        StringBuilder sb = new StringBuilder(4096);
        sb.append("# egressctl host ").append(safe(hostId)).append(" hash ").append(hostHash(fragments)).append('\n');
        sb.append("table ").append(FAMILY).append(' ').append(TABLE).append('\n');
        sb.append("delete table ").append(FAMILY).append(' ').append(TABLE).append('\n');
        sb.append(renderTable(fragments));
        return sb.toString();
    }

    /** Renders just the {@code table inet egressctl { ... }} block. */
    public String renderTable(SortedMap<String, Fragment> fragments) {
        List<String> v4Elements = new ArrayList<>();
        List<String> v6Elements = new ArrayList<>();
        Set<String> seenAddresses = new HashSet<>();
        Set<String> chainNames = new HashSet<>();
        Map<String, String> sets = new TreeMap<>();
        StringBuilder chains = new StringBuilder();
        for (Map.Entry<String, Fragment> e : fragments.entrySet()) {
            Fragment f = e.getValue();
            // Each rule is rendered once per fragment, then copied into the chain of every VM it covers.
            List<List<String>> lines = new ArrayList<>(f.rules().size());
            List<Set<String>> covered = new ArrayList<>(f.rules().size());
            for (CompiledRule r : f.rules()) {
                lines.add(ruleLines(r, sets));
                covered.add(new HashSet<>(r.vmIds()));
            }
            for (VmAddress vm : f.vms()) {
                // An address may be claimed once per host; a second claim (overlapping tenant CIDRs
                // on one host) is left out rather than making the whole transaction fail.
                boolean v4 = vm.ipv4() != null && seenAddresses.add(vm.ipv4());
                boolean v6 = vm.ipv6() != null && seenAddresses.add(vm.ipv6());
                if (!v4 && !v6) {
                    continue;
                }
                String chain = chainName(f.networkId(), vm.vmId(), chainNames);
                if (v4) {
                    v4Elements.add(vm.ipv4() + " : jump " + chain);
                }
                if (v6) {
                    v6Elements.add(vm.ipv6() + " : jump " + chain);
                }
                chains.append("  chain ").append(chain).append(" {\n");
                String comment = "net " + safe(f.networkId()) + " vm " + safe(vm.vmId());
                // nft refuses the whole script when a comment is longer than this; two 64-character ids are.
                if (comment.length() > MAX_COMMENT) {
                    comment = comment.substring(0, MAX_COMMENT);
                }
                chains.append("    comment \"").append(comment).append("\"\n");
                for (int i = 0; i < lines.size(); i++) {
                    if (covered.get(i).contains(vm.vmId())) {
                        for (String line : lines.get(i)) {
                            chains.append("    ").append(line).append('\n');
                        }
                    }
                }
                if (f.defaultPolicy() == DefaultPolicy.DENY) {
                    chains.append("    counter drop comment \"default deny\"\n");
                } else {
                    chains.append("    counter accept comment \"default allow\"\n");
                }
                chains.append("  }\n");
            }
        }
        StringBuilder sb = new StringBuilder(chains.length() + 256 + 48 * (v4Elements.size() + v6Elements.size()));
        sb.append("table ").append(FAMILY).append(' ').append(TABLE).append(" {\n");
        sets.forEach((name, elements) -> {
            sb.append("  set ").append(name).append(" {\n");
            sb.append("    type ").append(name.startsWith("d4_") ? "ipv4_addr" : "ipv6_addr").append('\n');
            sb.append("    flags interval\n");
            sb.append("    auto-merge\n");
            sb.append("    elements = { ").append(elements).append(" }\n");
            sb.append("  }\n");
        });
        sb.append("  map vm4 {\n    type ipv4_addr : verdict\n");
        if (!v4Elements.isEmpty()) {
            sb.append("    elements = { ").append(String.join(", ", v4Elements)).append(" }\n");
        }
        sb.append("  }\n");
        sb.append("  map vm6 {\n    type ipv6_addr : verdict\n");
        if (!v6Elements.isEmpty()) {
            sb.append("    elements = { ").append(String.join(", ", v6Elements)).append(" }\n");
        }
        sb.append("  }\n");
        sb.append("  chain forward {\n");
        sb.append("    type filter hook forward priority filter; policy accept;\n");
        sb.append("    ct state established,related accept\n");
        sb.append("    ip saddr vmap @vm4\n");
        sb.append("    ip6 saddr vmap @vm6\n");
        sb.append("  }\n");
        sb.append(chains);
        sb.append("}\n");
        return sb.toString();
    }

    /**
     * Stable chain name of a VM: {@code vm_} and 12 hex digits of sha256(network id, VM id). On the
     * (astronomically unlikely) collision within one host a deterministic suffix keeps names unique.
     */
    static String chainName(String networkId, String vmId, Set<String> taken) {
        String base = "vm_" + CanonicalHash.sha256(networkId + '\n' + vmId).substring(0, 12);
        String name = base;
        for (int i = 2; !taken.add(name); i++) {
            name = base + "_" + i;
        }
        return name;
    }

    /** The nft statements of one rule (one per address family it needs), lists as anonymous sets. */
    List<String> ruleLines(CompiledRule r) {
        return ruleLines(r, null);
    }

    /**
     * The nft statements of one rule. With {@code sets} given, destination lists of two or more
     * prefixes are registered there (name to elements) and referenced as {@code @name}.
     */
    List<String> ruleLines(CompiledRule r, Map<String, String> sets) {
        List<Cidr> dst4 = r.destinationCidrs().stream().filter(Cidr::isIpv4).toList();
        List<Cidr> dst6 = r.destinationCidrs().stream().filter(c -> !c.isIpv4()).toList();
        List<Cidr> exc4 = r.destinationExceptCidrs().stream().filter(Cidr::isIpv4).toList();
        List<Cidr> exc6 = r.destinationExceptCidrs().stream().filter(c -> !c.isIpv4()).toList();
        String l4 = l4Match(r);
        String verdict = "counter " + (r.action() == Action.DENY ? "drop" : "accept")
                + " comment \"r=" + safe(r.ruleId()) + " h=" + ruleHash(r) + "\"";
        List<String> out = new ArrayList<>();
        boolean anyDestination = r.destinationCidrs().isEmpty();
        boolean v4Possible = r.protocol() != Protocol.ICMPV6;
        boolean v6Possible = r.protocol() != Protocol.ICMP;
        if (anyDestination && r.destinationExceptCidrs().isEmpty()) {
            out.add(join(l4, verdict));
            return out;
        }
        if (v4Possible && (anyDestination || !dst4.isEmpty())) {
            String l3 = anyDestination ? "meta nfproto ipv4" : "ip daddr " + operand(dst4, "d4_", sets);
            if (!exc4.isEmpty()) {
                l3 += " ip daddr != " + operand(exc4, "d4_", sets);
            }
            out.add(join(l3, l4, verdict));
        }
        if (v6Possible && (anyDestination || !dst6.isEmpty())) {
            String l3 = anyDestination ? "meta nfproto ipv6" : "ip6 daddr " + operand(dst6, "d6_", sets);
            if (!exc6.isEmpty()) {
                l3 += " ip6 daddr != " + operand(exc6, "d6_", sets);
            }
            out.add(join(l3, l4, verdict));
        }
        return out;
    }

    /** One prefix inline; a list as an anonymous set, or as a named set when {@code sets} is given. */
    private static String operand(List<Cidr> cidrs, String prefix, Map<String, String> sets) {
        if (sets == null) {
            return set(cidrs);
        }
        if (cidrs.size() == 1) {
            return cidrs.get(0).toString();
        }
        String elements = cidrs.stream().sorted().distinct().map(Cidr::toString).collect(Collectors.joining(", "));
        String name = prefix + CanonicalHash.sha256(elements).substring(0, 12);
        sets.putIfAbsent(name, elements);
        return "@" + name;
    }

    private static String l4Match(CompiledRule r) {
        return switch (r.protocol()) {
            case TCP, UDP -> {
                String proto = r.protocol() == Protocol.TCP ? "tcp" : "udp";
                if (r.ports() == null) {
                    yield "meta l4proto " + proto;
                }
                yield proto + " dport " + (r.ports().isSingle() ? String.valueOf(r.ports().start())
                        : r.ports().start() + "-" + r.ports().end());
            }
            case ICMP -> icmp("icmp", "icmp", r);
            case ICMPV6 -> icmp("icmpv6", "ipv6-icmp", r);
            case ALL -> "";
        };
    }

    private static String icmp(String keyword, String l4proto, CompiledRule r) {
        if (r.icmp() == null || r.icmp().anyType()) {
            return "meta l4proto " + l4proto;
        }
        String s = keyword + " type " + r.icmp().type();
        if (!r.icmp().anyCode()) {
            s += " " + keyword + " code " + r.icmp().code();
        }
        return s;
    }

    private static String set(List<Cidr> cidrs) {
        return "{ " + cidrs.stream().map(Cidr::toString).collect(Collectors.joining(", ")) + " }";
    }

    private static String join(String... parts) {
        StringBuilder sb = new StringBuilder();
        for (String p : parts) {
            if (!p.isEmpty()) {
                if (sb.length() > 0) {
                    sb.append(' ');
                }
                sb.append(p);
            }
        }
        return sb.toString();
    }

    /** First 12 hex digits of the rule's canonical hash: tags each kernel rule for drift checks. */
    static String ruleHash(CompiledRule r) {
        String canonical = r.ruleId() + '|' + r.action() + '|' + r.priority() + '|' + r.protocol() + '|'
                + r.destinationCidrs() + '|' + r.destinationExceptCidrs() + '|' + r.ports() + '|' + r.icmp();
        return CanonicalHash.sha256(canonical).substring(0, 12);
    }

    private static String hostHash(SortedMap<String, Fragment> fragments) {
        TreeMap<String, String> hashes = new TreeMap<>();
        fragments.forEach((n, f) -> hashes.put(n, f.hash()));
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
