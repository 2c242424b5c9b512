package io.egressctl.core.nft;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What turns a kernel holding one {@link NftRuleset} into another in one incremental transaction, as
 * values (pure: no I/O, no text; {@link NftScript#delta} writes it for nft). The parts, each over all
 * tables, are sent in the order of the components:
 * <ol>
 *   <li>{@code created}: new sets and regular chains, with their elements and rules;</li>
 *   <li>{@code deleted}: elements of existing sets and maps whose key went, or whose comment or data
 *       changed (deletions first: an interval set refuses an element that overlaps one still in it,
 *       a map a key it holds);</li>
 *   <li>{@code added}: the new and changed elements;</li>
 *   <li>{@code refilled}: chains whose rules changed, flushed and refilled in the same transaction
 *       (a base chain keeps its hook); {@code chainsRemoved} are flushed here too, since their rules
 *       may hold the last references to sets removed below;</li>
 *   <li>{@code chainsRemoved}, then {@code setsRemoved}: objects no longer used.</li>
 * </ol>
 * Names are stable from one render to the next (sets by layer, shape, family and bucket, marks by
 * interface), so one rule changed on a large host is a few element operations.
 */
public record NftDelta(List<Created> created, List<Elements> deleted, List<Elements> added, List<Chain> refilled,
                       List<Named> chainsRemoved, List<Named> setsRemoved) {

    /** New sets and chains of one table. */
    public record Created(String table, List<NftSet> sets, List<NftChain> chains) {
    }

    /** Some elements of one set or map of a table. */
    public record Elements(String table, String set, List<NftElement> elements) {
    }

    /** A chain of a table, with the rules it is refilled with. */
    public record Chain(String table, NftChain chain) {
    }

    /** A set or chain of a table, by name. */
    public record Named(String table, String name) {
    }

    /** True when the two rulesets are the same in the kernel: nothing to send. */
    public boolean isEmpty() {
        return created.isEmpty() && deleted.isEmpty() && added.isEmpty() && refilled.isEmpty() && chainsRemoved.isEmpty()
                && setsRemoved.isEmpty();
    }

    /** Element operations (deleted plus added), for logs and benchmarks. */
    public int elementOperations() {
        int n = 0;
        for (Elements e : deleted) {
            n += e.elements().size();
        }
        for (Elements e : added) {
            n += e.elements().size();
        }
        return n;
    }

    /**
     * The delta from {@code from} to {@code to}, or null when only a full replacement can do it: a
     * table added or removed (a host mode change), a base chain added, removed or redefined, a set
     * or map whose declaration changed under the same name, a map added or removed, a name that
     * moved between a set and a chain.
     */
    public static NftDelta between(NftRuleset from, NftRuleset to) {
        if (from.tables().size() != to.tables().size()) {
            return null;
        }
        Builder d = new Builder();
        for (NftTable now : to.tables()) {
            NftTable before = from.table(now.key());
            if (before == null || !table(before, now, d)) {
                return null;
            }
        }
        return new NftDelta(d.created, d.deleted, d.added, d.refilled, d.chainsRemoved, d.setsRemoved);
    }

    private static final class Builder {
        final List<Created> created = new ArrayList<>();
        final List<Elements> deleted = new ArrayList<>();
        final List<Elements> added = new ArrayList<>();
        final List<Chain> refilled = new ArrayList<>();
        final List<Named> chainsRemoved = new ArrayList<>();
        final List<Named> setsRemoved = new ArrayList<>();
    }

    /** Adds one table's changes to {@code d}; false when only a full replacement can do it. */
    private static boolean table(NftTable from, NftTable to, Builder d) {
        String t = to.key();
        Map<String, NftSet> oldSets = new HashMap<>();
        from.sets().forEach(s -> oldSets.put(s.name(), s));
        Map<String, NftChain> oldChains = new HashMap<>();
        from.chains().forEach(c -> oldChains.put(c.name(), c));
        List<NftSet> newSets = new ArrayList<>();
        List<NftChain> newChains = new ArrayList<>();
        java.util.Set<String> setNames = new java.util.HashSet<>();
        for (NftSet now : to.sets()) {
            setNames.add(now.name());
            NftSet before = oldSets.get(now.name());
            if (before == null) {
                if (now.map() || oldChains.containsKey(now.name())) {
                    return false;
                }
                newSets.add(now);
                continue;
            }
            if (!before.sameDeclaration(now)) {
                return false;
            }
            elements(t, before, now, d);
        }
        for (NftSet s : from.sets()) {
            if (!setNames.contains(s.name())) {
                if (s.map()) {
                    return false;
                }
                d.setsRemoved.add(new Named(t, s.name()));
            }
        }
        java.util.Set<String> chainNames = new java.util.HashSet<>();
        for (NftChain now : to.chains()) {
            chainNames.add(now.name());
            NftChain before = oldChains.get(now.name());
            if (before == null) {
                if (now.base() != null || oldSets.containsKey(now.name())) {
                    return false;
                }
                newChains.add(now);
            } else if (!java.util.Objects.equals(before.base(), now.base())) {
                return false;
            } else if (!before.rules().equals(now.rules())) {
                d.refilled.add(new Chain(t, now));
            }
        }
        for (NftChain c : from.chains()) {
            if (!chainNames.contains(c.name())) {
                if (c.base() != null) {
                    return false;
                }
                d.chainsRemoved.add(new Named(t, c.name()));
            }
        }
        if (!newSets.isEmpty() || !newChains.isEmpty()) {
            d.created.add(new Created(t, newSets, newChains));
        }
        return true;
    }

    /**
     * The element changes of one set. Elements keep their order from one render to the next, so
     * only the stretch between the common head and tail can differ (a key is once in a set, so one
     * in the head or tail of either list is nowhere else in the other); inside it, elements are
     * matched by key.
     */
    private static void elements(String table, NftSet before, NftSet now, Builder d) {
        List<NftElement> was = before.elements();
        List<NftElement> is = now.elements();
        if (was == is) {
            return;
        }
        int head = 0;
        int n = Math.min(was.size(), is.size());
        while (head < n && was.get(head).equals(is.get(head))) {
            head++;
        }
        int endWas = was.size();
        int endIs = is.size();
        while (endWas > head && endIs > head && was.get(endWas - 1).equals(is.get(endIs - 1))) {
            endWas--;
            endIs--;
        }
        if (head == endWas && head == endIs) {
            return;
        }
        Map<String, NftElement> old = byKey(was.subList(head, endWas));
        Map<String, NftElement> fresh = byKey(is.subList(head, endIs));
        List<NftElement> gone = new ArrayList<>();
        List<NftElement> come = new ArrayList<>();
        old.forEach((k, e) -> {
            if (!e.equals(fresh.get(k))) {
                gone.add(e);
            }
        });
        fresh.forEach((k, e) -> {
            if (!e.equals(old.get(k))) {
                come.add(e);
            }
        });
        if (!gone.isEmpty()) {
            d.deleted.add(new Elements(table, now.name(), gone));
        }
        if (!come.isEmpty()) {
            d.added.add(new Elements(table, now.name(), come));
        }
    }

    private static Map<String, NftElement> byKey(List<NftElement> elements) {
        Map<String, NftElement> out = new LinkedHashMap<>();
        for (NftElement e : elements) {
            out.put(e.key(), e);
        }
        return out;
    }
}
