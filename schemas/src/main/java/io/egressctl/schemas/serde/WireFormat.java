package io.egressctl.schemas.serde;

import org.apache.kafka.common.errors.SerializationException;

/**
 * The Confluent schema-registry wire format: byte 0 is the magic byte 0x00, bytes 1-4 the schema's global
 * id (big-endian int), then the Avro binary encoding of the datum with that schema.
 */
public final class WireFormat {

    public static final byte MAGIC_BYTE = 0x0;
    /** Magic byte plus 4-byte schema id. */
    public static final int HEADER_SIZE = 5;

    private WireFormat() {
    }

    /**
     * The schema id of a framed payload, after checking length and magic byte.
     *
     * @throws SerializationException for a payload shorter than 5 bytes or with a magic byte other than 0
     */
    public static int schemaId(String topic, byte[] payload) {
        if (payload.length < HEADER_SIZE) {
            throw new SerializationException("payload of " + payload.length + " byte(s) from topic " + topic
                    + " is too short for the schema-registry wire format: it needs at least " + HEADER_SIZE
                    + " bytes (magic byte 0x00 and a 4-byte schema id) before the Avro body");
        }
        if (payload[0] != MAGIC_BYTE) {
            throw new SerializationException(String.format(
                    "unknown magic byte 0x%02x in a %d-byte payload from topic %s: expected 0x00 (schema-registry wire"
                            + " format); was it written by another serializer?", payload[0] & 0xff, payload.length, topic));
        }
        return ((payload[1] & 0xff) << 24) | ((payload[2] & 0xff) << 16) | ((payload[3] & 0xff) << 8) | (payload[4] & 0xff);
    }

    /** Writes the 5-byte header (magic byte and big-endian schema id) into {@code target} at offset 0. */
    static void writeHeader(byte[] target, int schemaId) {
        target[0] = MAGIC_BYTE;
        target[1] = (byte) (schemaId >>> 24);
        target[2] = (byte) (schemaId >>> 16);
        target[3] = (byte) (schemaId >>> 8);
        target[4] = (byte) schemaId;
    }
}
