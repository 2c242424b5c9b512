package io.egressctl.compiler.config;

import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * Settings of the compiler-service ({@code egress.*}).
 *
 * @param schemaRegistryUrl Confluent-compatible registry base URL
 * @param redisUrl          redis://host:port
 * @param partitions        partitions of every egress topic (must match across services and agents)
 * @param serviceVersion    reported in events and metrics
 */
@ConfigurationProperties("egress")
public record EgressProperties(String schemaRegistryUrl, String redisUrl, int partitions, String serviceVersion) {
}
