package io.egressctl.schemas.serde;

import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

import org.apache.avro.AvroRuntimeException;
import org.apache.avro.Schema;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DatumReader;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;

import io.egressctl.schemas.registry.BackwardCompatibility;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryException;

/**
 * Kafka deserializer of the Confluent schema-registry wire format into generated Avro classes. It reads the
 * writer's schema by the id in the payload from the registry (once per id) and resolves the datum into the
 * reader's class with Avro schema resolution, so a consumer built with a newer schema reads records written
 * with an older one (BACKWARD).
 *
 * <p>The reader class is the one given to the constructor, or the one named by
 * {@value AvroSerdeConfig#SPECIFIC_AVRO_VALUE_TYPE} ({@value AvroSerdeConfig#SPECIFIC_AVRO_KEY_TYPE} for keys);
 * without either, the generated class named like the writer schema. A topic that carries several record
 * types (such as {@code egress.network-events}) is read with {@link #ofTypes}: the writer schema is resolved
 * by its id and the class picked by the schema's full name among the given ones; a record of any other type
 * is refused as undecodable. A null payload deserializes to null.
 * A bad magic byte, a payload too short for the header, an unknown schema id, a writer schema the reader
 * cannot read, and a corrupt body each throw {@link SerializationException} saying which. Thread-safe.
 */
public class AvroDeserializer<T extends SpecificRecord> implements Deserializer<T> {

    private volatile SchemaRegistryClient client;
    private volatile Class<? extends T> type;
    private volatile boolean isKey;
    /** Several reader classes by the full names they read (their schema's and its aliases); null: one type. */
    private volatile Map<String, Class<? extends T>> types;
    /** schema id -> how to read it (or why it cannot be read). */
    private final ConcurrentMap<Integer, Reader<T>> readers = new ConcurrentHashMap<>();

    /** For Kafka, which instantiates by class name and then calls {@link #configure}. */
    public AvroDeserializer() {
    }

    /** Reads into {@code type}; the registry comes from the configs given to {@link #configure}. */
    public AvroDeserializer(Class<T> type) {
        this.type = Objects.requireNonNull(type, "type");
    }

    /** Reads into {@code type} with schemas from {@code client}. */
    public AvroDeserializer(SchemaRegistryClient client, Class<T> type) {
        this.client = Objects.requireNonNull(client, "client");
        this.type = Objects.requireNonNull(type, "type");
    }

    /** Reads into the generated class named like each payload's writer schema. */
    public AvroDeserializer(SchemaRegistryClient client) {
        this.client = Objects.requireNonNull(client, "client");
    }

    /**
     * Reads a topic that carries several record types: each payload into the one of {@code types} whose
     * schema has the writer schema's full name (or an alias of it), resolved with Avro schema resolution
     * as for a single type. A payload of another type throws {@link SerializationException}.
     */
    @SafeVarargs
    public static <T extends SpecificRecord> AvroDeserializer<T> ofTypes(SchemaRegistryClient client,
                                                                         Class<? extends T>... types) {
        if (types.length == 0) {
            throw new IllegalArgumentException("no record types");
        }
        Map<String, Class<? extends T>> byName = new java.util.LinkedHashMap<>();
        for (Class<? extends T> type : types) {
            Schema schema = SpecificData.getForClass(type).getSchema(type);
            byName.put(schema.getFullName(), type);
            schema.getAliases().forEach(alias -> byName.putIfAbsent(alias, type));
        }
        AvroDeserializer<T> d = new AvroDeserializer<>(client);
        d.types = Map.copyOf(byName);
        return d;
    }

    /**
     * Unless given to the constructor: the reader class from {@value AvroSerdeConfig#SPECIFIC_AVRO_VALUE_TYPE}
     * (or {@value AvroSerdeConfig#SPECIFIC_AVRO_KEY_TYPE}), a Class or a class name, and an HTTP client from
     * {@value AvroSerdeConfig#SCHEMA_REGISTRY_URL} and {@value AvroSerdeConfig#BASIC_AUTH_USER_INFO}.
     */
    @Override
    public void configure(Map<String, ?> configs, boolean isKey) {
        this.isKey = isKey;
        if (type == null) {
            Object configured = configs.get(typeConfig());
            if (configured != null) {
                type = specificClass(configured);
            }
        }
        if (client == null) {
            client = HttpSchemaRegistryClient.fromConfig(configs);
        }
        readers.clear();
    }

    @Override
    public T deserialize(String topic, byte[] data) {
        if (data == null) {
            return null;
        }
        int id = WireFormat.schemaId(topic, data);
        Reader<T> reader = readers.get(id);
        if (reader == null) {
            reader = reader(topic, id);
        }
        if (reader.error != null) {
            throw new SerializationException(reader.error.replace("{topic}", String.valueOf(topic)));
        }
        try {
            BinaryDecoder decoder = DecoderFactory.get().binaryDecoder(data, WireFormat.HEADER_SIZE,
                    data.length - WireFormat.HEADER_SIZE, null);
            return reader.datumReader.read(null, decoder);
        } catch (IOException | AvroRuntimeException | IndexOutOfBoundsException | ClassCastException
                | NegativeArraySizeException e) {
            throw new SerializationException("cannot decode the Avro body (" + (data.length - WireFormat.HEADER_SIZE)
                    + " bytes) of a record from topic " + topic + " with schema id " + id + " as "
                    + reader.readerSchema.getFullName() + ": " + e, e);
        }
    }

    private Reader<T> reader(String topic, int id) {
        SchemaRegistryClient registry = client;
        if (registry == null) {
            throw new SerializationException("AvroDeserializer is not configured: give it a SchemaRegistryClient or set "
                    + AvroSerdeConfig.SCHEMA_REGISTRY_URL);
        }
        Schema writer;
        try {
            writer = registry.schemaById(id);
        } catch (SchemaRegistryException e) {
            // not cached: the registry may know the id later (or be reachable again)
            throw new SerializationException((e.isNotFound() ? "unknown schema id " : "cannot fetch the writer schema id ")
                    + id + " of a record from topic " + topic + ": " + e.getMessage(), e);
        }
        Reader<T> reader = newReader(id, writer);
        Reader<T> previous = readers.putIfAbsent(id, reader);
        return previous != null ? previous : reader;
    }

    @SuppressWarnings("unchecked")
    private Reader<T> newReader(int id, Schema writer) {
        Class<? extends T> readerClass = type;
        Map<String, Class<? extends T>> several = types;
        if (several != null && writer.getType() == Schema.Type.RECORD) {
            readerClass = several.get(writer.getFullName());
            if (readerClass == null) {
                return Reader.failed("schema id " + id + " is a " + writer.getFullName() + ", not one of the record types"
                        + " of topic {topic} (" + String.join(", ", new java.util.TreeSet<>(several.keySet())) + ")");
            }
        } else if (several != null) {
            return Reader.failed("schema id " + id + " is a " + writer.getType() + ", not a record type of topic {topic}");
        }
        if (readerClass == null) {
            Class<?> generated = writer.getType() == Schema.Type.RECORD ? SpecificData.get().getClass(writer) : null;
            if (generated == null || !SpecificRecord.class.isAssignableFrom(generated)) {
                return Reader.failed("no generated class " + writer.getFullName() + " on the classpath for schema id " + id
                        + " (topic {topic}); set " + typeConfig() + " or pass the class");
            }
            readerClass = (Class<? extends T>) generated;
        }
        SpecificData model = SpecificData.getForClass(readerClass);
        Schema readerSchema = model.getSchema(readerClass);
        List<String> problems = BackwardCompatibility.problems(readerSchema, writer);
        if (!problems.isEmpty()) {
            return Reader.failed("schema id " + id + " (" + writer.getFullName() + ") of a record from topic {topic} cannot be"
                    + " read as " + readerClass.getName() + ": " + String.join("; ", problems));
        }
        DatumReader<T> datumReader = new SpecificDatumReader<>(writer, readerSchema, model);
        return new Reader<>(datumReader, readerSchema, null);
    }

    @SuppressWarnings("unchecked")
    private Class<? extends T> specificClass(Object configured) {
        Class<?> c;
        if (configured instanceof Class<?> given) {
            c = given;
        } else {
            String name = String.valueOf(configured).trim();
            try {
                ClassLoader loader = Thread.currentThread().getContextClassLoader();
                c = Class.forName(name, true, loader != null ? loader : AvroDeserializer.class.getClassLoader());
            } catch (ClassNotFoundException e) {
                throw new IllegalArgumentException("class " + name + " (config " + typeConfig() + ") is not on the classpath", e);
            }
        }
        if (!SpecificRecord.class.isAssignableFrom(c)) {
            throw new IllegalArgumentException(c.getName() + " is not a generated Avro SpecificRecord class");
        }
        return (Class<? extends T>) c;
    }

    private String typeConfig() {
        return isKey ? AvroSerdeConfig.SPECIFIC_AVRO_KEY_TYPE : AvroSerdeConfig.SPECIFIC_AVRO_VALUE_TYPE;
    }

    @Override
    public void close() {
        // nothing to release
    }

    /** A resolved reader for one writer schema id, or why there is none. */
    private static final class Reader<T> {
        final DatumReader<T> datumReader;
        final Schema readerSchema;
        final String error;

        Reader(DatumReader<T> datumReader, Schema readerSchema, String error) {
            this.datumReader = datumReader;
            this.readerSchema = readerSchema;
            this.error = error;
        }

        static <T> Reader<T> failed(String error) {
            return new Reader<>(null, null, error);
        }
    }
}
