package io.egressctl.cli.audit.history;

import io.egressctl.cli.audit.Events;
import io.egressctl.cli.audit.log.AvroJson;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

class ExportWriterTest {

    @Test
    void writesJsonLinesAndTheSha256OfExactlyTheBytesWritten(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("audit.jsonl");
        ExportWriter w;
        try (OutputStream os = Files.newOutputStream(file); ExportWriter writer = new ExportWriter(os)) {
            w = writer;
            Map<String, Object> value = new LinkedHashMap<>();
            value.put("eventId", "e1");
            value.put("operation", "RULE_CREATED");
            writer.write("egress.rule-events", 2, 7, 1714557600000L, "net-1", value, null);
            writer.write("egress.rule-events", 2, 9, 1714557601000L, "net-1", null, "unknown schema id 99");
            writer.write("egress.rule-events", 0, 3, 1714557602000L, "net-2", AvroJson.of(Events.created("net-2", 1)), null);
        }
        String text = Files.readString(file);
        assertThat(text.lines().toList()).hasSize(3);
        assertThat(text.lines().findFirst().orElseThrow()).isEqualTo("{\"topic\":\"egress.rule-events\",\"partition\":2,\"offset\":7,"
                + "\"timestamp\":\"2024-05-01T10:00:00.000Z\",\"key\":\"net-1\",\"value\":{\"eventId\":\"e1\",\"operation\":\"RULE_CREATED\"}}");
        assertThat(text.lines().skip(1).findFirst().orElseThrow()).endsWith("\"value\":null,\"error\":\"unknown schema id 99\"}");
        assertThat(text).endsWith("\n");

        String expected = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
        assertThat(w.sha256()).isEqualTo(expected);
        assertThat(w.lines()).isEqualTo(3);
        assertThat(w.spans().values()).containsExactly(new ExportWriter.Span(0, 3, 3, 1), new ExportWriter.Span(2, 7, 9, 2));

        Path sum = ExportWriter.writeChecksum(file, w.sha256());
        assertThat(sum).isEqualTo(dir.resolve("audit.jsonl.sha256"));
        assertThat(Files.readString(sum, StandardCharsets.UTF_8)).as("sha256sum -c format").isEqualTo(expected + "  audit.jsonl\n");
    }

    @Test
    void theChecksumChangesWithAnyByteOfTheRange(@TempDir Path dir) throws Exception {
        String a = export(dir.resolve("a"), "net-1");
        String b = export(dir.resolve("b"), "net-1");
        String c = export(dir.resolve("c"), "net-2");
        assertThat(a).isEqualTo(b).isNotEqualTo(c);
    }

    private static String export(Path file, String key) throws Exception {
        ExportWriter w;
        try (OutputStream os = Files.newOutputStream(file); ExportWriter writer = new ExportWriter(os)) {
            w = writer;
            writer.write("t", 0, 0, 0, key, "v", null);
        }
        return w.sha256();
    }

    @Test
    void anEmptyExportHasTheChecksumOfNothing(@TempDir Path dir) throws Exception {
        ExportWriter w;
        try (OutputStream os = Files.newOutputStream(dir.resolve("empty")); ExportWriter writer = new ExportWriter(os)) {
            w = writer;
        }
        assertThat(w.sha256()).isEqualTo("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
