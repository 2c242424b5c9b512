package io.egressctl.cli.audit.history;

import io.egressctl.cli.audit.Json;
import io.egressctl.cli.audit.Times;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * Writes exported events as JSON Lines (one compact object per line, each ending with {@code \n}) and
 * computes the sha256 of exactly the bytes written, so {@code sha256sum -c F.sha256} checks the file.
 * Keeps the first and last offset and the count per partition for the export summary.
 */
final class ExportWriter implements AutoCloseable {

    /** Offsets exported from one partition. */
    public record Span(int partition, long firstOffset, long lastOffset, long count) {
    }

    private final MessageDigest digest;
    private final OutputStream out;
    private final Map<Integer, Span> spans = new TreeMap<>();
    private long lines;
    private String hex;

    public ExportWriter(OutputStream target) {
        try {
            this.digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        this.out = new DigestOutputStream(new BufferedOutputStream(target, 1 << 16), digest);
    }

    /** One line: the record's coordinates, key and value (or the reason it could not be decoded). */
    public void write(String topic, int partition, long offset, long timestamp, String key, Object value, String error) {
        write(topic, partition, offset, timestamp, key, value, error, null);
    }

    /**
     * One line, with {@code signed}, how the record's signature checks out against the stack's keys
     * ({@code yes}, {@code no}, {@code FORGED}, {@code -}; null for records that carry none: no field).
     */
    public void write(String topic, int partition, long offset, long timestamp, String key, Object value, String error,
                      String signed) {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("topic", topic);
        line.put("partition", partition);
        line.put("offset", offset);
        line.put("timestamp", Times.format(timestamp));
        line.put("key", key);
        line.put("value", value);
        if (error != null) {
            line.put("error", error);
        }
        if (signed != null) {
            line.put("signed", signed);
        }
        try {
            out.write(Json.line(line).getBytes(StandardCharsets.UTF_8));
            out.write('\n');
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        lines++;
        spans.merge(partition, new Span(partition, offset, offset, 1),
                (a, b) -> new Span(partition, Math.min(a.firstOffset(), offset), Math.max(a.lastOffset(), offset), a.count() + 1));
    }

    public long lines() {
        return lines;
    }

    public Map<Integer, Span> spans() {
        return spans;
    }

    /** The sha256 (hex) of everything written; valid after {@link #close}. */
    public String sha256() {
        if (hex == null) {
            throw new IllegalStateException("close the writer first");
        }
        return hex;
    }

    @Override
    public void close() {
        if (hex != null) {
            return;
        }
        try {
            out.close();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        hex = HexFormat.of().formatHex(digest.digest());
    }

    /** Writes {@code <hex>  <file name>} (the sha256sum format) next to {@code file} as {@code file.sha256}. */
    public static Path writeChecksum(Path file, String sha256) {
        Path sum = file.resolveSibling(file.getFileName() + ".sha256");
        try {
            Files.writeString(sum, sha256 + "  " + file.getFileName() + "\n", StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return sum;
    }
}
