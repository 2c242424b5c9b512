package io.egressctl.e2e.api;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.core.event.Audit;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.e2e.support.ControlPlane;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.Topics;
import io.egressctl.schemas.view.RedisKeys;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.UnifiedJedis;
import tools.jackson.databind.JsonNode;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What tenants can learn or claim (issue 15, item 5), through the real running services: network ids
 * are scoped by tenant (another tenant's id is neither in the way nor told of), placements are bound to
 * the network's owning tenant and decided against it in log order, a deleted network's VMs do not pass
 * to the network created again under its id, and CloudStack reads expire like writes.
 */
class TenantScopeIT {

    static ControlPlane cp;
    static ApiClient api;
    static UnifiedJedis redis;
    static Producer<String, SpecificRecord> avro;
    static final Audit AUDIT = new Audit("compute-svc", "ops", "req-ts", Instant.now(), "compute", "1.0");

    @BeforeAll
    static void connect() {
        cp = ControlPlane.shared();
        api = cp.api();
        redis = new UnifiedJedis(URI.create(cp.env("REDIS_URL")));
        avro = new KafkaProducer<>(Map.<String, Object>of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cp.env("KAFKA_BOOTSTRAP_SERVERS"),
                ProducerConfig.ACKS_CONFIG, "all"), new StringSerializer(), new AvroSerializer<>(new HttpSchemaRegistryClient(cp.env("SCHEMA_REGISTRY_URL"))));
        // On a fresh stack the compiler first replays the log: the API answers 503 REBUILDING meanwhile.
        assertThat(ControlPlane.eventually(Duration.ofSeconds(60), () -> api.get("/api/v1/networks", cp.tenantKey()).status() == 200))
                .isTrue();
    }

    @AfterAll
    static void close() {
        if (avro != null) {
            avro.close();
        }
        if (redis != null) {
            redis.close();
        }
    }

    static ApiClient.Response create(String key, String id, String cidr) {
        return api.post("/api/v1/networks?wait=compiled&timeout=30s", key, Map.of("networkId", id, "guestCidr", cidr));
    }

    static JsonNode change(String changeId) {
        ApiClient.Response r = api.get("/api/v1/changes/" + changeId + "?wait=compiled&timeout=30s", cp.operatorKey());
        assertThat(r.status()).as("%s", r.body()).isEqualTo(200);
        return r.body();
    }

    static String publish(String key, SpecificRecord value) throws Exception {
        avro.send(new ProducerRecord<>(Topics.NETWORK_EVENTS, key, value)).get();
        return value instanceof WorkloadEvent w ? w.getEventId() : ((RuleEvent) value).getEventId();
    }

    static WorkloadChange placement(String network, String vm, String host, String iface, String ip) {
        return new WorkloadChange("wl-" + cp.unique("e"), WorkloadChange.Operation.VM_PLACED, network, vm, host, null, iface, null, ip,
                null, AUDIT);
    }

    @Test
    void postingAnIdAnotherTenantHoldsCreatesTheCallersOwnNetworkAndTellsNothing() {
        String id = cp.unique("shared");
        assertThat(create(cp.tenantKey(), id, "10.61.0.0/24").status()).isEqualTo(201);

        ApiClient.Response theirs = create(cp.otherTenantKey(), id, "10.62.0.0/24");
        ApiClient.Response fresh = create(cp.otherTenantKey(), cp.unique("fresh"), "10.63.0.0/24");
        assertThat(theirs.status()).as("no 409: %s", theirs.body()).isEqualTo(201).isEqualTo(fresh.status());
        assertThat(fieldNames(theirs.body())).isEqualTo(fieldNames(fresh.body()));
        assertThat(fieldNames(theirs.body().get("status"))).isEqualTo(fieldNames(fresh.body().get("status")));
        assertThat(theirs.text("networkId")).isEqualTo(id);
        assertThat(theirs.body().get("status").get("networkId").asString()).as("the tenant sees its name, never a scoped id").isEqualTo(id);

        JsonNode mine = api.get("/api/v1/networks/" + id, cp.otherTenantKey()).body();
        assertThat(mine.get("networkId").asString()).isEqualTo(id);
        assertThat(mine.get("tenantId").asString()).isEqualTo("globex");
        assertThat(mine.get("guestCidr").asString()).isEqualTo("10.62.0.0/24");
        JsonNode first = api.get("/api/v1/networks/" + id, cp.tenantKey()).body();
        assertThat(first.get("tenantId").asString()).isEqualTo("acme");
        assertThat(first.get("guestCidr").asString()).isEqualTo("10.61.0.0/24");
        List<String> listed = new ArrayList<>();
        api.get("/api/v1/networks", cp.otherTenantKey()).body().forEach(n -> listed.add(n.get("networkId").asString()));
        assertThat(listed).contains(id).doesNotContain("globex:" + id);

        // Each tenant's rules go to its own network.
        ApiClient.Response rule = api.post("/api/v1/networks/" + id + "/egress-rules?wait=compiled&timeout=30s", cp.otherTenantKey(),
                Map.of("protocol", "tcp", "startPort", 25));
        assertThat(rule.status()).as("%s", rule.body()).isEqualTo(201);
        assertThat(rule.body().get("status").get("networkId").asString()).isEqualTo(id);
        assertThat(api.get("/api/v1/networks/" + id + "/egress-rules", cp.tenantKey()).body().size()).isZero();
        assertThat(api.get("/api/v1/networks/" + id + "/egress-rules", cp.otherTenantKey()).body().size()).isEqualTo(1);

        // The operator sees both, by their log ids.
        assertThat(api.get("/api/v1/networks/" + id, cp.operatorKey()).body().get("tenantId").asString()).isEqualTo("acme");
        assertThat(api.get("/api/v1/networks/globex:" + id, cp.operatorKey()).body().get("tenantId").asString()).isEqualTo("globex");
        assertThat(redis.get(RedisKeys.nameClaim(id))).isEqualTo("acme");
    }

    @Test
    void theSameTenantPostingItsOwnIdAgainIsStill409() {
        String id = cp.unique("again");
        assertThat(create(cp.tenantKey(), id, "10.64.0.0/24").status()).isEqualTo(201);
        assertThat(create(cp.otherTenantKey(), id, "10.64.0.0/24").status()).isEqualTo(201);
        ApiClient.Response a = create(cp.tenantKey(), id, "10.64.0.0/24");
        ApiClient.Response b = create(cp.otherTenantKey(), id, "10.64.0.0/24");
        assertThat(a.status()).isEqualTo(409);
        assertThat(a.text("code")).isEqualTo("NETWORK_EXISTS");
        assertThat(b.status()).isEqualTo(409);
        assertThat(b.text("code")).isEqualTo("NETWORK_EXISTS");
        assertThat(b.text("detail")).doesNotContain("globex:");
    }

    @Test
    void aTenantCannotReachAnotherTenantsNetworkOrItsOwnScopedLogIdByName() {
        String id = cp.unique("probe");
        assertThat(create(cp.tenantKey(), id, "10.65.0.0/24").status()).isEqualTo(201);
        assertThat(create(cp.otherTenantKey(), id, "10.65.0.0/24").status()).isEqualTo(201);
        assertThat(api.get("/api/v1/networks/globex:" + id, cp.otherTenantKey()).status()).isEqualTo(404);
        assertThat(api.get("/api/v1/networks/acme:" + id, cp.otherTenantKey()).status()).isEqualTo(404);
        // A name never held by anyone answers the same.
        assertThat(api.get("/api/v1/networks/globex:" + cp.unique("never"), cp.otherTenantKey()).status()).isEqualTo(404);
    }

    @Test
    void aWorkloadEventNamingAnotherTenantThanTheOwnerIsRejectedInLogOrder() throws Exception {
        String id = cp.unique("bound");
        String host = cp.unique("bh");
        assertThat(create(cp.tenantKey(), id, "10.66.0.0/24").status()).isEqualTo(201);

        String intruder = publish(id, EventMapper.toAvro(placement(id, "vm-x", host, "tap-x", "10.66.0.10").boundTo("globex")));
        String owner = publish(id, EventMapper.toAvro(placement(id, "vm-o", host, "tap-o", "10.66.0.11").boundTo("acme")));
        String old = publish(id, EventMapper.toAvro(placement(id, "vm-u", host, "tap-u", "10.66.0.12")));

        JsonNode rejected = change(intruder);
        assertThat(rejected.get("status").asString()).isEqualTo("REJECTED");
        assertThat(rejected.get("code").asString()).isEqualTo("TENANT_MISMATCH");
        assertThat(rejected.get("reason").asString()).contains("names tenant globex").doesNotContain("acme");
        assertThat(change(owner).get("status").asString()).isEqualTo("COMPILED");
        assertThat(change(old).get("status").asString()).as("an event without the field is unbound, decided as before").isEqualTo("COMPILED");
        JsonNode vms = api.get("/api/v1/networks/" + id, cp.tenantKey()).body().get("vms");
        assertThat(fieldNames(vms)).containsExactlyInAnyOrder("vm-o", "vm-u");
        assertThat(rejected.get("version").asLong()).isLessThan(change(owner).get("version").asLong());
    }

    @Test
    void theRestPlacementIsBoundToTheNetworksOwner() throws Exception {
        String id = cp.unique("rest");
        String host = cp.unique("rh");
        assertThat(create(cp.tenantKey(), id, "10.67.0.0/24").status()).isEqualTo(201);

        ApiClient.Response wrong = api.put("/api/v1/networks/" + id + "/placements/vm-1", cp.operatorKey(),
                Map.of("hostId", host, "interfaceName", "tap-r1", "ipv4", "10.67.0.10", "tenantId", "globex"));
        assertThat(wrong.status()).as("%s", wrong.body()).isEqualTo(409);
        assertThat(wrong.text("code")).isEqualTo("TENANT_MISMATCH");
        ApiClient.Response missing = api.put("/api/v1/networks/" + cp.unique("nonet") + "/placements/vm-1", cp.operatorKey(),
                ControlPlane.placement(host, "tap-r1", "10.67.0.10"));
        assertThat(missing.status()).as("%s", missing.body()).isEqualTo(404);

        ApiClient.Response ok = api.put("/api/v1/networks/" + id + "/placements/vm-1?wait=compiled&timeout=30s", cp.operatorKey(),
                Map.of("hostId", host, "interfaceName", "tap-r1", "ipv4", "10.67.0.10", "tenantId", "acme"));
        assertThat(ok.status()).as("%s", ok.body()).isEqualTo(200);
        ApiClient.Response unnamed = api.put("/api/v1/networks/" + id + "/placements/vm-2?wait=compiled&timeout=30s", cp.operatorKey(),
                ControlPlane.placement(host, "tap-r2", "10.67.0.11"));
        assertThat(unnamed.status()).as("%s", unnamed.body()).isEqualTo(200);

        // What the API published is bound to the owner, in the log itself.
        for (ApiClient.Response r : List.of(ok, unnamed)) {
            WorkloadEvent e = (WorkloadEvent) readLogRecord(id, r.body().get("status").get("version").asLong() - 1);
            assertThat(e.getEventId()).isEqualTo(r.text("changeId"));
            assertThat(e.getNetworkTenantId()).isEqualTo("acme");
        }
    }

    @Test
    void aPlacementRightAfterACreateIsBoundToTheCreatingTenantBeforeTheCompilerRecordedIt() {
        String id = cp.unique("quick");
        String host = cp.unique("qh");
        assertThat(create(cp.tenantKey(), id, "10.70.0.0/24").status()).isEqualTo(201);
        // globex's network of the same name, placed at once (no wait): its log id is scoped, its owner known.
        ApiClient.Response theirs = api.post("/api/v1/networks", cp.otherTenantKey(), Map.of("networkId", id, "guestCidr", "10.70.0.0/24"));
        assertThat(theirs.status()).isEqualTo(202);
        ApiClient.Response placed = api.put("/api/v1/networks/globex:" + id + "/placements/vm-q?wait=compiled&timeout=30s",
                cp.operatorKey(), ControlPlane.placement(host, "tap-q", "10.70.0.10"));
        assertThat(placed.status()).as("%s", placed.body()).isEqualTo(200);
        assertThat(placed.body().get("status").get("status").asString()).isEqualTo("COMPILED");
        WorkloadEvent e = (WorkloadEvent) readLogRecord("globex:" + id, placed.body().get("status").get("version").asLong() - 1);
        assertThat(e.getNetworkTenantId()).isEqualTo("globex");
        assertThat(fieldNames(api.get("/api/v1/networks/" + id, cp.otherTenantKey()).body().get("vms"))).containsExactly("vm-q");
        assertThat(api.get("/api/v1/networks/" + id, cp.tenantKey()).body().get("vms").size()).isZero();
    }

    @Test
    void aNetworkDeletedWithVmsAndCreatedAgainHasNoneOfThem() throws Exception {
        String id = cp.unique("gone");
        String host = cp.unique("gh");
        assertThat(create(cp.tenantKey(), id, "10.68.0.0/24").status()).isEqualTo(201);
        ApiClient.Response placed = api.put("/api/v1/networks/" + id + "/placements/vm-old?wait=compiled&timeout=30s", cp.operatorKey(),
                ControlPlane.placement(host, "tap-old", "10.68.0.10"));
        assertThat(placed.status()).as("%s", placed.body()).isEqualTo(200);
        assertThat(redis.hget(RedisKeys.hostInterfaces(host), "tap-old")).isEqualTo(id + "/vm-old");
        // The API refuses to delete a network with VMs (as CloudStack); the log accepts it from a producer.
        assertThat(api.delete("/api/v1/networks/" + id, cp.tenantKey()).status()).isEqualTo(409);
        String deleted = publish(id, EventMapper.toAvro(new RuleChange("del-" + cp.unique("d"), RuleChange.Operation.NETWORK_DELETED, id,
                null, null, null, null, null, AUDIT)));
        JsonNode d = change(deleted);
        assertThat(d.get("status").asString()).isEqualTo("COMPILED");
        assertThat(d.get("pendingHosts").toString()).contains(host);

        ApiClient.Response again = create(cp.tenantKey(), id, "10.68.0.0/24");
        assertThat(again.status()).as("%s", again.body()).isEqualTo(201);
        JsonNode view = api.get("/api/v1/networks/" + id, cp.tenantKey()).body();
        assertThat(view.get("vms").size()).as("the old network's VMs are not inherited").isZero();
        assertThat(again.body().get("status").get("hostsTotal").asInt()).as("no host is sent anything").isZero();
        assertThat(redis.hget(RedisKeys.hostVersions(host), id)).as("the host's last word on the network is the delete's tombstone")
                .isEqualTo(String.valueOf(d.get("version").asLong()));
        assertThat(redis.hget(RedisKeys.hostInterfaces(host), "tap-old")).as("the interface was released").isNull();
        // A removal of the old VM now finds nothing.
        WorkloadChange remove = new WorkloadChange("wl-" + cp.unique("r"), WorkloadChange.Operation.VM_REMOVED, id, "vm-old", host, null,
                null, null, AUDIT);
        assertThat(change(publish(id, EventMapper.toAvro(remove))).get("code").asString()).isEqualTo("VM_NOT_FOUND");
    }

    @Test
    void cloudStackReadsExpireLikeWrites() throws Exception {
        String id = cp.unique("csr");
        assertThat(create(cp.tenantKey(), id, "10.69.0.0/24").status()).isEqualTo(201);
        assertThat(create(cp.otherTenantKey(), cp.unique("cso"), "10.69.0.0/24").status()).isEqualTo(201);

        HttpResponse<String> unsigned = cloudstack(Map.of("command", "listNetworks", "keyword", id), null);
        assertThat(unsigned.statusCode()).isEqualTo(401);
        assertThat(unsigned.body()).contains("reads too").contains("EGRESS_CLOUDSTACK_READS_WITHOUT_EXPIRY");

        HttpResponse<String> expired = cloudstack(Map.of("command", "listNetworks", "keyword", id), Instant.now().minusSeconds(5));
        assertThat(expired.statusCode()).isEqualTo(401);
        assertThat(expired.body()).contains("expired");

        HttpResponse<String> signed = cloudstack(Map.of("command", "listNetworks", "keyword", id), Instant.now().plusSeconds(300));
        assertThat(signed.statusCode()).as(signed.body()).isEqualTo(200);
        assertThat(signed.body()).contains("\"id\":\"" + id + "\"");
    }

    // ---- helpers ----

    static List<String> fieldNames(JsonNode n) {
        List<String> out = new ArrayList<>(n.propertyNames());
        out.sort(null);
        return out;
    }

    /** The record at {@code offset} of the network's partition of the events log, decoded. */
    static SpecificRecord readLogRecord(String networkId, long offset) {
        TopicPartition tp = new TopicPartition(Topics.NETWORK_EVENTS, Topics.partitionFor(networkId, partitions()));
        AvroDeserializer<SpecificRecord> d = AvroDeserializer.ofTypes(new HttpSchemaRegistryClient(cp.env("SCHEMA_REGISTRY_URL")),
                RuleEvent.class, WorkloadEvent.class);
        try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(Map.<String, Object>of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, cp.env("KAFKA_BOOTSTRAP_SERVERS")), new StringDeserializer(), new ByteArrayDeserializer())) {
            c.assign(List.of(tp));
            c.seek(tp, offset);
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<String, byte[]> r : c.poll(Duration.ofMillis(200))) {
                    if (r.offset() == offset) {
                        return d.deserialize(tp.topic(), r.value());
                    }
                }
            }
        }
        throw new AssertionError("no record at " + tp + "@" + offset);
    }

    static int partitions() {
        String p = System.getenv("EGRESS_PARTITIONS");
        return p == null || p.isBlank() ? 6 : Integer.parseInt(p);
    }

    static final DateTimeFormatter EXPIRES = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ssZ").withZone(ZoneOffset.UTC);

    /** A CloudStack request signed as CloudStack's clients sign it; with {@code expires}, signatureVersion=3. */
    static HttpResponse<String> cloudstack(Map<String, String> params, Instant expires) throws Exception {
        TreeMap<String, String> all = new TreeMap<>(params);
        all.put("apiKey", cp.cloudstackKey());
        all.put("response", "json");
        if (expires != null) {
            all.put("signatureVersion", "3");
            all.put("expires", EXPIRES.format(expires));
        }
        String canonical = all.entrySet().stream().map(e -> e.getKey() + "=" + encode(e.getValue())).collect(Collectors.joining("&"))
                .toLowerCase(Locale.ROOT);
        Mac mac = Mac.getInstance("HmacSHA1");
        mac.init(new SecretKeySpec(cp.cloudstackSecret().getBytes(StandardCharsets.UTF_8), "HmacSHA1"));
        String signature = Base64.getEncoder().encodeToString(mac.doFinal(canonical.getBytes(StandardCharsets.UTF_8)));
        String query = all.entrySet().stream().map(e -> e.getKey() + "=" + encode(e.getValue())).collect(Collectors.joining("&"))
                + "&signature=" + encode(signature);
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(cp.apiUrl() + "/client/api?" + query)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    static String encode(String v) {
        return URLEncoder.encode(v, StandardCharsets.UTF_8).replace("+", "%20");
    }
}
