package io.egressctl.cli.walkthrough;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/** The walkthrough's probes of real traffic: what each example did to it, against what it should do. */
final class ProbeTable {

    /** A probe and what it should see before and after an example's change. */
    record Check(Probe probe, String before, String after) {
    }

    /** A check's outcome in an example. */
    record Row(String example, Check check, String before, String after) {

        boolean ok() {
            return check.before().equals(before) && check.after().equals(after);
        }
    }

    private final List<Row> rows = new ArrayList<>();

    void add(String example, Check check, String before, String after) {
        rows.add(new Row(example, check, before, after));
    }

    List<Row> rows() {
        return List.copyOf(rows);
    }

    boolean ok() {
        return rows.stream().allMatch(Row::ok);
    }

    /** example | VM | probe | before | after | expected | ok, one line per probe. */
    void print(PrintStream out) {
        int ex = "example".length();
        int probe = "probe".length();
        for (Row r : rows) {
            ex = Math.max(ex, r.example().length());
            probe = Math.max(probe, r.check().probe().label().length());
        }
        String fmt = "  %-" + ex + "s  %-6s  %-" + probe + "s  %-7s  %-7s  %-19s %s%n";
        out.printf(fmt, "example", "VM", "probe", "before", "after", "expected", "ok");
        String last = null;
        for (Row r : rows) {
            String example = r.example().equals(last) ? "" : r.example();
            last = r.example();
            out.printf(fmt, example, r.check().probe().vmId(), r.check().probe().label(), shortly(r.before()), shortly(r.after()),
                    r.check().before() + " -> " + r.check().after(), r.ok() ? "ok" : "WRONG");
        }
        rows.stream().filter(r -> !r.ok()).forEach(r -> out.printf("  WRONG %s %s %s: before %s, after %s (expected %s -> %s)%n",
                r.example(), r.check().probe().vmId(), r.check().probe().label(), r.before(), r.after(), r.check().before(), r.check().after()));
    }

    private static String shortly(String outcome) {
        return outcome.startsWith("error") ? "error" : outcome;
    }
}
