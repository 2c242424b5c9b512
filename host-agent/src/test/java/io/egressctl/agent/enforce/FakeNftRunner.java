package io.egressctl.agent.enforce;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An in-memory stand-in for nft and the kernel's tables (any {@code table <family> <name>}: the
 * product's {@code inet egressctl} and {@code bridge egressctl}), for unit tests. It understands the
 * renderer's full scripts (one or two tables) and the enforcer's incremental transactions (block adds,
 * {@code flush chain}, {@code add rule}, {@code add|delete element}, {@code delete chain|set}), applies
 * each run all-or-nothing like the kernel (an element added twice, or deleted while absent, fails the
 * run), lists a table as nft-style JSON ({@code -j list table F N}: marks and numbers as JSON numbers,
 * concatenations, prefixes and ranges as nft prints them, elements with comment and counter wrapped
 * in {@code {"elem": ...}}) and answers "No such file or directory" when the table is missing.
 * Faults are injected per run ({@link #failNext}, {@link #failWhen}, {@link #throwNext}) and drift by
 * hand ({@link #deleteRule}, {@link #editRule}, {@link #deleteElement}, {@link #editElement},
 * {@link #deleteMapElement}, {@link #addElement}, {@link #dropTable}, {@link #addTable}); those take
 * the inet table unless given another. Every run is recorded.
 */
final class FakeNftRunner implements NftRunner {

    /** One recorded run. */
    record Call(String stdin, List<String> args) {
        boolean isApply() {
            return args.equals(APPLY);
        }

        boolean isFullApply() {
            return isApply() && stdin.contains("delete table inet egressctl");
        }

        boolean isListing() {
            return args.size() == 5 && args.subList(0, 3).equals(List.of("-j", "list", "table"));
        }
    }

    private record Rule(String text, String comment) {
    }

    private static final class Chain {
        String base;
        String comment;
        final List<Rule> rules = new ArrayList<>();

        Chain copy() {
            Chain c = new Chain();
            c.base = base;
            c.comment = comment;
            c.rules.addAll(rules);
            return c;
        }
    }

    /** An element: comment (or null) and, in a map, the verdict. */
    private record Elem(String comment, String verdict) {
    }

    private static final class Obj {
        final boolean map;
        final String type;
        final boolean counter;
        final Map<String, Elem> elements = new LinkedHashMap<>();

        Obj(boolean map, String type, boolean counter) {
            this.map = map;
            this.type = type;
            this.counter = counter;
        }

        Obj copy() {
            Obj o = new Obj(map, type, counter);
            o.elements.putAll(elements);
            return o;
        }
    }

    private static final class Table {
        final Map<String, Chain> chains = new LinkedHashMap<>();
        final Map<String, Obj> sets = new LinkedHashMap<>();

        Table copy() {
            Table t = new Table();
            chains.forEach((k, v) -> t.chains.put(k, v.copy()));
            sets.forEach((k, v) -> t.sets.put(k, v.copy()));
            return t;
        }
    }

    private static final class Refused extends Exception {
        Refused(String message) {
            super(message);
        }
    }

    private static final Pattern COMMENT = Pattern.compile("comment \"([^\"]*)\"$");
    private static final Pattern SET_REF = Pattern.compile("@([A-Za-z0-9_]+)");
    /** {@code <verb> <family> <table> [rest]} of a command on an object of a table. */
    private static final Pattern COMMAND = Pattern.compile(
            "^(flush chain|add rule|delete chain|delete set|delete map|add element|delete element) (\\w+) ([A-Za-z0-9_.-]+) (.*)$");
    private static final Pattern TABLE = Pattern.compile("^(delete )?table (\\w+) ([A-Za-z0-9_.-]+)( \\{)?$");
    /** The inet table: what the drift helpers change unless told another. */
    static final String INET = "inet egressctl";
    static final String BRIDGE = "bridge egressctl";

    private final List<Call> calls = new ArrayList<>();
    private final Deque<Result> failures = new ArrayDeque<>();
    private final Deque<EnforcementException> throwables = new ArrayDeque<>();
    private Predicate<String> failPredicate;
    private String failPredicateStderr;
    /** The kernel's tables by "family name". */
    private Map<String, Table> tables = new LinkedHashMap<>();
    /** Families whose tables this fake kernel refuses (a kernel built without them). */
    private final java.util.Set<String> unsupported = new java.util.HashSet<>();
    /** Listings so far: counter values change from one listing to the next, like traffic does. */
    private int listings;

    /** The next apply run fails with this exit code and stderr, changing nothing. */
    FakeNftRunner failNext(int exitCode, String stderr) {
        failures.add(new Result(exitCode, "", stderr));
        return this;
    }

    /** Every apply whose input matches fails with this stderr, changing nothing. */
    FakeNftRunner failWhen(Predicate<String> input, String stderr) {
        failPredicate = input;
        failPredicateStderr = stderr;
        return this;
    }

    /** The next run of any kind throws (nft could not start, or timed out). */
    FakeNftRunner throwNext(EnforcementException e) {
        throwables.add(e);
        return this;
    }

    /** This kernel has no such family: a transaction naming one of its tables is refused, listing one fails. */
    FakeNftRunner without(String family) {
        unsupported.add(family);
        return this;
    }

    List<Call> calls() {
        return calls;
    }

    List<Call> applies() {
        return calls.stream().filter(Call::isApply).toList();
    }

    Call lastApply() {
        List<Call> a = applies();
        return a.get(a.size() - 1);
    }

    boolean hasTable() {
        return hasTable(INET);
    }

    boolean hasTable(String table) {
        return tables.containsKey(table);
    }

    void dropTable() {
        dropTable(INET);
    }

    void dropTable(String table) {
        if (tables.remove(table) == null) {
            throw new IllegalArgumentException("no table " + table);
        }
    }

    /** Applies a script by hand (someone else's nft -f), outside the enforcer. */
    void addTable(String script) {
        try {
            tables = execute(script, tables, unsupported);
        } catch (Refused e) {
            throw new IllegalArgumentException(e.getMessage());
        }
    }

    private Table table(String table) {
        Table t = tables.get(table);
        if (t == null) {
            throw new IllegalArgumentException("no table " + table);
        }
        return t;
    }

    /** Deletes the first rule of {@code chain} whose comment contains {@code commentPart}. */
    void deleteRule(String chain, String commentPart) {
        List<Rule> rules = table(INET).chains.get(chain).rules;
        for (int i = 0; i < rules.size(); i++) {
            if (rules.get(i).comment() != null && rules.get(i).comment().contains(commentPart)) {
                rules.remove(i);
                return;
            }
        }
        throw new IllegalArgumentException("no rule with " + commentPart + " in " + chain);
    }

    /** Deletes the rule at {@code index} of a chain (rules without comments). */
    void deleteRuleAt(String table, String chain, int index) {
        table(table).chains.get(chain).rules.remove(index);
    }

    /** Replaces the text of a rule but keeps its comment (like {@code nft replace rule ... comment same}). */
    void editRule(String chain, String commentPart, String newText) {
        List<Rule> rules = table(INET).chains.get(chain).rules;
        for (int i = 0; i < rules.size(); i++) {
            if (rules.get(i).comment() != null && rules.get(i).comment().contains(commentPart)) {
                rules.set(i, new Rule(newText, rules.get(i).comment()));
                return;
            }
        }
        throw new IllegalArgumentException("no rule with " + commentPart + " in " + chain);
    }

    void deleteMapElement(String map, String key) {
        deleteMapElement(INET, map, key);
    }

    /** Deletes an element of a set or map by its key as written (e.g. {@code 0x45000001} or {@code "tap-a1"}). */
    void deleteMapElement(String table, String map, String key) {
        if (table(table).sets.get(map).elements.remove(key) == null) {
            throw new IllegalArgumentException("no element " + key + " in " + map);
        }
    }

    /** Adds an element by hand: key as written, comment or null, map data or null. */
    void addElement(String table, String set, String key, String comment, String data) {
        table(table).sets.get(set).elements.put(key, new Elem(comment, data));
    }

    /** Deletes the first element of {@code set} whose comment contains {@code commentPart}; returns its key. */
    String deleteElement(String set, String commentPart) {
        Map<String, Elem> els = table(INET).sets.get(set).elements;
        for (Map.Entry<String, Elem> e : els.entrySet()) {
            if (e.getValue().comment() != null && e.getValue().comment().contains(commentPart)) {
                els.remove(e.getKey());
                return e.getKey();
            }
        }
        throw new IllegalArgumentException("no element with " + commentPart + " in " + set);
    }

    /** Replaces the key of an element but keeps its comment (delete and add by hand with the same comment). */
    void editElement(String set, String commentPart, String newKey) {
        Map<String, Elem> els = table(INET).sets.get(set).elements;
        for (Map.Entry<String, Elem> e : els.entrySet()) {
            if (e.getValue().comment() != null && e.getValue().comment().contains(commentPart)) {
                Elem kept = e.getValue();
                els.remove(e.getKey());
                els.put(newKey, kept);
                return;
            }
        }
        throw new IllegalArgumentException("no element with " + commentPart + " in " + set);
    }

    /** Set and map names in the fake kernel's inet table. */
    List<String> sets() {
        return sets(INET);
    }

    List<String> sets(String table) {
        Table t = tables.get(table);
        return t == null ? List.of() : List.copyOf(t.sets.keySet());
    }

    /** Element keys (as written) of a set or map. */
    List<String> elements(String table, String set) {
        return List.copyOf(table(table).sets.get(set).elements.keySet());
    }

    /** Chain names in the fake kernel's inet table, in creation order. */
    List<String> chains() {
        Table t = tables.get(INET);
        return t == null ? List.of() : List.copyOf(t.chains.keySet());
    }

    @Override
    public Result run(String stdin, List<String> args) throws EnforcementException {
        calls.add(new Call(stdin, List.copyOf(args)));
        if (!throwables.isEmpty()) {
            throw throwables.poll();
        }
        if (args.equals(List.of("-f", "-"))) {
            if (!failures.isEmpty()) {
                return failures.poll();
            }
            if (failPredicate != null && failPredicate.test(stdin)) {
                return new Result(1, "", failPredicateStderr);
            }
            try {
                tables = execute(stdin, tables, unsupported);
                return new Result(0, "", "");
            } catch (Refused e) {
                return new Result(1, "", e.getMessage());
            }
        }
        if (args.size() == 5 && args.subList(0, 3).equals(List.of("-j", "list", "table"))) {
            String key = args.get(3) + " " + args.get(4);
            if (unsupported.contains(args.get(3))) {
                return new Result(1, "", "Error: Could not process rule: Address family not supported by protocol\n");
            }
            Table t = tables.get(key);
            if (t == null) {
                return new Result(1, "", "Error: No such file or directory\nlist table " + key + "\n           ^^^^^^^^^\n");
            }
            return new Result(0, json(args.get(3), args.get(4), t, ++listings), "");
        }
        if (args.equals(List.of("list", "tables"))) {
            StringBuilder sb = new StringBuilder();
            tables.keySet().forEach(k -> sb.append("table ").append(k).append('\n'));
            return new Result(0, sb.toString(), "");
        }
        return new Result(1, "", "Error: fake nft does not know " + args);
    }

    /** Runs a whole input on a copy of the tables: the copy replaces them only when every command worked. */
    private static Map<String, Table> execute(String input, Map<String, Table> current, java.util.Set<String> unsupported) throws Refused {
        Map<String, Table> tables = new LinkedHashMap<>();
        current.forEach((k, v) -> tables.put(k, v.copy()));
        String[] lines = input.split("\n");
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            Matcher tm = TABLE.matcher(line);
            if (tm.matches()) {
                String key = tm.group(2) + " " + tm.group(3);
                if (unsupported.contains(tm.group(2))) {
                    throw new Refused("Error: Could not process rule: Address family not supported by protocol\n" + line);
                }
                if (tm.group(1) != null) {
                    if (tm.group(4) != null) {
                        throw new Refused("Error: syntax error, unexpected '{'\n" + line);
                    }
                    if (tables.remove(key) == null) {
                        throw new Refused("Error: Could not process rule: No such file or directory\n" + line);
                    }
                    continue;
                }
                Table t = tables.computeIfAbsent(key, k -> new Table());
                if (tm.group(4) != null) {
                    i = block(lines, i + 1, t);
                }
                continue;
            }
            Matcher m = COMMAND.matcher(line);
            if (!m.matches()) {
                throw new Refused("Error: syntax error, unexpected " + line.split(" ")[0] + "\n" + line);
            }
            String verb = m.group(1);
            Table t = tables.get(m.group(2) + " " + m.group(3));
            String rest = m.group(4);
            switch (verb) {
                case "flush chain" -> chain(t, rest).rules.clear();
                case "add rule" -> {
                    String text = rest.substring(rest.indexOf(' ') + 1);
                    if (text.contains("junk")) {
                        throw new Refused("Error: syntax error, unexpected junk\n" + text);
                    }
                    Matcher c = COMMENT.matcher(text);
                    chain(t, rest.substring(0, rest.indexOf(' '))).rules.add(new Rule(text, c.find() ? c.group(1) : null));
                }
                case "delete chain" -> {
                    chain(t, rest);
                    for (Obj o : t.sets.values()) {
                        for (Elem el : o.elements.values()) {
                            if (("jump " + rest).equals(el.verdict())) {
                                throw new Refused("Error: Could not process rule: Device or resource busy\n" + line);
                            }
                        }
                    }
                    t.chains.remove(rest);
                }
                case "delete set", "delete map" -> {
                    if (t == null || t.sets.remove(rest) == null) {
                        throw new Refused("Error: Could not process rule: No such file or directory\n" + line);
                    }
                    for (Chain c : t.chains.values()) {
                        for (Rule r : c.rules) {
                            if (r.text().contains("@" + rest + " ") || r.text().endsWith("@" + rest)) {
                                throw new Refused("Error: Could not process rule: Device or resource busy\n" + line);
                            }
                        }
                    }
                }
                default -> {
                    boolean add = verb.equals("add element");
                    String name = rest.substring(0, rest.indexOf(' '));
                    Obj o = t == null ? null : t.sets.get(name);
                    if (o == null) {
                        throw new Refused("Error: Could not process rule: No such file or directory\n" + line);
                    }
                    String inner = rest.substring(rest.indexOf('{') + 1, rest.lastIndexOf('}'));
                    for (String el : inner.split(",")) {
                        el = el.strip();
                        String[] parsed = parseElement(el, o.map);
                        if (add) {
                            if (o.elements.containsKey(parsed[0])) {
                                throw new Refused("Error: Could not process rule: File exists\n" + line);
                            }
                            if (o.map && parsed[2] == null) {
                                throw new Refused("Error: map element without data\n" + line);
                            }
                            checkJump(t, parsed[2], line);
                            o.elements.put(parsed[0], new Elem(parsed[1], parsed[2]));
                        } else if (o.elements.remove(parsed[0]) == null) {
                            throw new Refused("Error: Could not process rule: No such file or directory\n" + line);
                        }
                    }
                }
            }
        }
        for (Table t : tables.values()) {
            for (Obj o : t.sets.values()) {
                for (Elem v : o.elements.values()) {
                    checkJump(t, v.verdict(), "element");
                }
            }
            for (Chain c : t.chains.values()) {
                for (Rule r : c.rules) {
                    Matcher m = SET_REF.matcher(r.text());
                    while (m.find()) {
                        if (!t.sets.containsKey(m.group(1))) {
                            throw new Refused("Error: No such file or directory; did you mean set ‘" + m.group(1) + "’?");
                        }
                    }
                    if (r.text().contains("jump ")) {
                        String target = r.text().substring(r.text().indexOf("jump ") + 5).split(" ")[0];
                        if (!t.chains.containsKey(target)) {
                            throw new Refused("Error: Could not process rule: No such file or directory\njump " + target);
                        }
                    }
                }
            }
        }
        return tables;
    }

    /** key, comment (or null), data (or null) of an element as written. */
    private static String[] parseElement(String el, boolean map) {
        String verdict = null;
        int colon = el.lastIndexOf(" : ");
        if (map && colon >= 0) {
            verdict = el.substring(colon + 3).strip();
            el = el.substring(0, colon);
        }
        String comment = null;
        int c = el.indexOf(" comment \"");
        if (c >= 0) {
            comment = el.substring(c + 10, el.lastIndexOf('"'));
            el = el.substring(0, c);
        }
        return new String[]{el.strip(), comment, verdict};
    }

    private static void checkJump(Table t, String verdict, String line) throws Refused {
        if (verdict != null && verdict.startsWith("jump ") && !t.chains.containsKey(verdict.substring(5))) {
            throw new Refused("Error: Could not process rule: No such file or directory\n" + line);
        }
    }

    private static Chain chain(Table t, String name) throws Refused {
        Chain c = t == null ? null : t.chains.get(name);
        if (c == null) {
            throw new Refused("Error: No such file or directory; did you mean chain ‘" + name + "’?");
        }
        return c;
    }

    /** Reads the objects of a {@code table ... { }} block into {@code t}; returns the index of its closing line. */
    private static int block(String[] lines, int i, Table t) throws Refused {
        for (; i < lines.length; i++) {
            String line = lines[i].strip();
            if (line.isEmpty()) {
                continue;
            }
            if (line.equals("}")) {
                return i;
            }
            String[] head = line.split(" ");
            if (head.length != 3 || !head[2].equals("{")) {
                throw new Refused("Error: syntax error, unexpected " + line);
            }
            List<String> body = new ArrayList<>();
            List<String> elements = new ArrayList<>();
            for (i++; i < lines.length && !lines[i].strip().equals("}"); i++) {
                String b = lines[i].strip();
                if (b.equals("elements = {")) {
                    for (i++; i < lines.length && !lines[i].strip().equals("}"); i++) {
                        elements.add(lines[i].strip().replaceAll(",$", ""));
                    }
                } else if (b.startsWith("elements = {")) {
                    for (String el : b.substring(12, b.length() - 1).split(",")) {
                        elements.add(el.strip());
                    }
                } else {
                    body.add(b);
                }
            }
            switch (head[0]) {
                case "chain" -> {
                    Chain c = t.chains.computeIfAbsent(head[1], k -> new Chain());
                    for (String b : body) {
                        if (b.startsWith("type ") && b.contains(" hook ")) {
                            c.base = b;
                        } else if (b.matches("comment \"[^\"]*\"") && c.rules.isEmpty()) {
                            c.comment = b.substring(9, b.length() - 1);
                        } else if (!b.isEmpty()) {
                            if (b.contains("junk")) {
                                throw new Refused("Error: syntax error, unexpected junk\n" + b);
                            }
                            Matcher m = COMMENT.matcher(b);
                            c.rules.add(new Rule(b, m.find() ? m.group(1) : null));
                        }
                    }
                }
                case "set", "map" -> {
                    if (t.sets.containsKey(head[1])) {
                        throw new Refused("Error: Could not process rule: File exists");
                    }
                    String type = body.stream().filter(b -> b.startsWith("type ")).findFirst().orElse("type ?").substring(5);
                    Obj o = new Obj(head[0].equals("map"), type, body.contains("counter"));
                    for (String el : elements) {
                        String[] parsed = parseElement(el, o.map);
                        if (o.elements.put(parsed[0], new Elem(parsed[1], parsed[2])) != null) {
                            throw new Refused("Error: Could not process rule: File exists\n" + el);
                        }
                    }
                    t.sets.put(head[1], o);
                }
                default -> throw new Refused("Error: syntax error, unexpected " + head[0]);
            }
        }
        throw new Refused("Error: syntax error, unexpected end of file");
    }

    /** A key (or map data) as nft -j prints it: numbers and marks as numbers, concatenations, prefixes, ranges. */
    static String jsonValue(String key) {
        String[] fields = key.split(" \\. ");
        if (fields.length > 1) {
            StringBuilder sb = new StringBuilder("{\"concat\": [");
            for (int i = 0; i < fields.length; i++) {
                sb.append(i == 0 ? "" : ", ").append(jsonField(fields[i].strip()));
            }
            return sb.append("]}").toString();
        }
        return jsonField(key.strip());
    }

    private static String jsonField(String f) {
        if (f.startsWith("\"") && f.endsWith("\"") && f.length() >= 2) {
            return f;
        }
        if (f.matches("0x[0-9a-fA-F]+")) {
            return Long.toString(Long.parseLong(f.substring(2), 16));
        }
        if (f.matches("\\d+")) {
            return f;
        }
        int slash = f.indexOf('/');
        if (slash > 0) {
            return "{\"prefix\": {\"addr\": \"" + f.substring(0, slash) + "\", \"len\": " + f.substring(slash + 1) + "}}";
        }
        int dash = f.indexOf('-');
        if (dash > 0 && !f.startsWith("ipv6-")) {
            return "{\"range\": [" + jsonField(f.substring(0, dash)) + ", " + jsonField(f.substring(dash + 1)) + "]}";
        }
        return "\"" + f + "\"";
    }

    private static String json(String family, String name, Table t, int listing) {
        String ids = "\"family\": \"" + family + "\", \"table\": \"" + name + "\"";
        StringBuilder sb = new StringBuilder("{\"nftables\": [{\"metainfo\": {\"version\": \"1.0.6\", \"json_schema_version\": 1}}");
        int handle = 1;
        sb.append(", {\"table\": {\"family\": \"").append(family).append("\", \"name\": \"").append(name).append("\", \"handle\": ")
                .append(handle++).append("}}");
        for (Map.Entry<String, Chain> e : t.chains.entrySet()) {
            sb.append(", {\"chain\": {").append(ids).append(", \"name\": \"").append(e.getKey())
                    .append("\", \"handle\": ").append(handle++);
            String base = e.getValue().base;
            if (base != null) {
                Matcher m = Pattern.compile("type (\\w+) hook (\\w+).*policy (\\w+)").matcher(base);
                if (m.find()) {
                    sb.append(", \"type\": \"").append(m.group(1)).append("\", \"hook\": \"").append(m.group(2))
                            .append("\", \"prio\": 0, \"policy\": \"").append(m.group(3)).append('"');
                }
            }
            if (e.getValue().comment != null) {
                sb.append(", \"comment\": \"").append(e.getValue().comment).append('"');
            }
            sb.append("}}");
        }
        for (Map.Entry<String, Obj> e : t.sets.entrySet()) {
            Obj o = e.getValue();
            sb.append(", {\"").append(o.map ? "map" : "set").append("\": {").append(ids).append(", \"name\": \"").append(e.getKey())
                    .append("\", \"type\": \"").append(o.type.split(" ")[0]).append("\", \"handle\": ")
                    .append(handle++);
            if (!o.elements.isEmpty()) {
                List<String> els = new ArrayList<>();
                int[] n = {0};
                o.elements.forEach((k, v) -> {
                    // As nft prints an element with a comment or a counter: {"elem": {"val": ..., ...}}.
                    String key = v.comment() == null && !o.counter ? jsonValue(k)
                            : "{\"elem\": {\"val\": " + jsonValue(k) + (v.comment() == null ? "" : ", \"comment\": \"" + v.comment() + "\"")
                            + (o.counter ? ", \"counter\": {\"packets\": " + (listing * 7 + n[0]++) + ", \"bytes\": " + listing * 100 + "}" : "")
                            + "}}";
                    if (o.map) {
                        String data = v.verdict();
                        String[] verdict = data.split(" ");
                        String json = data.equals("accept") || data.equals("drop") || verdict.length > 1
                                ? "{\"" + verdict[0] + "\": " + (verdict.length > 1 ? "{\"target\": \"" + verdict[1] + "\"}" : "null") + "}"
                                : jsonValue(data);
                        els.add("[" + key + ", " + json + "]");
                    } else {
                        els.add(key);
                    }
                });
                sb.append(", \"elem\": [").append(String.join(", ", els)).append(']');
            }
            sb.append("}}");
        }
        for (Map.Entry<String, Chain> e : t.chains.entrySet()) {
            for (Rule r : e.getValue().rules) {
                String text = r.text().replace("\\", "\\\\").replace("\"", "\\\"");
                sb.append(", {\"rule\": {").append(ids).append(", \"chain\": \"").append(e.getKey())
                        .append("\", \"handle\": ").append(handle++).append(", \"expr\": [{\"fake\": \"").append(text)
                        .append("\"}, {\"counter\": {\"packets\": ").append(handle * 7).append(", \"bytes\": ").append(listing).append("}}]");
                if (r.comment() != null) {
                    sb.append(", \"comment\": \"").append(r.comment()).append('"');
                }
                sb.append("}}");
            }
        }
        return sb.append("]}").toString();
    }
}
