package io.egressctl.core.nft;

import java.util.List;

/**
 * A chain of a table: its base-chain line ({@code type filter hook forward priority filter; policy
 * accept;}, null for a regular chain) and its rules in order, each as nft reads one rule.
 */
public record NftChain(String name, String base, List<String> rules) {

    public NftChain {
        rules = List.copyOf(rules);
    }
}
