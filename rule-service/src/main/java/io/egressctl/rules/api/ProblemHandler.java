package io.egressctl.rules.api;

import io.egressctl.core.validation.ValidationException;
import io.egressctl.core.validation.Violation;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.http.HttpStatus;
import org.springframework.http.ProblemDetail;
import org.springframework.http.converter.HttpMessageNotReadableException;
import org.springframework.web.HttpMediaTypeNotSupportedException;
import org.springframework.web.HttpRequestMethodNotSupportedException;
import org.springframework.web.bind.MissingRequestHeaderException;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.RestControllerAdvice;
import org.springframework.web.method.annotation.MethodArgumentTypeMismatchException;
import org.springframework.web.servlet.resource.NoResourceFoundException;
import tools.jackson.core.JacksonException;
import tools.jackson.core.JsonToken;
import tools.jackson.core.TokenStreamLocation;
import tools.jackson.core.exc.InputCoercionException;
import tools.jackson.core.exc.StreamReadException;
import tools.jackson.databind.exc.MismatchedInputException;
import tools.jackson.databind.exc.UnrecognizedPropertyException;

import java.net.URI;
import java.util.List;
import java.util.Map;

/**
 * Renders every error as RFC 9457 problem+json naming the field and the reason. Ordered first, so
 * it wins over Spring Boot's generic problem-details handler for the exceptions it handles.
 */
@RestControllerAdvice
@Order(Ordered.HIGHEST_PRECEDENCE)
class ProblemHandler {

    @ExceptionHandler(ApiException.class)
    ProblemDetail api(ApiException e) {
        ProblemDetail p = problem(e.status(), e.code(), e.getMessage());
        e.properties().forEach(p::setProperty);
        return p;
    }

    /** A claim (a network name, an idempotency key) Redis's replicas did not acknowledge in time: nothing was published. */
    @ExceptionHandler(io.egressctl.rules.config.ReplicatedClaims.NotReplicatedException.class)
    ProblemDetail notReplicated(io.egressctl.rules.config.ReplicatedClaims.NotReplicatedException e) {
        ProblemDetail p = problem(HttpStatus.SERVICE_UNAVAILABLE, "NOT_REPLICATED", "nothing was published: " + e.getMessage()
                + "; retry (with the same Idempotency-Key, if any)");
        p.setProperty("retryAfterSeconds", 1);
        return p;
    }

    @ExceptionHandler(ValidationException.class)
    ProblemDetail invalid(ValidationException e) {
        ProblemDetail p = problem(HttpStatus.UNPROCESSABLE_CONTENT, "INVALID", e.getMessage());
        List<Map<String, String>> errors = e.violations().stream()
                .map((Violation v) -> Map.of("field", v.field(), "reason", v.reason())).toList();
        p.setProperty("errors", errors);
        return p;
    }

    /**
     * An unreadable body (400) names the field and the reason: malformed JSON with its line and
     * column, an unknown field with the known ones, a value of the wrong type or out of range.
     */
    @ExceptionHandler(HttpMessageNotReadableException.class)
    ProblemDetail unreadable(HttpMessageNotReadableException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof ApiException api) {
                // The body limit hit while Jackson was reading a chunked body (413).
                return api(api);
            }
        }
        JacksonException json = cause(e, JacksonException.class);
        if (json == null) {
            return fieldProblem("MISSING_BODY", "body", "is required: send a JSON object");
        }
        String field = path(json);
        String message = abbreviate(json.getOriginalMessage());
        if (json instanceof UnrecognizedPropertyException u) {
            List<String> known = u.getKnownPropertyIds() == null ? List.of()
                    : u.getKnownPropertyIds().stream().map(String::valueOf).sorted().toList();
            return fieldProblem("UNKNOWN_FIELD", field, "is not a known field" + (known.isEmpty() ? "" : "; known fields: " + String.join(", ", known)));
        }
        if (json instanceof InputCoercionException || json instanceof MismatchedInputException) {
            return fieldProblem("BAD_VALUE", field.isEmpty() ? "body" : field, typeReason(json, message));
        }
        if (json instanceof StreamReadException) {
            TokenStreamLocation at = json.getLocation();
            String where = at == null || at.getLineNr() < 0 ? "" : " at line " + at.getLineNr() + ", column " + at.getColumnNr();
            return fieldProblem("MALFORMED_JSON", field.isEmpty() ? "body" : field, "is not valid JSON" + where + ": " + message);
        }
        return fieldProblem("BAD_VALUE", field.isEmpty() ? "body" : field, message);
    }

    private static ProblemDetail fieldProblem(String code, String field, String reason) {
        ProblemDetail p = problem(HttpStatus.BAD_REQUEST, code, field + ": " + reason);
        p.setProperty("errors", List.of(Map.of("field", field, "reason", reason)));
        return p;
    }

    /** The JSON path of the error as the API names fields: {@code sourceCidrs[2]}, {@code startPort}. */
    static String path(JacksonException e) {
        StringBuilder sb = new StringBuilder();
        for (JacksonException.Reference r : e.getPath()) {
            if (r.getPropertyName() != null) {
                if (!sb.isEmpty()) {
                    sb.append('.');
                }
                sb.append(r.getPropertyName());
            } else if (r.getIndex() >= 0) {
                sb.append('[').append(r.getIndex()).append(']');
            }
        }
        return sb.toString();
    }

    private static String typeReason(JacksonException e, String message) {
        if (e instanceof InputCoercionException c && c.getTargetType() != null) {
            return "is out of range for " + describe(c.getTargetType()) + " (" + message + ")";
        }
        if (e instanceof MismatchedInputException m && m.getTargetType() != null) {
            String got = m.getCurrentToken() == null ? "" : ", not " + describe(m.getCurrentToken());
            if (message.startsWith("Cannot coerce Floating-point")) {
                return "must be a whole number, not a decimal number";
            }
            return "must be " + describe(m.getTargetType()) + got;
        }
        return message;
    }

    private static String describe(Class<?> type) {
        if (type == Integer.class || type == int.class || type == Long.class || type == long.class) {
            return "an integer";
        }
        if (type == Boolean.class || type == boolean.class) {
            return "true or false";
        }
        if (type == String.class) {
            return "a string";
        }
        if (java.util.Collection.class.isAssignableFrom(type) || type.isArray()) {
            return "a JSON array";
        }
        return "a JSON object";
    }

    private static String describe(JsonToken token) {
        return switch (token) {
            case START_OBJECT -> "an object";
            case START_ARRAY -> "an array";
            case VALUE_STRING -> "a string";
            case VALUE_NUMBER_INT -> "an integer";
            case VALUE_NUMBER_FLOAT -> "a decimal number";
            case VALUE_TRUE, VALUE_FALSE -> "a boolean";
            case VALUE_NULL -> "null";
            default -> token.name().toLowerCase();
        };
    }

    private static String abbreviate(String message) {
        String first = message == null ? "unreadable" : message.lines().findFirst().orElse(message).replace('`', '\'');
        return first.length() > 200 ? first.substring(0, 200) + "..." : first;
    }

    private static <T extends Throwable> T cause(Throwable e, Class<T> type) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (type.isInstance(t)) {
                return type.cast(t);
            }
            if (t.getCause() == t) {
                break;
            }
        }
        return null;
    }

    @ExceptionHandler(MethodArgumentTypeMismatchException.class)
    ProblemDetail badParameter(MethodArgumentTypeMismatchException e) {
        return problem(HttpStatus.BAD_REQUEST, "BAD_PARAMETER", "parameter '" + e.getName() + "' has a bad value");
    }

    @ExceptionHandler(MissingRequestHeaderException.class)
    ProblemDetail missingHeader(MissingRequestHeaderException e) {
        return problem(HttpStatus.BAD_REQUEST, "MISSING_HEADER", e.getMessage());
    }

    @ExceptionHandler(HttpMediaTypeNotSupportedException.class)
    ProblemDetail mediaType(HttpMediaTypeNotSupportedException e) {
        return problem(HttpStatus.UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", "send application/json");
    }

    @ExceptionHandler(HttpRequestMethodNotSupportedException.class)
    ProblemDetail method(HttpRequestMethodNotSupportedException e) {
        return problem(HttpStatus.METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", e.getMessage());
    }

    @ExceptionHandler(NoResourceFoundException.class)
    ProblemDetail noResource(NoResourceFoundException e) {
        return problem(HttpStatus.NOT_FOUND, "NOT_FOUND", "no such resource");
    }

    static ProblemDetail problem(HttpStatus status, String code, String detail) {
        ProblemDetail p = ProblemDetail.forStatusAndDetail(status, detail);
        p.setType(URI.create("https://egressctl.io/problems/" + code.toLowerCase().replace('_', '-')));
        p.setTitle(status.getReasonPhrase());
        p.setProperty("code", code);
        return p;
    }
}
