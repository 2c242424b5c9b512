package io.egressctl.core.nft;

import java.util.Collection;
import java.util.List;

/**
 * Where rulesets become text: nft's input ({@link #kernelInput}, {@link #delta}) and the script
 * people and tools read ({@link #script}: the dry-run file, {@code audit}). Nothing in the product
 * reads this text back; enforcers keep and compare {@link NftRuleset} values.
 *
 * <p>A script replaces each table it defines with {@code table F N} / {@code delete table F N} /
 * {@code table F N { ... }} (created if absent, deleted, defined anew), so nft applies it as one
 * transaction that the kernel commits entirely or not at all, and no other table is touched.
 */
public final class NftScript {

    private NftScript() {
    }

    /** The whole script: the notes as {@code #} lines, then every table replaced. */
    public static String script(NftRuleset ruleset) {
        StringBuilder sb = new StringBuilder(estimate(ruleset) + 128 * ruleset.notes().size());
        for (String note : ruleset.notes()) {
            sb.append("# ").append(note.replace('\n', ' ')).append('\n');
        }
        tables(sb, ruleset);
        return sb.toString();
    }

    /**
     * What a full apply sends nft: every table of the ruleset replaced, after the removal of the
     * product tables in {@code remove} that the ruleset does not define (so the transaction leaves
     * exactly its tables). No notes: nft's scanner reads every byte of a comment.
     */
    public static String kernelInput(NftRuleset ruleset, Collection<String> remove) {
        StringBuilder sb = new StringBuilder(estimate(ruleset) + 64);
        for (String t : remove) {
            if (ruleset.table(t) == null) {
                sb.append("table ").append(t).append("\ndelete table ").append(t).append('\n');
            }
        }
        tables(sb, ruleset);
        return sb.toString();
    }

    /** {@link #kernelInput(NftRuleset, Collection)} removing nothing else. */
    public static String kernelInput(NftRuleset ruleset) {
        return kernelInput(ruleset, List.of());
    }

    /** The tables' blocks alone ({@code table F N { ... }}), without their replacement lines. */
    public static String blocks(NftRuleset ruleset) {
        StringBuilder sb = new StringBuilder(estimate(ruleset));
        for (NftTable t : ruleset.tables()) {
            block(sb, t);
        }
        return sb.toString();
    }

    /** One incremental transaction, in the order {@link NftDelta} gives. */
    public static String delta(NftDelta d) {
        StringBuilder sb = new StringBuilder(256);
        for (NftDelta.Created c : d.created()) {
            sb.append("table ").append(c.table()).append(" {\n");
            for (NftSet s : c.sets()) {
                sb.append("  ").append(s.map() ? "map " : "set ").append(s.name()).append(" {\n");
                s.header().forEach(h -> sb.append("    ").append(h).append('\n'));
                if (!s.elements().isEmpty()) {
                    sb.append("    elements = { ");
                    joinElements(sb, s.elements());
                    sb.append(" }\n");
                }
                sb.append("  }\n");
            }
            for (NftChain ch : c.chains()) {
                sb.append("  chain ").append(ch.name()).append(" {\n");
                ch.rules().forEach(r -> sb.append("    ").append(r).append('\n'));
                sb.append("  }\n");
            }
            sb.append("}\n");
        }
        for (NftDelta.Elements e : d.deleted()) {
            sb.append("delete element ").append(e.table()).append(' ').append(e.set()).append(" { ");
            for (int i = 0; i < e.elements().size(); i++) {
                sb.append(i == 0 ? "" : ", ").append(e.elements().get(i).key());
            }
            sb.append(" }\n");
        }
        for (NftDelta.Elements e : d.added()) {
            sb.append("add element ").append(e.table()).append(' ').append(e.set()).append(" { ");
            joinElements(sb, e.elements());
            sb.append(" }\n");
        }
        for (NftDelta.Chain c : d.refilled()) {
            sb.append("flush chain ").append(c.table()).append(' ').append(c.chain().name()).append('\n');
        }
        for (NftDelta.Named c : d.chainsRemoved()) {
            sb.append("flush chain ").append(c.table()).append(' ').append(c.name()).append('\n');
        }
        for (NftDelta.Chain c : d.refilled()) {
            for (String r : c.chain().rules()) {
                sb.append("add rule ").append(c.table()).append(' ').append(c.chain().name()).append(' ').append(r).append('\n');
            }
        }
        for (NftDelta.Named c : d.chainsRemoved()) {
            sb.append("delete chain ").append(c.table()).append(' ').append(c.name()).append('\n');
        }
        for (NftDelta.Named s : d.setsRemoved()) {
            sb.append("delete set ").append(s.table()).append(' ').append(s.name()).append('\n');
        }
        return sb.toString();
    }

    private static void joinElements(StringBuilder sb, List<NftElement> elements) {
        for (int i = 0; i < elements.size(); i++) {
            sb.append(i == 0 ? "" : ", ").append(elements.get(i).text());
        }
    }

    private static void tables(StringBuilder sb, NftRuleset ruleset) {
        for (NftTable t : ruleset.tables()) {
            sb.append("table ").append(t.key()).append('\n');
            sb.append("delete table ").append(t.key()).append('\n');
            block(sb, t);
        }
    }

    private static void block(StringBuilder sb, NftTable t) {
        sb.append("table ").append(t.key()).append(" {\n");
        for (NftSet s : t.sets()) {
            sb.append("  ").append(s.map() ? "map " : "set ").append(s.name()).append(" {\n");
            for (String h : s.header()) {
                sb.append("    ").append(h).append('\n');
            }
            List<NftElement> elements = s.elements();
            if (!elements.isEmpty()) {
                sb.append("    elements = {\n");
                for (int i = 0; i < elements.size(); i++) {
                    NftElement e = elements.get(i);
                    sb.append("      ").append(e.key());
                    if (e.comment() != null) {
                        sb.append(" comment \"").append(e.comment()).append('"');
                    }
                    if (e.data() != null) {
                        sb.append(" : ").append(e.data());
                    }
                    sb.append(i + 1 < elements.size() ? ",\n" : "\n");
                }
                sb.append("    }\n");
            }
            sb.append("  }\n");
        }
        for (NftChain c : t.chains()) {
            sb.append("  chain ").append(c.name()).append(" {\n");
            if (c.base() != null) {
                sb.append("    ").append(c.base()).append('\n');
            }
            for (String r : c.rules()) {
                sb.append("    ").append(r).append('\n');
            }
            sb.append("  }\n");
        }
        sb.append("}\n");
    }

    private static int estimate(NftRuleset ruleset) {
        int size = 512;
        for (NftTable t : ruleset.tables()) {
            for (NftSet s : t.sets()) {
                size += 96 + 72 * s.elements().size();
            }
            for (NftChain c : t.chains()) {
                size += 64 + 96 * c.rules().size();
            }
        }
        return size;
    }
}
