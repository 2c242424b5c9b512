package io.egressctl.e2e.api;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.e2e.support.ControlPlane;
import io.egressctl.schemas.serde.Topics;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import tools.jackson.databind.JsonNode;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Proves that a refused request published nothing: the network's read model (view, versions, ETag,
 * rule list) is unchanged after a settle, and, in the log itself, no record keyed by the network was
 * appended to its partition of {@code egress.network-events}.
 */
final class Published implements AutoCloseable {

    /** Long enough for the compiler to have turned a published event into a new view. */
    static final Duration SETTLE = Duration.ofMillis(400);

    /** What a network looked like: read model and log end offsets of its partitions. */
    record Snapshot(String networkId, String apiKey, int status, String view, String etag, String rules, long eventsEnd) {
    }

    private final ControlPlane cp;
    private final KafkaConsumer<String, byte[]> consumer;

    Published(ControlPlane cp) {
        this.cp = cp;
        this.consumer = new KafkaConsumer<>(Map.of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, cp.env("KAFKA_BOOTSTRAP_SERVERS"),
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false,
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"),
                new StringDeserializer(), new ByteArrayDeserializer());
    }

    /** The network as its owner ({@code apiKey}) sees it, and where its log partitions end. */
    Snapshot snapshot(String networkId, String apiKey) {
        ApiClient api = cp.api();
        ApiClient.Response net = api.get("/api/v1/networks/" + networkId, apiKey);
        ApiClient.Response rules = api.get("/api/v1/networks/" + networkId + "/egress-rules", apiKey);
        return new Snapshot(networkId, apiKey, net.status(), String.valueOf(net.body()), header(net, "ETag"), String.valueOf(rules.body()),
                end(partition(Topics.NETWORK_EVENTS, networkId)));
    }

    /** Asserts that nothing about the network changed since {@code before}, after a settle. */
    void assertNothingSince(Snapshot before) {
        ControlPlane.sleep(SETTLE.toMillis());
        List<String> keys = keysSince(Topics.NETWORK_EVENTS, before.networkId(), before.eventsEnd());
        assertThat(keys).as("events published for network %s", before.networkId()).doesNotContain(before.networkId());
        Snapshot after = snapshot(before.networkId(), before.apiKey());
        assertThat(after.status()).as("GET network status").isEqualTo(before.status());
        assertThat(after.etag()).as("network ETag").isEqualTo(before.etag());
        assertThat(after.view()).as("network view (versions, rules, VMs)").isEqualTo(before.view());
        assertThat(after.rules()).as("rule list").isEqualTo(before.rules());
    }

    private TopicPartition partition(String topic, String networkId) {
        int partitions = consumer.partitionsFor(topic, Duration.ofSeconds(10)).size();
        return new TopicPartition(topic, Topics.partitionFor(networkId, partitions));
    }

    private long end(TopicPartition tp) {
        return consumer.endOffsets(List.of(tp), Duration.ofSeconds(10)).get(tp);
    }

    /** Keys of the records appended to the network's partition of {@code topic} since {@code from}. */
    private List<String> keysSince(String topic, String networkId, long from) {
        TopicPartition tp = partition(topic, networkId);
        long end = end(tp);
        List<String> keys = new ArrayList<>();
        if (end <= from) {
            return keys;
        }
        consumer.assign(List.of(tp));
        consumer.seek(tp, from);
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (consumer.position(tp) < end && System.nanoTime() < deadline) {
            for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                keys.add(r.key());
            }
        }
        consumer.unsubscribe();
        return keys;
    }

    static String header(ApiClient.Response r, String name) {
        return r.headers().entrySet().stream().filter(e -> e.getKey().equalsIgnoreCase(name))
                .flatMap(e -> e.getValue().stream()).findFirst().orElse(null);
    }

    /**
     * Asserts an RFC 9457 answer: the status, {@code application/problem+json}, the code, and (when
     * {@code field} is given) an {@code errors} entry naming the field whose reason contains {@code reason}
     * (else the detail contains it).
     */
    static void assertProblem(ApiClient.Response r, int status, String code, String field, String reason) {
        assertThat(r.status()).as("status of %s", r.body()).isEqualTo(status);
        assertThat(header(r, "Content-Type")).as("content type").startsWith("application/problem+json");
        JsonNode body = r.body();
        assertThat(body).as("problem body").isNotNull();
        assertThat(body.path("status").asInt()).isEqualTo(status);
        if (code != null) {
            assertThat(body.path("code").asString()).as("code in %s", body).isEqualTo(code);
        }
        assertThat(body.path("detail").asString()).as("detail").isNotBlank();
        if (field != null) {
            List<String> matching = new ArrayList<>();
            for (JsonNode e : body.path("errors")) {
                if (field.equals(e.path("field").asString())) {
                    matching.add(e.path("reason").asString());
                }
            }
            assertThat(matching).as("errors naming field %s in %s", field, body).isNotEmpty();
            if (reason != null) {
                assertThat(matching).as("reason for %s in %s", field, body).anySatisfy(m -> assertThat(m).contains(reason));
            }
            assertThat(body.path("detail").asString()).contains(field);
        } else if (reason != null) {
            assertThat(body.path("detail").asString()).as("detail of %s", body).contains(reason);
        }
    }

    @Override
    public void close() {
        consumer.close();
    }
}
