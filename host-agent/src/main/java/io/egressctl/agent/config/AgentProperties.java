package io.egressctl.agent.config;

import io.egressctl.agent.sync.HostSync;
import io.egressctl.core.render.HostMode;
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
 * @param mode              how the host plugs its VMs in: {@code routed} (default; each VM's tap/veth is
 *                          routed by the host) or {@code bridged} (a Linux bridge per guest network, VM taps
 *                          as its ports); decides where the table sees a packet's interface (see
 *                          {@code HostMode})
 * @param conntrackBinary   path or name of the conntrack binary that ends a port's established flows after a
 *                          new block (nftables enforcer; default {@code conntrack})
 * @param maxElements       the most set and map elements the host's ruleset may hold (the operator's limit;
 *                          0: {@code HostSync.DEFAULT_MAX_ELEMENTS}); a network whose version would take the
 *                          host past it is refused on this host while the others are applied
 */
@ConfigurationProperties("egress.agent")
public record AgentProperties(String hostId, String enforcer, String dryRunFile, Duration reconcileInterval,
                              String nftBinary, String netns, boolean ruleCounters, String mode,
                              String conntrackBinary, long maxElements) {

    /** The element limit, its default when unset. */
    public long elementLimit() {
        return maxElements > 0 ? maxElements : HostSync.DEFAULT_MAX_ELEMENTS;
    }

    /** The host mode, {@code routed} when unset. */
    public HostMode hostMode() {
        return mode == null || mode.isBlank() ? HostMode.ROUTED : HostMode.parse(mode);
    }
}
