package io.egressctl.cli.audit;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A plain text table: upper-case headers, columns padded to their widest cell and separated by two
 * spaces, no trailing blanks. Null cells print as "-"; line breaks inside a cell print as spaces.
 */
public final class Table {

    private final List<String> headers;
    private final List<String[]> rows = new ArrayList<>();

    public Table(String... headers) {
        this.headers = List.of(headers);
    }

    public Table row(Object... cells) {
        if (cells.length != headers.size()) {
            throw new IllegalArgumentException("row of " + cells.length + " cells for " + headers.size() + " columns");
        }
        String[] r = new String[cells.length];
        for (int i = 0; i < cells.length; i++) {
            r[i] = cells[i] == null ? "-" : String.valueOf(cells[i]).replace('\n', ' ').replace('\r', ' ');
            if (r[i].isEmpty()) {
                r[i] = "-";
            }
        }
        rows.add(r);
        return this;
    }

    public int size() {
        return rows.size();
    }

    public boolean isEmpty() {
        return rows.isEmpty();
    }

    /** The table as text, one line per row after the header line, each ending with a newline. */
    public String render() {
        int n = headers.size();
        int[] width = new int[n];
        for (int i = 0; i < n; i++) {
            width[i] = headers.get(i).length();
        }
        for (String[] r : rows) {
            for (int i = 0; i < n; i++) {
                width[i] = Math.max(width[i], r[i].length());
            }
        }
        StringBuilder sb = new StringBuilder();
        line(sb, headers.stream().map(String::toUpperCase).toArray(String[]::new), width);
        for (String[] r : rows) {
            line(sb, r, width);
        }
        return sb.toString();
    }

    private static void line(StringBuilder sb, String[] cells, int[] width) {
        StringBuilder l = new StringBuilder();
        for (int i = 0; i < cells.length; i++) {
            if (i > 0) {
                l.append("  ");
            }
            l.append(cells[i]);
            if (i < cells.length - 1) {
                char[] pad = new char[width[i] - cells[i].length()];
                Arrays.fill(pad, ' ');
                l.append(pad);
            }
        }
        int end = l.length();
        while (end > 0 && l.charAt(end - 1) == ' ') {
            end--;
        }
        sb.append(l, 0, end).append('\n');
    }

    @Override
    public String toString() {
        return render();
    }
}
