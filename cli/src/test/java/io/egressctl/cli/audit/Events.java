package io.egressctl.cli.audit;

import io.egressctl.events.DefaultPolicy;
import io.egressctl.events.NetworkKind;
import io.egressctl.events.NetworkSpec;
import io.egressctl.events.Protocol;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.RuleOperation;
import io.egressctl.events.RuleSpec;
import io.egressctl.events.Source;

import java.time.Instant;
import java.util.List;

/** Small builders of Avro events for the unit tests of every audit package. */
public final class Events {

    public static final Instant T0 = Instant.parse("2024-05-01T10:00:00Z");

    private Events() {
    }

    public static Source source(String actor, String request, Instant at) {
        return Source.newBuilder().setActor(actor).setTenantId("acme").setRequestId(request).setEventTime(at)
                .setService("rule-service").setServiceVersion("0.1.0").build();
    }

    public static NetworkSpec network(String id, DefaultPolicy policy) {
        return NetworkSpec.newBuilder().setNetworkId(id).setTenantId("acme").setKind(NetworkKind.BASIC)
                .setGuestCidr("10.20.0.0/24").setGuestCidr6(null).setDefaultPolicy(policy).setAdvanced(false)
                .setRuleQuota(1000).build();
    }

    public static RuleSpec tcp(String id, int port, String source) {
        return RuleSpec.newBuilder().setRuleId(id).setProtocol(Protocol.TCP).setAction(null).setPriority(1000)
                .setSourceCidrs(source == null ? List.of() : List.of(source)).setSourceVmIds(List.of())
                .setDestinationCidrs(List.of()).setDestinationExceptCidrs(List.of())
                .setStartPort(port).setEndPort(port).setIcmpType(null).setIcmpCode(null).setDescription(null).build();
    }

    public static RuleEvent created(String net, int seq) {
        return RuleEvent.newBuilder().setEventId("e" + seq).setOperation(RuleOperation.NETWORK_CREATED).setNetworkId(net)
                .setNetwork(network(net, DefaultPolicy.ALLOW)).setSource(source("alice", "req-" + seq, T0.plusSeconds(seq))).build();
    }

    public static RuleEvent ruleCreated(String net, int seq, RuleSpec rule) {
        return RuleEvent.newBuilder().setEventId("e" + seq).setOperation(RuleOperation.RULE_CREATED).setNetworkId(net)
                .setRuleAfter(rule).setSource(source("alice", "req-" + seq, T0.plusSeconds(seq))).build();
    }

    public static RuleEvent ruleUpdated(String net, int seq, RuleSpec before, RuleSpec after) {
        return RuleEvent.newBuilder().setEventId("e" + seq).setOperation(RuleOperation.RULE_UPDATED).setNetworkId(net)
                .setRuleBefore(before).setRuleAfter(after).setSource(source("bob", "req-" + seq, T0.plusSeconds(seq))).build();
    }

    public static RuleEvent ruleDeleted(String net, int seq, RuleSpec before) {
        return RuleEvent.newBuilder().setEventId("e" + seq).setOperation(RuleOperation.RULE_DELETED).setNetworkId(net)
                .setRuleBefore(before).setSource(source("bob", "req-" + seq, T0.plusSeconds(seq))).build();
    }
}
