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
 * An in-memory stand-in for nft and the kernel's {@code inet egressctl} table, for unit tests.
 * It understands the renderer's full scripts and the enforcer's incremental transactions (block
 * adds, {@code flush chain}, {@code add rule}, {@code add|delete element}, {@code delete chain|set}),
 * applies each run all-or-nothing like the kernel (an element added twice, or deleted while absent,
 * fails the run), lists the table as nft-style JSON ({@code -j list table}, elements with comment
 * and counter as nft prints them) and answers "No such file or directory" when the table is missing.
 * Faults are injected per run ({@link #failNext}, {@link #failWhen}, {@link #throwNext}) and drift by
 * hand ({@link #deleteRule}, {@link #editRule}, {@link #deleteElement}, {@link #editElement},
 * {@link #deleteMapElement}, {@link #dropTable}). Every run is recorded.
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
        final Map<String, Elem> elements = new LinkedHashMap<>();

        Obj(boolean map, String type) {
            this.map = map;
            this.type = type;
        }

        Obj copy() {
            Obj o = new Obj(map, type);
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

    private final List<Call> calls = new ArrayList<>();
    private final Deque<Result> failures = new ArrayDeque<>();
    private final Deque<EnforcementException> throwables = new ArrayDeque<>();
    private Predicate<String> failPredicate;
    private String failPredicateStderr;
    private Table table;
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
        return table != null;
    }

    void dropTable() {
        table = null;
    }

    /** Deletes the first rule of {@code chain} whose comment contains {@code commentPart}. */
    void deleteRule(String chain, String commentPart) {
        List<Rule> rules = table.chains.get(chain).rules;
        for (int i = 0; i < rules.size(); i++) {
            if (rules.get(i).comment() != null && rules.get(i).comment().contains(commentPart)) {
                rules.remove(i);
                return;
            }
        }
        throw new IllegalArgumentException("no rule with " + commentPart + " in " + chain);
    }

    /** Replaces the text of a rule but keeps its comment (like {@code nft replace rule ... comment same}). */
    void editRule(String chain, String commentPart, String newText) {
        List<Rule> rules = table.chains.get(chain).rules;
        for (int i = 0; i < rules.size(); i++) {
            if (rules.get(i).comment() != null && rules.get(i).comment().contains(commentPart)) {
                rules.set(i, new Rule(newText, rules.get(i).comment()));
                return;
            }
        }
        throw new IllegalArgumentException("no rule with " + commentPart + " in " + chain);
    }

    void deleteMapElement(String map, String key) {
        if (table.sets.get(map).elements.remove(key) == null) {
            throw new IllegalArgumentException("no element " + key + " in " + map);
        }
    }

    /** Deletes the first element of {@code set} whose comment contains {@code commentPart}; returns its key. */
    String deleteElement(String set, String commentPart) {
        Map<String, Elem> els = table.sets.get(set).elements;
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
        Map<String, Elem> els = table.sets.get(set).elements;
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

    /** Set and map names in the fake kernel. */
    List<String> sets() {
        return table == null ? List.of() : List.copyOf(table.sets.keySet());
    }

    /** Chain names in the fake kernel, in creation order. */
    List<String> chains() {
        return table == null ? List.of() : List.copyOf(table.chains.keySet());
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
                table = execute(stdin, table);
                return new Result(0, "", "");
            } catch (Refused e) {
                return new Result(1, "", e.getMessage());
            }
        }
        if (args.equals(List.of("-j", "list", "table", "inet", "egressctl"))) {
            if (table == null) {
                return new Result(1, "", "Error: No such file or directory\nlist table inet egressctl\n                 ^^^^^^^^^\n");
            }
            return new Result(0, json(table, ++listings), "");
        }
        if (args.equals(List.of("list", "tables"))) {
            return new Result(0, table == null ? "" : "table inet egressctl\n", "");
        }
        return new Result(1, "", "Error: fake nft does not know " + args);
    }

    /** Runs a whole input on a copy of the table: the copy replaces the table only when every command worked. */
    private static Table execute(String input, Table current) throws Refused {
        Table t = current == null ? null : current.copy();
        String[] lines = input.split("\n");
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            if (line.equals("table inet egressctl")) {
                if (t == null) {
                    t = new Table();
                }
            } else if (line.equals("delete table inet egressctl")) {
                if (t == null) {
                    throw new Refused("Error: Could not process rule: No such file or directory");
                }
                t = null;
            } else if (line.equals("table inet egressctl {")) {
                if (t == null) {
                    t = new Table();
                }
                i = block(lines, i + 1, t);
            } else if (line.startsWith("flush chain inet egressctl ")) {
                chain(t, line.substring("flush chain inet egressctl ".length())).rules.clear();
            } else if (line.startsWith("add rule inet egressctl ")) {
                String rest = line.substring("add rule inet egressctl ".length());
                String text = rest.substring(rest.indexOf(' ') + 1);
                if (text.contains("junk")) {
                    throw new Refused("Error: syntax error, unexpected junk\n" + text);
                }
                Matcher m = COMMENT.matcher(text);
                chain(t, rest.substring(0, rest.indexOf(' '))).rules.add(new Rule(text, m.find() ? m.group(1) : null));
            } else if (line.startsWith("delete chain inet egressctl ")) {
                String name = line.substring("delete chain inet egressctl ".length());
                chain(t, name);
                for (Obj o : t.sets.values()) {
                    for (Elem el : o.elements.values()) {
                        if (("jump " + name).equals(el.verdict())) {
                            throw new Refused("Error: Could not process rule: Device or resource busy\n" + line);
                        }
                    }
                }
                t.chains.remove(name);
            } else if (line.startsWith("delete set inet egressctl ")) {
                String name = line.substring("delete set inet egressctl ".length());
                if (t == null || t.sets.remove(name) == null) {
                    throw new Refused("Error: Could not process rule: No such file or directory\n" + line);
                }
                for (Chain c : t.chains.values()) {
                    for (Rule r : c.rules) {
                        if (r.text().contains("@" + name + " ") || r.text().endsWith("@" + name)) {
                            throw new Refused("Error: Could not process rule: Device or resource busy\n" + line);
                        }
                    }
                }
            } else if (line.startsWith("delete element inet egressctl ") || line.startsWith("add element inet egressctl ")) {
                boolean add = line.startsWith("add");
                String rest = line.substring((add ? "add" : "delete").length() + " element inet egressctl ".length());
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
                        checkJump(t, parsed[2], line);
                        o.elements.put(parsed[0], new Elem(parsed[1], parsed[2]));
                    } else if (o.elements.remove(parsed[0]) == null) {
                        throw new Refused("Error: Could not process rule: No such file or directory\n" + line);
                    }
                }
            } else {
                throw new Refused("Error: syntax error, unexpected " + line.split(" ")[0] + "\n" + line);
            }
        }
        if (t != null) {
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
                }
            }
        }
        return t;
    }

    /** key, comment (or null), verdict (or null) of an element as written. */
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
                    Obj o = new Obj(head[0].equals("map"), type);
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

    private static String json(Table t, int listing) {
        StringBuilder sb = new StringBuilder("{\"nftables\": [{\"metainfo\": {\"version\": \"1.0.6\", \"json_schema_version\": 1}}");
        int handle = 1;
        sb.append(", {\"table\": {\"family\": \"inet\", \"name\": \"egressctl\", \"handle\": ").append(handle++).append("}}");
        for (Map.Entry<String, Chain> e : t.chains.entrySet()) {
            sb.append(", {\"chain\": {\"family\": \"inet\", \"table\": \"egressctl\", \"name\": \"").append(e.getKey())
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
            sb.append(", {\"").append(o.map ? "map" : "set").append("\": {\"family\": \"inet\", \"name\": \"").append(e.getKey())
                    .append("\", \"table\": \"egressctl\", \"type\": \"").append(o.type.split(" ")[0]).append("\", \"handle\": ")
                    .append(handle++);
            if (!o.elements.isEmpty()) {
                List<String> els = new ArrayList<>();
                int[] n = {0};
                o.elements.forEach((k, v) -> {
                    // As nft prints an element with a comment and a counter: {"elem": {"val": ..., ...}}.
                    String key = v.comment() == null ? "\"" + k + "\""
                            : "{\"elem\": {\"val\": \"" + k + "\", \"comment\": \"" + v.comment()
                            + "\", \"counter\": {\"packets\": " + (listing * 7 + n[0]++) + ", \"bytes\": " + listing * 100 + "}}}";
                    if (o.map) {
                        String[] verdict = v.verdict().split(" ");
                        els.add("[" + key + ", {\"" + verdict[0] + "\": "
                                + (verdict.length > 1 ? "{\"target\": \"" + verdict[1] + "\"}" : "null") + "}]");
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
                sb.append(", {\"rule\": {\"family\": \"inet\", \"table\": \"egressctl\", \"chain\": \"").append(e.getKey())
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
