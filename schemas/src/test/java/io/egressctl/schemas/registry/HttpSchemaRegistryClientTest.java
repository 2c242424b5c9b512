package io.egressctl.schemas.registry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;

import org.apache.avro.Schema;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import io.egressctl.events.HostUpdate;
import io.egressctl.events.RuleEvent;
import io.egressctl.schemas.Fixtures;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.AvroSerdeConfig;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.Topics;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** The HTTP client against a loopback stub of the Confluent REST protocol (no real registry needed). */
class HttpSchemaRegistryClientTest {

    private static final String SUBJECT = "egress.rule-events-value";

    private StubRegistryServer stub;
    private HttpSchemaRegistryClient client;

    @BeforeEach
    void start() throws IOException {
        stub = new StubRegistryServer();
        client = new HttpSchemaRegistryClient(stub.url());
    }

    @AfterEach
    void stop() {
        stub.close();
    }

    @Test
    void registerPostsTheSchemaAsAJsonStringAndCachesTheId() {
        int id = client.register(SUBJECT, RuleEvent.getClassSchema());

        assertThat(id).isEqualTo(1);
        assertThat(stub.requests).singleElement().satisfies(r -> {
            assertThat(r.method()).isEqualTo("POST");
            assertThat(r.rawPath()).isEqualTo("/apis/ccompat/v7/subjects/egress.rule-events-value/versions");
            assertThat(r.contentType()).isEqualTo("application/vnd.schemaregistry.v1+json");
            assertThat(r.accept()).contains("application/vnd.schemaregistry.v1+json");
            assertThat(r.authorization()).isNull();
            JsonNode body = JsonMapper.builder().build().readTree(r.body());
            assertThat(body.propertyNames()).containsExactly("schema");
            assertThat(body.path("schema").stringValue()).isEqualTo(RuleEvent.getClassSchema().toString());
        });

        assertThat(client.register(SUBJECT, RuleEvent.getClassSchema())).isEqualTo(1);
        assertThat(client.lookupId(SUBJECT, RuleEvent.getClassSchema())).hasValue(1);
        assertThat(client.schemaById(1)).isEqualTo(RuleEvent.getClassSchema());
        assertThat(stub.requests).as("ids are cached both ways").hasSize(1);
    }

    @Test
    void schemaByIdIsFetchedOnceAndParsed() {
        int id = stub.backend.register("x-value", HostUpdate.getClassSchema());

        assertThat(client.schemaById(id)).isEqualTo(HostUpdate.getClassSchema());
        assertThat(client.schemaById(id)).isEqualTo(HostUpdate.getClassSchema());

        assertThat(stub.requests).singleElement().satisfies(r -> {
            assertThat(r.method()).isEqualTo("GET");
            assertThat(r.rawPath()).isEqualTo("/apis/ccompat/v7/schemas/ids/" + id);
        });
    }

    @Test
    void unknownIdIsANotFoundError() {
        assertThatThrownBy(() -> client.schemaById(99))
                .isInstanceOfSatisfying(SchemaRegistryException.class, e -> {
                    assertThat(e.isNotFound()).isTrue();
                    assertThat(e.httpStatus()).isEqualTo(404);
                    assertThat(e.errorCode()).isEqualTo(40403);
                })
                .hasMessageStartingWith("schema id 99 is unknown to the schema registry: HTTP 404 {\"error_code\":40403")
                .hasMessageContaining(stub.url() + "/schemas/ids/99");
    }

    @Test
    void latestIsEmptyForAnUnknownSubject() {
        assertThat(client.latest(SUBJECT)).isEmpty();
        stub.backend.register(SUBJECT, RuleEvent.getClassSchema());
        assertThat(client.latest(SUBJECT)).contains(RuleEvent.getClassSchema());
        assertThat(stub.requests).extracting(StubRegistryServer.Request::rawPath)
                .containsOnly("/apis/ccompat/v7/subjects/egress.rule-events-value/versions/latest");
    }

    @Test
    void lookupIdDoesNotRegister() {
        assertThat(client.lookupId(SUBJECT, RuleEvent.getClassSchema())).isEmpty();
        assertThat(stub.backend.subjects()).isEmpty();
        int id = stub.backend.register(SUBJECT, RuleEvent.getClassSchema());
        assertThat(client.lookupId(SUBJECT, RuleEvent.getClassSchema())).hasValue(id);
        assertThat(stub.requests).extracting(StubRegistryServer.Request::rawPath)
                .containsOnly("/apis/ccompat/v7/subjects/egress.rule-events-value");
    }

    @Test
    void compatibilityIsAskedOfTheLatestVersion() {
        Schema incompatible = Schema.createRecord("io.egressctl.events.RuleEvent", null, null, false,
                List.of(new Schema.Field("required", Schema.create(Schema.Type.STRING))));

        assertThat(client.isCompatible(SUBJECT, incompatible)).as("no version yet").isTrue();
        stub.backend.register(SUBJECT, RuleEvent.getClassSchema());
        assertThat(client.isCompatible(SUBJECT, RuleEvent.getClassSchema())).isTrue();
        assertThat(client.isCompatible(SUBJECT, incompatible)).isFalse();
        assertThat(stub.requests).extracting(StubRegistryServer.Request::rawPath)
                .containsOnly("/apis/ccompat/v7/compatibility/subjects/egress.rule-events-value/versions/latest");
    }

    @Test
    void aRejectedSchemaSaysSubjectStatusAndBody() {
        stub.backend.register(SUBJECT, RuleEvent.getClassSchema());
        Schema incompatible = Schema.createRecord("io.egressctl.events.RuleEvent", null, null, false,
                List.of(new Schema.Field("required", Schema.create(Schema.Type.STRING))));

        assertThatThrownBy(() -> client.register(SUBJECT, incompatible))
                .isInstanceOfSatisfying(SchemaRegistryException.class, e -> {
                    assertThat(e.httpStatus()).isEqualTo(409);
                    assertThat(e.errorCode()).isEqualTo(409);
                    assertThat(e).isNotInstanceOf(SchemaRegistryUnreachableException.class);
                })
                .hasMessageStartingWith("registry rejected schema for subject egress.rule-events-value"
                        + " (io.egressctl.events.RuleEvent): HTTP 409 {\"error_code\":409");
    }

    @Test
    void aRegistryThatIsNotThereIsUnreachable() throws IOException {
        String url = "http://127.0.0.1:" + closedPort();
        HttpSchemaRegistryClient nowhere = new HttpSchemaRegistryClient(url + "/apis/ccompat/v7/");

        assertThatThrownBy(() -> nowhere.register(SUBJECT, RuleEvent.getClassSchema()))
                .isInstanceOf(SchemaRegistryUnreachableException.class)
                .hasMessageStartingWith("schema registry at " + url + "/apis/ccompat/v7 is unreachable: ")
                .hasMessageContaining("ConnectException");
    }

    @Test
    void aRegistryThatDoesNotAnswerTimesOut() {
        stub.delayMillis = 3_000;
        HttpSchemaRegistryClient impatient = new HttpSchemaRegistryClient(List.of(stub.url()), null,
                Duration.ofSeconds(2), Duration.ofMillis(300));

        long start = System.nanoTime();
        assertThatThrownBy(() -> impatient.schemaById(1))
                .isInstanceOf(SchemaRegistryUnreachableException.class)
                .hasMessageContaining("is unreachable").hasMessageContaining("HttpTimeoutException");
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(2));
    }

    @Test
    void defaultTimeoutsAreTwoAndFiveSeconds() {
        assertThat(HttpSchemaRegistryClient.DEFAULT_CONNECT_TIMEOUT).isEqualTo(Duration.ofSeconds(2));
        assertThat(HttpSchemaRegistryClient.DEFAULT_REQUEST_TIMEOUT).isEqualTo(Duration.ofSeconds(5));
    }

    @Test
    void basicAuthFromUserInfo() {
        new HttpSchemaRegistryClient(stub.url(), "svc-rule:p@ss:word").latest(SUBJECT);

        assertThat(stub.requests).singleElement().extracting(StubRegistryServer.Request::authorization)
                .isEqualTo("Basic " + Base64.getEncoder().encodeToString("svc-rule:p@ss:word".getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void basicAuthFromTheUrlIsTakenOutOfTheUrl() {
        HttpSchemaRegistryClient withUrlAuth = HttpSchemaRegistryClient.fromConfig(Map.of(
                AvroSerdeConfig.SCHEMA_REGISTRY_URL, stub.url().replace("http://", "http://agent:s%40cret@"),
                AvroSerdeConfig.BASIC_AUTH_CREDENTIALS_SOURCE, "URL"));

        assertThat(withUrlAuth.baseUrls()).containsExactly(stub.url());
        withUrlAuth.latest(SUBJECT);
        assertThat(stub.requests).singleElement().extracting(StubRegistryServer.Request::authorization)
                .isEqualTo("Basic " + Base64.getEncoder().encodeToString("agent:s@cret".getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void subjectsArePercentEncoded() {
        String subject = "odd subject/ü+1";
        int id = client.register(subject, HostUpdate.getClassSchema());

        assertThat(stub.requests.get(0).rawPath()).isEqualTo("/apis/ccompat/v7/subjects/odd%20subject%2F%C3%BC%2B1/versions");
        assertThat(stub.backend.subjects()).containsExactly(subject);
        assertThat(stub.backend.lookupId(subject, HostUpdate.getClassSchema())).hasValue(id);
    }

    @Test
    void theNextUrlIsTriedWhenOneIsDown() throws IOException {
        String down = "http://127.0.0.1:" + closedPort();
        HttpSchemaRegistryClient twoUrls = HttpSchemaRegistryClient.fromConfig(
                Map.of(AvroSerdeConfig.SCHEMA_REGISTRY_URL, down + ", " + stub.url()));

        assertThat(twoUrls.baseUrls()).containsExactly(down, stub.url());
        assertThat(twoUrls.register(SUBJECT, RuleEvent.getClassSchema())).isEqualTo(1);
        assertThat(twoUrls.latest(SUBJECT)).isPresent();
        assertThat(stub.requests).hasSize(2);

        stub.close();
        assertThatThrownBy(() -> twoUrls.schemaById(77))
                .isInstanceOf(SchemaRegistryUnreachableException.class)
                .hasMessageStartingWith("no schema registry is reachable: ")
                .hasMessageContaining(down).hasMessageContaining(stub.url());
    }

    @Test
    void aWrongBaseUrlIsNotMistakenForAMissingSubject() {
        HttpSchemaRegistryClient wrong = new HttpSchemaRegistryClient(stub.root());

        assertThatThrownBy(() -> wrong.latest(SUBJECT))
                .isInstanceOf(SchemaRegistryException.class)
                .hasMessageContaining("HTTP 404")
                .hasMessageContaining("is the base URL right?");
        assertThatThrownBy(() -> wrong.isCompatible(SUBJECT, RuleEvent.getClassSchema()))
                .isInstanceOf(SchemaRegistryException.class).hasMessageContaining("is the base URL right?");
        assertThatThrownBy(() -> wrong.lookupId(SUBJECT, RuleEvent.getClassSchema()))
                .isInstanceOf(SchemaRegistryException.class).hasMessageContaining("is the base URL right?");
        assertThatThrownBy(() -> new HttpSchemaRegistryClient(stub.root() + "/html").latest(SUBJECT))
                .isInstanceOf(SchemaRegistryException.class).hasMessageContaining("is the base URL right?");
    }

    @Test
    void configIsValidated() {
        assertThatThrownBy(() -> HttpSchemaRegistryClient.fromConfig(Map.of()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("missing config schema.registry.url");
        assertThatThrownBy(() -> new HttpSchemaRegistryClient("ftp://registry"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("expected http(s)://");
        assertThatThrownBy(() -> HttpSchemaRegistryClient.fromConfig(Map.of(AvroSerdeConfig.SCHEMA_REGISTRY_URL, stub.url(),
                AvroSerdeConfig.BASIC_AUTH_CREDENTIALS_SOURCE, "SASL_INHERIT")))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("SASL_INHERIT");
        assertThat(HttpSchemaRegistryClient.fromConfig(Map.of(AvroSerdeConfig.SCHEMA_REGISTRY_URL, List.of(stub.url())))
                .baseUrls()).containsExactly(stub.url());
    }

    @Test
    void kafkaConfiguredSerdeRoundTripsOverHttp() {
        Map<String, Object> configs = Map.of(
                AvroSerdeConfig.SCHEMA_REGISTRY_URL, stub.url(),
                AvroSerdeConfig.BASIC_AUTH_USER_INFO, "svc:pw",
                AvroSerdeConfig.SPECIFIC_AVRO_VALUE_TYPE, RuleEvent.class.getName(),
                io.egressctl.schemas.serde.SubjectNameStrategy.VALUE_CONFIG, "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy");
        AvroSerializer<RuleEvent> serializer = new AvroSerializer<>();
        serializer.configure(configs, false);
        AvroDeserializer<RuleEvent> deserializer = new AvroDeserializer<>();
        deserializer.configure(configs, false);

        RuleEvent event = Fixtures.ruleCreated("chg-7", "net-3");
        for (int i = 0; i < 3; i++) {
            assertThat(deserializer.deserialize(Topics.NETWORK_EVENTS, serializer.serialize(Topics.NETWORK_EVENTS, event)))
                    .isEqualTo(event);
        }

        assertThat(stub.requests).extracting(r -> r.method() + " " + r.rawPath()).containsExactly(
                "POST /apis/ccompat/v7/subjects/egress.network-events-io.egressctl.events.RuleEvent/versions",
                "GET /apis/ccompat/v7/schemas/ids/1");
        assertThat(stub.requests).allSatisfy(r -> assertThat(r.authorization()).startsWith("Basic "));
        serializer.close();
        deserializer.close();
    }

    private static int closedPort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }
}
