package io.egressctl.examples.producer;

import io.egressctl.events.DefaultPolicy;
import io.egressctl.events.NetworkKind;
import io.egressctl.events.NetworkSpec;
import io.egressctl.events.Protocol;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.RuleOperation;
import io.egressctl.events.RuleSpec;
import io.egressctl.events.Source;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.events.WorkloadOperation;

import java.time.Instant;
import java.util.List;

/**
 * The events an upstream service publishes, built from the generated Avro classes the way rule-service
 * builds them (docs/producers.md, "The events"). Every id is the caller's: an event id is the change id
 * whose status the API answers, so a retry must publish the same one.
 *
 * <p>Every RuleEvent carries its own event id as its idempotency key: the compiler remembers the key of
 * an accepted event with the network it created or the rule it touched, and decides a republished copy
 * (same key, same event id for a network, same rule id for a rule) as already applied. Stateless.
 */
public final class NetworkEvents {

    private NetworkEvents() {
    }

    /**
     * The audit block of every event: who asked, for which tenant, in which request, when, through
     * which service. The compiler records it and decides nothing on it.
     */
    public static Source source(String actor, String tenantId, String requestId, Instant eventTime, String service,
                                String serviceVersion) {
        return Source.newBuilder().setActor(actor).setTenantId(tenantId).setRequestId(requestId).setEventTime(eventTime)
                .setService(service).setServiceVersion(serviceVersion).build();
    }

    /**
     * A basic guest network with the CloudStack defaults: outgoing traffic allowed, rules block what they
     * match (no explicit actions or priorities), the default quota of 1,000 rules. Its {@code tenantId}
     * owns it: that tenant's API key sees it.
     */
    public static NetworkSpec basicNetwork(String networkId, String tenantId, String guestCidr) {
        // kind, guestCidr and defaultPolicy have no schema default; advanced, ruleQuota and
        // keepEstablished take theirs (false, 1000, false), guestCidr6 is null.
        return NetworkSpec.newBuilder().setNetworkId(networkId).setTenantId(tenantId).setKind(NetworkKind.BASIC)
                .setGuestCidr(guestCidr).setDefaultPolicy(DefaultPolicy.ALLOW).build();
    }

    /** NETWORK_CREATED: the network after the change, under the event's own network id. */
    public static RuleEvent networkCreated(String eventId, NetworkSpec network, Source source) {
        return RuleEvent.newBuilder().setEventId(eventId).setOperation(RuleOperation.NETWORK_CREATED)
                .setNetworkId(network.getNetworkId()).setIdempotencyKey(eventId).setNetwork(network).setSource(source).build();
    }

    /**
     * A rule that blocks one TCP port for one VM (a seed example: "block port 25 for one VM"), in
     * CloudStack mode: no action (the opposite of the network's ALLOW default), the default priority.
     */
    public static RuleSpec blockTcpPortForVm(String ruleId, String vmIpv4, int port, String description) {
        return RuleSpec.newBuilder().setRuleId(ruleId).setProtocol(Protocol.TCP)
                .setSourceCidrs(List.of(vmIpv4 + "/32")).setStartPort(port).setEndPort(port)
                .setDescription(description).build();
    }

    /**
     * RULE_CREATED with the rule as it should be ({@code ruleAfter}). {@code expectedVersion} null skips
     * the optimistic check; give the network's config version (the API's ETag) to have the change
     * rejected as STALE_VERSION when another rule or network change came first.
     */
    public static RuleEvent ruleCreated(String eventId, String networkId, RuleSpec rule, Long expectedVersion, Source source) {
        return RuleEvent.newBuilder().setEventId(eventId).setOperation(RuleOperation.RULE_CREATED).setNetworkId(networkId)
                .setExpectedVersion(expectedVersion).setIdempotencyKey(eventId).setRuleAfter(rule).setSource(source).build();
    }

    /**
     * VM_PLACED: the VM runs on {@code hostId}, plugged into {@code interfaceName} there (its identity
     * on the host), with at least one address. {@code mac} and one of the addresses may be null.
     * {@code networkTenantId} is the tenant that owns the network (the VM's account): the compiler
     * places the VM only on a network of that tenant.
     */
    public static WorkloadEvent vmPlaced(String eventId, String networkId, String networkTenantId, String vmId, String hostId,
                                         String interfaceName, String mac, String ipv4, String ipv6, Source source) {
        return WorkloadEvent.newBuilder().setEventId(eventId).setOperation(WorkloadOperation.VM_PLACED).setNetworkId(networkId)
                .setNetworkTenantId(networkTenantId).setVmId(vmId).setHostId(hostId).setInterfaceName(interfaceName).setMac(mac)
                .setIpv4(ipv4).setIpv6(ipv6).setSource(source).build();
    }
}
