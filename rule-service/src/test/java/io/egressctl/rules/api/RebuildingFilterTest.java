package io.egressctl.rules.api;

import io.egressctl.rules.views.RebuildState;
import org.junit.jupiter.api.Test;
import org.springframework.mock.web.MockFilterChain;
import org.springframework.mock.web.MockHttpServletRequest;
import org.springframework.mock.web.MockHttpServletResponse;

import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

class RebuildingFilterTest {

    private static MockHttpServletResponse call(RebuildState.Status status, String method, String uri) throws Exception {
        RebuildingFilter filter = new RebuildingFilter(new RebuildState(() -> status, 0, () -> 0), 3);
        MockHttpServletRequest request = new MockHttpServletRequest(method, uri);
        request.setRequestURI(uri);
        MockHttpServletResponse response = new MockHttpServletResponse();
        MockFilterChain chain = new MockFilterChain();
        filter.doFilter(request, response, chain);
        if (chain.getRequest() != null) {
            response.setStatus(299); // reached the controllers
        }
        return response;
    }

    private static final RebuildState.Status LOST = RebuildState.classify(null, Map.of());
    private static final RebuildState.Status REPLAYING = RebuildState.classify("g", Map.of("1", "replaying \"the\" log: at 3 of 9"));

    @Test
    void whileRebuildingReadsAndWritesOfTheApiGet503ProblemJsonWithRetryAfter() throws Exception {
        for (String[] req : new String[][] {{"GET", "/api/v1/networks/net-1"}, {"POST", "/api/v1/networks/net-1/egress-rules"},
                {"GET", "/api/v1/changes/c-1"}}) {
            MockHttpServletResponse r = call(REPLAYING, req[0], req[1]);
            assertThat(r.getStatus()).as("%s %s", req[0], req[1]).isEqualTo(503);
            assertThat(r.getHeader("Retry-After")).isEqualTo("3");
            assertThat(r.getContentType()).isEqualTo("application/problem+json");
            assertThat(r.getContentAsString()).contains("\"code\":\"REBUILDING\"").contains("\"status\":503")
                    .contains("replaying \\\"the\\\" log: at 3 of 9").contains("retry in 3 s");
        }
    }

    @Test
    void theCloudStackEndpointAnswersInItsOwnErrorShape() throws Exception {
        MockHttpServletResponse r = call(LOST, "GET", "/client/api");
        assertThat(r.getStatus()).isEqualTo(503);
        assertThat(r.getHeader("Retry-After")).isEqualTo("3");
        assertThat(r.getContentAsString()).startsWith("{\"errorresponse\":{").contains("\"errorcode\":503").contains("no generation marker");
    }

    @Test
    void whenCompleteAndOutsideTheApiRequestsPass() throws Exception {
        assertThat(call(RebuildState.Status.COMPLETE, "GET", "/api/v1/networks/net-1").getStatus()).isEqualTo(299);
        assertThat(call(LOST, "GET", "/actuator/health").getStatus()).isEqualTo(299);
    }
}
