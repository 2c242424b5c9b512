package io.egressctl.schemas.security;

import org.springframework.boot.EnvironmentPostProcessor;
import org.springframework.boot.SpringApplication;
import org.springframework.core.env.ConfigurableEnvironment;
import org.springframework.core.env.MapPropertySource;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Gives a service's Spring Boot Kafka clients (listener containers, {@code KafkaAdmin}, and through its
 * configuration the topic check) the settings of {@link KafkaSecurity}, as {@code spring.kafka.properties.*}:
 * the same environment variables as the service's hand-made clients, so no client of a service connects
 * otherwise than the others. Registered in {@code META-INF/spring.factories}; a service without the
 * variables is left as it was. Settings given as {@code spring.kafka.*} properties directly still win, as
 * Spring orders its property sources (this one comes last).
 */
public class SpringKafkaSecurity implements EnvironmentPostProcessor {

    /** The name of the property source this adds. */
    public static final String SOURCE = "egressKafkaSecurity";

    @Override
    public void postProcessEnvironment(ConfigurableEnvironment environment, SpringApplication application) {
        KafkaSecurity security = KafkaSecurity.from(environment::getProperty);
        if (security.properties().isEmpty()) {
            return;
        }
        environment.getPropertySources().addLast(new MapPropertySource(SOURCE, springProperties(security)));
    }

    /** {@code spring.kafka.properties.<name>} for each client property of {@code security}. */
    static Map<String, Object> springProperties(KafkaSecurity security) {
        Map<String, Object> p = new LinkedHashMap<>();
        security.properties().forEach((k, v) -> p.put("spring.kafka.properties." + k, v));
        return p;
    }
}
