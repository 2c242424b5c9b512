package io.egressctl.schemas.compat;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

import org.apache.avro.Schema;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import io.egressctl.events.EnforcementReport;
import io.egressctl.events.HostUpdate;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.schemas.registry.BackwardCompatibility;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * The build gate for schema evolution: every schema in src/main/avro must be BACKWARD compatible with its
 * copy in every release under src/main/released/&lt;version&gt;/, i.e. the new schema, as reader, can read
 * data written with the released one ({@code SchemaCompatibility.checkReaderWriterCompatibility(newReader,
 * oldWriter)}). Checked against every release, not only the last (BACKWARD_TRANSITIVE): egress.network-events
 * is kept forever and replayed from its start, so records written by the first release must stay readable.
 * A failure here fails {@code mvn install}; the message names the schema, the release, and the record and
 * field that broke.
 *
 * <p>To release: copy src/main/avro/*.avsc to src/main/released/&lt;new version&gt;/.
 */
class SchemaCompatibilityTest {

    private static final Path BASE = Paths.get(System.getProperty("basedir", "")).toAbsolutePath();
    static final Path CURRENT = BASE.resolve("src/main/avro");
    static final Path RELEASED = BASE.resolve("src/main/released");
    private static final JsonMapper JSON = JsonMapper.builder().build();

    /**
     * All problems of {@code current} against the release in {@code releasedDir}: schemas missing from
     * current, and incompatibilities naming record and field. Empty when the change is BACKWARD compatible.
     */
    static List<String> check(Path releasedDir, Path currentDir) {
        String version = releasedDir.getFileName().toString();
        SchemaDir released = SchemaDir.load(releasedDir);
        SchemaDir current = SchemaDir.load(currentDir);
        List<String> failures = new ArrayList<>();
        released.topLevel.forEach((file, oldWriter) -> {
            Schema newReader = current.topLevel.get(file);
            if (newReader == null) {
                failures.add(file + " (" + oldWriter.getFullName() + ") was released in " + version + " but is gone from "
                        + currentDir + ": records written with it must stay readable");
                return;
            }
            List<String> problems = BackwardCompatibility.problems(newReader, oldWriter);
            if (!problems.isEmpty()) {
                failures.add(file + " is not BACKWARD compatible with release " + version + " (the new "
                        + newReader.getName() + " cannot read records written with the released one):\n    - "
                        + String.join("\n    - ", problems));
            }
        });
        return failures;
    }

    @TestFactory
    Stream<DynamicTest> currentSchemasReadEveryReleasedVersion() {
        List<Path> releases = SchemaDir.releases(RELEASED);
        assertThat(releases).as("released schema versions under %s", RELEASED).isNotEmpty();
        return releases.stream().map(release -> DynamicTest.dynamicTest(
                "current schemas are BACKWARD compatible with release " + release.getFileName(), () -> {
                    List<String> failures = check(release, CURRENT);
                    assertThat(failures)
                            .as("schema changes that break BACKWARD compatibility; make new fields optional with a"
                                    + " default, keep enum symbols (or give the enum a default), and never change a"
                                    + " field's type incompatibly:\n%s", String.join("\n", failures))
                            .isEmpty();
                }));
    }

    @Test
    void firstReleaseHoldsTheFourContractSchemas() {
        SchemaDir first = SchemaDir.load(SchemaDir.releases(RELEASED).get(0));
        assertThat(first.dir.getFileName()).hasToString("0.1.0");
        assertThat(first.topLevel.values()).extracting(Schema::getFullName).containsExactlyInAnyOrder(
                RuleEvent.getClassSchema().getFullName(), WorkloadEvent.getClassSchema().getFullName(),
                HostUpdate.getClassSchema().getFullName(), EnforcementReport.getClassSchema().getFullName());
    }

    @Test
    void generatedClassesMatchTheCurrentSources() {
        SchemaDir current = SchemaDir.load(CURRENT);
        assertThat(current.topLevel.get("RuleEvent.avsc")).isEqualTo(withoutJavaStringProps(RuleEvent.getClassSchema()));
        assertThat(current.topLevel.get("WorkloadEvent.avsc")).isEqualTo(withoutJavaStringProps(WorkloadEvent.getClassSchema()));
        assertThat(current.topLevel.get("HostUpdate.avsc")).isEqualTo(withoutJavaStringProps(HostUpdate.getClassSchema()));
        assertThat(current.topLevel.get("EnforcementReport.avsc"))
                .isEqualTo(withoutJavaStringProps(EnforcementReport.getClassSchema()));
    }

    /** The generated classes' schemas carry {@code "avro.java.string":"String"} (stringType=String); the sources do not. */
    private static Schema withoutJavaStringProps(Schema generated) {
        return new Schema.Parser().parse(generated.toString()
                .replace("{\"type\":\"string\",\"avro.java.string\":\"String\"}", "\"string\""));
    }

    // --- the checker catches breaking changes (each applied to a copy of the current sources) ---------------

    @Test
    void newFieldWithoutDefaultIsCaught(@TempDir Path tmp) throws IOException {
        Path changed = copyWithEdit(tmp, "RuleEvent.avsc", root -> {
            fields(root).addObject().put("name", "approvedBy").put("type", "string");
            return root;
        });

        List<String> failures = check(RELEASED.resolve("0.1.0"), changed);

        assertThat(failures).hasSize(1);
        assertThat(failures.get(0)).contains("RuleEvent.avsc is not BACKWARD compatible with release 0.1.0")
                .contains("RuleEvent.approvedBy").contains("READER_FIELD_MISSING_DEFAULT_VALUE");
    }

    @Test
    void removedEnumSymbolIsCaught(@TempDir Path tmp) throws IOException {
        Path changed = copyWithEdit(tmp, "WorkloadEvent.avsc", root -> {
            removeSymbol(field(root, "operation").path("type"), "HOST_DRAINED");
            return root;
        });

        List<String> failures = check(RELEASED.resolve("0.1.0"), changed);

        assertThat(failures).hasSize(1);
        assertThat(failures.get(0)).contains("WorkloadEvent.avsc").contains("WorkloadEvent.operation")
                .contains("MISSING_ENUM_SYMBOLS").contains("HOST_DRAINED");
    }

    @Test
    void removedSymbolOfASharedEnumBreaksEverySchemaUsingIt(@TempDir Path tmp) throws IOException {
        Path changed = copyWithEdit(tmp, "Common.avsc", root -> {
            for (JsonNode type : root) {
                if (type.path("name").asString("").equals("Protocol")) {
                    removeSymbol(type, "ALL");
                }
            }
            return root;
        });

        List<String> failures = check(RELEASED.resolve("0.1.0"), changed);

        assertThat(failures).hasSize(2);
        assertThat(String.join("\n", failures))
                .contains("RuleEvent.avsc").contains("RuleEvent.ruleBefore.protocol: MISSING_ENUM_SYMBOLS [ALL]")
                .contains("RuleEvent.ruleAfter.protocol: MISSING_ENUM_SYMBOLS [ALL]")
                .contains("HostUpdate.avsc").contains("HostUpdate.fragment.rules[].protocol: MISSING_ENUM_SYMBOLS [ALL]");
    }

    @Test
    void changedFieldTypeIsCaught(@TempDir Path tmp) throws IOException {
        Path changed = copyWithEdit(tmp, "HostUpdate.avsc", root -> {
            ((ObjectNode) field(root, "version")).put("type", "int");
            return root;
        });

        List<String> failures = check(RELEASED.resolve("0.1.0"), changed);

        assertThat(failures).hasSize(1);
        assertThat(failures.get(0)).contains("HostUpdate.version").contains("TYPE_MISMATCH");
    }

    @Test
    void deletedSchemaFileIsCaught(@TempDir Path tmp) throws IOException {
        Path changed = copyWithEdit(tmp, "EnforcementReport.avsc", root -> null);

        assertThat(check(RELEASED.resolve("0.1.0"), changed)).singleElement().asString()
                .contains("EnforcementReport.avsc").contains("was released in 0.1.0 but is gone");
    }

    @Test
    void compatibleEvolutionPasses(@TempDir Path tmp) throws IOException {
        Path changed = copyWithEdit(tmp, "RuleEvent.avsc", root -> {
            ArrayNode fields = fields(root);
            ObjectNode optional = fields.addObject().put("name", "comment");
            optional.putArray("type").add("null").add("string");
            optional.putNull("default");
            fields.addObject().put("name", "schemaRevision").put("type", "int").put("default", 1);
            ArrayNode symbols = (ArrayNode) field(root, "operation").path("type").path("symbols");
            symbols.add("NETWORK_RENAMED"); // new writers may write it; old data never holds it
            for (int i = 0; i < fields.size(); i++) { // dropping a field is fine for BACKWARD: the reader skips it
                if (fields.get(i).path("name").asString("").equals("idempotencyKey")) {
                    fields.remove(i);
                }
            }
            return root;
        });

        assertThat(check(RELEASED.resolve("0.1.0"), changed)).isEmpty();
    }

    @Test
    void fieldPathFollowsUnionsArraysAndNestedRecords() {
        Schema reader = SchemaDir.load(CURRENT).topLevel.get("HostUpdate.avsc");
        assertThat(BackwardCompatibility.problems(reader, reader)).isEmpty();
        String text = reader.toString();
        assertThat(text).contains("\"name\":\"vmId\",\"type\":\"string\"");
        Schema writer = new Schema.Parser().parse(text
                .replace("\"name\":\"vmId\",\"type\":\"string\"", "\"name\":\"vmId\",\"type\":\"long\""));
        // VmAddress is one named type, used by the fragment and by the delta: both paths are named.
        assertThat(BackwardCompatibility.problems(reader, writer)).hasSize(2);
        assertThat(BackwardCompatibility.problems(reader, writer).get(0))
                .startsWith("HostUpdate.fragment.vms[].vmId: TYPE_MISMATCH")
                .contains("(at /fields/4/type/1/fields/1/type/items/fields/0/type)");
        assertThat(BackwardCompatibility.problems(reader, writer).get(1))
                .startsWith("HostUpdate.delta.vms[].vmId: TYPE_MISMATCH")
                .contains("(at /fields/9/type/1/fields/2/type/items/fields/0/type)");
    }

    // ---------------------------------------------------------------------------------------------------

    /** Copies the current sources to {@code tmp}, with {@code file} rewritten by {@code edit} (null deletes it). */
    private static Path copyWithEdit(Path tmp, String file, UnaryOperator<JsonNode> edit) throws IOException {
        Path dir = tmp.resolve("avro");
        Files.createDirectories(dir);
        for (Path f : SchemaDir.avscFiles(CURRENT)) {
            Files.copy(f, dir.resolve(f.getFileName()));
        }
        Path target = dir.resolve(file);
        JsonNode edited = edit.apply(JSON.readTree(Files.readString(target)));
        if (edited == null) {
            Files.delete(target);
        } else {
            Files.writeString(target, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(edited));
        }
        return dir;
    }

    private static void removeSymbol(JsonNode enumSchema, String symbol) {
        ArrayNode symbols = (ArrayNode) enumSchema.path("symbols");
        for (int i = 0; i < symbols.size(); i++) {
            if (symbols.get(i).asString("").equals(symbol)) {
                symbols.remove(i);
                return;
            }
        }
        throw new AssertionError("no symbol " + symbol + " in " + enumSchema);
    }

    private static ArrayNode fields(JsonNode record) {
        return (ArrayNode) record.path("fields");
    }

    private static JsonNode field(JsonNode record, String name) {
        for (JsonNode f : record.path("fields")) {
            if (f.path("name").asString("").equals(name)) {
                return f;
            }
        }
        throw new AssertionError("no field " + name);
    }
}
