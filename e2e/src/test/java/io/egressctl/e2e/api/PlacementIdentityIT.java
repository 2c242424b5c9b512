package io.egressctl.e2e.api;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.core.event.Audit;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.e2e.support.ControlPlane;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.Topics;
import io.egressctl.schemas.view.RedisKeys;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.UnifiedJedis;
import tools.jackson.databind.JsonNode;

import java.net.URI;
import java.time.Instant;
import java.util.Map;

import static io.egressctl.e2e.api.Published.assertProblem;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * A VM's interface is its identity on its host (issue 11), through the real running services: a
 * placement names it, one (host, interface) belongs to one VM across every network (422
 * {@code INTERFACE_IN_USE} before anything is published; REJECTED in log order for what gets past
 * that), a VM leaving an interface frees it, and {@code wait=applied} on a placement answers only once
 * the VM's host enforces it, which is what compute holds a VM's boot on.
 *
 * <p>Two tenants' networks share 10.1.1.0/24, as two CloudStack isolated networks do.
 */
class PlacementIdentityIT {

    static ControlPlane cp;
    static ApiClient api;
    static Published published;
    static UnifiedJedis redis;
    static Producer<String, SpecificRecord> avro;
    static String h1;
    static String h2;
    static String gateHost;
    static String netA;
    static String netB;
    static final Audit AUDIT = new Audit("compute-svc", "ops", "req-1", Instant.now(), "compute", "1.0");

    @BeforeAll
    static void twoTenantsNetworksOnTwoHosts() {
        cp = ControlPlane.shared();
        api = cp.api();
        published = new Published(cp);
        redis = new UnifiedJedis(URI.create(cp.env("REDIS_URL")));
        avro = new KafkaProducer<>(Map.<String, Object>of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cp.env("KAFKA_BOOTSTRAP_SERVERS"),
                ProducerConfig.ACKS_CONFIG, "all"), new StringSerializer(), new AvroSerializer<>(new HttpSchemaRegistryClient(cp.env("SCHEMA_REGISTRY_URL"))));
        h1 = cp.unique("ih1");
        h2 = cp.unique("ih2");
        gateHost = cp.unique("igate");
        cp.startAgent(h1);
        cp.startAgent(h2);
        netA = network(cp.tenantKey(), "ida");
        netB = network(cp.otherTenantKey(), "idb");
    }

    @AfterAll
    static void stop() {
        if (published != null) {
            published.close();
        }
        if (avro != null) {
            avro.close();
        }
        if (redis != null) {
            redis.close();
        }
        for (String h : new String[] {h1, h2, gateHost}) {
            if (h != null) {
                cp.stopAgent(h, false);
            }
        }
    }

    static String network(String key, String prefix) {
        String id = cp.unique(prefix);
        ApiClient.Response r = api.post("/api/v1/networks?wait=compiled&timeout=30s", key, Map.of("networkId", id, "guestCidr", "10.1.1.0/24"));
        assertThat(r.status()).as("create %s: %s", id, r.body()).isEqualTo(201);
        return id;
    }

    static ApiClient.Response place(String network, String vm, String host, String iface, String ip, String wait) {
        return api.put("/api/v1/networks/" + network + "/placements/" + vm + "?wait=" + wait + "&timeout=30s", cp.operatorKey(),
                ControlPlane.placement(host, iface, ip));
    }

    static void placed(String network, String vm, String host, String iface, String ip) {
        ApiClient.Response r = place(network, vm, host, iface, ip, "compiled");
        assertThat(r.status()).as("place %s/%s on %s/%s: %s", network, vm, host, iface, r.body()).isEqualTo(200);
    }

    static String holder(String host, String iface) {
        return redis.hget(RedisKeys.hostInterfaces(host), iface);
    }

    static JsonNode vmView(String network, String key, String vm) {
        return api.get("/api/v1/networks/" + network, key).body().path("vms").path(vm);
    }

    static String publishDirectly(WorkloadChange c) throws Exception {
        avro.send(new ProducerRecord<>(Topics.NETWORK_EVENTS, c.networkId(), EventMapper.toAvro(c))).get();
        return c.eventId();
    }

    static JsonNode change(String changeId, String wait) {
        ApiClient.Response r = api.get("/api/v1/changes/" + changeId + "?wait=" + wait + "&timeout=30s", cp.operatorKey());
        assertThat(r.status()).as("%s", r.body()).isEqualTo(200);
        return r.body();
    }

    @Test
    void waitAppliedOnAPlacementAnswersOnlyOnceItsHostEnforcesIt() {
        // No agent runs for the gate host yet: the placement is compiled, its host pending.
        Map<String, Object> body = ControlPlane.placement(gateHost, "tap-gate", "10.1.1.20");
        body.put("mac", "52-54-00-AB-CD-20");
        ApiClient.Response r = api.put("/api/v1/networks/" + netA + "/placements/vm-gate?wait=applied&timeout=2s", cp.operatorKey(), body);
        assertThat(r.status()).as("%s", r.body()).isEqualTo(202);
        JsonNode status = r.body().get("status");
        assertThat(status.get("status").asString()).isEqualTo("COMPILED");
        assertThat(status.get("hostsApplied").asInt()).isZero();
        assertThat(status.get("pendingHosts").get(0).asString()).isEqualTo(gateHost);
        // The host's agent starts and enforces it: the same change now counts as applied.
        cp.startAgent(gateHost);
        JsonNode applied = change(r.text("changeId"), "applied");
        assertThat(applied.get("status").asString()).isEqualTo("APPLIED");
        assertThat(applied.get("hostsApplied").asInt()).isEqualTo(1);
        // Placed again on the now-running host, wait=applied answers 200 once enforced.
        ApiClient.Response again = api.put("/api/v1/networks/" + netA + "/placements/vm-gate?wait=applied&timeout=30s", cp.operatorKey(), body);
        assertThat(again.status()).as("%s", again.body()).isEqualTo(200);
        assertThat(again.body().get("status").get("status").asString()).isEqualTo("APPLIED");
        // The view shows the interface; the MAC as the canonical form of what was sent.
        JsonNode vm = vmView(netA, cp.tenantKey(), "vm-gate");
        assertThat(vm.get("interfaceName").asString()).isEqualTo("tap-gate");
        assertThat(vm.get("mac").asString()).isEqualTo("52:54:00:ab:cd:20");
        assertThat(holder(gateHost, "tap-gate")).isEqualTo(netA + "/vm-gate");
    }

    @Test
    void anInterfaceHeldByAVmOfAnotherNetworkIsRefused422AndNothingIsPublished() {
        ApiClient.Response a = place(netA, "vm-a", h1, "tap-shared", "10.1.1.10", "applied");
        assertThat(a.status()).as("%s", a.body()).isEqualTo(200);
        assertThat(a.body().get("status").get("status").asString()).isEqualTo("APPLIED");
        assertThat(holder(h1, "tap-shared")).isEqualTo(netA + "/vm-a");

        // The other tenant's VM, same address, same host, same interface: refused before publishing.
        Published.Snapshot before = published.snapshot(netB, cp.otherTenantKey());
        ApiClient.Response b = place(netB, "vm-b", h1, "tap-shared", "10.1.1.10", "applied");
        assertProblem(b, 422, "INTERFACE_IN_USE", null, "interface tap-shared on host " + h1 + " belongs to vm vm-a of network " + netA);
        assertThat(b.body().get("heldBy").get("networkId").asString()).isEqualTo(netA);
        assertThat(b.body().get("heldBy").get("vmId").asString()).isEqualTo("vm-a");
        assertThat(b.body().get("interfaceName").asString()).isEqualTo("tap-shared");
        published.assertNothingSince(before);

        // Another VM of the same network: refused the same way.
        Published.Snapshot beforeA = published.snapshot(netA, cp.tenantKey());
        assertProblem(place(netA, "vm-a2", h1, "tap-shared", "10.1.1.11", "compiled"), 422, "INTERFACE_IN_USE", null, "belongs to vm vm-a");
        published.assertNothingSince(beforeA);

        // The same name on another host is another interface: both tenants have a VM at 10.1.1.10 behind a tap-shared.
        ApiClient.Response other = place(netB, "vm-b", h2, "tap-shared", "10.1.1.10", "applied");
        assertThat(other.status()).as("%s", other.body()).isEqualTo(200);
        assertThat(holder(h2, "tap-shared")).isEqualTo(netB + "/vm-b");
        assertThat(holder(h1, "tap-shared")).isEqualTo(netA + "/vm-a");
    }

    @Test
    void aVmPlacedAgainOnItsOwnInterfaceIsFine() {
        placed(netA, "vm-own", h1, "tap-own", "10.1.1.12");
        Map<String, Object> body = ControlPlane.placement(h1, "tap-own", "10.1.1.13");
        body.put("mac", "52:54:00:00:00:13");
        ApiClient.Response r = api.put("/api/v1/networks/" + netA + "/placements/vm-own?wait=applied&timeout=30s", cp.operatorKey(), body);
        assertThat(r.status()).as("%s", r.body()).isEqualTo(200);
        assertThat(r.body().get("status").get("status").asString()).isEqualTo("APPLIED");
        JsonNode vm = vmView(netA, cp.tenantKey(), "vm-own");
        assertThat(vm.get("ipv4").asString()).isEqualTo("10.1.1.13");
        assertThat(vm.get("mac").asString()).isEqualTo("52:54:00:00:00:13");
        assertThat(holder(h1, "tap-own")).isEqualTo(netA + "/vm-own");
    }

    @Test
    void aMovedVmFreesItsOldInterface() {
        placed(netA, "vm-mv", h1, "tap-mv", "10.1.1.14");
        assertProblem(place(netB, "vm-x", h1, "tap-mv", "10.1.1.14", "compiled"), 422, "INTERFACE_IN_USE", null, "belongs to vm vm-mv");
        // Moved to another host: its old interface is free, its new one held.
        placed(netA, "vm-mv", h2, "tap-mv2", "10.1.1.14");
        assertThat(holder(h1, "tap-mv")).isNull();
        assertThat(holder(h2, "tap-mv2")).isEqualTo(netA + "/vm-mv");
        placed(netB, "vm-x", h1, "tap-mv", "10.1.1.14");
        assertThat(holder(h1, "tap-mv")).isEqualTo(netB + "/vm-x");
        // Moved to another interface of the same host: the same.
        placed(netB, "vm-x", h1, "tap-mv3", "10.1.1.14");
        assertThat(holder(h1, "tap-mv")).isNull();
        assertThat(holder(h1, "tap-mv3")).isEqualTo(netB + "/vm-x");
        assertThat(vmView(netB, cp.otherTenantKey(), "vm-x").get("interfaceName").asString()).isEqualTo("tap-mv3");
    }

    @Test
    void aRemovedVmFreesItsInterface() {
        placed(netA, "vm-rm", h1, "tap-rm", "10.1.1.15");
        ApiClient.Response removed = api.delete("/api/v1/networks/" + netA + "/placements/vm-rm?wait=compiled&timeout=30s", cp.operatorKey());
        assertThat(removed.status()).as("%s", removed.body()).isEqualTo(200);
        assertThat(holder(h1, "tap-rm")).isNull();
        placed(netB, "vm-rm2", h1, "tap-rm", "10.1.1.15");
        assertThat(holder(h1, "tap-rm")).isEqualTo(netB + "/vm-rm2");
    }

    @Test
    void aSecondVmOfANetworkOnAHeldInterfaceIsRejectedInLogOrder() throws Exception {
        placed(netA, "vm-lo1", h1, "tap-lo", "10.1.1.16");
        // Straight to Kafka, past the rule-service's check: the compiler decides in log order.
        String rejected = publishDirectly(new WorkloadChange(cp.unique("ev"), WorkloadChange.Operation.VM_PLACED, netA, "vm-lo2", h1, null,
                "tap-lo", null, "10.1.1.17", null, AUDIT));
        JsonNode s = change(rejected, "compiled");
        assertThat(s.get("status").asString()).isEqualTo("REJECTED");
        assertThat(s.get("code").asString()).isEqualTo("INTERFACE_IN_USE");
        assertThat(s.get("reason").asString()).contains("interface tap-lo on host " + h1 + " belongs to vm vm-lo1");
        assertThat(vmView(netA, cp.tenantKey(), "vm-lo2").isMissingNode()).isTrue();

        // Another network's VM claiming it straight through Kafka is that network's own decision (accepted
        // there; its host fails closed on the interface), but the index keeps the first holder, and that
        // VM leaving does not free what vm-lo1 holds.
        String other = publishDirectly(new WorkloadChange(cp.unique("ev"), WorkloadChange.Operation.VM_PLACED, netB, "vm-lo3", h1, null,
                "tap-lo", null, "10.1.1.16", null, AUDIT));
        assertThat(change(other, "compiled").get("status").asString()).isIn("COMPILED", "APPLIED");
        assertThat(holder(h1, "tap-lo")).isEqualTo(netA + "/vm-lo1");
        ApiClient.Response removed = api.delete("/api/v1/networks/" + netB + "/placements/vm-lo3?wait=compiled&timeout=30s", cp.operatorKey());
        assertThat(removed.status()).as("%s", removed.body()).isEqualTo(200);
        assertThat(holder(h1, "tap-lo")).isEqualTo(netA + "/vm-lo1");
    }

    @Test
    void twoPlacementsRacingForOneInterfaceEndWithOneHolder() {
        // The second either finds the first in the index (422) or is decided after it in log order (409).
        ApiClient.Response first = api.put("/api/v1/networks/" + netA + "/placements/vm-race1", cp.operatorKey(),
                ControlPlane.placement(h1, "tap-race", "10.1.1.18"));
        ApiClient.Response second = place(netA, "vm-race2", h1, "tap-race", "10.1.1.19", "compiled");
        assertThat(first.status()).as("%s", first.body()).isEqualTo(202);
        assertThat(second.status()).as("%s", second.body()).isIn(409, 422);
        assertThat(second.body().get("code").asString()).isEqualTo("INTERFACE_IN_USE");
        assertThat(ControlPlane.eventually(java.time.Duration.ofSeconds(20), () -> (netA + "/vm-race1").equals(holder(h1, "tap-race")))).isTrue();
        assertThat(vmView(netA, cp.tenantKey(), "vm-race2").isMissingNode()).isTrue();
    }

    /**
     * An event written before interfaces were in the contract is accepted, but its host cannot tell
     * the VM's traffic apart: the agent reports it unenforced and nothing counts as applied on that
     * network there, until compute sends the placement again with the interface. Needs the agent's
     * interface-keyed renderer (issue 11); with the address-keyed one the legacy VM is applied.
     */
    @Test
    void aPlacementWithoutAnInterfaceIsAcceptedButNeverCountsAsApplied() throws Exception {
        String host = cp.unique("ilegacy");
        String net = network(cp.tenantKey(), "idl");
        cp.startAgent(host);
        try {
            String legacy = publishDirectly(new WorkloadChange(cp.unique("ev"), WorkloadChange.Operation.VM_PLACED, net, "vm-old", host, null,
                    "10.1.1.30", null, AUDIT));
            ApiClient.Response r = api.get("/api/v1/changes/" + legacy + "?wait=applied&timeout=3s", cp.operatorKey());
            assertThat(r.body().get("status").asString()).as("%s", r.body()).isEqualTo("COMPILED");
            assertThat(r.body().get("pendingHosts").get(0).asString()).isEqualTo(host);
            JsonNode vm = vmView(net, cp.tenantKey(), "vm-old");
            assertThat(vm.get("hostId").asString()).isEqualTo(host);
            assertThat(vm.has("interfaceName")).as("no interface in %s", vm).isFalse();
            // Sent again with its interface: enforced, and applied.
            ApiClient.Response again = place(net, "vm-old", host, "tap-old", "10.1.1.30", "applied");
            assertThat(again.status()).as("%s", again.body()).isEqualTo(200);
            assertThat(again.body().get("status").get("status").asString()).isEqualTo("APPLIED");
        } finally {
            cp.stopAgent(host, false);
        }
    }
}
