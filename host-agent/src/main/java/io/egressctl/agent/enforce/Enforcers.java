package io.egressctl.agent.enforce;

import io.egressctl.agent.config.AgentProperties;

import java.time.Duration;
import java.util.List;

/** Builds the kernel enforcer from configuration. */
public final class Enforcers {

    /** Longest a single nft run may take before it is killed (a 10,000-rule apply takes well under a second). */
    static final Duration NFT_TIMEOUT = Duration.ofSeconds(30);

    private Enforcers() {
    }

    /**
     * The nftables enforcer for the configured binary ({@code egress.agent.nft-binary}, default
     * {@code nft}) and namespace ({@code egress.agent.netns}, empty for the agent's own). Checks once
     * that nft runs and may read the ruleset (root or CAP_NET_ADMIN), so a missing binary or missing
     * privilege stops the agent at start-up with nft's own message instead of NACKing every update.
     * Applies go to a spare nft process started ahead (see {@link ProcessNftRunner}).
     *
     * @throws IllegalStateException when nft cannot be run or is not permitted
     */
    public static Enforcer nftables(AgentProperties props) {
        String binary = props.nftBinary() == null || props.nftBinary().isBlank() ? "nft" : props.nftBinary();
        ProcessNftRunner runner = new ProcessNftRunner(binary, props.netns(), NFT_TIMEOUT, true);
        String where = String.join(" ", runner.commandPrefix());
        try {
            NftRunner.Result r = runner.run("", List.of("list", "tables"));
            if (!r.ok()) {
                throw new IllegalStateException("the nftables enforcer cannot use '" + where + "' (exit " + r.exitCode()
                        + "): " + r.errorText() + "; it needs root or CAP_NET_ADMIN, or set egress.agent.enforcer=dry-run");
            }
        } catch (EnforcementException e) {
            throw new IllegalStateException("the nftables enforcer cannot run '" + where + "': " + e.getMessage()
                    + "; install nftables (apt-get install nftables) or set egress.agent.enforcer=dry-run", e);
        }
        return new NftablesEnforcer(runner);
    }
}
