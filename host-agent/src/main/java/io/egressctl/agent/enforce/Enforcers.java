package io.egressctl.agent.enforce;

import io.egressctl.agent.config.AgentProperties;

/** Builds the kernel enforcer from configuration. */
public final class Enforcers {

    private Enforcers() {
    }

    /** The nftables enforcer for the configured binary and namespace. */
    public static Enforcer nftables(AgentProperties props) {
        throw new UnsupportedOperationException("the nftables enforcer is not built yet");
    }
}
