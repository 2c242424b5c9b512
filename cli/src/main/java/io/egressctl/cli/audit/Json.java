package io.egressctl.cli.audit;

import tools.jackson.databind.SerializationFeature;
import tools.jackson.databind.json.JsonMapper;

/** JSON output: pretty documents for {@code --output json}, compact lines for JSON Lines. */
public final class Json {

    /** Writes indented JSON; reads any JSON (also what commands print, to combine documents). */
    public static final JsonMapper PRETTY = JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();
    static final JsonMapper COMPACT = JsonMapper.builder().build();

    private Json() {
    }

    /** Indented JSON, ending with a newline. */
    public static String pretty(Object value) {
        return PRETTY.writeValueAsString(value) + "\n";
    }

    /** One line of JSON, no newline. */
    public static String line(Object value) {
        return COMPACT.writeValueAsString(value);
    }
}
