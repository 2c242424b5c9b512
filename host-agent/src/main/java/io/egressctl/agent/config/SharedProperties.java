package io.egressctl.agent.config;

import org.springframework.boot.context.properties.ConfigurationProperties;

/** Endpoints shared by every service ({@code egress.*}). */
@ConfigurationProperties("egress")
public record SharedProperties(String schemaRegistryUrl, String redisUrl, String kafkaBootstrapServers) {
}
