package io.egressctl.cli;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * No command of the product scans the Redis keyspace (a SCAN or KEYS walks every key a server holds,
 * and on a cluster only one node's): every list comes from an index key the compiler writes
 * (docs/architecture.md, "Redis key contract"). Greps the main sources of every module and the
 * scripts, so that a SCAN coming back fails the build.
 */
class NoKeyspaceScanTest {

    /**
     * Jedis' keyspace scan and KEYS ({@code .scan(}, {@code .keys(}, their parameter and result types),
     * and SCAN or KEYS inside a Lua script or as a raw command. SSCAN, HSCAN and ZSCAN walk one key and
     * are not matched ({@code .sscan(}), nor are {@code .hkeys(} and a record's {@code keys()}.
     */
    static final Pattern SCAN = Pattern.compile(
            "\\.scan\\(|\\.keys\\(\\s*\"|(?i:jedis|redis)\\w*\\.keys\\(|\\bScanParams\\b|\\bScanResult\\b|redis\\.call\\(\\s*['\"](?i:scan|keys)['\"]"
                    + "|Command\\.(SCAN|KEYS)\\b|redis-cli[^\\n]*(--scan|\\bKEYS\\b)");

    @Test
    void noMainSourceOrScriptScansTheKeyspace() throws IOException {
        Path root = DocumentedVariablesTest.repositoryRoot();
        List<Path> files = sources(root);
        assertThat(files).as("main sources found under %s", root).hasSizeGreaterThan(50);
        List<String> found = new ArrayList<>();
        for (Path file : files) {
            String text = Files.readString(file);
            Matcher m = SCAN.matcher(text);
            while (m.find()) {
                int line = (int) text.substring(0, m.start()).chars().filter(c -> c == '\n').count() + 1;
                found.add(root.relativize(file) + ":" + line + ": " + m.group());
            }
        }
        assertThat(found).as("keyspace scans: read an index key instead (RedisKeys)").isEmpty();
    }

    @Test
    void thePatternCatchesWhatItMustAndSparesSingleKeyScans() {
        for (String bad : List.of("redis.scan(cursor, params)", "ScanParams params", "jedis.keys(\"egress:*\")", "redis.keys(RedisKeys.PREFIX + \"*\")",
                "redis.call('SCAN', '0')", "redis.call(\"KEYS\", 'egress:*')", "redis-cli --scan --pattern 'egress:*'",
                "Protocol.Command.SCAN")) {
            assertThat(SCAN.matcher(bad).find()).as(bad).isTrue();
        }
        for (String fine : List.of("redis.sscan(key, cursor)", "redis.hscan(key, cursor)", "redis.hkeys(key)",
                "redis.smembers(RedisKeys.hosts())", "derived.keys()", "@ConfigurationPropertiesScan", "java.util.Scanner in")) {
            assertThat(SCAN.matcher(fine).find()).as(fine).isFalse();
        }
    }

    /** Every module's src/main (Java, Lua, resources), the launcher and the scripts. */
    static List<Path> sources(Path root) throws IOException {
        List<Path> out = new ArrayList<>();
        try (Stream<Path> modules = Files.list(root)) {
            for (Path module : modules.filter(d -> Files.isDirectory(d.resolve("src/main"))).toList()) {
                try (Stream<Path> s = Files.walk(module.resolve("src/main"))) {
                    s.filter(Files::isRegularFile)
                            .filter(f -> f.toString().endsWith(".java") || f.toString().endsWith(".lua")
                                    || f.toString().endsWith(".properties") || f.toString().endsWith(".yml"))
                            .forEach(out::add);
                }
            }
        }
        out.add(root.resolve("egressctl"));
        for (String dir : List.of("scripts", "stack")) {
            if (Files.isDirectory(root.resolve(dir))) {
                try (Stream<Path> s = Files.walk(root.resolve(dir))) {
                    s.filter(Files::isRegularFile).filter(f -> f.toString().endsWith(".sh") || !f.getFileName().toString().contains("."))
                            .forEach(out::add);
                }
            }
        }
        return out;
    }
}
