package io.egressctl.rules.api;

import org.springframework.boot.jackson.autoconfigure.JsonMapperBuilderCustomizer;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import tools.jackson.core.StreamReadFeature;
import tools.jackson.databind.DeserializationFeature;

/**
 * Strict reading of request bodies, on top of {@code fail-on-unknown-properties}: a port of
 * {@code 80.5} is refused instead of silently becoming 80, and a field given twice
 * ({@code {"protocol":"tcp","protocol":"all"}}) is refused instead of the last one winning.
 */
@Configuration(proxyBeanMethods = false)
class RequestJson {

    @Bean
    JsonMapperBuilderCustomizer strictRequestBodies() {
        return builder -> builder
                .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
                .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
                .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION);
    }
}
