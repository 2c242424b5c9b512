package io.egressctl.cli.audit;

import java.io.PrintStream;
import java.time.Duration;
import java.util.Locale;

/**
 * Progress of a long read on a terminal: one line rewritten in place (records/s, position, remaining),
 * at most four times a second, cleared at the end. {@link #NONE} prints nothing (output piped or
 * redirected, or {@code --no-progress}).
 */
public class Progress {

    /** Says nothing. */
    public static final Progress NONE = new Progress(null, "", 0) {
        @Override
        public void advance(long records, String position) {
        }

        @Override
        public void done() {
        }
    };

    private static final long INTERVAL_NANOS = 250_000_000L;

    private final PrintStream out;
    private final String label;
    private final long total;
    private final long started = System.nanoTime();
    private long lastPrint;
    private long count;
    private int lastWidth;

    /**
     * @param total records to read (0 when unknown)
     */
    public Progress(PrintStream out, String label, long total) {
        this.out = out;
        this.label = label;
        this.total = total;
    }

    /** A reporter on {@code err} when {@code enabled}, else {@link #NONE}. */
    public static Progress of(boolean enabled, PrintStream err, String label, long total) {
        return enabled ? new Progress(err, label, total) : NONE;
    }

    /** A view of this reporter whose {@link #done} does nothing, for several reads that make one task. */
    public Progress continuing() {
        Progress outer = this;
        return this == NONE ? NONE : new Progress(out, label, total) {
            @Override
            public void advance(long records, String position) {
                outer.advance(records, position);
            }

            @Override
            public void done() {
            }
        };
    }

    /** Counts {@code records} more; {@code position} is e.g. {@code p3@1200}. */
    public void advance(long records, String position) {
        count += records;
        long now = System.nanoTime();
        if (now - lastPrint < INTERVAL_NANOS) {
            return;
        }
        lastPrint = now;
        print(line(count, total, now - started, position));
    }

    /** Clears the line. */
    public void done() {
        if (lastWidth > 0) {
            out.print("\r" + " ".repeat(lastWidth) + "\r");
            out.flush();
            lastWidth = 0;
        }
    }

    private void print(String text) {
        String padded = text.length() < lastWidth ? text + " ".repeat(lastWidth - text.length()) : text;
        out.print("\r" + label + padded);
        out.flush();
        lastWidth = label.length() + text.length();
    }

    /** The progress text for {@code done} of {@code total} records after {@code elapsedNanos}. */
    static String line(long done, long total, long elapsedNanos, String position) {
        double seconds = Math.max(elapsedNanos, 1) / 1e9;
        double rate = done / seconds;
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%,d", done));
        if (total > 0) {
            sb.append(String.format(Locale.ROOT, "/%,d (%d%%)", total, Math.min(100, done * 100 / total)));
        }
        sb.append(String.format(Locale.ROOT, "  %,.0f records/s", rate));
        if (position != null) {
            sb.append("  at ").append(position);
        }
        if (total > 0 && rate > 0) {
            long remaining = Math.max(0, total - done);
            sb.append("  remaining ").append(Times.shortDuration(Duration.ofMillis((long) (remaining / rate * 1000))));
        }
        return sb.toString();
    }
}
