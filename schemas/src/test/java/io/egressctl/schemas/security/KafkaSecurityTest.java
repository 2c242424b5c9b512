package io.egressctl.schemas.security;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class KafkaSecurityTest {

    private static KafkaSecurity of(Map<String, String> env) {
        return KafkaSecurity.from(env::get);
    }

    @Test
    void nothingSetMeansPlaintextAndNoProperties() {
        KafkaSecurity s = of(Map.of());
        assertThat(s).isSameAs(KafkaSecurity.NONE);
        assertThat(s.clientProperties()).isEmpty();
    }

    @Test
    void saslSslWithUserAndPasswordMakesScramJaasAndTrustStore() {
        KafkaSecurity s = of(Map.of("KAFKA_SECURITY_PROTOCOL", "sasl_ssl", "KAFKA_SASL_USERNAME", "agent", "KAFKA_SASL_PASSWORD", "pw-1",
                "KAFKA_SSL_TRUSTSTORE_LOCATION", "/etc/egress/ca.pem", "KAFKA_SSL_TRUSTSTORE_TYPE", "pem"));
        assertThat(s.clientProperties()).containsEntry("security.protocol", "SASL_SSL")
                .containsEntry("sasl.mechanism", "SCRAM-SHA-512")
                .containsEntry("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"agent\" password=\"pw-1\";")
                .containsEntry("ssl.truststore.location", "/etc/egress/ca.pem")
                .containsEntry("ssl.truststore.type", "PEM")
                .doesNotContainKey("ssl.truststore.password");
        assertThat(s.toString()).doesNotContain("pw-1");
    }

    @Test
    void sslAloneTakesTheJvmTrustStoreWhenNoneIsGiven() {
        KafkaSecurity s = of(Map.of("KAFKA_SECURITY_PROTOCOL", "SSL", "KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM", ""));
        assertThat(s.clientProperties()).containsEntry("security.protocol", "SSL").containsEntry("ssl.endpoint.identification.algorithm", "")
                .doesNotContainKeys("ssl.truststore.location", "sasl.jaas.config");
    }

    @Test
    void refusesWhatCannotWork() {
        assertThatThrownBy(() -> of(Map.of("KAFKA_SECURITY_PROTOCOL", "TLS"))).hasMessageContaining("KAFKA_SECURITY_PROTOCOL='TLS'");
        assertThatThrownBy(() -> of(Map.of("KAFKA_SECURITY_PROTOCOL", "SASL_SSL", "KAFKA_SASL_USERNAME", "x")))
                .hasMessageContaining("KAFKA_SASL_PASSWORD");
        assertThatThrownBy(() -> of(Map.of("KAFKA_SASL_USERNAME", "x", "KAFKA_SASL_PASSWORD", "y")))
                .hasMessageContaining("KAFKA_SECURITY_PROTOCOL is PLAINTEXT");
        assertThatThrownBy(() -> of(Map.of("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM", "GSSAPI",
                "KAFKA_SASL_USERNAME", "x", "KAFKA_SASL_PASSWORD", "y"))).hasMessageContaining("KAFKA_SASL_MECHANISM='GSSAPI'");
        assertThatThrownBy(() -> of(Map.of("KAFKA_SECURITY_PROTOCOL", "SASL_SSL", "KAFKA_SASL_USERNAME", "x", "KAFKA_SASL_PASSWORD", "a\"b")))
                .hasMessageContaining("KAFKA_SASL_JAAS_CONFIG");
        assertThatThrownBy(() -> of(Map.of("KAFKA_SECURITY_PROTOCOL", "SSL", "KAFKA_SSL_TRUSTSTORE_PASSWORD", "p")))
                .hasMessageContaining("without KAFKA_SSL_TRUSTSTORE_LOCATION");
    }

    @Test
    void springGetsTheSamePropertiesUnderSpringKafkaProperties() {
        KafkaSecurity s = of(Map.of("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM", "PLAIN",
                "KAFKA_SASL_USERNAME", "rule-service", "KAFKA_SASL_PASSWORD", "p"));
        assertThat(SpringKafkaSecurity.springProperties(s)).containsEntry("spring.kafka.properties.security.protocol", "SASL_PLAINTEXT")
                .containsEntry("spring.kafka.properties.sasl.mechanism", "PLAIN")
                .containsEntry("spring.kafka.properties.sasl.jaas.config",
                        "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"rule-service\" password=\"p\";");
    }
}
