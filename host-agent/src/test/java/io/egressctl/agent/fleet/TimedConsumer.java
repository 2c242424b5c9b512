package io.egressctl.agent.fleet;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Queue;

/**
 * The agent's consumer, as the agent configures it, that also notes what each poll returned: for each
 * record of its own host the time the poll handed it to the sync loop (the "agent received" stage of
 * {@code bench propagation}), and the bytes of its own records beside the bytes the consumer fetched
 * (its fetch metric {@code bytes-consumed-total}: its own records and those of the other hosts that
 * share its partition). Everything is noted on the consumer's own thread, after the real poll.
 */
final class TimedConsumer extends KafkaConsumer<String, byte[]> {

    /** One record of the host's own, handed to the sync loop at {@code micros} (wall clock, microseconds since the epoch). */
    record Receipt(String hostId, int partition, long offset, long micros) {
    }

    private final String hostId;
    private final Queue<Receipt> receipts;
    private Metric fetchedMetric;
    private volatile long fetchedBytes;
    private volatile long ownBytes;
    private volatile long records;
    private volatile long ownRecords;

    TimedConsumer(Map<String, Object> config, String hostId, Queue<Receipt> receipts) {
        super(config, new StringDeserializer(), new ByteArrayDeserializer());
        this.hostId = hostId;
        this.receipts = receipts;
    }

    @Override
    public ConsumerRecords<String, byte[]> poll(Duration timeout) {
        ConsumerRecords<String, byte[]> polled = super.poll(timeout);
        if (!polled.isEmpty()) {
            long now = nowMicros();
            long own = 0;
            long ownN = 0;
            for (ConsumerRecord<String, byte[]> r : polled) {
                if (hostId.equals(r.key())) {
                    ownN++;
                    own += Math.max(0, r.serializedKeySize()) + Math.max(0, r.serializedValueSize());
                    receipts.add(new Receipt(hostId, r.partition(), r.offset(), now));
                }
            }
            records += polled.count();
            ownRecords += ownN;
            ownBytes += own;
            fetchedBytes = (long) fetched();
        }
        return polled;
    }

    /** The consumer's own count of the bytes it fetched (all topics), 0 before its first fetch. */
    private double fetched() {
        if (fetchedMetric == null) {
            for (Map.Entry<MetricName, ? extends Metric> e : metrics().entrySet()) {
                MetricName n = e.getKey();
                if (n.name().equals("bytes-consumed-total") && n.group().equals("consumer-fetch-manager-metrics")
                        && !n.tags().containsKey("topic")) {
                    fetchedMetric = e.getValue();
                }
            }
        }
        return fetchedMetric == null ? 0 : ((Number) fetchedMetric.metricValue()).doubleValue();
    }

    long fetchedBytes() {
        return fetchedBytes;
    }

    long ownBytes() {
        return ownBytes;
    }

    long records() {
        return records;
    }

    long ownRecords() {
        return ownRecords;
    }

    static long nowMicros() {
        Instant i = Instant.now();
        return i.getEpochSecond() * 1_000_000L + i.getNano() / 1_000;
    }
}
