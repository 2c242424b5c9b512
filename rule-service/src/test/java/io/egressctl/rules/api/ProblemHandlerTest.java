package io.egressctl.rules.api;

import org.junit.jupiter.api.Test;
import org.springframework.http.HttpInputMessage;
import org.springframework.http.HttpStatus;
import org.springframework.http.ProblemDetail;
import org.springframework.http.converter.HttpMessageNotReadableException;
import tools.jackson.core.JacksonException;
import tools.jackson.core.StreamReadFeature;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.json.JsonMapper;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

/** Jackson's read errors become 400s naming the field and the reason (with the service's strict settings). */
class ProblemHandlerTest {

    private final ProblemHandler handler = new ProblemHandler();
    private final JsonMapper json = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();

    private ProblemDetail read(String body) {
        JacksonException e = catchThrowableOfType(JacksonException.class, () -> json.readValue(body, Requests.RuleRequest.class));
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
    void aClaimTheReplicasDidNotAcknowledgeIsA503ToRetry() {
        ProblemDetail p = handler.notReplicated(new io.egressctl.rules.config.ReplicatedClaims.NotReplicatedException("on 0 replica(s)"));
        assertThat(p.getStatus()).isEqualTo(503);
        assertThat(p.getProperties()).containsEntry("code", "NOT_REPLICATED").containsEntry("retryAfterSeconds", 1);
        assertThat(p.getDetail()).startsWith("nothing was published: on 0 replica(s)").contains("retry");
    }

    @Test
    void anUnknownFieldIsNamedWithTheKnownOnes() {
        ProblemDetail p = read("{\"protocol\":\"tcp\",\"dport\":80}");
        assertThat(p.getStatus()).isEqualTo(400);
        assertThat(p.getProperties()).containsEntry("code", "UNKNOWN_FIELD");
        assertThat(firstError(p)).containsEntry("field", "dport");
        assertThat(firstError(p).get("reason")).startsWith("is not a known field; known fields: action, description,");
    }

    @Test
    void aNumberOverflowIsA400NamingTheField() {
        ProblemDetail p = read("{\"protocol\":\"tcp\",\"startPort\":99999999999}");
        assertThat(p.getProperties()).containsEntry("code", "BAD_VALUE");
        assertThat(firstError(p)).containsEntry("field", "startPort");
        assertThat(firstError(p).get("reason")).startsWith("is out of range for an integer");
    }

    @Test
    void aDecimalPortIsRefused() {
        assertThat(firstError(read("{\"protocol\":\"tcp\",\"startPort\":80.5}")))
                .containsEntry("field", "startPort").containsEntry("reason", "must be a whole number, not a decimal number");
    }

    @Test
    void aWrongTypeInAListNamesTheElement() {
        assertThat(firstError(read("{\"protocol\":\"tcp\",\"sourceCidrs\":[\"10.0.0.0/24\",7,{}]}")))
                .containsEntry("field", "sourceCidrs[2]").containsEntry("reason", "must be a string, not an object");
    }

    @Test
    void malformedJsonSaysWhere() {
        ProblemDetail p = read("{\"protocol\":\"tcp\",\n \"startPort\": 80,,}");
        assertThat(p.getProperties()).containsEntry("code", "MALFORMED_JSON");
        assertThat(firstError(p)).containsEntry("field", "body");
        assertThat(firstError(p).get("reason")).startsWith("is not valid JSON at line 2, column");
    }

    @Test
    void aFieldGivenTwiceIsRefused() {
        assertThat(firstError(read("{\"protocol\":\"tcp\",\"protocol\":\"all\"}")).get("reason")).contains("Duplicate Object property \"protocol\"");
    }

    @Test
    void aBodyLimitHitWhileReadingStays413() {
        ApiException tooLarge = new ApiException(HttpStatus.CONTENT_TOO_LARGE, "BODY_TOO_LARGE", "request body exceeds 10 bytes");
        ProblemDetail p = handler.unreadable(new HttpMessageNotReadableException("I/O error", tooLarge, null));
        assertThat(p.getStatus()).isEqualTo(413);
        assertThat(p.getProperties()).containsEntry("code", "BODY_TOO_LARGE");
    }

    @Test
    void aMissingBodyIsNamed() {
        ProblemDetail p = handler.unreadable(new HttpMessageNotReadableException("Required request body is missing", (HttpInputMessage) null));
        assertThat(p.getProperties()).containsEntry("code", "MISSING_BODY");
        assertThat(firstError(p)).containsEntry("field", "body");
    }
}
