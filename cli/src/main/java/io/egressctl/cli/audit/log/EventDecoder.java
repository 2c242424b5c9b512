package io.egressctl.cli.audit.log;

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
 * id, fetched from the registry once, and one reused {@link BinaryDecoder}. A topic that carries several
 * record types (egress.network-events: RuleEvent and WorkloadEvent) is read with {@link #ofTypes}: each
 * writer schema id is resolved to the given class of the same full name. Not thread-safe: one per
 * reading thread.
 */
public final class EventDecoder<T extends SpecificRecord> {

    private final SchemaRegistryClient registry;
    /** The reader classes by the full names they read. */
    private final Map<String, Class<? extends T>> types;
    private final Map<Integer, SpecificDatumReader<T>> readers = new HashMap<>();
    private final Map<Integer, String> failures = new HashMap<>();
    private BinaryDecoder decoder;
    private int lastId = -1;
    private SpecificDatumReader<T> lastReader;

    public EventDecoder(SchemaRegistryClient registry, Class<T> type) {
        this.registry = registry;
        this.types = Map.of("", type);
    }

    private EventDecoder(SchemaRegistryClient registry, Map<String, Class<? extends T>> types) {
        this.registry = registry;
        this.types = types;
    }

    /** A decoder of several record types, each payload read as the one whose full name its writer schema has. */
    @SafeVarargs
    public static <T extends SpecificRecord> EventDecoder<T> ofTypes(SchemaRegistryClient registry, Class<? extends T>... types) {
        Map<String, Class<? extends T>> byName = new java.util.LinkedHashMap<>();
        for (Class<? extends T> t : types) {
            byName.put(SpecificData.getForClass(t).getSchema(t).getFullName(), t);
        }
        return new EventDecoder<>(registry, byName);
    }

    /** The decoder of the network events log: RuleEvent and WorkloadEvent. */
    public static EventDecoder<SpecificRecord> networkEvents(SchemaRegistryClient registry) {
        return ofTypes(registry, io.egressctl.events.RuleEvent.class, io.egressctl.events.WorkloadEvent.class);
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
                    + " bytes) of a record from topic " + topic + " with schema id " + id + ": " + e, e);
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
            Class<? extends T> type = types.size() == 1 && types.containsKey("") ? types.get("") : types.get(writer.getFullName());
            if (type == null) {
                failure = "schema id " + id + " is a " + writer.getFullName() + ", not one of the record types of topic " + topic
                        + " (" + String.join(", ", types.keySet()) + ")";
                failures.put(id, failure);
                throw new SerializationException(failure);
            }
            SpecificData model = SpecificData.getForClass(type);
            Schema readerSchema = model.getSchema(type);
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
