package io.egressctl.rules.logging;

import jakarta.servlet.http.HttpServletRequest;
import org.slf4j.MDC;

import java.util.UUID;

/**
 * What rule-service puts in the log context (SLF4J's MDC) of a request, so every line logged while
 * serving it carries the ids an operator searches by: {@value #REQUEST_ID} (from {@code X-Request-Id},
 * or generated) and, once a write has fixed it, {@value #CHANGE_ID}. With structured logging on
 * ({@code EGRESS_LOG_FORMAT}) they are fields of each JSON line; {@link RequestIdFilter} clears both
 * when the request ends.
 */
public final class LogContext {

    /** MDC key of the request id; the same id is the audit block's {@code requestId}. */
    public static final String REQUEST_ID = "requestId";
    /** MDC key of the change (event) id a write publishes. */
    public static final String CHANGE_ID = "changeId";
    /** Request attribute holding the request's id, set by {@link RequestIdFilter}. */
    static final String ATTRIBUTE = "egress.requestId";
    /** The longest {@code X-Request-Id} taken as the request's id; a longer one is replaced. */
    static final int MAX_LENGTH = 128;

    private LogContext() {
    }

    /** The request's id: the one {@link RequestIdFilter} chose, else from the header (or a new one). */
    public static String requestId(HttpServletRequest request) {
        Object chosen = request.getAttribute(ATTRIBUTE);
        return chosen instanceof String s ? s : requestId(request.getHeader("X-Request-Id"));
    }

    /** {@code header} when it is a usable id (not blank, at most 128 characters), else a new UUID. */
    public static String requestId(String header) {
        return header != null && !header.isBlank() && header.length() <= MAX_LENGTH ? header : UUID.randomUUID().toString();
    }

    /** Records the change id a write has claimed, for the rest of the request. */
    public static void changeId(String changeId) {
        MDC.put(CHANGE_ID, changeId);
    }
}
