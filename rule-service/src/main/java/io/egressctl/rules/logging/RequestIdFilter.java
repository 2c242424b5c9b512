package io.egressctl.rules.logging;

import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.slf4j.MDC;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.stereotype.Component;
import org.springframework.web.filter.OncePerRequestFilter;

import java.io.IOException;

/**
 * Gives every request its id ({@code X-Request-Id}, or a new UUID when absent, blank or over 128
 * characters) as a request attribute and in the log context, first of all filters so that even an
 * authentication failure is logged with it, and clears the log context when the request ends: a
 * servlet thread serves the next request without the last one's ids.
 */
@Component
@Order(Ordered.HIGHEST_PRECEDENCE)
public class RequestIdFilter extends OncePerRequestFilter {

    @Override
    protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
            throws ServletException, IOException {
        String requestId = LogContext.requestId(request.getHeader("X-Request-Id"));
        request.setAttribute(LogContext.ATTRIBUTE, requestId);
        MDC.put(LogContext.REQUEST_ID, requestId);
        try {
            chain.doFilter(request, response);
        } finally {
            MDC.remove(LogContext.REQUEST_ID);
            MDC.remove(LogContext.CHANGE_ID);
        }
    }
}
