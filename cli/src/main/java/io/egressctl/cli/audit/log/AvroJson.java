package io.egressctl.cli.audit.log;

import io.egressctl.cli.audit.Times;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericContainer;
import org.apache.avro.generic.IndexedRecord;

import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Avro records as plain JSON-ready values (maps in field order, lists, strings, numbers, booleans,
 * nulls): enums by symbol, timestamps as ISO-8601 UTC text, unions as the bare branch value, bytes as
 * base64. Works for any generated record, so every topic exports the same way.
 */
public final class AvroJson {

    private AvroJson() {
    }

    /** The record as an ordered map of its fields. */
    public static Map<String, Object> of(IndexedRecord record) {
        if (record == null) {
            return null;
        }
        Map<String, Object> out = new LinkedHashMap<>();
        for (Schema.Field f : record.getSchema().getFields()) {
            out.put(f.name(), value(record.get(f.pos())));
        }
        return out;
    }

    /** Any Avro datum as a JSON-ready value. */
    public static Object value(Object v) {
        if (v == null) {
            return null;
        }
        if (v instanceof IndexedRecord r) {
            return of(r);
        }
        if (v instanceof GenericContainer c && c.getSchema().getType() == Schema.Type.ENUM) {
            return v.toString();
        }
        if (v instanceof Enum<?> e) {
            return e.name();
        }
        if (v instanceof CharSequence s) {
            return s.toString();
        }
        if (v instanceof Instant t) {
            return Times.format(t);
        }
        if (v instanceof ByteBuffer b) {
            ByteBuffer d = b.duplicate();
            byte[] bytes = new byte[d.remaining()];
            d.get(bytes);
            return Base64.getEncoder().encodeToString(bytes);
        }
        if (v instanceof Collection<?> c) {
            List<Object> out = new ArrayList<>(c.size());
            for (Object o : c) {
                out.add(value(o));
            }
            return out;
        }
        if (v instanceof Map<?, ?> m) {
            Map<String, Object> out = new LinkedHashMap<>();
            m.forEach((k, x) -> out.put(String.valueOf(k), value(x)));
            return out;
        }
        return v;
    }
}
