package io.egressctl.rules.api;

import io.egressctl.rules.views.RebuildState;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.stereotype.Component;
import org.springframework.web.filter.OncePerRequestFilter;

import java.io.IOException;

/**
 * While the read model is being rebuilt ({@link RebuildState}) every request of the API
 * ({@code /api/**}) is answered 503 problem+json {@code REBUILDING} with {@code Retry-After}, and one
 * of the CloudStack endpoint ({@code /client/api}) 503 in CloudStack's error shape: an empty view
 * would answer 404 for networks that exist, and a write checked against it would be accepted here
 * and rejected in log order. Nothing is published meanwhile.
 */
@Component
class RebuildingFilter extends OncePerRequestFilter {

    private final RebuildState state;
    private final int retryAfterSeconds;

    RebuildingFilter(RebuildState state, @Value("${egress.rebuild-retry-after-s:2}") int retryAfterSeconds) {
        this.state = state;
        this.retryAfterSeconds = retryAfterSeconds;
    }

    @Override
    protected boolean shouldNotFilter(HttpServletRequest request) {
        String uri = request.getRequestURI();
        return !uri.startsWith("/api/") && !uri.startsWith("/client/api");
    }

    @Override
    protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
            throws ServletException, IOException {
        RebuildState.Status s = state.status();
        if (!s.rebuilding()) {
            chain.doFilter(request, response);
            return;
        }
        response.setStatus(503);
        response.setHeader("Retry-After", Integer.toString(retryAfterSeconds));
        String detail = json(s.reason() + "; retry in " + retryAfterSeconds + " s");
        if (request.getRequestURI().startsWith("/client/api")) {
            response.setContentType("application/json");
            response.getWriter().write("{\"errorresponse\":{\"uuidList\":[],\"errorcode\":503,\"cserrorcode\":4380,\"errortext\":\""
                    + detail + "\"}}");
        } else {
            response.setContentType("application/problem+json");
            response.getWriter().write("{\"type\":\"https://egressctl.io/problems/rebuilding\",\"title\":\"Service Unavailable\","
                    + "\"status\":503,\"code\":\"REBUILDING\",\"detail\":\"" + detail + "\"}");
        }
    }

    /** The text as the inside of a JSON string. */
    static String json(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 8);
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        return sb.toString();
    }
}
