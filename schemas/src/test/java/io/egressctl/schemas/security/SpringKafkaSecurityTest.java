package io.egressctl.schemas.security;

import org.junit.jupiter.api.Test;
import org.springframework.boot.EnvironmentPostProcessor;
import org.springframework.core.env.MapPropertySource;
import org.springframework.core.env.StandardEnvironment;
import org.springframework.core.io.support.PropertiesLoaderUtils;
import org.springframework.core.io.support.SpringFactoriesLoader;

import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** The services' Spring Boot Kafka clients see the KAFKA_* settings as spring.kafka.properties.*. */
class SpringKafkaSecurityTest {

    @Test
    void isRegisteredForEveryServiceThatHasSchemasOnItsClasspath() throws Exception {
        // one spring.factories per jar (Spring Boot's own names the same key): find ours among them
        java.util.List<String> registered = new java.util.ArrayList<>();
        for (java.net.URL url : java.util.Collections.list(getClass().getClassLoader().getResources(SpringFactoriesLoader.FACTORIES_RESOURCE_LOCATION))) {
            String v = PropertiesLoaderUtils.loadProperties(new org.springframework.core.io.UrlResource(url))
                    .getProperty(EnvironmentPostProcessor.class.getName());
            if (v != null) {
                registered.add(v);
            }
        }
        assertThat(registered).anyMatch(v -> v.contains(SpringKafkaSecurity.class.getName()));
    }

    @Test
    void addsTheSettingsAsSpringKafkaProperties() {
        StandardEnvironment env = new StandardEnvironment();
        env.getPropertySources().addFirst(new MapPropertySource("test", Map.of("KAFKA_SECURITY_PROTOCOL", "SASL_SSL",
                "KAFKA_SASL_USERNAME", "compiler-service", "KAFKA_SASL_PASSWORD", "pw", "KAFKA_SSL_TRUSTSTORE_LOCATION", "/ca.pem",
                "KAFKA_SSL_TRUSTSTORE_TYPE", "PEM")));
        new SpringKafkaSecurity().postProcessEnvironment(env, null);
        assertThat(env.getProperty("spring.kafka.properties.security.protocol")).isEqualTo("SASL_SSL");
        assertThat(env.getProperty("spring.kafka.properties.sasl.mechanism")).isEqualTo("SCRAM-SHA-512");
        assertThat(env.getProperty("spring.kafka.properties.sasl.jaas.config")).contains("username=\"compiler-service\"");
        assertThat(env.getProperty("spring.kafka.properties.ssl.truststore.location")).isEqualTo("/ca.pem");
    }

    @Test
    void leavesAPlainServiceAsItWas() {
        StandardEnvironment env = new StandardEnvironment();
        int before = env.getPropertySources().size();
        new SpringKafkaSecurity().postProcessEnvironment(env, null);
        // (the machine running the test may itself export KAFKA_* settings; none here means no source)
        if (System.getenv("KAFKA_SECURITY_PROTOCOL") == null) {
            assertThat(env.getPropertySources().size()).isEqualTo(before);
        }
    }
}
