package io.egressctl.schemas.registry;

/**
 * A schema-registry call that failed: the registry could not be reached, answered with an error, or
 * answered something that could not be read.
 */
public class SchemaRegistryException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /** HTTP status of the registry's answer; 0 when there was no answer. */
    private final int httpStatus;
    /** Confluent {@code error_code} of the answer (e.g. 40401 subject not found); 0 when absent. */
    private final int errorCode;

    public SchemaRegistryException(String message) {
        this(message, 0, 0, null);
    }

    public SchemaRegistryException(String message, Throwable cause) {
        this(message, 0, 0, cause);
    }

    public SchemaRegistryException(String message, int httpStatus, int errorCode) {
        this(message, httpStatus, errorCode, null);
    }

    public SchemaRegistryException(String message, int httpStatus, int errorCode, Throwable cause) {
        super(message, cause);
        this.httpStatus = httpStatus;
        this.errorCode = errorCode;
    }

    /** HTTP status of the registry's answer; 0 when the registry did not answer. */
    public int httpStatus() {
        return httpStatus;
    }

    /** Confluent {@code error_code} from the answer's body (40401, 40403, 409, 42201, ...); 0 when absent. */
    public int errorCode() {
        return errorCode;
    }

    /** The registry answered 404: unknown subject, version or schema id. */
    public boolean isNotFound() {
        return httpStatus == 404;
    }
}
