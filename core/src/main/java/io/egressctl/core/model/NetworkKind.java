package io.egressctl.core.model;

/** The two kinds of guest network the seed user guide speaks of. */
public enum NetworkKind {
    BASIC, VPC_TIER
}
