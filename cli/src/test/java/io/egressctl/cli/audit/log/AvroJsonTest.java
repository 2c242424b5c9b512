package io.egressctl.cli.audit.log;

import io.egressctl.cli.audit.Events;
import io.egressctl.cli.audit.Json;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

class AvroJsonTest {

    @Test
    void avroRecordsBecomePlainJson() {
        Map<String, Object> m = AvroJson.of(Events.ruleCreated("net-1", 2, Events.tcp("r1", 80, null)));
        assertThat(Json.line(m)).isEqualTo("{\"eventId\":\"e2\",\"operation\":\"RULE_CREATED\",\"networkId\":\"net-1\","
                + "\"expectedVersion\":null,\"idempotencyKey\":null,\"network\":null,\"ruleBefore\":null,\"ruleAfter\":{\"ruleId\":\"r1\","
                + "\"protocol\":\"TCP\",\"action\":null,\"priority\":1000,\"sourceCidrs\":[],\"sourceVmIds\":[],\"destinationCidrs\":[],"
                + "\"destinationExceptCidrs\":[],\"startPort\":80,\"endPort\":80,\"icmpType\":null,\"icmpCode\":null,\"description\":null},"
                + "\"source\":{\"actor\":\"alice\",\"tenantId\":\"acme\",\"requestId\":\"req-2\",\"eventTime\":\"2024-05-01T10:00:02.000Z\","
                + "\"service\":\"rule-service\",\"serviceVersion\":\"0.1.0\"}}");
    }
}
