package io.egressctl.core.model;

/** What a matching rule does with a packet. */
public enum Action {
    DENY, ALLOW
}
