package io.egressctl.schemas.serde;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

import org.apache.avro.AvroRuntimeException;
import org.apache.avro.Schema;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DatumWriter;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificDatumWriter;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Serializer;

import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import io.egressctl.schemas.registry.SchemaRegistryException;

/**
 * Kafka serializer of generated Avro records in the Confluent schema-registry wire format (0x00, 4-byte
 * big-endian schema id, Avro binary), byte for byte what Confluent's KafkaAvroSerializer writes for the
 * same schema id.
 *
 * <p>The subject follows a {@link SubjectNameStrategy}: the one given to the constructor or configured
 * with {@value SubjectNameStrategy#VALUE_CONFIG} ({@value SubjectNameStrategy#KEY_CONFIG} for keys), else
 * {@link SubjectNameStrategy#forTopic}: {@code <topic>-<record full name>} (TopicRecordNameStrategy) on a
 * topic that carries several record types such as {@code egress.network-events}, {@code <topic>-value}
 * ({@code <topic>-key} for a key serializer: TopicNameStrategy) on every other topic.
 * By default a schema the subject does not hold yet is registered ({@value AvroSerdeConfig#AUTO_REGISTER_SCHEMAS}
 * = true); with false it must already be registered. Ids are cached per subject, so the registry is called
 * once per (topic, schema). A null record serializes to null (a Kafka tombstone). Thread-safe.
 *
 * <p>Two ways to make one: {@code new AvroSerializer<>(client)} in code, or by class name in Kafka configs
 * with {@value AvroSerdeConfig#SCHEMA_REGISTRY_URL} (and optionally {@value AvroSerdeConfig#BASIC_AUTH_USER_INFO}).
 */
public class AvroSerializer<T extends SpecificRecord> implements Serializer<T> {

    private volatile SchemaRegistryClient client;
    private volatile boolean autoRegister;
    private volatile boolean isKey;
    /** Null: {@link SubjectNameStrategy#forTopic} per topic. */
    private volatile SubjectNameStrategy strategy;

    /** subject -> schema -> id. */
    private final ConcurrentMap<String, ConcurrentMap<Schema, Integer>> ids = new ConcurrentHashMap<>();
    private final ConcurrentMap<Schema, DatumWriter<Object>> writers = new ConcurrentHashMap<>();

    /** For Kafka, which instantiates by class name and then calls {@link #configure}. */
    public AvroSerializer() {
        this.autoRegister = true;
    }

    /** A value serializer that registers schemas automatically. */
    public AvroSerializer(SchemaRegistryClient client) {
        this(client, true);
    }

    /** A value serializer; with {@code autoRegister} false every schema must already be registered. */
    public AvroSerializer(SchemaRegistryClient client, boolean autoRegister) {
        this(client, autoRegister, null);
    }

    /**
     * A value serializer with a fixed subject name strategy ({@code null}: {@link SubjectNameStrategy#forTopic}
     * per topic); with {@code autoRegister} false every schema must already be registered.
     */
    public AvroSerializer(SchemaRegistryClient client, boolean autoRegister, SubjectNameStrategy strategy) {
        this.client = Objects.requireNonNull(client, "client");
        this.autoRegister = autoRegister;
        this.strategy = strategy;
    }

    /**
     * Reads {@value AvroSerdeConfig#AUTO_REGISTER_SCHEMAS}, {@value SubjectNameStrategy#VALUE_CONFIG} (or
     * {@value SubjectNameStrategy#KEY_CONFIG}) and, unless a client was given to the
     * constructor, builds an HTTP client from {@value AvroSerdeConfig#SCHEMA_REGISTRY_URL} and
     * {@value AvroSerdeConfig#BASIC_AUTH_USER_INFO}.
     */
    @Override
    public void configure(Map<String, ?> configs, boolean isKey) {
        this.isKey = isKey;
        this.autoRegister = AvroSerdeConfig.bool(configs, AvroSerdeConfig.AUTO_REGISTER_SCHEMAS, autoRegister);
        Object configured = configs.get(isKey ? SubjectNameStrategy.KEY_CONFIG : SubjectNameStrategy.VALUE_CONFIG);
        if (configured != null) {
            this.strategy = SubjectNameStrategy.parse(configured);
        }
        if (client == null) {
            client = HttpSchemaRegistryClient.fromConfig(configs);
        }
    }

    @Override
    public byte[] serialize(String topic, T data) {
        if (data == null) {
            return null;
        }
        SchemaRegistryClient registry = client;
        if (registry == null) {
            throw new SerializationException("AvroSerializer is not configured: give it a SchemaRegistryClient or set "
                    + AvroSerdeConfig.SCHEMA_REGISTRY_URL);
        }
        Schema schema = data.getSchema();
        SubjectNameStrategy s = strategy;
        String subject = (s != null ? s : SubjectNameStrategy.forTopic(topic, isKey)).subject(topic, isKey, schema);
        int id = schemaId(registry, subject, schema);
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream(1024);
            out.write(new byte[WireFormat.HEADER_SIZE]);
            // Buffered, not direct: a direct encoder makes one (synchronized) stream call per field.
            BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, null);
            writer(schema, data).write(data, encoder);
            encoder.flush();
            byte[] bytes = out.toByteArray();
            WireFormat.writeHeader(bytes, id);
            return bytes;
        } catch (IOException | AvroRuntimeException | ClassCastException | NullPointerException e) {
            throw new SerializationException("cannot encode " + schema.getFullName() + " for topic " + topic
                    + " with schema id " + id + ": " + e, e);
        }
    }

    private int schemaId(SchemaRegistryClient registry, String subject, Schema schema) {
        ConcurrentMap<Schema, Integer> bySchema = ids.computeIfAbsent(subject, s -> new ConcurrentHashMap<>());
        Integer cached = bySchema.get(schema);
        if (cached != null) {
            return cached;
        }
        int id;
        try {
            if (autoRegister) {
                id = registry.register(subject, schema);
            } else {
                OptionalInt found = registry.lookupId(subject, schema);
                if (found.isEmpty()) {
                    throw new SerializationException("schema " + schema.getFullName() + " is not registered under subject "
                            + subject + " and " + AvroSerdeConfig.AUTO_REGISTER_SCHEMAS + " is false");
                }
                id = found.getAsInt();
            }
        } catch (SchemaRegistryException e) {
            throw new SerializationException("cannot get a schema id for " + schema.getFullName() + " under subject "
                    + subject + ": " + e.getMessage(), e);
        }
        bySchema.putIfAbsent(schema, id);
        return id;
    }

    private DatumWriter<Object> writer(Schema schema, T data) {
        DatumWriter<Object> writer = writers.get(schema);
        if (writer == null) {
            // The class's own SpecificData carries its logical-type conversions (timestamp-millis -> Instant).
            writer = new SpecificDatumWriter<>(schema, SpecificData.getForClass(data.getClass()));
            DatumWriter<Object> previous = writers.putIfAbsent(schema, writer);
            if (previous != null) {
                writer = previous;
            }
        }
        return writer;
    }

    @Override
    public void close() {
        // the HTTP client holds no resource that needs closing on Java 17
    }
}
