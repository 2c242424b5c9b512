package io.egressctl.schemas.compat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.apache.avro.Schema;

/**
 * The .avsc files of one directory (the current sources or one released version), parsed the way the
 * avro-maven-plugin compiles them: {@value #COMMON} first (its named types are shared), then the others.
 * Each file other than {@value #COMMON} holds one top-level record: the value of one topic.
 */
final class SchemaDir {

    static final String COMMON = "Common.avsc";

    final Path dir;
    /** file name (e.g. RuleEvent.avsc) -> parsed top-level schema, in file-name order. */
    final Map<String, Schema> topLevel;

    private SchemaDir(Path dir, Map<String, Schema> topLevel) {
        this.dir = dir;
        this.topLevel = topLevel;
    }

    static SchemaDir load(Path dir) {
        Schema.Parser parser = new Schema.Parser();
        Map<String, Schema> out = new LinkedHashMap<>();
        try {
            Path common = dir.resolve(COMMON);
            if (Files.exists(common)) {
                parser.parse(common.toFile());
            }
            for (Path file : avscFiles(dir)) {
                if (!file.getFileName().toString().equals(COMMON)) {
                    out.put(file.getFileName().toString(), parser.parse(file.toFile()));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read schemas in " + dir, e);
        }
        return new SchemaDir(dir, out);
    }

    static List<Path> avscFiles(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(f -> f.getFileName().toString().endsWith(".avsc")).sorted().toList();
        }
    }

    /** Released version directories under {@code releasedRoot}, oldest first (numeric version order). */
    static List<Path> releases(Path releasedRoot) {
        try (Stream<Path> dirs = Files.list(releasedRoot)) {
            List<Path> out = new ArrayList<>(dirs.filter(Files::isDirectory).toList());
            out.sort((a, b) -> compareVersions(a.getFileName().toString(), b.getFileName().toString()));
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list released schemas in " + releasedRoot, e);
        }
    }

    static int compareVersions(String a, String b) {
        String[] x = a.split("[.-]");
        String[] y = b.split("[.-]");
        for (int i = 0; i < Math.max(x.length, y.length); i++) {
            String p = i < x.length ? x[i] : "0";
            String q = i < y.length ? y[i] : "0";
            int c = p.matches("\\d+") && q.matches("\\d+") ? Long.compare(Long.parseLong(p), Long.parseLong(q)) : p.compareTo(q);
            if (c != 0) {
                return c;
            }
        }
        return 0;
    }
}
