package io.egressctl.core.nft;

import java.util.List;

/**
 * A named set or map of a table: its header lines ({@code type ...}, {@code flags interval},
 * {@code counter}) and its elements in the order they are written.
 *
 * @param map      true for a map (elements carry data)
 * @param header   the declaration lines, e.g. {@code type mark . ipv4_addr}
 * @param elements the elements; keys are unique within a set
 */
public record NftSet(String name, boolean map, List<String> header, List<NftElement> elements) {

    public NftSet {
        header = List.copyOf(header);
        elements = List.copyOf(elements);
    }

    /** Same declaration (kind and header): elements can be changed in place, else the set must be replaced. */
    public boolean sameDeclaration(NftSet o) {
        return map == o.map && header.equals(o.header);
    }
}
