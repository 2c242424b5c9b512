package io.egressctl.core.nft;

import java.util.List;

/**
 * The whole desired state of the product's tables on one host, as values: what an enforcer applies
 * and checks, and what {@link NftDelta} diffs. Text is made of it only where it leaves the process
 * ({@link NftScript}: nft's stdin, a dry-run file).
 *
 * @param notes lines for people and tools reading a script ({@code egressctl host ... hash ...},
 *              {@code unenforced: ...}, {@code shadowed: ...}), written as {@code #} comments ahead of
 *              the tables; never sent to nft and not part of what is enforced
 */
public record NftRuleset(List<NftTable> tables, List<String> notes) {

    public NftRuleset {
        tables = List.copyOf(tables);
        notes = List.copyOf(notes);
    }

    /** The table {@code family name}, or null. */
    public NftTable table(String key) {
        for (NftTable t : tables) {
            if (t.key().equals(key)) {
                return t;
            }
        }
        return null;
    }

    /** Set and map elements in all tables: what the kernel holds most of, and what a host's limit counts. */
    public long elementCount() {
        long n = 0;
        for (NftTable t : tables) {
            for (NftSet set : t.sets()) {
                n += set.elements().size();
            }
        }
        return n;
    }

    /** True when both define the same tables (notes aside): the same thing in the kernel. */
    public boolean sameTables(NftRuleset o) {
        return o != null && tables.equals(o.tables);
    }
}
