package io.egressctl.cli;

import java.util.Map;

/**
 * Where the running control plane is, from environment variables.
 *
 * @param apiUrl           rule-service base URL
 * @param apiKey           the demo tenant's API key (tenant A)
 * @param operatorKey      the operator's API key (placements)
 * @param agentFiles       folder of the dry-run agents' rendered rulesets ({@code <host>.nft})
 * @param hosts            the simulated host ids
 * @param apiKeyB          the second demo tenant's API key (tenant B), or null
 * @param datacenterScript {@code scripts/datacenter.sh} when the agents enforce with nft in the data
 *                         center in network namespaces (the walkthrough then probes real traffic), else null
 * @param updateKeys       the stack's update keys ({@code EGRESS_UPDATE_KEYS}, {@code <keyId>:<base64>,...}), with
 *                         which audits check the agents' report signatures, or null
 */
public record Env(String apiUrl, String apiKey, String operatorKey, String kafkaBootstrap, String schemaRegistryUrl,
                  String redisUrl, String agentFiles, java.util.List<String> hosts, String apiKeyB, String datacenterScript,
                  String updateKeys) {

    /** Without update keys. */
    public Env(String apiUrl, String apiKey, String operatorKey, String kafkaBootstrap, String schemaRegistryUrl,
               String redisUrl, String agentFiles, java.util.List<String> hosts, String apiKeyB, String datacenterScript) {
        this(apiUrl, apiKey, operatorKey, kafkaBootstrap, schemaRegistryUrl, redisUrl, agentFiles, hosts, apiKeyB, datacenterScript, null);
    }

    /** Without a second tenant and without the data center (dry-run agents). */
    public Env(String apiUrl, String apiKey, String operatorKey, String kafkaBootstrap, String schemaRegistryUrl,
               String redisUrl, String agentFiles, java.util.List<String> hosts) {
        this(apiUrl, apiKey, operatorKey, kafkaBootstrap, schemaRegistryUrl, redisUrl, agentFiles, hosts, null, null, null);
    }

    public static Env fromSystem() {
        return from(System.getenv());
    }

    public static Env from(Map<String, String> env) {
        String hosts = env.getOrDefault("EGRESS_DEMO_HOSTS", "host-1 host-2 host-3").replace("\"", "");
        String dc = env.get("EGRESS_DATACENTER_SCRIPT");
        return new Env(env.getOrDefault("EGRESS_API_URL", "http://127.0.0.1:18080"), env.get("EGRESS_API_KEY"),
                env.get("EGRESS_OPERATOR_KEY"), env.getOrDefault("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"),
                env.getOrDefault("SCHEMA_REGISTRY_URL", "http://127.0.0.1:18081/apis/ccompat/v7"),
                env.getOrDefault("REDIS_URL", "redis://127.0.0.1:16379"), env.get("EGRESS_AGENT_FILES"),
                java.util.List.of(hosts.trim().split("\\s+")), env.get("EGRESS_API_KEY_B"),
                dc == null || dc.isBlank() ? null : dc, env.get("EGRESS_UPDATE_KEYS"));
    }

    /** Never the keys: an Env may end up in a log. */
    @Override
    public String toString() {
        return "Env[apiUrl=" + apiUrl + ", kafkaBootstrap=" + kafkaBootstrap + ", schemaRegistryUrl=" + schemaRegistryUrl
                + ", redisUrl=" + redisUrl + ", hosts=" + hosts + ", keys redacted]";
    }
}
