package io.egressctl.cli.audit;

import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Times on the command line and in output. Accepted forms:
 * <ul>
 *   <li>ISO-8601 instants and offset date-times: {@code 2024-05-01T10:00:00Z}, {@code 2024-05-01T12:00:00.250+02:00};</li>
 *   <li>a local date-time or date, read as UTC: {@code 2024-05-01T10:00}, {@code 2024-05-01} (midnight);</li>
 *   <li>relative to now: {@code now}, {@code -90s}, {@code -15m}, {@code -1h}, {@code -2d}, {@code -1w},
 *       {@code -500ms}, combined like {@code -1h30m}, also written {@code now-1h};</li>
 *   <li>epoch milliseconds: {@code 1714557600000}.</li>
 * </ul>
 * Output is always UTC with milliseconds: {@code 2024-05-01T10:00:00.000Z}.
 */
public final class Times {

    private static final Pattern RELATIVE = Pattern.compile("(?:now)?([-+])((?:\\d+(?:ms|s|m|h|d|w))+)");
    private static final Pattern PART = Pattern.compile("(\\d+)(ms|s|m|h|d|w)");
    private static final DateTimeFormatter OUT = DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);

    private Times() {
    }

    /**
     * @param option the option the text came from, for the error message
     * @throws UsageException when the text is none of the accepted forms
     */
    public static Instant parse(String option, String text, Instant now) {
        String t = text.trim();
        if (t.equalsIgnoreCase("now")) {
            return now;
        }
        Matcher rel = RELATIVE.matcher(t.toLowerCase());
        if (rel.matches()) {
            Duration d = duration(rel.group(2));
            return rel.group(1).equals("-") ? now.minus(d) : now.plus(d);
        }
        if (t.matches("\\d{10,}")) {
            return Instant.ofEpochMilli(Long.parseLong(t));
        }
        try {
            return OffsetDateTime.parse(t).toInstant();
        } catch (DateTimeParseException e) {
            // next form
        }
        try {
            return LocalDateTime.parse(t).toInstant(ZoneOffset.UTC);
        } catch (DateTimeParseException e) {
            // next form
        }
        try {
            return LocalDate.parse(t).atStartOfDay(ZoneOffset.UTC).toInstant();
        } catch (DateTimeParseException e) {
            throw new UsageException("--" + option + ": cannot read '" + text + "' as a time; use ISO-8601 (2024-05-01T10:00:00Z,"
                    + " 2024-05-01), a relative time (-1h, -30m, -2d, now) or epoch milliseconds");
        }
    }

    /** A duration like {@code 90s}, {@code 1h30m}, {@code 500ms}. */
    public static Duration duration(String text) {
        String t = text.trim().toLowerCase();
        Matcher m = PART.matcher(t);
        Duration d = Duration.ZERO;
        int end = 0;
        while (m.find()) {
            if (m.start() != end) {
                throw new UsageException("cannot read '" + text + "' as a duration (e.g. 30s, 5m, 1h30m)");
            }
            end = m.end();
            long n = Long.parseLong(m.group(1));
            d = d.plus(switch (m.group(2)) {
                case "ms" -> Duration.ofMillis(n);
                case "s" -> Duration.ofSeconds(n);
                case "m" -> Duration.ofMinutes(n);
                case "h" -> Duration.ofHours(n);
                case "d" -> Duration.ofDays(n);
                default -> Duration.ofDays(7 * n);
            });
        }
        if (end != t.length() || t.isEmpty()) {
            throw new UsageException("cannot read '" + text + "' as a duration (e.g. 30s, 5m, 1h30m)");
        }
        return d;
    }

    /** UTC, always with milliseconds; "-" for null. */
    public static String format(Instant t) {
        return t == null ? "-" : OUT.format(t);
    }

    public static String format(long epochMillis) {
        return format(Instant.ofEpochMilli(epochMillis));
    }

    /** A short human duration for progress lines: 45s, 3m12s, 1h04m. */
    public static String shortDuration(Duration d) {
        long s = Math.max(0, d.toSeconds());
        if (s < 60) {
            return s + "s";
        }
        if (s < 3600) {
            return (s / 60) + "m" + String.format("%02d", s % 60) + "s";
        }
        return (s / 3600) + "h" + String.format("%02d", (s % 3600) / 60) + "m";
    }
}
