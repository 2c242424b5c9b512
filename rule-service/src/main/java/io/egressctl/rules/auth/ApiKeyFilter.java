package io.egressctl.rules.auth;

import io.egressctl.rules.config.EgressProperties;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.springframework.stereotype.Component;
import org.springframework.web.filter.OncePerRequestFilter;

import java.io.IOException;
import java.util.Optional;

/**
 * Authenticates {@code /api/**} requests by their {@code X-API-Key} header (or
 * {@code Authorization: Bearer <key>}), and refuses bodies larger than the configured limit before
 * they are read (413).
 */
@Component
class ApiKeyFilter extends OncePerRequestFilter {

    /** Request attribute holding the {@link Caller}. */
    static final String CALLER = "egress.caller";

    private final ApiKeys keys;
    private final int maxBodyBytes;

    ApiKeyFilter(ApiKeys keys, EgressProperties props) {
        this.keys = keys;
        this.maxBodyBytes = props.maxBodyBytes() <= 0 ? 65536 : props.maxBodyBytes();
    }

    @Override
    protected boolean shouldNotFilter(HttpServletRequest request) {
        return !request.getRequestURI().startsWith("/api/");
    }

    @Override
    protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
            throws ServletException, IOException {
        if (request.getContentLengthLong() > maxBodyBytes) {
            problem(response, 413, "BODY_TOO_LARGE", "request body exceeds " + maxBodyBytes + " bytes");
            return;
        }
        String key = request.getHeader("X-API-Key");
        String auth = request.getHeader("Authorization");
        if (key == null && auth != null && auth.startsWith("Bearer ")) {
            key = auth.substring(7).trim();
        }
        Optional<Caller> caller = keys.resolve(key);
        if (caller.isEmpty()) {
            problem(response, 401, "UNAUTHENTICATED", key == null ? "send your API key in X-API-Key" : "unknown API key");
            return;
        }
        request.setAttribute(CALLER, caller.get());
        chain.doFilter(new LimitedBodyRequest(request, maxBodyBytes), response);
    }

    static void problem(HttpServletResponse response, int status, String code, String detail) throws IOException {
        response.setStatus(status);
        response.setContentType("application/problem+json");
        response.getWriter().write("{\"type\":\"https://egressctl.io/problems/" + code.toLowerCase().replace('_', '-')
                + "\",\"status\":" + status + ",\"code\":\"" + code + "\",\"detail\":\"" + detail.replace("\"", "'") + "\"}");
    }
}
