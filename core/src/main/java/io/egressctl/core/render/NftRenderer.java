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
import java.util.stream.Collectors;

/**
 * Renders a host's fragments into one nftables script that replaces the product's table in a single
 * transaction: it creates the table if absent, deletes it and defines it anew, so the kernel never
 * sees half a ruleset (invariant 5), and no other table is touched.
 *
 * <pre>
 * table inet egressctl
 *   chain forward  (hook forward): ct established,related accept; ip saddr vmap @vm4; ip6 saddr vmap @vm6
 *   map vm4 / vm6: VM address : jump vm_N
 *   chain vm_N     one per VM: its rules in evaluation order, then the network's default verdict
 * </pre>
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
        StringBuilder chains = new StringBuilder();
        int index = 0;
        for (Map.Entry<String, Fragment> e : fragments.entrySet()) {
            Fragment f = e.getValue();
            for (VmAddress vm : f.vms()) {
                String chain = "vm_" + index++;
                // An address may be claimed once per host; a second claim (overlapping tenant CIDRs
                // on one host) is left out rather than making the whole transaction fail.
                boolean mapped = false;
                if (vm.ipv4() != null && seenAddresses.add(vm.ipv4())) {
                    v4Elements.add(vm.ipv4() + " : jump " + chain);
                    mapped = true;
                }
                if (vm.ipv6() != null && seenAddresses.add(vm.ipv6())) {
                    v6Elements.add(vm.ipv6() + " : jump " + chain);
                    mapped = true;
                }
                if (!mapped) {
                    continue;
                }
                chains.append("  chain ").append(chain).append(" {\n");
                String comment = "net " + safe(f.networkId()) + " vm " + safe(vm.vmId());
                // nft refuses the whole script when a comment is longer than this; two 64-character ids are.
                if (comment.length() > MAX_COMMENT) {
                    comment = comment.substring(0, MAX_COMMENT);
                }
                chains.append("    comment \"").append(comment).append("\"\n");
                for (CompiledRule r : f.rules()) {
                    if (r.vmIds().contains(vm.vmId())) {
                        for (String line : ruleLines(r)) {
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
        StringBuilder sb = new StringBuilder();
        sb.append("table ").append(FAMILY).append(' ').append(TABLE).append(" {\n");
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

    /** The nft statements of one rule (one per address family it needs). */
    List<String> ruleLines(CompiledRule r) {
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
            String l3 = anyDestination ? "meta nfproto ipv4" : "ip daddr " + set(dst4);
            if (!exc4.isEmpty()) {
                l3 += " ip daddr != " + set(exc4);
            }
            out.add(join(l3, l4, verdict));
        }
        if (v6Possible && (anyDestination || !dst6.isEmpty())) {
            String l3 = anyDestination ? "meta nfproto ipv6" : "ip6 daddr " + set(dst6);
            if (!exc6.isEmpty()) {
                l3 += " ip6 daddr != " + set(exc6);
            }
            out.add(join(l3, l4, verdict));
        }
        return out;
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
        java.util.TreeMap<String, String> hashes = new java.util.TreeMap<>();
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
