package io.egressctl.cli.bench;

import io.egressctl.cli.bench.ApiBench.Stats;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Kafka's own produce-to-consume latency, the floor of any latency the pipeline measures: records
 * sent one at a time (acks=all, linger.ms=0) through a fresh topic of one partition, a consumer
 * polling in another thread; the topic is deleted afterwards. Shared by the benches that report it.
 */
final class KafkaFloor {

    private KafkaFloor() {
    }

    /** Measures {@code records} round trips after {@code warmup} uncounted ones, on topic {@code egress.bench.api-floor-<suffix>}. */
    static Stats measure(String bootstrap, String suffix, int records, int warmup, PrintStream out) {
        String topic = "egress.bench.api-floor-" + suffix;
        out.printf(Locale.ROOT, "kafka floor: %d records one at a time through fresh topic %s ...%n", records, topic);
        Map<String, Object> common = io.egressctl.schemas.serde.KafkaDefaults.client(bootstrap);
        try (Admin admin = Admin.create(common)) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            try {
                return measure(bootstrap, topic, records, warmup);
            } finally {
                admin.deleteTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            throw new IllegalStateException("kafka floor: " + e.getMessage(), e);
        }
    }

    private static Stats measure(String bootstrap, String topic, int n, int warmup) throws InterruptedException {
        Map<String, Object> pc = io.egressctl.schemas.serde.KafkaDefaults.client(bootstrap,
                ProducerConfig.ACKS_CONFIG, "all", ProducerConfig.LINGER_MS_CONFIG, 0, ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        Map<String, Object> cc = io.egressctl.schemas.serde.KafkaDefaults.client(bootstrap,
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false, ConsumerConfig.FETCH_MIN_BYTES_CONFIG, 1);
        BlockingQueue<Long> received = new ArrayBlockingQueue<>(16);
        AtomicBoolean running = new AtomicBoolean(true);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pc, new ByteArraySerializer(), new ByteArraySerializer());
             KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cc, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            consumer.position(tp);
            Thread poller = new Thread(() -> {
                while (running.get()) {
                    for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
                        long now = System.nanoTime();
                        received.offer(now - ByteBuffer.wrap(r.value()).getLong());
                    }
                }
            }, "bench-floor-consumer");
            poller.setDaemon(true);
            poller.start();
            double[] ms = new double[n];
            try {
                for (int i = 0; i < warmup + n; i++) {
                    byte[] value = ByteBuffer.allocate(Long.BYTES).putLong(System.nanoTime()).array();
                    producer.send(new ProducerRecord<>(topic, 0, null, value));
                    Long nanos = received.poll(30, TimeUnit.SECONDS);
                    if (nanos == null) {
                        throw new IllegalStateException("kafka floor: record " + i + " not consumed within 30 s");
                    }
                    if (i >= warmup) {
                        ms[i - warmup] = nanos / 1e6;
                    }
                }
            } finally {
                running.set(false);
                poller.join(5_000);
            }
            return Stats.of(ms);
        }
    }
}
