package io.egressctl.agent.config;

import org.springframework.boot.context.properties.ConfigurationProperties;

import java.time.Duration;

/**
 * Settings of a host agent ({@code egress.agent.*} and shared {@code egress.*}).
 *
 * @param hostId            the host this agent enforces; selects its partition and its records
 * @param enforcer          {@code dry-run} (render to {@code dryRunFile}) or {@code nftables} (the kernel)
 * @param dryRunFile        where the dry-run enforcer writes the rendered ruleset
 * @param reconcileInterval how often the kernel is re-read and drift repaired
 * @param nftBinary         path or name of the nft binary (nftables enforcer)
 * @param netns             network namespace to enforce in via {@code ip netns exec} (empty: the agent's own)
 * @param ruleCounters      give every rule's kernel elements a packet counter (off by default; see
 *                          {@code NftRenderer(boolean)} for what they cost)
 */
@ConfigurationProperties("egress.agent")
public record AgentProperties(String hostId, String enforcer, String dryRunFile, Duration reconcileInterval,
                              String nftBinary, String netns, boolean ruleCounters) {
}
