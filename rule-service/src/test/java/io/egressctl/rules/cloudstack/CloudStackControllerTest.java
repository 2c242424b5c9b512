package io.egressctl.rules.cloudstack;

import io.egressctl.rules.config.EgressProperties;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.http.MediaType;
import org.springframework.test.web.servlet.MockMvc;
import org.springframework.test.web.servlet.setup.MockMvcBuilders;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Map;
import java.util.stream.Collectors;

import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.get;
import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.post;
import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.put;
import static org.springframework.test.web.servlet.result.MockMvcResultMatchers.content;
import static org.springframework.test.web.servlet.result.MockMvcResultMatchers.header;
import static org.springframework.test.web.servlet.result.MockMvcResultMatchers.jsonPath;
import static org.springframework.test.web.servlet.result.MockMvcResultMatchers.status;

/** The HTTP layer: GET query strings and POST forms reach the same signed-parameter handling. */
class CloudStackControllerTest {

    final MutableClock clock = new MutableClock(Instant.now());
    final InMemoryCloudStackStore store = new InMemoryCloudStackStore(clock);
    final FakeBackend backend = new FakeBackend();
    MockMvc mvc;

    @BeforeEach
    void setUp() {
        CloudStackApi api = new CloudStackApi(backend, store,
                new RequestVerifier(new CloudStackKeys("k1:s1=acme:tenant:alice"), store, clock), clock, "test");
        mvc = MockMvcBuilders.standaloneSetup(new CloudStackController(api,
                new EgressProperties(null, null, 6, "test", null, 1024))).build();
        backend.addNetwork("net-a", "acme", "10.20.0.0/24", Map.of());
    }

    static String form(Map<String, String[]> params) {
        return params.entrySet().stream()
                .map(e -> e.getKey() + "=" + URLEncoder.encode(e.getValue()[0], StandardCharsets.UTF_8))
                .collect(Collectors.joining("&"));
    }

    @Test
    void getWithAQueryStringWorks() throws Exception {
        Map<String, String[]> p = SignedRequests.signed("k1", "s1", Map.of("command", "listNetworks"), clock.instant().plusSeconds(60));
        mvc.perform(get(java.net.URI.create("/client/api?" + form(p))))
                .andExpect(status().isOk())
                .andExpect(content().contentType("application/json;charset=UTF-8"))
                .andExpect(jsonPath("$.listnetworksresponse.count").value(1))
                .andExpect(jsonPath("$.listnetworksresponse.network[0].id").value("net-a"));
    }

    @Test
    void postWithAFormBodyWorks() throws Exception {
        Map<String, String[]> p = SignedRequests.signed("k1", "s1", Map.of("command", "createEgressFirewallRule", "networkid", "net-a",
                "protocol", "tcp", "startport", "80", "cidrlist", "10.20.0.5/32"), clock.instant().plusSeconds(60));
        mvc.perform(post("/client/api").contentType(MediaType.APPLICATION_FORM_URLENCODED).content(form(p)))
                .andExpect(status().isOk())
                .andExpect(jsonPath("$.createegressfirewallruleresponse.jobid").exists())
                .andExpect(jsonPath("$.createegressfirewallruleresponse.id").exists());
    }

    @Test
    void otherMethodsAndOversizedBodiesAreRefusedInCloudStackShape() throws Exception {
        mvc.perform(put("/client/api"))
                .andExpect(status().isMethodNotAllowed())
                .andExpect(header().string("Allow", "GET, POST"))
                .andExpect(jsonPath("$.errorresponse.errorcode").value(405));
        mvc.perform(post("/client/api").contentType(MediaType.APPLICATION_FORM_URLENCODED).content("x=" + "a".repeat(2000)))
                .andExpect(status().isPayloadTooLarge())
                .andExpect(jsonPath("$.errorresponse.errorcode").value(413));
    }

    @Test
    void anUnsignedRequestIs401() throws Exception {
        mvc.perform(get("/client/api?command=listNetworks&response=json"))
                .andExpect(status().isUnauthorized())
                .andExpect(jsonPath("$.listnetworksresponse.errorcode").value(401));
    }
}
