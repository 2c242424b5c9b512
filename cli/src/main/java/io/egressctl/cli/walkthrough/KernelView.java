package io.egressctl.cli.walkthrough;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A host's egressctl tables as nft lists them from the kernel, per VM port: the port's interface and
 * mark, its VM and default verdict, its addresses and its rules' elements (set, key, first characters
 * of the rule id). Works on {@code nft list table} output (several elements may share a line) and on
 * the renderer's own script alike.
 */
final class KernelView {

    private KernelView() {
    }

    /** Every set's and map's elements, by name, in listing order; counters dropped. */
    static Map<String, List<String>> elements(String listing) {
        Map<String, List<String>> out = new LinkedHashMap<>();
        String name = null;
        StringBuilder buf = null;
        for (String line : listing.split("\n")) {
            String t = line.trim();
            if (buf == null && (t.startsWith("set ") || t.startsWith("map ")) && t.endsWith("{")) {
                name = t.split("\\s+")[1];
            } else if (buf == null && name != null && t.startsWith("elements = {")) {
                buf = new StringBuilder(t.substring("elements = {".length()));
            } else if (buf != null) {
                buf.append(' ').append(t);
            }
            if (buf != null && closes(buf)) {
                String body = buf.toString().trim();
                body = body.substring(0, body.lastIndexOf('}'));
                List<String> items = new ArrayList<>();
                for (String e : splitTopLevel(body)) {
                    String clean = e.replaceAll("counter packets \\d+ bytes \\d+ ", "").trim().replaceAll("\\s+", " ");
                    if (!clean.isEmpty()) {
                        items.add(clean);
                    }
                }
                out.computeIfAbsent(name, k -> new ArrayList<>()).addAll(items);
                buf = null;
                name = null;
            }
        }
        return out;
    }

    /** Per port ({@code tap-a1 (0x45...)}, or the bare mark when no ports map names it): what is enforced on it. */
    static Map<String, List<String>> byPort(String listing) {
        Map<String, List<String>> sets = elements(listing);
        Map<String, String> portOfMark = new TreeMap<>();
        for (String e : sets.getOrDefault("ports", List.of())) {
            String[] kv = e.split(" : ");
            if (kv.length == 2) {
                portOfMark.put(kv[1].trim(), kv[0].replace("\"", "").trim());
            }
        }
        Map<String, List<String>> out = new TreeMap<>();
        java.util.function.Function<String, List<String>> of = mark ->
                out.computeIfAbsent(portOfMark.containsKey(mark) ? portOfMark.get(mark) + " (" + mark + ")" : mark, k -> new ArrayList<>());
        portOfMark.keySet().forEach(of::apply);
        for (String e : sets.getOrDefault("def", List.of())) {
            // 0x45000001 comment "net N vm V" : drop
            String mark = e.split(" ")[0];
            String verdict = e.substring(e.lastIndexOf(':') + 1).trim();
            of.apply(mark).add(0, "default " + verdict + "  (" + comment(e) + ")");
        }
        for (Map.Entry<String, List<String>> set : sets.entrySet()) {
            String name = set.getKey();
            // Only addresses and rule sets are per port; the other maps and sets are the layout's own.
            if (java.util.Set.of("ports", "towards", "def", "vms", "own", "blocked").contains(name)) {
                continue;
            }
            for (String e : set.getValue()) {
                String mark = e.split(" ")[0];
                String c = comment(e);
                String key = e.contains(" comment \"") ? e.substring(0, e.indexOf(" comment \"")) : e;
                if (name.startsWith("addr")) {
                    of.apply(mark).add("address " + key.substring(key.indexOf(" . ") + 3));
                } else {
                    of.apply(mark).add(String.format("%-45s (%s)", name + ": " + key, c.startsWith("r=") ? shortId(c) + "..." : c));
                }
            }
        }
        // Default first, then addresses, then the rules' elements, whatever order the sets came in.
        out.replaceAll((port, lines) -> {
            List<String> sorted = new ArrayList<>(lines);
            sorted.sort(java.util.Comparator.comparingInt(l -> l.startsWith("default ") ? 0 : l.startsWith("address ") ? 1 : 2));
            return sorted;
        });
        return out;
    }

    private static String comment(String element) {
        int c = element.indexOf("comment \"");
        if (c < 0) {
            return "";
        }
        int end = element.indexOf('"', c + 9);
        return end < 0 ? element.substring(c + 9) : element.substring(c + 9, end);
    }

    private static String shortId(String tag) {
        String id = tag.substring(2).split(" ")[0];
        return id.substring(0, Math.min(8, id.length()));
    }

    private static boolean closes(StringBuilder buf) {
        int depth = 1;
        boolean quoted = false;
        for (int i = 0; i < buf.length(); i++) {
            char c = buf.charAt(i);
            if (c == '"') {
                quoted = !quoted;
            } else if (!quoted && c == '{') {
                depth++;
            } else if (!quoted && c == '}' && --depth == 0) {
                return true;
            }
        }
        return false;
    }

    private static List<String> splitTopLevel(String body) {
        List<String> parts = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        boolean quoted = false;
        for (char c : body.toCharArray()) {
            if (c == '"') {
                quoted = !quoted;
            }
            if (c == ',' && !quoted) {
                parts.add(cur.toString());
                cur.setLength(0);
            } else {
                cur.append(c);
            }
        }
        parts.add(cur.toString());
        return parts;
    }
}
