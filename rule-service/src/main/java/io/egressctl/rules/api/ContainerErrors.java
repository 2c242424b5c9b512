package io.egressctl.rules.api;

import org.apache.catalina.connector.Request;
import org.apache.catalina.connector.Response;
import org.apache.catalina.core.StandardHost;
import org.apache.catalina.startup.Tomcat;
import org.apache.catalina.valves.ErrorReportValve;
import org.springframework.boot.tomcat.TomcatWebServer;
import org.springframework.boot.tomcat.servlet.TomcatServletWebServerFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.http.HttpStatus;

import java.io.IOException;
import java.io.PrintWriter;

/**
 * Errors the servlet container answers itself, before any of our code runs (a request line or
 * headers over {@code server.max-http-request-header-size}, a malformed request line), in the same
 * RFC 9457 {@code application/problem+json} shape as every other error, instead of Tomcat's HTML page.
 */
@Configuration(proxyBeanMethods = false)
class ContainerErrors {

    /**
     * Spring Boot's Tomcat factory with {@link ProblemReportValve} as the host's error report valve.
     * Boot's customizers (port, address, header size) still apply to it.
     */
    @Bean
    TomcatServletWebServerFactory tomcatServletWebServerFactory() {
        return new TomcatServletWebServerFactory() {
            @Override
            protected TomcatWebServer getTomcatWebServer(Tomcat tomcat) {
                StandardHost host = (StandardHost) tomcat.getHost();
                // Installed before the host starts: it then finds a valve of this class and adds no other.
                host.setErrorReportValveClass(ProblemReportValve.class.getName());
                host.getPipeline().addValve(new ProblemReportValve());
                return super.getTomcatWebServer(tomcat);
            }
        };
    }

    /** Renders a container error as problem+json; leaves a response that has a body alone. */
    static class ProblemReportValve extends ErrorReportValve {

        @Override
        protected void report(Request request, Response response, Throwable throwable) {
            int status = response.getStatus();
            if (status < 400 || response.getContentWritten() > 0 || !response.setErrorReported()) {
                return;
            }
            HttpStatus known = HttpStatus.resolve(status);
            String title = known == null ? "Error" : known.getReasonPhrase();
            String code = status == 400 ? "BAD_REQUEST" : known == null ? "HTTP_" + status : known.name();
            String detail = status == 400
                    ? "the request could not be read: its request line is malformed, or a header line or the headers together are "
                    + "larger than the server accepts (Idempotency-Key: at most 128 characters)"
                    : title;
            try {
                response.setContentType("application/problem+json");
                response.setCharacterEncoding("UTF-8");
                PrintWriter w = response.getReporter();
                if (w == null) {
                    return;
                }
                w.write("{\"type\":\"https://egressctl.io/problems/" + code.toLowerCase().replace('_', '-') + "\",\"title\":\""
                        + title + "\",\"status\":" + status + ",\"detail\":\"" + detail + "\",\"code\":\"" + code + "\"}");
                response.finishResponse();
            } catch (IOException | IllegalStateException e) {
                // The connection is gone or the response was committed meanwhile: nothing more to say.
            }
        }
    }
}
