package io.egressctl.rules.cloudstack;

/**
 * An error answered in CloudStack's shape: {@code {"<command>response":{"uuidList":[],"errorcode":N,
 * "cserrorcode":M,"errortext":"..."}}} with HTTP status N. The codes are CloudStack's
 * ({@code ApiErrorCode} and {@code CSExceptionErrorCode}), so clients that branch on them keep working.
 */
public final class CloudStackError extends RuntimeException {

    /** ApiErrorCode values this endpoint answers with. */
    public static final int UNAUTHORIZED = 401;
    public static final int METHOD_NOT_ALLOWED = 405;
    public static final int PAYLOAD_TOO_LARGE = 413;
    public static final int PARAM_ERROR = 431;
    public static final int UNSUPPORTED_ACTION = 432;
    public static final int INTERNAL_ERROR = 530;
    public static final int RESOURCE_UNAVAILABLE = 534;
    public static final int NETWORK_RULE_CONFLICT = 537;

    /** CSExceptionErrorCode values: ServerApiException, InvalidParameterValueException, ... */
    static final int CS_SERVER_API = 9999;
    static final int CS_INVALID_PARAMETER = 4350;
    static final int CS_RULE_CONFLICT = 4360;
    static final int CS_PERMISSION_DENIED = 4365;
    static final int CS_RESOURCE_UNAVAILABLE = 4380;

    private final int errorCode;
    private final Integer csErrorCode;

    public CloudStackError(int errorCode, Integer csErrorCode, String errorText) {
        super(errorText);
        this.errorCode = errorCode;
        this.csErrorCode = csErrorCode;
    }

    public int errorCode() {
        return errorCode;
    }

    /** Null for authentication failures, which CloudStack answers without one. */
    public Integer csErrorCode() {
        return csErrorCode;
    }

    static CloudStackError unauthorized(String reason) {
        return new CloudStackError(UNAUTHORIZED, null, "unable to verify user credentials and/or request signature: " + reason);
    }

    static CloudStackError param(String text) {
        return new CloudStackError(PARAM_ERROR, CS_INVALID_PARAMETER, text);
    }

    static CloudStackError missing(String command, String parameter) {
        return param("Unable to execute API command " + command.toLowerCase() + " due to missing parameter " + parameter);
    }

    static CloudStackError invalidValue(String command, String parameter, String value) {
        return param("Unable to execute API command " + command.toLowerCase() + " due to invalid value. Invalid parameter "
                + parameter + " value=" + clean(value) + " due to incorrect long value format, or entity does not exist or due to"
                + " incorrect parameter annotation for the field in api cmd class.");
    }

    static CloudStackError conflict(String text) {
        return new CloudStackError(NETWORK_RULE_CONFLICT, CS_RULE_CONFLICT, text);
    }

    /** Values echoed in messages: no control characters, bounded length. */
    static String clean(String value) {
        if (value == null) {
            return "null";
        }
        String c = value.replaceAll("\\p{Cntrl}", "?");
        return c.length() > 80 ? c.substring(0, 80) + "..." : c;
    }
}
