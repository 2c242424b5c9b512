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
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Enforces a host's rendered ruleset in the kernel with nftables, in the product's own table only
 * ({@code inet egressctl}); every other table on the host is left alone.
 *
 * <h2>Apply: always one transaction</h2>
 * nft sends everything read from one {@code nft -f -} run as one netlink batch, which the kernel
 * commits entirely or not at all, so after {@link #apply} returns the whole new ruleset is in force
 * and after it throws the previous one still is (invariant 5). Two forms are sent:
 * <ul>
 *   <li><b>full</b>: the renderer's script as is ({@code table ...; delete table ...; table ... {...}}),
 *       used for the first apply, for a re-apply of the same script (drift repair) and whenever the
 *       incremental form is not possible or fails;</li>
 *   <li><b>incremental</b>: when the kernel holds the previous script this enforcer applied, only the
 *       difference: new sets, {@code delete element} / {@code add element} on the sets and maps whose
 *       elements changed, the forward chain flushed and refilled when its lookups changed, then
 *       deletion of sets no longer used. The renderer's names are stable (sets by layer, shape,
 *       family and bucket; maps and the chain fixed), so one rule changed on a 10,000-rule host is a
 *       few element operations instead of rebuilding the table. If the kernel refuses the delta (say
 *       an element it deletes was removed by hand) the full script is applied in the same call.</li>
 * </ul>
 * A failed apply raises an {@link EnforcementException} whose message carries nft's own stderr.
 *
 * <h2>inSync: two checks, both on {@code nft -j list table inet egressctl}</h2>
 * Comparing the kernel's listing with the desired script as text cannot work: nft normalises what it
 * prints ({@code 8} in an ICMP type comes back as {@code echo-request}, a range that is a prefix as
 * the prefix, counters change with traffic). So:
 * <ol>
 *   <li><b>structure, from the script alone</b> (works after an agent restart, with nothing applied
 *       by this process): the set of chains with their hook and policy, each chain's rules in order
 *       identified by their comments (the lookups are commented with layer, verdict, shape, family
 *       and bucket; rules without a comment count by position), the elements of the default-verdict
 *       maps {@code def4} and {@code def6} (address to verdict) and, for every named set, the
 *       multiset of its elements' {@code r=<rule id> h=<rule hash>} comments. A deleted, added or
 *       moved element, a missing or extra lookup or set, a VM unmapped or with another default, or a
 *       missing table all show here.</li>
 *   <li><b>content, against the kernel's own rendering</b>: at the first check after one of this
 *       enforcer's applies, once the structure matches, the kernel's listing is captured in a
 *       canonical form (handles and counter values dropped, those of set elements too, elements
 *       sorted); later checks of the same script compare the whole listing with it. That also
 *       catches an edit that keeps comments (a {@code drop} lookup turned into {@code accept}, an
 *       element replaced by one with another port and the same comment), which the structure check
 *       cannot see. Capturing lazily rather than right after the apply keeps a second full listing
 *       off the apply path; the price is that an edit made between an apply and the next check and
 *       keeping comments is only caught at the next apply.</li>
 * </ol>
 * The steady state is cheap on the Java side: when the raw listing, counters aside, is byte for byte
 * the one last found equal to the captured form, nothing is parsed (one hash of the text); only a
 * listing that changed in any way goes through the checks above (should the kernel list set
 * elements in another order, that costs one slow check, not a false drift). Reading a table back
 * costs nft CPU in proportion to what it lists, so large hosts want a reconcile interval of seconds
 * to tens of seconds.
 *
 * Not thread-safe by design beyond {@code synchronized} methods: the agent calls it from one thread.
 */
public final class NftablesEnforcer implements Enforcer {

    private static final Logger log = LoggerFactory.getLogger(NftablesEnforcer.class);
    private static final String TABLE = NftRenderer.FAMILY + " " + NftRenderer.TABLE;
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final ObjectNode COUNTER = JSON.createObjectNode().putNull("counter");

    private final NftRunner nft;

    /** What this enforcer last applied successfully, parsed; null when unknown (kernel not trusted). */
    private Ruleset applied;
    /** Canonical kernel listing of {@link #applied}, captured at the first check after the apply. */
    private String snapshot;
    /** sha256 of the last raw listing found equal to {@link #snapshot}, counters removed: the cheap path. */
    private String snapshotRawHash;
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
        NftRunner.Pending run = nft.start(NftRenderer.kernelInput(script), NftRunner.APPLY);
        Ruleset parsed = desired != null ? desired : Ruleset.parseOrNull(script);
        NftRunner.Result r = run.await();
        if (!r.ok()) {
            // A refused transaction changed nothing: the previous ruleset is still what the kernel holds.
            applied = previous;
            throw new EnforcementException("nft rejected the ruleset (exit " + r.exitCode() + "): " + r.errorText());
        }
        applied = parsed;
        lastApplyIncremental = false;
        fullApplies++;
    }

    @Override
    public synchronized boolean inSync(String script) throws EnforcementException {
        NftRunner.Result r = nft.run("", List.of("-j", "list", "table", NftRenderer.FAMILY, NftRenderer.TABLE));
        if (!r.ok()) {
            if (r.stderr() != null && r.stderr().contains("No such file or directory")) {
                return drift("table " + TABLE + " does not exist");
            }
            throw new EnforcementException("cannot list table " + TABLE + " (exit " + r.exitCode() + "): " + r.errorText());
        }
        boolean ours = applied != null && script.equals(applied.script);
        String rawHash = ours ? rawHash(r.stdout()) : null;
        if (ours && rawHash.equals(snapshotRawHash)) {
            // Byte for byte (counters aside) the listing that was verified before: nothing changed.
            lastDrift = "";
            return true;
        }
        JsonNode listing;
        try {
            listing = JSON.readTree(r.stdout());
        } catch (JacksonException e) {
            throw new EnforcementException("nft -j printed something that is not JSON: " + e.getOriginalMessage(), e);
        }
        Ruleset desired = ours ? applied : Ruleset.parseOrNull(script);
        if (desired != null) {
            String difference = desired.structure().difference(Structure.of(listing));
            if (difference != null) {
                return drift(difference);
            }
        }
        if (ours) {
            String canonical = canonical(listing);
            if (snapshot == null) {
                snapshot = canonical;
            } else if (!snapshot.equals(canonical)) {
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
     * The kernel's JSON listing in a canonical form: metainfo, handles and counter values (of rules
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
                            // A map element is [key, verdict]; a key with a comment or counter is {"elem": {...}}.
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
     * The renderer's script, parsed into the objects of its table block: sets and maps (header lines
     * and elements) and chains (base-chain line, comment, rule lines), in script order.
     */
    static final class Ruleset {

        final String script;
        final String family;
        final String table;
        final Map<String, SetDef> sets = new LinkedHashMap<>();
        final Map<String, ChainDef> chains = new LinkedHashMap<>();
        private Structure structure;

        private Ruleset(String script, String family, String table) {
            this.script = script;
            this.family = family;
            this.table = table;
        }

        /** What the structure check expects of the kernel (computed once). */
        Structure structure() {
            if (structure == null) {
                structure = Structure.of(this);
            }
            return structure;
        }

        /** A set or map: header lines (type, flags, counter) and elements as written. */
        record SetDef(boolean map, List<String> header, List<String> elements) {
        }

        record ChainDef(String base, String comment, List<String> rules) {
        }

        private static final Pattern BLOCK = Pattern.compile("^table (\\w+) ([A-Za-z0-9_.-]+) \\{$");
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

        static Ruleset parse(String script) {
            String[] lines = script.split("\n");
            Ruleset rs = null;
            int i = 0;
            for (; i < lines.length; i++) {
                Matcher m = BLOCK.matcher(lines[i].strip());
                if (m.matches()) {
                    rs = new Ruleset(script, m.group(1), m.group(2));
                    i++;
                    break;
                }
            }
            if (rs == null) {
                throw new IllegalArgumentException("no table block");
            }
            for (; i < lines.length; i++) {
                String line = lines[i].strip();
                if (line.isEmpty()) {
                    continue;
                }
                if (line.equals("}")) {
                    for (int k = i + 1; k < lines.length; k++) {
                        if (!lines[k].isBlank()) {
                            throw new IllegalArgumentException("text after the table block");
                        }
                    }
                    return rs;
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
                    if (rs.chains.put(name, new ChainDef(base, comment, List.copyOf(rules))) != null) {
                        throw new IllegalArgumentException("chain " + name + " defined twice");
                    }
                } else if (rs.sets.put(name, new SetDef(kind.equals("map"), List.copyOf(body), List.copyOf(elements))) != null) {
                    throw new IllegalArgumentException(kind + " " + name + " defined twice");
                }
            }
            throw new IllegalArgumentException("unterminated table block");
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

        /**
         * The incremental transaction that turns a kernel holding {@code from} into {@code to}: empty
         * when nothing differs, null when only a full replacement can do it (another table, a changed
         * base-chain definition, a set or map whose header changed under the same name, a map added
         * or removed).
         *
         * <p>In order: new sets (with their elements) in a table block; then, per existing set or
         * map, {@code delete element} of the keys that went or changed (an element's comment counts:
         * a rule whose hash changed gets its elements replaced) and {@code add element} of the new
         * ones (deletions first: an interval set refuses an element overlapping one still in it);
         * then changed chains flushed and refilled with {@code add rule}; then chains and sets no
         * longer used deleted, once no rule references them.
         */
        static String delta(Ruleset from, Ruleset to) {
            if (!from.family.equals(to.family) || !from.table.equals(to.table)) {
                return null;
            }
            String t = to.family + " " + to.table;
            StringBuilder adds = new StringBuilder();
            StringBuilder elementDeletes = new StringBuilder();
            StringBuilder elementAdds = new StringBuilder();
            StringBuilder flushes = new StringBuilder();
            StringBuilder refills = new StringBuilder();
            StringBuilder chainDeletes = new StringBuilder();
            StringBuilder setDeletes = new StringBuilder();
            for (Map.Entry<String, SetDef> e : to.sets.entrySet()) {
                SetDef now = e.getValue();
                SetDef before = from.sets.get(e.getKey());
                if (before == null) {
                    if (now.map()) {
                        return null;
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
                    return null;
                }
                Map<String, String> old = elementsByKey(before);
                Map<String, String> fresh = elementsByKey(now);
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
                    elementDeletes.append("delete element ").append(t).append(' ').append(e.getKey())
                            .append(" { ").append(String.join(", ", gone)).append(" }\n");
                }
                if (!added.isEmpty()) {
                    elementAdds.append("add element ").append(t).append(' ').append(e.getKey())
                            .append(" { ").append(String.join(", ", added)).append(" }\n");
                }
            }
            for (String name : from.sets.keySet()) {
                if (!to.sets.containsKey(name)) {
                    if (from.sets.get(name).map()) {
                        return null;
                    }
                    setDeletes.append("delete set ").append(t).append(' ').append(name).append('\n');
                }
            }
            for (Map.Entry<String, ChainDef> e : to.chains.entrySet()) {
                ChainDef now = e.getValue();
                ChainDef before = from.chains.get(e.getKey());
                if (before != null && before.equals(now)) {
                    continue;
                }
                if (before == null) {
                    if (now.base() != null) {
                        return null;
                    }
                    adds.append("  chain ").append(e.getKey()).append(" {\n");
                    if (now.comment() != null) {
                        adds.append("    ").append(now.comment()).append('\n');
                    }
                    now.rules().forEach(r -> adds.append("    ").append(r).append('\n'));
                    adds.append("  }\n");
                } else if (!Objects.equals(before.base(), now.base()) || !Objects.equals(before.comment(), now.comment())) {
                    return null;
                } else {
                    // Same chain (a base chain keeps its hook): only its rules change, in this transaction.
                    flushes.append("flush chain ").append(t).append(' ').append(e.getKey()).append('\n');
                    now.rules().forEach(r -> refills.append("add rule ").append(t).append(' ').append(e.getKey())
                            .append(' ').append(r).append('\n'));
                }
            }
            for (Map.Entry<String, ChainDef> e : from.chains.entrySet()) {
                if (!to.chains.containsKey(e.getKey())) {
                    if (e.getValue().base() != null) {
                        return null;
                    }
                    // Flushed first: its rules may hold the last references to sets deleted below.
                    flushes.append("flush chain ").append(t).append(' ').append(e.getKey()).append('\n');
                    chainDeletes.append("delete chain ").append(t).append(' ').append(e.getKey()).append('\n');
                }
            }
            StringBuilder out = new StringBuilder();
            if (!adds.isEmpty()) {
                out.append("table ").append(t).append(" {\n").append(adds).append("}\n");
            }
            // Element changes before chain deletions: a chain is deletable only once no map jumps to it.
            out.append(elementDeletes).append(elementAdds).append(flushes).append(refills).append(chainDeletes).append(setDeletes);
            return out.toString();
        }

        /**
         * Elements of a set or map by key (normalised as the kernel prints addresses): the whole
         * element text, comment and verdict included, so a changed comment or verdict is a change.
         */
        static Map<String, String> elementsByKey(SetDef set) {
            Map<String, String> out = new LinkedHashMap<>();
            for (String el : set.elements()) {
                out.put(elementKey(set, el), el);
            }
            return out;
        }

        /** The key of an element: the text before its comment (and, in a map, before the verdict). */
        static String elementKey(SetDef set, String el) {
            String key = el;
            if (set.map()) {
                int colon = key.indexOf(" : ");
                if (colon < 0) {
                    throw new IllegalArgumentException("map element without a verdict: " + el);
                }
                key = key.substring(0, colon);
            }
            int c = key.indexOf(" comment \"");
            if (c >= 0) {
                key = key.substring(0, c);
            }
            return set.map() ? normaliseKey(key.strip()) : key.strip();
        }

        /** Elements of a verdict map: key to verdict, keys normalised as the kernel prints them. */
        static Map<String, String> mapElements(SetDef map) {
            Map<String, String> out = new LinkedHashMap<>();
            for (String el : map.elements()) {
                int colon = el.indexOf(" : ");
                if (colon < 0) {
                    throw new IllegalArgumentException("map element without a verdict: " + el);
                }
                out.put(elementKey(map, el), el.substring(colon + 3).strip());
            }
            return out;
        }
    }

    /** Normalises an address or prefix to the text nft prints (compressed IPv6, no /32 on hosts). */
    static String normaliseKey(String key) {
        try {
            Cidr c = Cidr.parse(key);
            return c.isHost() ? c.addressText() : c.toString();
        } catch (IllegalArgumentException e) {
            return key;
        }
    }

    /**
     * What the structure check compares: chains (base-chain hook and policy, rule identities in
     * order), verdict-map elements (key to verdict) and named sets with the comments of their
     * elements (as a sorted multiset). Built from a script or from nft's JSON listing.
     */
    record Structure(Map<String, String> bases, Map<String, List<String>> rules,
                     Map<String, Map<String, String>> maps, Map<String, List<String>> sets) {

        private static final Pattern COMMENT = Pattern.compile("comment \"([^\"]*)\"$");
        private static final Pattern ELEMENT_COMMENT = Pattern.compile(" comment \"([^\"]*)\"");
        private static final Pattern BASE = Pattern.compile("type (\\w+) hook (\\w+).*?(?:policy (\\w+))?;?$");

        static Structure of(Ruleset rs) {
            Map<String, String> bases = new TreeMap<>();
            Map<String, List<String>> rules = new TreeMap<>();
            Map<String, Map<String, String>> maps = new TreeMap<>();
            Map<String, List<String>> sets = new TreeMap<>();
            rs.chains.forEach((name, c) -> {
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
            rs.sets.forEach((name, s) -> {
                if (s.map()) {
                    maps.put(name, new TreeMap<>(Ruleset.mapElements(s)));
                } else {
                    List<String> comments = new ArrayList<>(s.elements().size());
                    for (String el : s.elements()) {
                        Matcher m = ELEMENT_COMMENT.matcher(el);
                        comments.add(m.find() ? m.group(1) : "");
                    }
                    Collections.sort(comments);
                    sets.put(name, comments);
                }
            });
            return new Structure(bases, rules, maps, sets);
        }

        static Structure of(JsonNode listing) {
            Map<String, String> bases = new TreeMap<>();
            Map<String, List<String>> rules = new TreeMap<>();
            Map<String, Map<String, String>> maps = new TreeMap<>();
            Map<String, List<String>> sets = new TreeMap<>();
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
                            elements.put(normaliseKey(text(value(el.get(0)))), verdict(el.get(1)));
                        } else {
                            elements.put(text(value(el)), "?");
                        }
                    }
                    maps.put(m.path("name").asString(""), elements);
                } else if (item.has("set")) {
                    JsonNode s = item.get("set");
                    List<String> comments = new ArrayList<>();
                    for (JsonNode el : s.path("elem")) {
                        comments.add(el.path("elem").path("comment").asString(""));
                    }
                    Collections.sort(comments);
                    sets.put(s.path("name").asString(""), comments);
                }
            }
            return new Structure(bases, rules, maps, sets);
        }

        /** The key of a listed element: {@code {"elem": {"val": key, ...}}} when it has a comment or counter. */
        private static JsonNode value(JsonNode n) {
            return n.path("elem").has("val") ? n.path("elem").get("val") : n;
        }

        private static String text(JsonNode n) {
            if (n.isString()) {
                return n.asString();
            }
            if (n.has("prefix")) {
                return n.get("prefix").path("addr").asString("") + "/" + n.get("prefix").path("len").asInt();
            }
            return n.toString();
        }

        private static String verdict(JsonNode n) {
            if (n.isObject() && n.size() == 1) {
                Map.Entry<String, JsonNode> e = n.properties().iterator().next();
                JsonNode target = e.getValue().path("target");
                return target.isMissingNode() ? e.getKey() : e.getKey() + " " + target.asString("");
            }
            return n.toString();
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
            for (Map.Entry<String, List<String>> e : sets.entrySet()) {
                List<String> have = kernel.sets.get(e.getKey());
                if (!e.getValue().equals(have)) {
                    return listDifference("set " + e.getKey(), "elements", e.getValue(), have, true);
                }
            }
            return null;
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
        throw new EnforcementException("cannot list table " + TABLE + " (exit " + r.exitCode() + "): " + r.errorText());
    }
}
