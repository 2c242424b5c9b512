package io.egressctl.e2e.api;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.e2e.support.ControlPlane;
import io.egressctl.examples.producer.ChangeStatusClient.Status;
import io.egressctl.examples.producer.EventLogProducer.Published;
import io.egressctl.examples.producer.ProducerExample;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The producer guide's example (docs/producers.md, examples/producer) against the real compiler,
 * rule-service and a dry-run agent: a network, a placement and a rule published straight to
 * {@code egress.network-events} by an upstream service are decided in log order and accepted, each
 * change's version is its event's position, the placement and the rule are applied on the VM's host,
 * and the tenant named in the network sees both through the API while another tenant does not.
 */
class ProducerExampleIT {

    @Test
    void theExamplesNetworkPlacementAndRuleAreAcceptedAndAppliedOnTheVmsHost() {
        ControlPlane cp = ControlPlane.shared();
        String host = cp.unique("ph");
        cp.startAgent(host);
        String network = cp.unique("producer");
        String ruleId = cp.unique("no-smtp");
        ProducerExample.Options options = ProducerExample.Options.parse(new String[] {
                "--bootstrap-servers=" + cp.env("KAFKA_BOOTSTRAP_SERVERS"), "--schema-registry-url=" + cp.env("SCHEMA_REGISTRY_URL"),
                "--api-url=" + cp.apiUrl(), "--api-key=" + cp.operatorKey(), "--tenant=acme", "--network=" + network,
                "--guest-cidr=10.78.0.0/24", "--host=" + host, "--vm=vm-p1", "--interface=tap-p1", "--mac=52:54:00:78:00:0a",
                "--ipv4=10.78.0.10", "--rule=" + ruleId, "--wait=applied", "--timeout=60"}, name -> null);
        ByteArrayOutputStream printed = new ByteArrayOutputStream();

        ProducerExample.Result result = ProducerExample.run(options, new PrintStream(printed, true, StandardCharsets.UTF_8));

        String output = printed.toString(StandardCharsets.UTF_8);
        System.out.print(output); // what the program printed, in the test's report
        assertThat(result.allReached()).as(output).isTrue();
        List<Map.Entry<Published, Status>> changes = List.copyOf(result.changes().entrySet());
        assertThat(changes).hasSize(3);
        long previous = 0;
        for (Map.Entry<Published, Status> c : changes) {
            Status s = c.getValue();
            assertThat(s.status()).as("%s\n%s", s, output).isEqualTo("APPLIED");
            assertThat(s.code()).isNull();
            // A network's version is its position: the offset + 1 of the event in its partition.
            assertThat(s.version()).as("%s", s).isEqualTo(c.getKey().position());
            assertThat(c.getKey().partition()).as("every event of the network in one partition").isEqualTo(changes.get(0).getKey().partition());
            assertThat(c.getKey().position()).as("in publishing order").isGreaterThan(previous);
            previous = c.getKey().position();
        }
        Status placement = changes.get(1).getValue();
        Status rule = changes.get(2).getValue();
        assertThat(placement.hostsTotal()).as("the placement touched the VM's host").isEqualTo(1);
        assertThat(placement.hostsApplied()).isEqualTo(1);
        assertThat(rule.hostsTotal()).as("the rule covers the VM on its host").isEqualTo(1);
        assertThat(rule.hostsApplied()).isEqualTo(1);
        assertThat(output).contains("published NETWORK_CREATED " + network, "published VM_PLACED vm-p1 on " + host,
                "published RULE_CREATED " + ruleId, "every change APPLIED");

        // The network belongs to the tenant its NetworkSpec names: acme sees the rule and the VM.
        ApiClient.Response rules = cp.api().get("/api/v1/networks/" + network + "/egress-rules", cp.tenantKey());
        assertThat(rules.status()).as("%s", rules.body()).isEqualTo(200);
        assertThat(rules.body()).hasSize(1);
        JsonNode r = rules.body().get(0);
        assertThat(r.get("ruleId").asString()).isEqualTo(ruleId);
        assertThat(r.get("protocol").asString()).isEqualTo("tcp");
        assertThat(r.get("action").asString()).as("CloudStack mode under ALLOW: the rule blocks").isEqualTo("deny");
        assertThat(r.get("startPort").asInt()).isEqualTo(25);
        assertThat(r.get("sourceCidrs").get(0).asString()).isEqualTo("10.78.0.10/32");
        JsonNode vm = cp.api().get("/api/v1/networks/" + network, cp.tenantKey()).body().get("vms").get("vm-p1");
        assertThat(vm.get("hostId").asString()).isEqualTo(host);
        assertThat(vm.get("interfaceName").asString()).isEqualTo("tap-p1");
        assertThat(vm.get("mac").asString()).isEqualTo("52:54:00:78:00:0a");
        assertThat(cp.api().get("/api/v1/networks/" + network + "/egress-rules", cp.otherTenantKey()).status())
                .as("another tenant's key does not see it").isEqualTo(404);

        // What the host's agent enforces: the rule's element for the VM.
        assertThat(ControlPlane.lineOf(cp.ruleset(host), ruleId)).as(cp.ruleset(host)).contains("10.78.0.10", "tcp", "25");
    }
}
