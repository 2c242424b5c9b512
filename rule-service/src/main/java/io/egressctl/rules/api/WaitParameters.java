package io.egressctl.rules.api;

import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.springframework.context.annotation.Configuration;
import org.springframework.http.HttpStatus;
import org.springframework.web.servlet.HandlerInterceptor;
import org.springframework.web.servlet.config.annotation.InterceptorRegistry;
import org.springframework.web.servlet.config.annotation.WebMvcConfigurer;

/**
 * Checks {@code ?wait=}, {@code ?timeout=} and the {@code Idempotency-Key} header before a handler runs. A write publishes its event
 * before it waits, so a bad value found only while waiting would answer 400 for a change that is
 * already in the log; checked up front, a 400 means nothing was published.
 */
@Configuration(proxyBeanMethods = false)
class WaitParameters implements WebMvcConfigurer, HandlerInterceptor {

    @Override
    public void addInterceptors(InterceptorRegistry registry) {
        registry.addInterceptor(this).addPathPatterns("/api/**");
    }

    @Override
    public boolean preHandle(HttpServletRequest request, HttpServletResponse response, Object handler) {
        if (request.getDispatcherType() == jakarta.servlet.DispatcherType.ASYNC) {
            return true; // the answer of a wait: checked when the request came in
        }
        check(request.getParameter("wait"), request.getParameter("timeout"));
        String key = request.getHeader("Idempotency-Key");
        if (key != null) {
            // Before the handler reads the body: a bad key is a 400 whatever else is wrong with the request.
            ChangeWriter.checkIdempotencyKey(key);
        }
        return true;
    }

    static void check(String wait, String timeout) {
        if (wait != null && !wait.equals("compiled") && !wait.equals("applied")) {
            throw new ApiException(HttpStatus.BAD_REQUEST, "BAD_PARAMETER", "wait must be compiled or applied",
                    java.util.Map.of("errors", java.util.List.of(java.util.Map.of("field", "wait", "reason", "must be compiled or applied"))));
        }
        if (timeout != null) {
            ChangeWriter.parseTimeout(timeout);
        }
    }
}
