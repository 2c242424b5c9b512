package io.egressctl.agent.enforce;

import io.egressctl.core.hash.CanonicalHash;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.render.NftRenderer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Enforces a host's rendered ruleset in the kernel with nftables, in the product's own tables only
 * ({@code table inet egressctl}, and {@code table bridge egressctl} on a bridged host); every other
 * table on the host is left alone.
 *
 * <h2>A script: one or two tables</h2>
 * The renderer's script replaces each table it defines with {@code table F egressctl} / {@code delete
 * table F egressctl} / {@code table F egressctl { ... }}: always the inet table, then on a bridged host
 * the bridge table (the map of VM ports to marks and the prerouting chain that sets the mark). The
 * product's tables are {@link #TABLES}: a script is the whole desired state of them, so the drift
 * check wants a product table the script does not define absent, and the next full apply removes a
 * product table known to be there (applied before, or found by the drift check) that the script does
 * not mention: the bridge table of a host that went from bridged to routed.
 *
 * <h2>Apply: always one transaction</h2>
 * nft sends everything read from one {@code nft -f -} run as one netlink batch, which the kernel
 * commits entirely or not at all, so after {@link #apply} returns the whole new ruleset is in force
 * and after it throws the previous one still is (invariant 5). Two forms are sent:
 * <ul>
 *   <li><b>full</b>: the renderer's script as is (both tables when it has both), used for the first
 *       apply, for a re-apply of the same script (drift repair), when the set of tables changes (a
 *       host mode change) and whenever the incremental form is not possible or fails;</li>
 *   <li><b>incremental</b>: when the kernel holds the previous script this enforcer applied, only the
 *       difference, table by table: new sets, {@code delete element} / {@code add element} on the
 *       sets and maps whose elements changed ({@code ports}, {@code vms}, {@code own}, {@code addr4},
 *       {@code addr6}, {@code def} and the rule sets), a chain flushed and refilled when its rules
 *       changed (the vm chain when a lookup comes or goes), then deletion of sets no longer used. The
 *       renderer's names are stable (sets by layer, shape, family and bucket; marks by interface), so
 *       one rule changed on a 10,000-rule host is a few element operations instead of rebuilding the
 *       tables. If the kernel refuses the delta (say an element it deletes was removed by hand) the
 *       full script is applied in the same call.</li>
 * </ul>
 * A failed apply raises an {@link EnforcementException} whose message carries nft's own stderr.
 *
 * <h2>inSync: two checks, on {@code nft -j list table F egressctl} of every table</h2>
 * Each of the script's tables is listed (one nft run per table, run side by side), and each product
 * table the script does not define too, to see it is absent. Comparing the kernel's listing with the
 * desired script as text cannot work: nft normalises what it prints (marks as numbers in JSON,
 * {@code 8} in an ICMP type as {@code echo-request}, counters change with traffic). So:
 * <ol>
 *   <li><b>structure, from the script alone</b> (works after an agent restart, with nothing applied
 *       by this process), per table: the chains with their hook and policy, each chain's rules in
 *       order identified by their comments (the lookups are commented with layer, verdict, shape,
 *       family and bucket; rules without a comment, such as {@code meta mark @vms jump vm}, count by
 *       position), the elements of every map by key ({@code ports}: interface to mark, {@code def}:
 *       mark to verdict) and, for every named set, its elements: by key and comment where every key
 *       is made of marks, addresses and names ({@code vms}, {@code own}, {@code addr4}, {@code addr6},
 *       exact destination sets of whole-protocol rules), else as the multiset of their
 *       {@code r=<rule id> h=<rule hash>} comments. A deleted, added or moved element, a missing or
 *       extra lookup or set, a port unmapped or with another mark or default, a source address
 *       changed, or a missing (or unexpected) table all show here.</li>
 *   <li><b>content, against the kernel's own rendering</b>: at the first check after one of this
 *       enforcer's applies, once the structure matches, the kernel's listings are captured in a
 *       canonical form (handles and counter values dropped, those of set elements too, elements
 *       sorted); later checks of the same script compare the whole listings with it. That also
 *       catches an edit that keeps comments (a {@code drop} lookup turned into {@code accept}, an
 *       element replaced by one with another port and the same comment), which the structure check
 *       cannot see. Capturing lazily rather than right after the apply keeps a second full listing
 *       off the apply path; the price is that an edit made between an apply and the next check and
 *       keeping comments is only caught at the next apply.</li>
 * </ol>
 * The steady state is cheap on the Java side: when the raw listings, counters aside, are byte for
 * byte the ones last found equal to the captured form, nothing is parsed (one hash of the text); only
 * a listing that changed in any way goes through the checks above. Reading a table back costs nft CPU
 * in proportion to what it lists, so large hosts want a reconcile interval of seconds to tens of
 * seconds.
 *
 * Not thread-safe by design beyond {@code synchronized} methods: the agent calls it from one thread.
 */
public final class NftablesEnforcer implements Enforcer {

    private static final Logger log = LoggerFactory.getLogger(NftablesEnforcer.class);
    /**
     * The product's tables ({@code family name}). A script defines some of them; a full apply removes
     * the others, and the drift check wants them absent.
     */
    public static final List<String> TABLES = List.of(NftRenderer.FAMILY + " " + NftRenderer.TABLE, "bridge " + NftRenderer.TABLE);
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final ObjectNode COUNTER = JSON.createObjectNode().putNull("counter");

    private final NftRunner nft;

    /** What this enforcer last applied successfully, parsed; null when unknown (kernel not trusted). */
    private Ruleset applied;
    /** Canonical kernel listings of {@link #applied}, captured at the first check after the apply. */
    private String snapshot;
    /** sha256 of the last raw listings found equal to {@link #snapshot}, counters removed: the cheap path. */
    private String snapshotRawHash;
    /** Product tables the script did not define that the last drift check found in the kernel: the next full apply removes them. */
    private final Set<String> stray = new LinkedHashSet<>();
    private String lastDrift = "";
    private long fullApplies;
    private long incrementalApplies;
    private long incrementalFallbacks;
    private boolean lastApplyIncremental;

    public NftablesEnforcer(NftRunner nft) {
        this.nft = Objects.requireNonNull(nft, "nft");
    }

    @Override
    public String name() {
        return "nftables";
    }

    @Override
    public synchronized void apply(String script) throws EnforcementException {
        Ruleset previous = applied;
        // Forget what the kernel holds until this apply is known to have succeeded or failed cleanly.
        applied = null;
        snapshot = null;
        snapshotRawHash = null;
        Ruleset desired = null;
        if (previous != null && !script.equals(previous.script)) {
            desired = Ruleset.parseOrNull(script);
            String delta = desired == null ? null : Ruleset.delta(previous, desired);
            if (delta != null && delta.isEmpty()) {
                applied = desired;
                lastApplyIncremental = true;
                incrementalApplies++;
                return;
            }
            if (delta != null) {
                // A runner failure (timeout, cannot start) leaves the kernel in an unknown state: applied stays null.
                NftRunner.Result r = nft.run(delta, NftRunner.APPLY);
                if (r.ok()) {
                    applied = desired;
                    lastApplyIncremental = true;
                    incrementalApplies++;
                    return;
                }
                incrementalFallbacks++;
                log.info("incremental nft transaction refused, applying the full ruleset instead: {}", r.errorText());
            }
        }
        // The full script. The header notes are for readers of the script: nft is sent it without them
        // (see NftRenderer). While nft works, the script is parsed for the drift checks that follow.
        Set<String> remove = new LinkedHashSet<>(stray);
        if (previous != null) {
            remove.addAll(previous.tables.keySet());
        }
        NftRunner.Pending run = nft.start(fullInput(script, remove), NftRunner.APPLY);
        Ruleset parsed = desired != null ? desired : Ruleset.parseOrNull(script);
        NftRunner.Result r = run.await();
        if (!r.ok()) {
            // A refused transaction changed nothing: the previous ruleset is still what the kernel holds.
            applied = previous;
            throw new EnforcementException("nft rejected the ruleset (exit " + r.exitCode() + "): " + r.errorText());
        }
        applied = parsed;
        stray.clear();
        lastApplyIncremental = false;
        fullApplies++;
    }

    /**
     * What a full apply sends nft: the script without its header notes, after the removal
     * ({@code table X} / {@code delete table X}: created if absent, then deleted) of the product
     * tables in {@code remove} the script does not mention, so that the transaction leaves exactly the
     * script's tables. Only tables known to be there are removed: a kernel without the bridge family
     * would refuse even the creation of a bridge table, and with it a routed host's whole ruleset.
     */
    static String fullInput(String script, Set<String> remove) {
        String input = NftRenderer.kernelInput(script);
        StringBuilder removals = null;
        for (String t : remove) {
            if (!mentions(script, t)) {
                if (removals == null) {
                    removals = new StringBuilder(input.length() + 128);
                }
                removals.append("table ").append(t).append("\ndelete table ").append(t).append('\n');
            }
        }
        return removals == null ? input : removals.append(input).toString();
    }

    /** True when a line of the script is {@code table <t>}, {@code delete table <t>} or {@code table <t> {}. */
    static boolean mentions(String script, String table) {
        String needle = "table " + table;
        for (int at = script.indexOf(needle); at >= 0; at = script.indexOf(needle, at + 1)) {
            int lineStart = script.lastIndexOf('\n', at) + 1;
            String before = script.substring(lineStart, at);
            int end = at + needle.length();
            boolean wholeName = end == script.length() || script.charAt(end) == '\n' || script.startsWith(" {", end);
            if ((before.isEmpty() || before.equals("delete ")) && wholeName) {
                return true;
            }
        }
        return false;
    }

    @Override
    public synchronized boolean inSync(String script) throws EnforcementException {
        boolean ours = applied != null && script.equals(applied.script);
        Ruleset desired = ours ? applied : Ruleset.parseOrNull(script);
        // The tables to read back, and the product tables that must be absent. A script that is not
        // in the renderer's format is only known to need the inet table.
        List<String> present = desired != null ? List.copyOf(desired.tables.keySet()) : List.of(TABLES.get(0));
        List<String> absent = new ArrayList<>();
        if (desired != null) {
            for (String t : TABLES) {
                if (!desired.tables.containsKey(t)) {
                    absent.add(t);
                }
            }
        }
        // Every listing runs side by side (a process each), then each is awaited.
        List<NftRunner.Pending> runs = new ArrayList<>(present.size() + absent.size());
        for (String t : present) {
            runs.add(nft.start("", listArgs(t)));
        }
        for (String t : absent) {
            runs.add(nft.start("", listArgs(t)));
        }
        List<NftRunner.Result> results = new ArrayList<>(runs.size());
        for (NftRunner.Pending p : runs) {
            results.add(p.await());
        }
        String missing = null;
        for (int i = 0; i < present.size(); i++) {
            NftRunner.Result r = results.get(i);
            if (!r.ok()) {
                if (!noSuchTable(r)) {
                    throw new EnforcementException("cannot list table " + present.get(i) + " (exit " + r.exitCode() + "): " + r.errorText());
                }
                if (missing == null) {
                    missing = "table " + present.get(i) + " does not exist";
                }
            }
        }
        for (int i = 0; i < absent.size(); i++) {
            // A table nft cannot list for whatever reason (none such, no bridge family in this
            // kernel) is not there.
            if (results.get(present.size() + i).ok()) {
                stray.add(absent.get(i));
                if (missing == null) {
                    missing = "table " + absent.get(i) + " is in the kernel but not in the desired ruleset";
                }
            }
        }
        if (missing != null) {
            return drift(missing);
        }
        String rawHash = null;
        if (ours) {
            StringBuilder raw = new StringBuilder();
            for (int i = 0; i < present.size(); i++) {
                raw.append("== ").append(present.get(i)).append('\n').append(results.get(i).stdout());
            }
            rawHash = rawHash(raw.toString());
            if (rawHash.equals(snapshotRawHash)) {
                // Byte for byte (counters aside) the listings that were verified before: nothing changed.
                lastDrift = "";
                return true;
            }
        }
        List<JsonNode> listings = new ArrayList<>(present.size());
        for (int i = 0; i < present.size(); i++) {
            try {
                listings.add(JSON.readTree(results.get(i).stdout()));
            } catch (JacksonException e) {
                throw new EnforcementException("nft -j printed something that is not JSON: " + e.getOriginalMessage(), e);
            }
        }
        if (desired != null) {
            for (int i = 0; i < present.size(); i++) {
                Structure expected = desired.tables.get(present.get(i)).structure();
                String difference = expected.difference(Structure.of(listings.get(i), expected.keyed()));
                if (difference != null) {
                    return drift("table " + present.get(i) + ": " + difference);
                }
            }
        }
        if (ours) {
            StringBuilder canonical = new StringBuilder();
            for (int i = 0; i < present.size(); i++) {
                canonical.append("=== table ").append(present.get(i)).append('\n').append(canonical(listings.get(i)));
            }
            String now = canonical.toString();
            if (snapshot == null) {
                snapshot = now;
            } else if (!snapshot.equals(now)) {
                return drift("the kernel's listing changed since it was captured after the last apply "
                        + "(a rule or set element was edited in place)");
            }
            snapshotRawHash = rawHash;
        } else if (desired == null) {
            return drift("the desired script is not in the renderer's format and was not applied by this enforcer");
        }
        lastDrift = "";
        return true;
    }

    /** nft's arguments listing one table as JSON. */
    static List<String> listArgs(String table) {
        int space = table.indexOf(' ');
        return List.of("-j", "list", "table", table.substring(0, space), table.substring(space + 1));
    }

    private static boolean noSuchTable(NftRunner.Result r) {
        return r.stderr() != null && r.stderr().contains("No such file or directory");
    }

    private boolean drift(String reason) {
        lastDrift = reason;
        // Whatever the kernel holds now, it is not known to be the last applied script: the next
        // apply must be a full one.
        applied = null;
        snapshot = null;
        snapshotRawHash = null;
        return false;
    }

    /** A counter's values, in a rule ({@code {"counter": {...}}}) or on a set or map element. */
    private static final Pattern RAW_COUNTER =
            Pattern.compile("\"counter\":\\s*\\{\\s*\"packets\":\\s*\\d+,\\s*\"bytes\":\\s*\\d+\\s*\\}");

    /** sha256 of a raw JSON listing with its counter values taken out. */
    static String rawHash(String listing) {
        return CanonicalHash.sha256(RAW_COUNTER.matcher(listing).replaceAll("\"counter\": {}"));
    }

    /** Why the last {@link #inSync} returned false (empty after a true). */
    public synchronized String lastDriftReason() {
        return lastDrift;
    }

    public synchronized long fullApplies() {
        return fullApplies;
    }

    public synchronized long incrementalApplies() {
        return incrementalApplies;
    }

    /** Incremental transactions the kernel refused, each followed by a full apply. */
    public synchronized long incrementalFallbacks() {
        return incrementalFallbacks;
    }

    /** True when the last successful apply was incremental. */
    public synchronized boolean lastApplyIncremental() {
        return lastApplyIncremental;
    }

    /**
     * One table's JSON listing in a canonical form: metainfo, handles and counter values (of rules
     * and of set and map elements) dropped, chains, sets and maps ordered by name, their elements
     * sorted, rules kept in chain order. Equal for equal rulesets however they were built (full or
     * incremental transactions). Modifies the given tree (handles and counters are removed from it).
     */
    public static String canonical(JsonNode listing) {
        TreeMap<String, StringBuilder> parts = new TreeMap<>();
        for (JsonNode item : listing.path("nftables")) {
            if (!(item instanceof ObjectNode) || item.has("metainfo")) {
                continue;
            }
            for (Map.Entry<String, JsonNode> e : item.properties()) {
                String kind = e.getKey();
                if (!(e.getValue() instanceof ObjectNode body)) {
                    continue;
                }
                body.remove("handle");
                String key;
                if (kind.equals("rule")) {
                    key = "rules " + body.path("chain").asString("");
                    if (body.get("expr") instanceof ArrayNode expr) {
                        for (int i = 0; i < expr.size(); i++) {
                            if (expr.get(i).has("counter")) {
                                expr.set(i, COUNTER);
                            }
                        }
                    }
                } else {
                    key = kind + " " + body.path("name").asString("");
                    if (body.get("elem") instanceof ArrayNode elem) {
                        List<String> sorted = new ArrayList<>(elem.size());
                        for (JsonNode el : elem) {
                            // A map element is [key, data]; a key with a comment or counter is {"elem": {...}}.
                            JsonNode k = el.isArray() && !el.isEmpty() ? el.get(0) : el;
                            if (k.path("elem") instanceof ObjectNode o) {
                                o.remove("counter");
                            }
                            sorted.add(el.toString());
                        }
                        Collections.sort(sorted);
                        body.remove("elem");
                        body.put("elem", String.join(",", sorted));
                    }
                }
                parts.computeIfAbsent(key, k -> new StringBuilder()).append(body).append('\n');
            }
        }
        StringBuilder out = new StringBuilder();
        parts.forEach((k, v) -> out.append("== ").append(k).append('\n').append(v));
        return out.toString();
    }

    /**
     * The renderer's script, parsed: its tables ({@code family name}, in script order), each with the
     * objects of its block: sets and maps (header lines and elements) and chains (base-chain line,
     * comment, rule lines), in script order.
     */
    static final class Ruleset {

        final String script;
        final Map<String, Table> tables = new LinkedHashMap<>();

        private Ruleset(String script) {
            this.script = script;
        }

        /** The table {@code family name} (e.g. {@code inet egressctl}), or null. */
        Table table(String key) {
            return tables.get(key);
        }

        /** One table's block. */
        static final class Table {
            final String family;
            final String name;
            final Map<String, SetDef> sets = new LinkedHashMap<>();
            final Map<String, ChainDef> chains = new LinkedHashMap<>();
            private Structure structure;

            Table(String family, String name) {
                this.family = family;
                this.name = name;
            }

            String key() {
                return family + " " + name;
            }

            /** What the structure check expects of the kernel's listing of this table (computed once). */
            Structure structure() {
                if (structure == null) {
                    structure = Structure.of(this);
                }
                return structure;
            }
        }

        /** A set or map: header lines (type, flags, counter) and elements as written. */
        record SetDef(boolean map, List<String> header, List<String> elements) {
        }

        record ChainDef(String base, String comment, List<String> rules) {
        }

        private static final Pattern BLOCK = Pattern.compile("^table (\\w+) ([A-Za-z0-9_.-]+) \\{$");
        private static final Pattern TABLE_LINE = Pattern.compile("^(?:delete )?table \\w+ [A-Za-z0-9_.-]+$");
        private static final Pattern OBJECT = Pattern.compile("^(set|map|chain) ([A-Za-z0-9_.-]+) \\{$");
        private static final Pattern CHAIN_COMMENT = Pattern.compile("comment \"[^\"]*\"");

        /** Parses a script in the renderer's format, or returns null when it is not in that format. */
        static Ruleset parseOrNull(String script) {
            try {
                return parse(script);
            } catch (IllegalArgumentException e) {
                return null;
            }
        }

        /**
         * Reads {@code # notes}, {@code table F N} and {@code delete table F N} lines (each table's
         * replacement) and the tables' blocks; anything else is not the renderer's format.
         */
        static Ruleset parse(String script) {
            String[] lines = script.split("\n");
            Ruleset rs = new Ruleset(script);
            for (int i = 0; i < lines.length; i++) {
                String line = lines[i].strip();
                if (line.isEmpty() || line.startsWith("#") || TABLE_LINE.matcher(line).matches()) {
                    continue;
                }
                Matcher m = BLOCK.matcher(line);
                if (!m.matches()) {
                    throw new IllegalArgumentException("unexpected line: " + line);
                }
                Table t = new Table(m.group(1), m.group(2));
                if (rs.tables.put(t.key(), t) != null) {
                    throw new IllegalArgumentException("table " + t.key() + " defined twice");
                }
                i = block(lines, i + 1, t);
            }
            if (rs.tables.isEmpty()) {
                throw new IllegalArgumentException("no table block");
            }
            return rs;
        }

        /** Reads the objects of a table's block into {@code t}; returns the index of its closing line. */
        private static int block(String[] lines, int i, Table t) {
            for (; i < lines.length; i++) {
                String line = lines[i].strip();
                if (line.isEmpty()) {
                    continue;
                }
                if (line.equals("}")) {
                    return i;
                }
                Matcher m = OBJECT.matcher(line);
                if (!m.matches()) {
                    throw new IllegalArgumentException("unexpected line: " + line);
                }
                String kind = m.group(1);
                String name = m.group(2);
                List<String> body = new ArrayList<>();
                List<String> elements = new ArrayList<>();
                for (i++; i < lines.length && !lines[i].strip().equals("}"); i++) {
                    String b = lines[i].strip();
                    if (b.isEmpty()) {
                        continue;
                    }
                    if (!kind.equals("chain") && b.equals("elements = {")) {
                        // One element a line, up to a line of its own closing the block.
                        for (i++; i < lines.length && !lines[i].strip().equals("}"); i++) {
                            String el = lines[i].strip();
                            if (el.endsWith(",")) {
                                el = el.substring(0, el.length() - 1).strip();
                            }
                            addElements(name, el, elements);
                        }
                        if (i >= lines.length) {
                            throw new IllegalArgumentException("unterminated elements of " + name);
                        }
                    } else if (!kind.equals("chain") && b.startsWith("elements = {") && b.endsWith("}")) {
                        addElements(name, b.substring("elements = {".length(), b.length() - 1), elements);
                    } else if (b.startsWith("elements")) {
                        throw new IllegalArgumentException("elements of " + name + " in an unknown form");
                    } else {
                        body.add(b);
                    }
                }
                if (i >= lines.length) {
                    throw new IllegalArgumentException("unterminated " + kind + " " + name);
                }
                if (kind.equals("chain")) {
                    String base = null;
                    String comment = null;
                    List<String> rules = new ArrayList<>();
                    for (String b : body) {
                        if (base == null && rules.isEmpty() && b.startsWith("type ") && b.contains(" hook ")) {
                            base = b;
                        } else if (comment == null && rules.isEmpty() && CHAIN_COMMENT.matcher(b).matches()) {
                            comment = b;
                        } else {
                            rules.add(b);
                        }
                    }
                    if (t.chains.put(name, new ChainDef(base, comment, List.copyOf(rules))) != null) {
                        throw new IllegalArgumentException("chain " + name + " defined twice");
                    }
                } else if (t.chains.containsKey(name) || t.sets.put(name, new SetDef(kind.equals("map"), List.copyOf(body), List.copyOf(elements))) != null) {
                    throw new IllegalArgumentException(kind + " " + name + " defined twice");
                }
            }
            throw new IllegalArgumentException("unterminated block of table " + t.key());
        }

        private static void addElements(String name, String text, List<String> elements) {
            if (text.contains("{") || text.contains("}")) {
                throw new IllegalArgumentException("nested braces in elements of " + name);
            }
            for (String el : text.split(",")) {
                if (!el.isBlank()) {
                    elements.add(el.strip());
                }
            }
        }

        /** The parts of an incremental transaction, each gathered over all tables, sent in this order. */
        private static final class Delta {
            final StringBuilder blocks = new StringBuilder();
            final StringBuilder elementDeletes = new StringBuilder();
            final StringBuilder elementAdds = new StringBuilder();
            final StringBuilder flushes = new StringBuilder();
            final StringBuilder refills = new StringBuilder();
            final StringBuilder chainDeletes = new StringBuilder();
            final StringBuilder setDeletes = new StringBuilder();

            String text() {
                // Element changes before chain deletions: a chain is deletable only once no map jumps to it.
                return new StringBuilder().append(blocks).append(elementDeletes).append(elementAdds).append(flushes)
                        .append(refills).append(chainDeletes).append(setDeletes).toString();
            }
        }

        /**
         * The incremental transaction that turns a kernel holding {@code from} into {@code to}: empty
         * when nothing differs, null when only a full replacement can do it (a table added or removed,
         * as when the host's mode changes; a changed base-chain definition, a new base chain; a set or
         * map whose header changed under the same name; a map added or removed).
         *
         * <p>In order, over all tables: new sets (with their elements) in a block per table; then, per
         * existing set or map, {@code delete element} of the keys that went or changed (an element's
         * comment and a map element's data count: a rule whose hash changed gets its elements
         * replaced, a port whose mark or default changed its map element) and {@code add element} of
         * the new ones (deletions first: an interval set refuses an element overlapping one still in
         * it, a map a key it holds); then changed chains flushed and refilled with {@code add rule};
         * then chains and sets no longer used deleted, once no rule references them.
         */
        static String delta(Ruleset from, Ruleset to) {
            if (!from.tables.keySet().equals(to.tables.keySet())) {
                return null;
            }
            Delta d = new Delta();
            for (Table now : to.tables.values()) {
                if (!delta(from.tables.get(now.key()), now, d)) {
                    return null;
                }
            }
            return d.text();
        }

        /** Adds one table's changes to {@code d}; false when only a full replacement can do it. */
        private static boolean delta(Table from, Table to, Delta d) {
            String t = to.key();
            StringBuilder adds = new StringBuilder();
            for (Map.Entry<String, SetDef> e : to.sets.entrySet()) {
                SetDef now = e.getValue();
                SetDef before = from.sets.get(e.getKey());
                if (before == null) {
                    if (now.map() || from.chains.containsKey(e.getKey())) {
                        return false;
                    }
                    adds.append("  set ").append(e.getKey()).append(" {\n");
                    now.header().forEach(h -> adds.append("    ").append(h).append('\n'));
                    if (!now.elements().isEmpty()) {
                        adds.append("    elements = { ").append(String.join(", ", now.elements())).append(" }\n");
                    }
                    adds.append("  }\n");
                    continue;
                }
                if (before.map() != now.map() || !before.header().equals(now.header())) {
                    return false;
                }
                List<String> was = before.elements();
                List<String> is = now.elements();
                if (was.equals(is)) {
                    continue;
                }
                // Elements keep their order from one render to the next: only the stretch between the
                // common head and tail can differ (a key is once in a set, so one in the head or tail
                // of either list is nowhere else in the other).
                int head = 0;
                while (head < was.size() && head < is.size() && was.get(head).equals(is.get(head))) {
                    head++;
                }
                int endWas = was.size();
                int endIs = is.size();
                while (endWas > head && endIs > head && was.get(endWas - 1).equals(is.get(endIs - 1))) {
                    endWas--;
                    endIs--;
                }
                Map<String, String> old = elementsByKey(before, was.subList(head, endWas));
                Map<String, String> fresh = elementsByKey(now, is.subList(head, endIs));
                List<String> gone = new ArrayList<>();
                List<String> added = new ArrayList<>();
                old.forEach((k, v) -> {
                    if (!v.equals(fresh.get(k))) {
                        gone.add(k);
                    }
                });
                fresh.forEach((k, v) -> {
                    if (!v.equals(old.get(k))) {
                        added.add(v);
                    }
                });
                if (!gone.isEmpty()) {
                    d.elementDeletes.append("delete element ").append(t).append(' ').append(e.getKey())
                            .append(" { ").append(String.join(", ", gone)).append(" }\n");
                }
                if (!added.isEmpty()) {
                    d.elementAdds.append("add element ").append(t).append(' ').append(e.getKey())
                            .append(" { ").append(String.join(", ", added)).append(" }\n");
                }
            }
            for (Map.Entry<String, SetDef> e : from.sets.entrySet()) {
                if (!to.sets.containsKey(e.getKey())) {
                    if (e.getValue().map()) {
                        return false;
                    }
                    d.setDeletes.append("delete set ").append(t).append(' ').append(e.getKey()).append('\n');
                }
            }
            for (Map.Entry<String, ChainDef> e : to.chains.entrySet()) {
                ChainDef now = e.getValue();
                ChainDef before = from.chains.get(e.getKey());
                if (before != null && before.equals(now)) {
                    continue;
                }
                if (before == null) {
                    if (now.base() != null || from.sets.containsKey(e.getKey())) {
                        return false;
                    }
                    adds.append("  chain ").append(e.getKey()).append(" {\n");
                    if (now.comment() != null) {
                        adds.append("    ").append(now.comment()).append('\n');
                    }
                    now.rules().forEach(r -> adds.append("    ").append(r).append('\n'));
                    adds.append("  }\n");
                } else if (!Objects.equals(before.base(), now.base()) || !Objects.equals(before.comment(), now.comment())) {
                    return false;
                } else {
                    // Same chain (a base chain keeps its hook): only its rules change, in this transaction.
                    d.flushes.append("flush chain ").append(t).append(' ').append(e.getKey()).append('\n');
                    now.rules().forEach(r -> d.refills.append("add rule ").append(t).append(' ').append(e.getKey())
                            .append(' ').append(r).append('\n'));
                }
            }
            for (Map.Entry<String, ChainDef> e : from.chains.entrySet()) {
                if (!to.chains.containsKey(e.getKey())) {
                    if (e.getValue().base() != null) {
                        return false;
                    }
                    // Flushed first: its rules may hold the last references to sets deleted below.
                    d.flushes.append("flush chain ").append(t).append(' ').append(e.getKey()).append('\n');
                    d.chainDeletes.append("delete chain ").append(t).append(' ').append(e.getKey()).append('\n');
                }
            }
            if (!adds.isEmpty()) {
                d.blocks.append("table ").append(t).append(" {\n").append(adds).append("}\n");
            }
            return true;
        }

        /**
         * Elements of a set or map by key (normalised as the kernel prints addresses): the whole
         * element text, comment and data included, so a changed comment or data is a change.
         */
        static Map<String, String> elementsByKey(SetDef set) {
            return elementsByKey(set, set.elements());
        }

        /** {@link #elementsByKey(SetDef)} of some of the set's elements. */
        static Map<String, String> elementsByKey(SetDef set, List<String> elements) {
            Map<String, String> out = new LinkedHashMap<>();
            for (String el : elements) {
                out.put(elementKey(set, el), el);
            }
            return out;
        }

        /** The key of an element: the text before its comment (and, in a map, before the data). */
        static String elementKey(SetDef set, String el) {
            String key = el;
            if (set.map()) {
                int colon = key.indexOf(" : ");
                if (colon < 0) {
                    throw new IllegalArgumentException("map element without data: " + el);
                }
                key = key.substring(0, colon);
            }
            int c = key.indexOf(" comment \"");
            if (c >= 0) {
                key = key.substring(0, c);
            }
            return set.map() ? normaliseKey(key.strip()) : key.strip();
        }

        /** Elements of a map: key to data (a verdict or a value), both as the kernel's listing is read. */
        static Map<String, String> mapElements(SetDef map) {
            Map<String, String> out = new LinkedHashMap<>();
            for (String el : map.elements()) {
                int colon = el.indexOf(" : ");
                if (colon < 0) {
                    throw new IllegalArgumentException("map element without data: " + el);
                }
                out.put(Keys.normalised(elementKey(map, el)), Keys.normalised(el.substring(colon + 3).strip()));
            }
            return out;
        }
    }

    /** Normalises an address or prefix to the text nft prints (compressed IPv6, no /32 on hosts). */
    static String normaliseKey(String key) {
        // Only what can be an address is parsed (no exception thrown for every protocol or name).
        if (key.isEmpty() || Character.digit(key.charAt(0), 16) < 0 && key.charAt(0) != ':' || key.startsWith("0x")
                || key.indexOf(' ') >= 0 || key.indexOf('.') < 0 && key.indexOf(':') < 0) {
            return key;
        }
        try {
            Cidr c = Cidr.parse(key);
            return c.isHost() ? c.addressText() : c.toString();
        } catch (IllegalArgumentException e) {
            return key;
        }
    }

    /**
     * Element keys in one comparable form, read from the script or from nft's JSON listing: the
     * fields of a concatenation joined by {@code " . "}, a mark (hex in the script, a number in
     * JSON) as a decimal number, an interface name without its quotes, an address or prefix as nft
     * prints it, a range as {@code lo-hi}.
     */
    static final class Keys {

        private static final Pattern HEX = Pattern.compile("0x[0-9a-fA-F]{1,16}");

        private Keys() {
        }

        /** A key (or a map element's data) as written in the script, normalised. */
        static String normalised(String key) {
            if (key.indexOf(" . ") < 0) {
                return field(key);
            }
            StringBuilder sb = new StringBuilder(key.length() + 8);
            for (String f : key.split(" \\. ")) {
                sb.append(sb.isEmpty() ? "" : " . ").append(field(f.strip()));
            }
            return sb.toString();
        }

        private static String field(String f) {
            if (f.length() >= 2 && f.charAt(0) == '"' && f.charAt(f.length() - 1) == '"') {
                return f.substring(1, f.length() - 1);
            }
            if (HEX.matcher(f).matches()) {
                return Long.toString(Long.parseLong(f.substring(2), 16));
            }
            return normaliseKey(f);
        }

        /**
         * True when every field of a script key is a mark, one address or prefix, or a quoted name:
         * fields nft lists back in a form {@link #normalised} reproduces (a protocol, port or ICMP
         * type may come back as a name or another number format, a range as a prefix).
         */
        static boolean comparable(String key) {
            for (String f : key.split(" \\. ")) {
                f = f.strip();
                if (f.length() >= 2 && f.charAt(0) == '"' && f.charAt(f.length() - 1) == '"' || HEX.matcher(f).matches()) {
                    continue;
                }
                if (f.isEmpty() || f.indexOf('-') >= 0 || (f.indexOf('.') < 0 && f.indexOf(':') < 0)) {
                    return false;
                }
                try {
                    Cidr.parse(f);
                } catch (IllegalArgumentException e) {
                    return false;
                }
            }
            return true;
        }

        /** A value of nft's JSON listing (a key, a concatenation, a map's data), normalised. */
        static String of(JsonNode n) {
            if (n == null || n.isMissingNode() || n.isNull()) {
                return "";
            }
            if (n.isNumber()) {
                return Long.toString(n.asLong());
            }
            if (n.isString()) {
                return normaliseKey(n.asString());
            }
            if (n.has("elem") && n.get("elem").has("val")) {
                return of(n.get("elem").get("val"));
            }
            if (n.has("concat")) {
                StringBuilder sb = new StringBuilder();
                for (JsonNode f : n.get("concat")) {
                    sb.append(sb.isEmpty() ? "" : " . ").append(of(f));
                }
                return sb.toString();
            }
            if (n.has("prefix")) {
                return normaliseKey(n.get("prefix").path("addr").asString("") + "/" + n.get("prefix").path("len").asInt());
            }
            if (n.has("range") && n.get("range").size() == 2) {
                return of(n.get("range").get(0)) + "-" + of(n.get("range").get(1));
            }
            if (n.isObject() && n.size() == 1) {
                // A verdict: {"accept": null}, {"jump": {"target": "x"}}.
                Map.Entry<String, JsonNode> e = n.properties().iterator().next();
                if (e.getValue().isNull()) {
                    return e.getKey();
                }
                JsonNode target = e.getValue().path("target");
                if (!target.isMissingNode()) {
                    return e.getKey() + " " + target.asString("");
                }
            }
            return n.toString();
        }
    }

    /**
     * What the structure check compares of one table: chains (base-chain hook and policy, rule
     * identities in order), map elements (key to data) and named sets with their elements: by key
     * and comment in the sets whose keys are {@linkplain Keys#comparable comparable}, by comment (a
     * sorted multiset) in the others. Built from a script's table or from nft's JSON listing of it.
     *
     * @param sets  per set, its elements as "key comment" (sorted)
     * @param keyed the sets compared by key too (decided from the script; a listing is read with the script's)
     */
    record Structure(Map<String, String> bases, Map<String, List<String>> rules,
                     Map<String, Map<String, String>> maps, Map<String, List<Elem>> sets, Map<String, Boolean> keyed) {

        /** A set element: normalised key and comment ("" without one). */
        record Elem(String key, String comment) implements Comparable<Elem> {
            @Override
            public int compareTo(Elem o) {
                int c = comment.compareTo(o.comment);
                return c != 0 ? c : key.compareTo(o.key);
            }

            @Override
            public String toString() {
                return key.isEmpty() ? comment : comment.isEmpty() ? key : key + " comment " + comment;
            }
        }

        private static final Pattern COMMENT = Pattern.compile("comment \"([^\"]*)\"$");
        private static final Pattern BASE = Pattern.compile("type (\\w+) hook (\\w+).*?(?:policy (\\w+))?;?$");

        static Structure of(Ruleset.Table table) {
            Map<String, String> bases = new TreeMap<>();
            Map<String, List<String>> rules = new TreeMap<>();
            Map<String, Map<String, String>> maps = new TreeMap<>();
            Map<String, List<Elem>> sets = new TreeMap<>();
            Map<String, Boolean> keyed = new TreeMap<>();
            table.chains.forEach((name, c) -> {
                if (c.base() != null) {
                    Matcher m = BASE.matcher(c.base());
                    bases.put(name, m.find() ? m.group(1) + " hook " + m.group(2) + " policy "
                            + (m.group(3) == null ? "accept" : m.group(3)) : c.base());
                } else {
                    bases.put(name, "");
                }
                List<String> ids = new ArrayList<>();
                for (String r : c.rules()) {
                    Matcher m = COMMENT.matcher(r);
                    ids.add(m.find() ? m.group(1) : "");
                }
                rules.put(name, ids);
            });
            table.sets.forEach((name, s) -> {
                if (s.map()) {
                    maps.put(name, new TreeMap<>(Ruleset.mapElements(s)));
                    return;
                }
                List<Elem> elements = new ArrayList<>(s.elements().size());
                boolean comparable = true;
                for (String el : s.elements()) {
                    String key = el;
                    String comment = "";
                    int c = el.indexOf(" comment \"");
                    if (c >= 0) {
                        key = el.substring(0, c).strip();
                        comment = el.substring(c + 10, el.lastIndexOf('"'));
                    }
                    comparable = comparable && Keys.comparable(key);
                    elements.add(new Elem(comparable ? Keys.normalised(key) : "", comment));
                }
                if (!comparable) {
                    elements.replaceAll(e -> new Elem("", e.comment()));
                }
                Collections.sort(elements);
                sets.put(name, elements);
                keyed.put(name, comparable);
            });
            return new Structure(bases, rules, maps, sets, keyed);
        }

        /** A table's listing; the elements of sets in {@code keyed} (by name, true) with their keys, the others' without. */
        static Structure of(JsonNode listing, Map<String, Boolean> keyed) {
            Map<String, String> bases = new TreeMap<>();
            Map<String, List<String>> rules = new TreeMap<>();
            Map<String, Map<String, String>> maps = new TreeMap<>();
            Map<String, List<Elem>> sets = new TreeMap<>();
            for (JsonNode item : listing.path("nftables")) {
                if (item.has("chain")) {
                    JsonNode c = item.get("chain");
                    String name = c.path("name").asString("");
                    bases.put(name, c.has("hook") ? c.path("type").asString("") + " hook " + c.path("hook").asString("")
                            + " policy " + c.path("policy").asString("accept") : "");
                    rules.putIfAbsent(name, new ArrayList<>());
                } else if (item.has("rule")) {
                    JsonNode r = item.get("rule");
                    rules.computeIfAbsent(r.path("chain").asString(""), k -> new ArrayList<>())
                            .add(r.path("comment").asString(""));
                } else if (item.has("map")) {
                    JsonNode m = item.get("map");
                    Map<String, String> elements = new TreeMap<>();
                    for (JsonNode el : m.path("elem")) {
                        if (el.isArray() && el.size() == 2) {
                            elements.put(Keys.of(el.get(0)), Keys.of(el.get(1)));
                        } else {
                            elements.put(Keys.of(el), "?");
                        }
                    }
                    maps.put(m.path("name").asString(""), elements);
                } else if (item.has("set")) {
                    JsonNode s = item.get("set");
                    String name = s.path("name").asString("");
                    boolean withKeys = Boolean.TRUE.equals(keyed.get(name));
                    List<Elem> elements = new ArrayList<>();
                    for (JsonNode el : s.path("elem")) {
                        elements.add(new Elem(withKeys ? Keys.of(el) : "", el.path("elem").path("comment").asString("")));
                    }
                    Collections.sort(elements);
                    sets.put(name, elements);
                }
            }
            return new Structure(bases, rules, maps, sets, keyed);
        }

        /** The first difference from the kernel's structure, in words, or null when they agree. */
        String difference(Structure kernel) {
            for (String chain : rules.keySet()) {
                if (!kernel.rules.containsKey(chain)) {
                    return "chain " + chain + " is missing";
                }
            }
            for (String chain : kernel.rules.keySet()) {
                if (!rules.containsKey(chain)) {
                    return "chain " + chain + " is not in the desired ruleset";
                }
            }
            for (Map.Entry<String, String> e : bases.entrySet()) {
                if (!e.getValue().equals(kernel.bases.get(e.getKey()))) {
                    return "chain " + e.getKey() + " is '" + kernel.bases.get(e.getKey()) + "', expected '" + e.getValue() + "'";
                }
            }
            for (Map.Entry<String, List<String>> e : rules.entrySet()) {
                List<String> have = kernel.rules.get(e.getKey());
                if (!e.getValue().equals(have)) {
                    return listDifference("chain " + e.getKey(), "rules", e.getValue(), have, false);
                }
            }
            if (!maps.equals(kernel.maps)) {
                for (Map.Entry<String, Map<String, String>> e : maps.entrySet()) {
                    Map<String, String> have = kernel.maps.get(e.getKey());
                    if (have == null) {
                        return "map " + e.getKey() + " is missing";
                    }
                    for (Map.Entry<String, String> el : e.getValue().entrySet()) {
                        if (!el.getValue().equals(have.get(el.getKey()))) {
                            return "map " + e.getKey() + ": " + el.getKey() + " is '" + have.get(el.getKey())
                                    + "', expected '" + el.getValue() + "'";
                        }
                    }
                    for (String k : have.keySet()) {
                        if (!e.getValue().containsKey(k)) {
                            return "map " + e.getKey() + ": unexpected element " + k;
                        }
                    }
                }
                return "maps differ: " + kernel.maps.keySet() + " instead of " + maps.keySet();
            }
            if (!sets.keySet().equals(kernel.sets.keySet())) {
                return "named sets are " + kernel.sets.keySet() + ", expected " + sets.keySet();
            }
            for (Map.Entry<String, List<Elem>> e : sets.entrySet()) {
                List<Elem> have = kernel.sets.get(e.getKey());
                if (!e.getValue().equals(have)) {
                    return listDifference("set " + e.getKey(), "elements", strings(e.getValue()), strings(have), true);
                }
            }
            return null;
        }

        private static List<String> strings(List<Elem> elements) {
            List<String> out = new ArrayList<>(elements.size());
            elements.forEach(e -> out.add(e.toString()));
            return out;
        }

        /** "{@code <object>} has n {@code <noun>}, expected m; missing [..]; unexpected [..]" (or "in another order"). */
        private static String listDifference(String object, String noun, List<String> expected, List<String> have, boolean abbreviate) {
            List<String> missing = new ArrayList<>(expected);
            have.forEach(missing::remove);
            List<String> extra = new ArrayList<>(have);
            expected.forEach(extra::remove);
            return object + " has " + have.size() + " " + noun + ", expected " + expected.size()
                    + (missing.isEmpty() ? "" : "; missing " + (abbreviate ? abbreviated(missing) : missing))
                    + (extra.isEmpty() ? "" : "; unexpected " + (abbreviate ? abbreviated(extra) : extra))
                    + (missing.isEmpty() && extra.isEmpty() ? " in another order" : "");
        }

        private static String abbreviated(List<String> items) {
            return items.size() <= 10 ? items.toString() : items.subList(0, 10) + " and " + (items.size() - 10) + " more";
        }
    }

    /**
     * One {@code nft list table inet egressctl}: true when the table exists and any of its sets or
     * maps has an element (every VM has one in {@code vms}); false when it is absent or empty.
     */
    @Override
    public boolean holdsRules() throws EnforcementException {
        NftRunner.Result r = nft.run("", List.of("list", "table", NftRenderer.FAMILY, NftRenderer.TABLE));
        if (r.ok()) {
            return r.stdout().contains("elements = {");
        }
        if (r.stderr() != null && r.stderr().contains("No such file or directory")) {
            return false;
        }
        throw new EnforcementException("cannot list table " + NftRenderer.FAMILY + " " + NftRenderer.TABLE + " (exit " + r.exitCode() + "): " + r.errorText());
    }
}
