package io.egressctl.schemas.serde;

import java.util.Map;

import io.egressctl.schemas.registry.HttpSchemaRegistryClient;

/** Config keys of {@link AvroSerializer} and {@link AvroDeserializer}: the same names as Confluent's serde. */
public final class AvroSerdeConfig {

    /** Comma-separated base URL(s) of the schema registry. */
    public static final String SCHEMA_REGISTRY_URL = HttpSchemaRegistryClient.SCHEMA_REGISTRY_URL_CONFIG;
    /** {@code user:password} for basic auth to the registry. */
    public static final String BASIC_AUTH_USER_INFO = HttpSchemaRegistryClient.BASIC_AUTH_USER_INFO_CONFIG;
    /** {@code USER_INFO} or {@code URL}. */
    public static final String BASIC_AUTH_CREDENTIALS_SOURCE = HttpSchemaRegistryClient.BASIC_AUTH_CREDENTIALS_SOURCE_CONFIG;
    /** Serializer: register a schema the subject does not hold yet (default true). */
    public static final String AUTO_REGISTER_SCHEMAS = "auto.register.schemas";
    /** Deserializer of values: class (or class name) of the generated SpecificRecord to read into. */
    public static final String SPECIFIC_AVRO_VALUE_TYPE = "specific.avro.value.type";
    /** Deserializer of keys: class (or class name) of the generated SpecificRecord to read into. */
    public static final String SPECIFIC_AVRO_KEY_TYPE = "specific.avro.key.type";

    private AvroSerdeConfig() {
    }

    static boolean bool(Map<String, ?> configs, String key, boolean defaultValue) {
        Object v = configs.get(key);
        if (v == null) {
            return defaultValue;
        }
        if (v instanceof Boolean b) {
            return b;
        }
        String s = String.valueOf(v).trim();
        if (s.equalsIgnoreCase("true")) {
            return true;
        }
        if (s.equalsIgnoreCase("false")) {
            return false;
        }
        throw new IllegalArgumentException("config " + key + " must be true or false, was '" + v + "'");
    }
}
