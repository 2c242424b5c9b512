package io.egressctl.agent.enforce;

import io.egressctl.core.nft.NftChain;
import io.egressctl.core.nft.NftElement;
import io.egressctl.core.nft.NftRuleset;
import io.egressctl.core.nft.NftSet;
import io.egressctl.core.nft.NftTable;

import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/** Rulesets changed the way a test needs (a rule nft refuses, an element the kernel refuses). */
public final class Rulesets {

    private Rulesets() {
    }

    /** {@code ruleset} with every chain rule equal to {@code rule} replaced by {@code by}. */
    public static NftRuleset replacingRule(NftRuleset ruleset, String rule, String by) {
        return chains(ruleset, c -> new NftChain(c.name(), c.base(), c.rules().stream().map(r -> r.equals(rule) ? by : r).toList()));
    }

    /** {@code ruleset} with {@code extra} inserted after every chain rule equal to {@code after}. */
    public static NftRuleset insertingRule(NftRuleset ruleset, String after, String extra) {
        return chains(ruleset, c -> {
            List<String> rules = new ArrayList<>();
            for (String r : c.rules()) {
                rules.add(r);
                if (r.equals(after)) {
                    rules.add(extra);
                }
            }
            return new NftChain(c.name(), c.base(), rules);
        });
    }

    /** {@code ruleset} with {@code extra} added to the set that holds an element with key {@code besideKey}. */
    public static NftRuleset addingElementBeside(NftRuleset ruleset, String besideKey, NftElement extra) {
        List<NftTable> tables = new ArrayList<>();
        boolean found = false;
        for (NftTable t : ruleset.tables()) {
            List<NftSet> sets = new ArrayList<>();
            for (NftSet s : t.sets()) {
                if (s.elements().stream().anyMatch(e -> e.key().equals(besideKey))) {
                    List<NftElement> elements = new ArrayList<>(s.elements());
                    elements.add(extra);
                    s = new NftSet(s.name(), s.map(), s.header(), elements);
                    found = true;
                }
                sets.add(s);
            }
            tables.add(new NftTable(t.family(), t.name(), sets, t.chains()));
        }
        if (!found) {
            throw new IllegalArgumentException("no element " + besideKey);
        }
        return new NftRuleset(tables, ruleset.notes());
    }

    private static NftRuleset chains(NftRuleset ruleset, UnaryOperator<NftChain> change) {
        List<NftTable> tables = new ArrayList<>();
        for (NftTable t : ruleset.tables()) {
            tables.add(new NftTable(t.family(), t.name(), t.sets(), t.chains().stream().map(change).toList()));
        }
        return new NftRuleset(tables, ruleset.notes());
    }
}
