package io.egressctl.schemas.serde;

import java.util.Locale;
import java.util.Objects;

import org.apache.avro.Schema;

/**
 * Under which schema-registry subject a serializer registers a record's schema: Confluent's three
 * strategies, by the same names. {@link AvroSerializer} reads it from {@value #VALUE_CONFIG} (or
 * {@value #KEY_CONFIG}), as a short name ({@code TopicRecordNameStrategy}) or Confluent's class name
 * ({@code io.confluent.kafka.serializers.subject.TopicRecordNameStrategy}), so one Kafka config works
 * with both serializers. Without one, {@link #forTopic} decides.
 */
public enum SubjectNameStrategy {

    /** {@code <topic>-value} / {@code <topic>-key}: one record type per topic (Confluent's default). */
    TOPIC_NAME("TopicNameStrategy"),
    /** {@code <record full name>}: one subject per record type, whatever the topic. */
    RECORD_NAME("RecordNameStrategy"),
    /** {@code <topic>-<record full name>}: one subject per (topic, record type), for topics with several types. */
    TOPIC_RECORD_NAME("TopicRecordNameStrategy");

    /** Config of a value serializer: Confluent's name. */
    public static final String VALUE_CONFIG = "value.subject.name.strategy";
    /** Config of a key serializer: Confluent's name. */
    public static final String KEY_CONFIG = "key.subject.name.strategy";

    private static final String CONFLUENT_PACKAGE = "io.confluent.kafka.serializers.subject.";

    private final String shortName;

    SubjectNameStrategy(String shortName) {
        this.shortName = shortName;
    }

    /** The name Confluent's serializer knows it by (its class's simple name). */
    public String shortName() {
        return shortName;
    }

    /** The subject of {@code schema} written to {@code topic}. */
    public String subject(String topic, boolean isKey, Schema schema) {
        return switch (this) {
            case TOPIC_NAME -> Topics.subject(topic, isKey);
            case RECORD_NAME -> schema.getFullName();
            case TOPIC_RECORD_NAME -> Topics.subject(topic, schema.getFullName());
        };
    }

    /**
     * The strategy for a topic when none is configured: TopicRecordNameStrategy for a topic that carries
     * several record types ({@link Topics#carriesSeveralRecordTypes}), TopicNameStrategy otherwise. Keys
     * always use TopicNameStrategy.
     */
    public static SubjectNameStrategy forTopic(String topic, boolean isKey) {
        return !isKey && Topics.carriesSeveralRecordTypes(topic) ? TOPIC_RECORD_NAME : TOPIC_NAME;
    }

    /** Parses a short name, Confluent's class name, or this enum's constant name. */
    public static SubjectNameStrategy parse(Object configured) {
        Objects.requireNonNull(configured, "configured");
        if (configured instanceof SubjectNameStrategy s) {
            return s;
        }
        String text = String.valueOf(configured).trim();
        String simple = text.startsWith(CONFLUENT_PACKAGE) ? text.substring(CONFLUENT_PACKAGE.length()) : text;
        for (SubjectNameStrategy s : values()) {
            if (s.shortName.equals(simple) || s.name().equals(simple.toUpperCase(Locale.ROOT))) {
                return s;
            }
        }
        throw new IllegalArgumentException("unknown subject name strategy '" + text + "': use TopicNameStrategy,"
                + " RecordNameStrategy or TopicRecordNameStrategy (or Confluent's class names)");
    }
}
