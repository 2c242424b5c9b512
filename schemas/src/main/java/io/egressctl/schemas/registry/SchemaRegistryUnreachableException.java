package io.egressctl.schemas.registry;

/**
 * The schema registry did not answer: connection refused, connect or request timeout, I/O error, or the
 * calling thread was interrupted. Worth retrying later, unlike an answered error.
 */
public class SchemaRegistryUnreachableException extends SchemaRegistryException {

    private static final long serialVersionUID = 1L;

    public SchemaRegistryUnreachableException(String message, Throwable cause) {
        super(message, cause);
    }
}
