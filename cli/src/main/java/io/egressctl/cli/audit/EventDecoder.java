package io.egressctl.cli.audit;

import io.egressctl.schemas.registry.BackwardCompatibility;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryException;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.WireFormat;
import org.apache.avro.AvroRuntimeException;
import org.apache.avro.Schema;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.errors.SerializationException;

import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Decodes schema-registry framed Avro values (the same wire format and resolution rules as
 * {@link AvroDeserializer}) for long replays: one resolved {@link SpecificDatumReader} per writer schema
 * id, fetched from the registry once, and one reused {@link BinaryDecoder}. Not thread-safe: one per
 * reading thread.
 */
public final class EventDecoder<T extends SpecificRecord> {

    private final SchemaRegistryClient registry;
    private final Class<T> type;
    private final SpecificData model;
    private final Schema readerSchema;
    private final Map<Integer, SpecificDatumReader<T>> readers = new HashMap<>();
    private final Map<Integer, String> failures = new HashMap<>();
    private BinaryDecoder decoder;
    private int lastId = -1;
    private SpecificDatumReader<T> lastReader;

    public EventDecoder(SchemaRegistryClient registry, Class<T> type) {
        this.registry = registry;
        this.type = type;
        this.model = SpecificData.getForClass(type);
        this.readerSchema = model.getSchema(type);
    }

    /**
     * @return the record, or null for a null payload (a Kafka tombstone)
     * @throws SerializationException for a payload that is not the wire format, an unknown or unreadable
     *         schema id, or a corrupt body
     * @throws IllegalStateException when the registry cannot be asked (unreachable, or an error other than
     *         "not found")
     */
    public T decode(String topic, byte[] data) {
        if (data == null) {
            return null;
        }
        int id = WireFormat.schemaId(topic, data);
        SpecificDatumReader<T> reader = id == lastId ? lastReader : reader(topic, id);
        try {
            decoder = DecoderFactory.get().binaryDecoder(data, WireFormat.HEADER_SIZE, data.length - WireFormat.HEADER_SIZE, decoder);
            return reader.read(null, decoder);
        } catch (IOException | AvroRuntimeException | IndexOutOfBoundsException | ClassCastException
                | NegativeArraySizeException e) {
            throw new SerializationException("cannot decode the Avro body (" + (data.length - WireFormat.HEADER_SIZE)
                    + " bytes) of a record from topic " + topic + " with schema id " + id + " as " + type.getName() + ": " + e, e);
        }
    }

    private SpecificDatumReader<T> reader(String topic, int id) {
        SpecificDatumReader<T> reader = readers.get(id);
        if (reader == null) {
            String failure = failures.get(id);
            if (failure != null) {
                throw new SerializationException(failure);
            }
            Schema writer;
            try {
                writer = registry.schemaById(id);
            } catch (SchemaRegistryException e) {
                if (!e.isNotFound()) {
                    // Not a property of the record: an audit that skipped every record it cannot fetch a schema
                    // for would report a wrong history, so it stops instead.
                    throw new IllegalStateException("cannot fetch the writer schema id " + id + " of a record from topic "
                            + topic + " from the schema registry: " + e.getMessage(), e);
                }
                failures.put(id, "unknown schema id " + id + " of a record from topic " + topic + ": " + e.getMessage());
                throw new SerializationException(failures.get(id), e);
            }
            List<String> problems = BackwardCompatibility.problems(readerSchema, writer);
            if (!problems.isEmpty()) {
                failure = "schema id " + id + " (" + writer.getFullName() + ") of a record from topic " + topic
                        + " cannot be read as " + type.getName() + ": " + String.join("; ", problems);
                failures.put(id, failure);
                throw new SerializationException(failure);
            }
            reader = new SpecificDatumReader<>(writer, readerSchema, model);
            readers.put(id, reader);
        }
        lastId = id;
        lastReader = reader;
        return reader;
    }
}
