package io.egressctl.rules.config;

import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * Settings of the rule-service ({@code egress.*}).
 *
 * @param apiKeys         comma-separated {@code secret=tenantId:role:actor} entries; role is
 *                        {@code tenant} or {@code operator}
 * @param maxBodyBytes    largest request body accepted (larger: 413)
 */
@ConfigurationProperties("egress")
public record EgressProperties(String schemaRegistryUrl, String redisUrl, int partitions, String serviceVersion,
                               String apiKeys, int maxBodyBytes) {
}
