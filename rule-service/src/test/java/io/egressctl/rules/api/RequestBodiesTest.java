package io.egressctl.rules.api;

import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.NetworkKind;
import io.egressctl.core.validation.RuleValidator;
import io.egressctl.core.validation.ValidationException;
import org.junit.jupiter.api.Test;
import org.springframework.http.HttpInputMessage;
import org.springframework.http.ProblemDetail;
import org.springframework.http.converter.HttpMessageNotReadableException;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.json.JsonMapper;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

/**
 * The network and placement bodies read with the service's strict settings ({@link RequestJson}):
 * {@code keepEstablished} must be a JSON boolean, and the answers name the field.
 */
class RequestBodiesTest {

    private final ProblemHandler handler = new ProblemHandler();
    private final JsonMapper json = strictMapper();

    private static JsonMapper strictMapper() {
        var builder = JsonMapper.builder().enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
        new RequestJson().strictRequestBodies().customize(builder);
        return builder.build();
    }

    private ProblemDetail read(String body, Class<?> type) {
        JacksonException e = catchThrowableOfType(JacksonException.class, () -> json.readValue(body, type));
        assertThat(e).as("Jackson refuses %s", body).isNotNull();
        HttpInputMessage message = new HttpInputMessage() {
            @Override
            public InputStream getBody() {
                return new ByteArrayInputStream(new byte[0]);
            }

            @Override
            public org.springframework.http.HttpHeaders getHeaders() {
                return new org.springframework.http.HttpHeaders();
            }
        };
        return handler.unreadable(new HttpMessageNotReadableException("JSON parse error: " + e.getMessage(), e, message));
    }

    @SuppressWarnings("unchecked")
    private static Map<String, String> firstError(ProblemDetail p) {
        return ((List<Map<String, String>>) p.getProperties().get("errors")).get(0);
    }

    @Test
    void keepEstablishedOfTheWrongTypeIsA400NamingIt() {
        for (Class<?> type : List.of(Requests.NetworkRequest.class, Requests.NetworkPatch.class)) {
            ProblemDetail p = read("{\"keepEstablished\":\"yes\"}", type);
            assertThat(p.getStatus()).isEqualTo(400);
            assertThat(p.getProperties()).containsEntry("code", "BAD_VALUE");
            assertThat(firstError(p)).containsEntry("field", "keepEstablished").containsEntry("reason", "must be true or false, not a string");
            assertThat(firstError(read("{\"keepEstablished\":\"true\"}", type))).containsEntry("reason", "must be true or false, not a string");
            assertThat(firstError(read("{\"keepEstablished\":1}", type))).containsEntry("reason", "must be true or false, not an integer");
            assertThat(firstError(read("{\"keepEstablished\":{}}", type))).containsEntry("reason", "must be true or false, not an object");
        }
    }

    @Test
    void keepEstablishedIsReadAsABoolean() {
        assertThat(json.readValue("{\"networkId\":\"n1\",\"keepEstablished\":true}", Requests.NetworkRequest.class).draft().keepEstablished())
                .isTrue();
        assertThat(json.readValue("{\"keepEstablished\":false}", Requests.NetworkPatch.class).keepEstablished()).isFalse();
        assertThat(json.readValue("{\"defaultPolicy\":\"deny\"}", Requests.NetworkPatch.class).keepEstablished()).isNull();
    }

    @Test
    void aPlacementBodyHasInterfaceNameAndMac() {
        Requests.PlacementRequest p = json.readValue("{\"hostId\":\"h1\",\"interfaceName\":\"tap-a1\",\"mac\":\"52:54:00:12:34:56\","
                + "\"ipv4\":\"10.0.0.11\"}", Requests.PlacementRequest.class);
        assertThat(p).isEqualTo(new Requests.PlacementRequest("h1", "tap-a1", "52:54:00:12:34:56", "10.0.0.11", null));
        assertThat(json.readValue("{\"hostId\":\"h1\",\"interfaceName\":\"tap-a1\",\"ipv4\":\"10.0.0.11\",\"tenantId\":\"acme\"}",
                Requests.PlacementRequest.class).tenantId()).isEqualTo("acme");
        ProblemDetail unknown = read("{\"hostId\":\"h1\",\"iface\":\"tap-a1\"}", Requests.PlacementRequest.class);
        assertThat(unknown.getProperties()).containsEntry("code", "UNKNOWN_FIELD");
        assertThat(firstError(unknown).get("reason")).isEqualTo("is not a known field; known fields: hostId, interfaceName, ipv4, ipv6, mac, tenantId");
        assertThat(firstError(read("{\"hostId\":\"h1\",\"interfaceName\":[\"tap-a1\"]}", Requests.PlacementRequest.class)))
                .containsEntry("field", "interfaceName").containsEntry("reason", "must be a string, not an array");
    }

    // ---- PATCH ----

    private static final Network NET = new Network("n1", "acme", NetworkKind.BASIC, Cidr.parse("10.0.0.0/24"), null, DefaultPolicy.ALLOW,
            false, 100);

    @Test
    void aPatchChangesOnlyWhatItGives() {
        assertThat(NetworkController.patched(NET, new Requests.NetworkPatch(null, true)))
                .isEqualTo(NET.withKeepEstablished(true)).extracting(Network::defaultPolicy).isEqualTo(DefaultPolicy.ALLOW);
        Network deny = NetworkController.patched(NET.withKeepEstablished(true), new Requests.NetworkPatch("deny", null));
        assertThat(deny.defaultPolicy()).isEqualTo(DefaultPolicy.DENY);
        assertThat(deny.keepEstablished()).isTrue();
        assertThat(NetworkController.patched(NET, new Requests.NetworkPatch("DENY", false)))
                .isEqualTo(NET.withDefaultPolicy(DefaultPolicy.DENY));
    }

    @Test
    void anEmptyPatchOrABadPolicyIsRefused() {
        ValidationException empty = catchThrowableOfType(ValidationException.class,
                () -> NetworkController.patched(NET, new Requests.NetworkPatch(null, null)));
        assertThat(empty.violations().get(0).field()).isEqualTo("defaultPolicy");
        assertThat(empty.violations().get(0).reason()).contains("keepEstablished");
        ValidationException bad = catchThrowableOfType(ValidationException.class,
                () -> NetworkController.patched(NET, new Requests.NetworkPatch("block", true)));
        assertThat(bad.violations().get(0).field()).isEqualTo("defaultPolicy");
    }

    @Test
    void aCreatedNetworkKeepsEstablishedFlowsOnlyWhenAsked() {
        RuleValidator v = new RuleValidator();
        assertThat(v.validateNetwork(new Requests.NetworkRequest("n1", null, "10.0.0.0/24", null, null, null, null, true).draft(), "acme")
                .keepEstablished()).isTrue();
        assertThat(v.validateNetwork(new Requests.NetworkRequest("n1", null, "10.0.0.0/24", null, null, null, null, null).draft(), "acme")
                .keepEstablished()).isFalse();
    }

    // ---- wrong JSON types are never coerced (item: "startPort":"80") ----

    @Test
    void aStringWhereANumberBelongsIsBadValueOnEveryNumericField() {
        for (String field : List.of("startPort", "endPort", "icmpType", "icmpCode", "priority")) {
            ProblemDetail p = read("{\"protocol\":\"tcp\",\"" + field + "\":\"80\"}", Requests.RuleRequest.class);
            assertThat(p.getStatus()).as(field).isEqualTo(400);
            assertThat(p.getProperties()).as(field).containsEntry("code", "BAD_VALUE");
            assertThat(firstError(p)).as(field).containsEntry("field", field);
            assertThat(firstError(p).get("reason")).as(field).contains("string");
        }
        ProblemDetail quota = read("{\"networkId\":\"n1\",\"ruleQuota\":\"10\"}", Requests.NetworkRequest.class);
        assertThat(quota.getProperties()).containsEntry("code", "BAD_VALUE");
        assertThat(firstError(quota)).containsEntry("field", "ruleQuota");
        assertThat(firstError(read("{\"startPort\":\"\"}", Requests.RuleRequest.class))).containsEntry("field", "startPort");
        assertThat(firstError(read("{\"startPort\":true}", Requests.RuleRequest.class))).containsEntry("field", "startPort");
    }

    @Test
    void aNumberOrBooleanWhereAStringBelongsIsBadValue() {
        ProblemDetail p = read("{\"protocol\":6}", Requests.RuleRequest.class);
        assertThat(p.getProperties()).containsEntry("code", "BAD_VALUE");
        assertThat(firstError(p)).containsEntry("field", "protocol");
        assertThat(firstError(read("{\"networkId\":true}", Requests.NetworkRequest.class))).containsEntry("field", "networkId");
        assertThat(firstError(read("{\"hostId\":1.5}", Requests.PlacementRequest.class))).containsEntry("field", "hostId");
        assertThat(firstError(read("{\"protocol\":\"tcp\",\"sourceCidrs\":[10]}", Requests.RuleRequest.class)).get("field"))
                .startsWith("sourceCidrs");
        assertThat(firstError(read("{\"networkId\":\"n1\",\"advanced\":\"false\"}", Requests.NetworkRequest.class)))
                .containsEntry("field", "advanced");
    }

    @Test
    void numbersOfTheRightTypeStillRead() {
        Requests.RuleRequest r = json.readValue("{\"protocol\":\"tcp\",\"startPort\":80,\"endPort\":90,\"priority\":5}",
                Requests.RuleRequest.class);
        assertThat(r.startPort()).isEqualTo(80);
        assertThat(r.priority()).isEqualTo(5);
    }
}
