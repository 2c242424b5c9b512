package io.egressctl.schemas.registry;

import java.util.ArrayList;
import java.util.List;

import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.SchemaCompatibility.Incompatibility;
import org.apache.avro.SchemaCompatibility.SchemaIncompatibilityType;
import org.apache.avro.SchemaCompatibility.SchemaPairCompatibility;

/**
 * BACKWARD compatibility as a schema registry defines it: the new schema, as reader, can read every datum
 * written with the old one. Decided by Avro's own {@link SchemaCompatibility#checkReaderWriterCompatibility},
 * with each problem described by the record and field path it is about, e.g.
 * {@code RuleEvent.ruleAfter.protocol: MISSING_ENUM_SYMBOLS [ALL] (at /fields/7/type/1/fields/1/type/symbols)}.
 */
public final class BackwardCompatibility {

    private BackwardCompatibility() {
    }

    /** True when {@code newReader} can read everything written with {@code oldWriter}. */
    public static boolean isBackwardCompatible(Schema newReader, Schema oldWriter) {
        return SchemaCompatibility.checkReaderWriterCompatibility(newReader, oldWriter).getType()
                == SchemaCompatibility.SchemaCompatibilityType.COMPATIBLE;
    }

    /**
     * Why {@code newReader} cannot read data written with {@code oldWriter}: one line per incompatibility,
     * naming the record and field path; empty when the change is BACKWARD compatible.
     */
    public static List<String> problems(Schema newReader, Schema oldWriter) {
        List<String> out = new ArrayList<>();
        collect(newReader, oldWriter, newReader.getName(), "", out, 0);
        return out;
    }

    /**
     * Adds the problems of {@code reader} against {@code writer} to {@code out}, their paths prefixed with
     * {@code pathPrefix} and pointers with {@code pointerPrefix}. Avro reports a union whose record branch
     * cannot read the writer's as a bare MISSING_UNION_BRANCH; this looks into such a branch (same full
     * name in reader and writer) to name the field inside it that broke.
     */
    private static void collect(Schema reader, Schema writer, String pathPrefix, String pointerPrefix, List<String> out,
            int depth) {
        SchemaPairCompatibility result = SchemaCompatibility.checkReaderWriterCompatibility(reader, writer);
        if (result.getType() == SchemaCompatibility.SchemaCompatibilityType.COMPATIBLE) {
            return;
        }
        int before = out.size();
        for (Incompatibility i : result.getResult().getIncompatibilities()) {
            String location = i.getLocation() == null ? "" : i.getLocation();
            String path = pathPrefix + fieldPath(reader, location).substring(reader.getName().length());
            String pointer = pointerPrefix + location;
            Schema writerBranch = i.getType() == SchemaIncompatibilityType.MISSING_UNION_BRANCH
                    ? writerBranch(i.getWriterFragment(), location) : null;
            Schema sameNamedBranch = writerBranch == null ? null : branchNamedLike(i.getReaderFragment(), writerBranch);
            if (sameNamedBranch != null && depth < 8) {
                int branch = i.getReaderFragment().getTypes().indexOf(sameNamedBranch);
                String branchPointer = location.replaceFirst("/\\d+$", "") + "/" + branch;
                // the reader path to the union, then into its branch
                String unionPath = pathPrefix + fieldPath(reader, location.replaceFirst("/\\d+$", ""))
                        .substring(reader.getName().length());
                int size = out.size();
                collect(sameNamedBranch, writerBranch, unionPath, pointerPrefix + branchPointer, out, depth + 1);
                if (out.size() > size) {
                    continue;
                }
            }
            out.add(path + ": " + i.getType() + " " + i.getMessage() + " (at " + (pointer.isEmpty() ? "/" : pointer) + ")");
        }
        if (out.size() == before) {
            out.add(pathPrefix + ": " + result.getDescription());
        }
    }

    /**
     * The writer's branch a MISSING_UNION_BRANCH is about: Avro reports the writer union as the fragment and
     * the branch's index as the last step of the location.
     */
    private static Schema writerBranch(Schema writerFragment, String location) {
        if (writerFragment == null) {
            return null;
        }
        if (writerFragment.getType() != Schema.Type.UNION) {
            return writerFragment;
        }
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("/(\\d+)$").matcher(location);
        if (!m.find()) {
            return null;
        }
        int index = Integer.parseInt(m.group(1));
        return index < writerFragment.getTypes().size() ? writerFragment.getTypes().get(index) : null;
    }

    /** The branch of reader union {@code union} with the full name of named type {@code writer}, or null. */
    private static Schema branchNamedLike(Schema union, Schema writer) {
        if (union == null || union.getType() != Schema.Type.UNION || writer == null) {
            return null;
        }
        Schema.Type t = writer.getType();
        if (t != Schema.Type.RECORD && t != Schema.Type.ENUM && t != Schema.Type.FIXED) {
            return null;
        }
        for (Schema branch : union.getTypes()) {
            if (branch.getType() == t && (branch.getFullName().equals(writer.getFullName())
                    || branch.getAliases().contains(writer.getFullName()))) {
                return branch;
            }
        }
        return null;
    }

    /**
     * Turns the JSON pointer of an incompatibility (into the reader schema) into a dotted path of record and
     * field names, e.g. {@code /fields/7/type/1/fields/1/type} of RuleEvent into
     * {@code RuleEvent.ruleAfter.protocol}. Best effort: stops at the first step it cannot follow.
     */
    static String fieldPath(Schema root, String pointer) {
        StringBuilder path = new StringBuilder(root.getName());
        if (pointer == null || pointer.isEmpty() || pointer.equals("/")) {
            return path.toString();
        }
        String[] tokens = pointer.substring(pointer.startsWith("/") ? 1 : 0).split("/");
        Schema current = root;
        for (int i = 0; i < tokens.length && current != null; i++) {
            String token = tokens[i];
            switch (token) {
                case "fields" -> {
                    if (i + 1 >= tokens.length) {
                        return path.toString();
                    }
                    Integer pos = number(tokens[i + 1]);
                    if (current.getType() != Schema.Type.RECORD || pos == null || pos >= current.getFields().size()) {
                        return path.toString();
                    }
                    Schema.Field field = current.getFields().get(pos);
                    path.append('.').append(field.name());
                    current = field.schema();
                    i++;
                }
                case "type" -> {
                    // the field's schema: already descended into above
                }
                case "items" -> {
                    current = current.getType() == Schema.Type.ARRAY ? current.getElementType() : null;
                    path.append("[]");
                }
                case "values" -> {
                    current = current.getType() == Schema.Type.MAP ? current.getValueType() : null;
                    path.append("{}");
                }
                case "symbols", "name", "size", "aliases" -> {
                    return path.toString();
                }
                default -> {
                    Integer branch = number(token);
                    if (branch == null || current.getType() != Schema.Type.UNION) {
                        return path.toString();
                    }
                    List<Schema> types = current.getTypes();
                    if (branch >= types.size()) {
                        return path.toString();
                    }
                    current = types.get(branch);
                }
            }
        }
        return path.toString();
    }

    private static Integer number(String token) {
        try {
            return Integer.valueOf(token);
        } catch (NumberFormatException e) {
            return null;
        }
    }
}
