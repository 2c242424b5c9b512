package io.egressctl.schemas.security;

import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.config.SslConfigs;
import org.apache.kafka.common.security.auth.SecurityProtocol;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * How every Kafka client of the project connects: one set of environment variables read the same way by
 * the services (their Spring Boot clients get it as {@code spring.kafka.properties.*}, see
 * {@link SpringKafkaSecurity}; their hand-made producers, consumers and admin clients from
 * {@link #clientProperties()}), the agents, the CLI and its benchmarks.
 *
 * <pre>
 * KAFKA_SECURITY_PROTOCOL          PLAINTEXT (default) | SSL | SASL_PLAINTEXT | SASL_SSL
 * KAFKA_SASL_MECHANISM             SCRAM-SHA-512 (default with SASL) | SCRAM-SHA-256 | PLAIN
 * KAFKA_SASL_USERNAME              this process's principal (with SASL; or KAFKA_SASL_JAAS_CONFIG)
 * KAFKA_SASL_PASSWORD
 * KAFKA_SASL_JAAS_CONFIG           a whole sasl.jaas.config line instead of user name and password
 * KAFKA_SSL_TRUSTSTORE_LOCATION    the CA the brokers' certificates are checked against (SSL, SASL_SSL);
 * KAFKA_SSL_TRUSTSTORE_PASSWORD    unset: the JVM's trust store (javax.net.ssl.trustStore)
 * KAFKA_SSL_TRUSTSTORE_TYPE        PKCS12 (default) | JKS | PEM
 * KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM  https (default: the broker's name or address must be in
 *                                  its certificate) | empty to switch the check off
 * </pre>
 *
 * A value that cannot work (an unknown protocol, SASL without credentials, a trust store password without
 * a trust store) is refused with the variable's name, before any client is made.
 *
 * @param protocol the security protocol
 * @param properties the Kafka client properties this protocol needs (empty for PLAINTEXT)
 */
public record KafkaSecurity(SecurityProtocol protocol, Map<String, String> properties) {

    /** The environment variables this class reads. */
    public static final Set<String> VARIABLES = Set.of("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM",
            "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_SASL_JAAS_CONFIG", "KAFKA_SSL_TRUSTSTORE_LOCATION",
            "KAFKA_SSL_TRUSTSTORE_PASSWORD", "KAFKA_SSL_TRUSTSTORE_TYPE", "KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM");

    /** No security: PLAINTEXT, no properties. */
    public static final KafkaSecurity NONE = new KafkaSecurity(SecurityProtocol.PLAINTEXT, Map.of());

    private static final Set<String> MECHANISMS = Set.of("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN");

    private static volatile KafkaSecurity fromProcess;

    public KafkaSecurity {
        Objects.requireNonNull(protocol, "protocol");
        properties = Map.copyOf(properties);
    }

    /** The settings of this process's environment variables (or system properties of the same names); read once. */
    public static KafkaSecurity fromEnvironment() {
        KafkaSecurity s = fromProcess;
        if (s == null) {
            s = from(name -> System.getenv(name) != null ? System.getenv(name) : System.getProperty(name));
            fromProcess = s;
        }
        return s;
    }

    /** The settings from {@code env} (a variable's name to its value, null when unset). */
    public static KafkaSecurity from(Function<String, String> env) {
        String protocolText = value(env, "KAFKA_SECURITY_PROTOCOL");
        SecurityProtocol protocol;
        if (protocolText == null) {
            protocol = SecurityProtocol.PLAINTEXT;
        } else {
            try {
                protocol = SecurityProtocol.forName(protocolText.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("KAFKA_SECURITY_PROTOCOL='" + protocolText + "' is not one of "
                        + Arrays.stream(SecurityProtocol.values()).map(p -> p.name).collect(Collectors.joining(", ")));
            }
        }
        boolean sasl = protocol == SecurityProtocol.SASL_PLAINTEXT || protocol == SecurityProtocol.SASL_SSL;
        boolean ssl = protocol == SecurityProtocol.SSL || protocol == SecurityProtocol.SASL_SSL;
        Map<String, String> p = new LinkedHashMap<>();
        p.put(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, protocol.name);
        if (sasl) {
            String mechanism = value(env, "KAFKA_SASL_MECHANISM");
            mechanism = mechanism == null ? "SCRAM-SHA-512" : mechanism.toUpperCase(Locale.ROOT);
            if (!MECHANISMS.contains(mechanism)) {
                throw new IllegalArgumentException("KAFKA_SASL_MECHANISM='" + mechanism + "' is not one of " + MECHANISMS);
            }
            p.put(SaslConfigs.SASL_MECHANISM, mechanism);
            String jaas = value(env, "KAFKA_SASL_JAAS_CONFIG");
            String user = value(env, "KAFKA_SASL_USERNAME");
            String password = env.apply("KAFKA_SASL_PASSWORD");
            if (jaas == null) {
                if (user == null || password == null || password.isEmpty()) {
                    throw new IllegalArgumentException("KAFKA_SECURITY_PROTOCOL=" + protocol.name + " needs KAFKA_SASL_USERNAME and "
                            + "KAFKA_SASL_PASSWORD (or KAFKA_SASL_JAAS_CONFIG)");
                }
                String module = mechanism.equals("PLAIN") ? "org.apache.kafka.common.security.plain.PlainLoginModule"
                        : "org.apache.kafka.common.security.scram.ScramLoginModule";
                jaas = module + " required username=\"" + quoted("KAFKA_SASL_USERNAME", user) + "\" password=\""
                        + quoted("KAFKA_SASL_PASSWORD", password) + "\";";
            } else if (user != null) {
                throw new IllegalArgumentException("give either KAFKA_SASL_JAAS_CONFIG or KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD, not both");
            }
            p.put(SaslConfigs.SASL_JAAS_CONFIG, jaas);
        } else {
            for (String v : new String[] {"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_SASL_JAAS_CONFIG", "KAFKA_SASL_MECHANISM"}) {
                if (value(env, v) != null) {
                    throw new IllegalArgumentException(v + " is set but KAFKA_SECURITY_PROTOCOL is " + protocol.name
                            + ": set KAFKA_SECURITY_PROTOCOL=SASL_SSL (or SASL_PLAINTEXT) to use it");
                }
            }
        }
        String location = value(env, "KAFKA_SSL_TRUSTSTORE_LOCATION");
        String storePassword = env.apply("KAFKA_SSL_TRUSTSTORE_PASSWORD");
        String type = value(env, "KAFKA_SSL_TRUSTSTORE_TYPE");
        String identification = env.apply("KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM");
        if (ssl) {
            if (location != null) {
                p.put(SslConfigs.SSL_TRUSTSTORE_LOCATION_CONFIG, location);
                p.put(SslConfigs.SSL_TRUSTSTORE_TYPE_CONFIG, type == null ? "PKCS12" : type.toUpperCase(Locale.ROOT));
                if (storePassword != null && !storePassword.isEmpty()) {
                    p.put(SslConfigs.SSL_TRUSTSTORE_PASSWORD_CONFIG, storePassword);
                }
            } else if (storePassword != null && !storePassword.isEmpty() || type != null) {
                throw new IllegalArgumentException("KAFKA_SSL_TRUSTSTORE_PASSWORD/TYPE are set without KAFKA_SSL_TRUSTSTORE_LOCATION");
            }
            if (identification != null) {
                p.put(SslConfigs.SSL_ENDPOINT_IDENTIFICATION_ALGORITHM_CONFIG, identification.trim());
            }
        } else if (location != null) {
            throw new IllegalArgumentException("KAFKA_SSL_TRUSTSTORE_LOCATION is set but KAFKA_SECURITY_PROTOCOL is " + protocol.name
                    + ": set KAFKA_SECURITY_PROTOCOL=SASL_SSL (or SSL) to use TLS");
        }
        return protocol == SecurityProtocol.PLAINTEXT ? NONE : new KafkaSecurity(protocol, p);
    }

    /** The client properties (security.protocol, sasl.*, ssl.*) to add to a producer's, consumer's or admin client's. */
    public Map<String, Object> clientProperties() {
        return new LinkedHashMap<>(properties);
    }

    /** {@code config} with these settings added (they replace what {@code config} said of them); returns {@code config}. */
    public <M extends Map<? super String, Object>> M applyTo(M config) {
        config.putAll(properties);
        return config;
    }

    /** The protocol and the settings that are not secret, for logs. */
    public String describe() {
        if (properties.isEmpty()) {
            return "PLAINTEXT";
        }
        return protocol.name + properties.entrySet().stream()
                .filter(e -> !e.getKey().equals(SaslConfigs.SASL_JAAS_CONFIG) && !e.getKey().equals(SslConfigs.SSL_TRUSTSTORE_PASSWORD_CONFIG)
                        && !e.getKey().equals(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG))
                .map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining(", ", " (", ")"));
    }

    @Override
    public String toString() {
        return "KafkaSecurity[" + describe() + "]"; // never the password
    }

    private static String value(Function<String, String> env, String name) {
        String v = env.apply(name);
        return v == null || v.isBlank() ? null : v.trim();
    }

    private static String quoted(String name, String v) {
        if (v.indexOf('"') >= 0 || v.indexOf('\\') >= 0) {
            throw new IllegalArgumentException(name + " must not contain '\"' or '\\' (it goes into a JAAS line); use KAFKA_SASL_JAAS_CONFIG");
        }
        return v;
    }
}
