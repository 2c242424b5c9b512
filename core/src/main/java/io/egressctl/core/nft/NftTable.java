package io.egressctl.core.nft;

import java.util.List;

/**
 * One nftables table as values: family ({@code inet}, {@code bridge}), name, its sets and maps
 * (declared before the chains that use them) and its chains.
 */
public record NftTable(String family, String name, List<NftSet> sets, List<NftChain> chains) {

    public NftTable {
        sets = List.copyOf(sets);
        chains = List.copyOf(chains);
    }

    /** {@code family name}, e.g. {@code inet egressctl}: how the table is named in commands. */
    public String key() {
        return family + " " + name;
    }

    /** The set or map with this name, or null. */
    public NftSet set(String setName) {
        for (NftSet s : sets) {
            if (s.name().equals(setName)) {
                return s;
            }
        }
        return null;
    }

    /** The chain with this name, or null. */
    public NftChain chain(String chainName) {
        for (NftChain c : chains) {
            if (c.name().equals(chainName)) {
                return c;
            }
        }
        return null;
    }
}
