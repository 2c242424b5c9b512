package io.egressctl.rules.logging;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import jakarta.servlet.FilterChain;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;
import org.springframework.boot.logging.logback.StructuredLogEncoder;
import org.springframework.core.env.Environment;
import org.springframework.core.env.StandardEnvironment;
import org.springframework.mock.web.MockHttpServletRequest;
import org.springframework.mock.web.MockHttpServletResponse;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The request id and change id in the log context, and the JSON line Spring Boot's structured
 * logging (what {@code EGRESS_LOG_FORMAT} selects) makes of an event logged while a write is served.
 */
class RequestIdFilterTest {

    private final RequestIdFilter filter = new RequestIdFilter();
    private final Logger logger = (Logger) LoggerFactory.getLogger("io.egressctl.rules.test");
    private final ListAppender<ILoggingEvent> appender = new ListAppender<>();

    @BeforeEach
    void attach() {
        appender.start();
        logger.addAppender(appender);
    }

    @AfterEach
    void detach() {
        logger.detachAppender(appender);
        MDC.clear();
    }

    @Test
    void theRequestsIdAndTheClaimedChangeIdAreInTheLogContextWhileItIsServedAndClearedAfter() throws Exception {
        MockHttpServletRequest request = new MockHttpServletRequest("POST", "/api/v1/networks/n1/egress-rules");
        request.addHeader("X-Request-Id", "req-4711");
        Map<String, String> seen = new HashMap<>();
        FilterChain chain = (req, res) -> {
            LogContext.changeId("change-42");
            seen.putAll(MDC.getCopyOfContextMap());
            seen.put("attribute", LogContext.requestId((MockHttpServletRequest) req));
            logger.info("published RULE_CREATED");
        };

        filter.doFilter(request, new MockHttpServletResponse(), chain);

        assertThat(seen).containsEntry(LogContext.REQUEST_ID, "req-4711").containsEntry(LogContext.CHANGE_ID, "change-42")
                .containsEntry("attribute", "req-4711");
        assertThat(appender.list).singleElement().satisfies(e -> assertThat(e.getMDCPropertyMap())
                .containsEntry("requestId", "req-4711").containsEntry("changeId", "change-42"));
        assertThat(MDC.get(LogContext.REQUEST_ID)).as("cleared after the request").isNull();
        assertThat(MDC.get(LogContext.CHANGE_ID)).as("cleared after the request").isNull();
    }

    @Test
    void aMissingBlankOrOverlongHeaderGetsAGeneratedIdThatTheAuditUsesToo() throws Exception {
        for (String header : new String[] {null, "  ", "x".repeat(129)}) {
            MockHttpServletRequest request = new MockHttpServletRequest("DELETE", "/api/v1/networks/n1");
            if (header != null) {
                request.addHeader("X-Request-Id", header);
            }
            AtomicReference<String> inMdc = new AtomicReference<>();
            AtomicReference<String> forAudit = new AtomicReference<>();
            filter.doFilter(request, new MockHttpServletResponse(), (req, res) -> {
                inMdc.set(MDC.get(LogContext.REQUEST_ID));
                forAudit.set(LogContext.requestId((MockHttpServletRequest) req));
            });
            assertThat(inMdc.get()).as("header %s", header).matches("[0-9a-f-]{36}");
            assertThat(forAudit.get()).isEqualTo(inMdc.get());
        }
        String longest = "y".repeat(128);
        assertThat(LogContext.requestId(longest)).isEqualTo(longest);
    }

    @Test
    void anEcsLineCarriesTheRequestIdAndChangeIdAsFields() throws Exception {
        MockHttpServletRequest request = new MockHttpServletRequest("POST", "/api/v1/networks");
        request.addHeader("X-Request-Id", "req-ecs");
        filter.doFilter(request, new MockHttpServletResponse(), (req, res) -> {
            LogContext.changeId("change-ecs");
            logger.info("published NETWORK_CREATED");
        });

        for (String format : new String[] {"ecs", "logstash"}) {
            JsonNode line = JsonMapper.builder().build().readTree(encode(format, appender.list.get(0)));
            assertThat(line.get("message").asString()).isEqualTo("published NETWORK_CREATED");
            assertThat(line.get("requestId").asString()).as(format + ": " + line).isEqualTo("req-ecs");
            assertThat(line.get("changeId").asString()).as(format + ": " + line).isEqualTo("change-ecs");
        }
    }

    /** The event as Spring Boot's console encoder writes it with {@code logging.structured.format.console=format}. */
    private static String encode(String format, ILoggingEvent event) {
        LoggerContext context = new LoggerContext();
        context.putObject(Environment.class.getName(), new StandardEnvironment());
        StructuredLogEncoder encoder = new StructuredLogEncoder();
        encoder.setContext(context);
        encoder.setFormat(format);
        encoder.start();
        return new String(encoder.encode(event), StandardCharsets.UTF_8).trim();
    }
}
