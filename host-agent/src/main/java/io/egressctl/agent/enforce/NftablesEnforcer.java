package io.egressctl.agent.enforce;

import io.egressctl.core.hash.CanonicalHash;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.nft.NftChain;
import io.egressctl.core.nft.NftDelta;
import io.egressctl.core.nft.NftElement;
import io.egressctl.core.nft.NftRuleset;
import io.egressctl.core.nft.NftScript;
import io.egressctl.core.nft.NftSet;
import io.egressctl.core.nft.NftTable;
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
 * Enforces a host's ruleset in the kernel with nftables, in the product's own tables only
 * ({@code table inet egressctl}, and {@code table bridge egressctl} on a bridged host); every other
 * table on the host is left alone.
 *
 * <h2>The ruleset is the currency; text only for nft</h2>
 * The enforcer takes {@link NftRuleset} values, keeps the one it applied last, and diffs values
 * ({@link NftDelta}, pure, in core). Text is made only for nft's stdin ({@link NftScript}). The product's
 * tables are {@link #TABLES}: a ruleset is the whole desired state of them, so the drift check wants a
 * product table the ruleset does not define absent, and the next full apply removes a product table
 * known to be there (applied before, or found by the drift check) that the ruleset does not define:
 * the bridge table of a host that went from bridged to routed.
 *
 * <h2>Apply: always one transaction</h2>
 * nft sends everything read from one {@code nft -f -} run as one netlink batch, which the kernel
 * commits entirely or not at all, so after {@link #apply} returns the whole new ruleset is in force
 * and after it throws the previous one still is (invariant 5). Two forms are sent:
 * <ul>
 *   <li><b>full</b>: every table replaced ({@code table F N} / {@code delete table F N} /
 *       {@code table F N { ... }}), used for the first apply, for a re-apply of the same ruleset (drift
 *       repair), when the set of tables changes (a host mode change) and whenever the incremental form
 *       is not possible or fails;</li>
 *   <li><b>incremental</b>: when the kernel holds the previous ruleset this enforcer applied, only the
 *       {@link NftDelta}: new sets, {@code delete element} / {@code add element} on the sets and maps
 *       whose elements changed, a chain flushed and refilled when its rules changed, then deletion of
 *       sets no longer used. The renderer's names are stable (sets by layer, shape, family and bucket;
 *       marks by interface), so one rule changed on a 10,000-rule host is a few element operations
 *       instead of rebuilding the tables. If the kernel refuses the delta (say an element it deletes
 *       was removed by hand) the full ruleset is applied in the same call.</li>
 * </ul>
 * A failed apply raises an {@link EnforcementException} whose message carries nft's own stderr.
 *
 * <h2>inSync: two checks, on {@code nft -j list table F egressctl} of every table</h2>
 * Each of the ruleset's tables is listed (one nft run per table, run side by side), and each product
 * table the ruleset does not define too, to see it is absent. Comparing the kernel's listing with the
 * desired ruleset's text cannot work: nft normalises what it prints (marks as numbers in JSON,
 * {@code 8} in an ICMP type as {@code echo-request}, counters change with traffic). So:
 * <ol>
 *   <li><b>structure, from the ruleset alone</b> (works after an agent restart, with nothing applied
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
 *       sorted); later checks of the same ruleset compare the whole listings with it. That also
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
     * The product's tables ({@code family name}). A ruleset defines some of them; a full apply removes
     * the others, and the drift check wants them absent.
     */
    public static final List<String> TABLES = List.of(NftRenderer.FAMILY + " " + NftRenderer.TABLE, "bridge " + NftRenderer.TABLE);
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final ObjectNode COUNTER = JSON.createObjectNode().putNull("counter");

    private final NftRunner nft;

    /** What this enforcer last applied successfully; null when unknown (kernel not trusted). */
    private NftRuleset applied;
    /** The structure check's expectations of {@link #expectedFor}'s tables, by table. */
    private Map<String, Structure> expected = Map.of();
    private NftRuleset expectedFor;
    /** Canonical kernel listings of {@link #applied}, captured at the first check after the apply. */
    private String snapshot;
    /** sha256 of the last raw listings found equal to {@link #snapshot}, counters removed: the cheap path. */
    private String snapshotRawHash;
    /** Product tables the ruleset did not define that the last drift check found in the kernel: the next full apply removes them. */
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
    public synchronized void apply(NftRuleset desired) throws EnforcementException {
        Objects.requireNonNull(desired, "desired");
        NftRuleset previous = applied;
        // Forget what the kernel holds until this apply is known to have succeeded or failed cleanly.
        applied = null;
        snapshot = null;
        snapshotRawHash = null;
        if (previous != null && !desired.sameTables(previous)) {
            NftDelta delta = NftDelta.between(previous, desired);
            if (delta != null && delta.isEmpty()) {
                applied = desired;
                lastApplyIncremental = true;
                incrementalApplies++;
                return;
            }
            if (delta != null) {
                // A runner failure (timeout, cannot start) leaves the kernel in an unknown state: applied stays null.
                NftRunner.Result r = nft.run(NftScript.delta(delta), NftRunner.APPLY);
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
        // The whole ruleset, after the removal of product tables known to be there that it does not
        // define (a host that went from bridged to routed). Only tables known to be there are removed:
        // a kernel without the bridge family would refuse even the creation of a bridge table, and
        // with it a routed host's whole ruleset.
        Set<String> remove = new LinkedHashSet<>(stray);
        if (previous != null) {
            previous.tables().forEach(t -> remove.add(t.key()));
        }
        NftRunner.Result r = nft.run(NftScript.kernelInput(desired, remove), NftRunner.APPLY);
        if (!r.ok()) {
            // A refused transaction changed nothing: the previous ruleset is still what the kernel holds.
            applied = previous;
            throw new EnforcementException("nft rejected the ruleset (exit " + r.exitCode() + "): " + r.errorText());
        }
        applied = desired;
        stray.clear();
        lastApplyIncremental = false;
        fullApplies++;
    }

    /**
     * {@code nft --check} of the transaction {@link #apply} would run: the delta from what this
     * enforcer applied where there is one, and when the kernel refuses the delta (or there is none)
     * the whole ruleset. The kernel validates the batch and aborts it; nothing in force changes.
     */
    @Override
    public synchronized void check(NftRuleset candidate) throws EnforcementException {
        Objects.requireNonNull(candidate, "candidate");
        NftRuleset base = applied;
        if (base != null && !candidate.sameTables(base)) {
            NftDelta delta = NftDelta.between(base, candidate);
            if (delta != null && delta.isEmpty()) {
                return;
            }
            if (delta != null && nft.run(NftScript.delta(delta), NftRunner.CHECK).ok()) {
                return;
            }
        } else if (base != null) {
            return;
        }
        Set<String> remove = new LinkedHashSet<>(stray);
        if (base != null) {
            base.tables().forEach(t -> remove.add(t.key()));
        }
        NftRunner.Result r = nft.run(NftScript.kernelInput(candidate, remove), NftRunner.CHECK);
        if (!r.ok()) {
            throw new EnforcementException("nft rejected the ruleset (exit " + r.exitCode() + "): " + r.errorText());
        }
    }

    /** What the structure check expects of each of {@code desired}'s tables (computed once per ruleset). */
    private Map<String, Structure> expected(NftRuleset desired) {
        if (expectedFor != desired) {
            Map<String, Structure> out = new LinkedHashMap<>();
            for (NftTable t : desired.tables()) {
                out.put(t.key(), Structure.of(t));
            }
            expected = out;
            expectedFor = desired;
        }
        return expected;
    }

    @Override
    public synchronized boolean inSync(NftRuleset desired) throws EnforcementException {
        boolean ours = desired.sameTables(applied);
        // The tables to read back, and the product tables that must be absent.
        List<String> present = new ArrayList<>(desired.tables().size());
        desired.tables().forEach(t -> present.add(t.key()));
        List<String> absent = new ArrayList<>();
        for (String t : TABLES) {
            if (desired.table(t) == null) {
                absent.add(t);
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
        Map<String, Structure> expected = expected(desired);
        for (int i = 0; i < present.size(); i++) {
            Structure want = expected.get(present.get(i));
            String difference = want.difference(Structure.of(listings.get(i), want.keyed()));
            if (difference != null) {
                return drift("table " + present.get(i) + ": " + difference);
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
        // Whatever the kernel holds now, it is not known to be the last applied ruleset: the next
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
     * Element keys in one comparable form, read from a ruleset or from nft's JSON listing: the
     * fields of a concatenation joined by {@code " . "}, a mark (hex in a ruleset, a number in
     * JSON) as a decimal number, an interface name without its quotes, an address or prefix as nft
     * prints it, a range as {@code lo-hi}.
     */
    static final class Keys {

        private static final Pattern HEX = Pattern.compile("0x[0-9a-fA-F]{1,16}");

        private Keys() {
        }

        /** A key (or a map element's data) as written in a ruleset, normalised. */
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
                // A name; normalised as a string of the listing is (which cannot tell a name from an address).
                return normaliseKey(f.substring(1, f.length() - 1));
            }
            if (HEX.matcher(f).matches()) {
                return Long.toString(Long.parseLong(f.substring(2), 16));
            }
            return normaliseKey(f);
        }

        /**
         * True when every field of a ruleset key is a mark, one address or prefix, or a quoted name:
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
     * sorted multiset) in the others. Built from a ruleset's table or from nft's JSON listing of it.
     *
     * @param sets  per set, its elements as "key comment" (sorted)
     * @param keyed the sets compared by key too (decided from the ruleset; a listing is read with the ruleset's)
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

        /** What a table of a ruleset should look like in the kernel's listing. */
        static Structure of(NftTable table) {
            Map<String, String> bases = new TreeMap<>();
            Map<String, List<String>> rules = new TreeMap<>();
            Map<String, Map<String, String>> maps = new TreeMap<>();
            Map<String, List<Elem>> sets = new TreeMap<>();
            Map<String, Boolean> keyed = new TreeMap<>();
            for (NftChain c : table.chains()) {
                if (c.base() != null) {
                    Matcher m = BASE.matcher(c.base());
                    bases.put(c.name(), m.find() ? m.group(1) + " hook " + m.group(2) + " policy "
                            + (m.group(3) == null ? "accept" : m.group(3)) : c.base());
                } else {
                    bases.put(c.name(), "");
                }
                List<String> ids = new ArrayList<>();
                for (String r : c.rules()) {
                    Matcher m = COMMENT.matcher(r);
                    ids.add(m.find() ? m.group(1) : "");
                }
                rules.put(c.name(), ids);
            }
            for (NftSet s : table.sets()) {
                if (s.map()) {
                    Map<String, String> elements = new TreeMap<>();
                    for (NftElement e : s.elements()) {
                        elements.put(Keys.normalised(e.key()), e.data() == null ? "?" : Keys.normalised(e.data()));
                    }
                    maps.put(s.name(), elements);
                    continue;
                }
                List<Elem> elements = new ArrayList<>(s.elements().size());
                boolean comparable = true;
                for (NftElement e : s.elements()) {
                    comparable = comparable && Keys.comparable(e.key());
                    elements.add(new Elem(comparable ? Keys.normalised(e.key()) : "", e.comment() == null ? "" : e.comment()));
                }
                if (!comparable) {
                    elements.replaceAll(e -> new Elem("", e.comment()));
                }
                Collections.sort(elements);
                sets.put(s.name(), elements);
                keyed.put(s.name(), comparable);
            }
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
