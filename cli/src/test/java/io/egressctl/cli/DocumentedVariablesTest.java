package io.egressctl.cli;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every environment variable the scripts and the services read is in docs/operations.md: scans
 * {@code egressctl}, {@code scripts/*.sh}, every module's {@code application*.properties} and Java
 * sources (main and test: test-only variables belong in the document's "Test and benchmark
 * variables") for {@code EGRESS_*} names and the connection variables, and fails naming each one the
 * document does not mention and where it is read.
 */
class DocumentedVariablesTest {

    static final Pattern VARIABLE_NAME = Pattern.compile("(?<![A-Za-z0-9_])EGRESS_[A-Z0-9_]*[A-Z0-9](?![A-Za-z0-9_])");
    /** The variables without the prefix that the services, the CLI and the scripts read. */
    static final List<String> CONNECTION = List.of("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL", "REDIS_URL");

    @Test
    void everyVariableReadIsDocumentedInOperationsMd() throws IOException {
        Path root = repositoryRoot();
        String doc = Files.readString(root.resolve("docs/operations.md"));
        Map<String, TreeSet<String>> readBy = variablesRead(root);

        assertThat(readBy).as("variables found: the scan must see the scripts and the services")
                .containsKeys("EGRESS_HOME", "EGRESS_API_PORT", "EGRESS_HOST_ID", "EGRESS_API_URL", "EGRESS_KAFKA_PORT");
        assertThat(readBy.keySet()).containsAll(CONNECTION);
        List<String> missing = new ArrayList<>();
        readBy.forEach((name, files) -> {
            if (!mentions(doc, name)) {
                missing.add(name + " (read in " + String.join(", ", files) + ")");
            }
        });
        assertThat(missing).as("variables read but not in docs/operations.md (add them to 'Environment variables')").isEmpty();
    }

    @Test
    void aMentionIsTheWholeName() {
        assertThat(mentions("`EGRESS_API_KEYS` and `EGRESS_API_KEY_B`", "EGRESS_API_KEY")).isFalse();
        assertThat(mentions("| `EGRESS_API_KEY`, `EGRESS_API_KEY_B` |", "EGRESS_API_KEY")).isTrue();
        Matcher m = VARIABLE_NAME.matcher("${EGRESS_API_PORT:-18080} EGRESS_ MY_EGRESS_X \"EGRESS_HOME\"");
        List<String> found = new ArrayList<>();
        while (m.find()) {
            found.add(m.group());
        }
        assertThat(found).containsExactly("EGRESS_API_PORT", "EGRESS_HOME");
    }

    /** Variable name to the files (relative to the root) that name it. */
    static Map<String, TreeSet<String>> variablesRead(Path root) throws IOException {
        Map<String, TreeSet<String>> out = new TreeMap<>();
        for (Path file : scannedFiles(root)) {
            String text = Files.readString(file);
            String rel = root.relativize(file).toString();
            Matcher m = VARIABLE_NAME.matcher(text);
            while (m.find()) {
                out.computeIfAbsent(m.group(), k -> new TreeSet<>()).add(rel);
            }
            for (String name : CONNECTION) {
                if (mentions(text, name)) {
                    out.computeIfAbsent(name, k -> new TreeSet<>()).add(rel);
                }
            }
        }
        return out;
    }

    /** egressctl, scripts/*.sh, and every module's application*.properties and Java sources. */
    static List<Path> scannedFiles(Path root) throws IOException {
        List<Path> files = new ArrayList<>();
        files.add(root.resolve("egressctl"));
        try (Stream<Path> s = Files.list(root.resolve("scripts"))) {
            s.filter(p -> p.getFileName().toString().endsWith(".sh")).sorted().forEach(files::add);
        }
        try (Stream<Path> s = Files.walk(root)) {
            s.filter(Files::isRegularFile)
                    .filter(p -> !root.relativize(p).toString().contains("target/") && !root.relativize(p).startsWith(".git"))
                    .filter(p -> {
                        String rel = root.relativize(p).toString().replace('\\', '/');
                        String name = p.getFileName().toString();
                        return (rel.contains("/src/main/java/") || rel.contains("/src/test/java/")) && name.endsWith(".java")
                                || rel.contains("/src/main/resources/") && name.startsWith("application") && name.endsWith(".properties");
                    })
                    // This test names example variables of its own.
                    .filter(p -> !p.getFileName().toString().equals("DocumentedVariablesTest.java"))
                    .sorted().forEach(files::add);
        }
        return files;
    }

    /** True when {@code text} names {@code variable} as a whole name (not as part of a longer one). */
    static boolean mentions(String text, String variable) {
        return Pattern.compile("(?<![A-Za-z0-9_])" + Pattern.quote(variable) + "(?![A-Za-z0-9_])").matcher(text).find();
    }

    /** The directory holding the root pom.xml (the one with the modules), found upwards from the working directory. */
    static Path repositoryRoot() {
        Path dir = Path.of("").toAbsolutePath();
        for (Path d = dir; d != null; d = d.getParent()) {
            Path pom = d.resolve("pom.xml");
            try {
                if (Files.isRegularFile(pom) && Files.readString(pom).contains("<modules>") && Files.isRegularFile(d.resolve("egressctl"))) {
                    return d;
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        throw new IllegalStateException("no repository root (pom.xml with modules, and egressctl) above " + dir);
    }
}
