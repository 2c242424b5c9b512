package io.egressctl.agent.enforce;

/** An apply or read-back failed; the message is the enforcer's own (for example nft's stderr). */
public class EnforcementException extends Exception {

    public EnforcementException(String message) {
        super(message);
    }

    public EnforcementException(String message, Throwable cause) {
        super(message, cause);
    }
}
