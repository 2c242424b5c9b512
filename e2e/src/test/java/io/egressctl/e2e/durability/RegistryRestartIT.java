package io.egressctl.e2e.durability;

import io.egressctl.testinfra.Infrastructure;
import io.egressctl.events.EnforcementReport;
import io.egressctl.events.HostUpdate;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.serde.AvroDeserializer;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.KafkaDefaults;
import io.egressctl.schemas.serde.Topics;
import io.egressctl.schemas.serde.WireFormat;
import org.apache.avro.Schema;
import org.apache.avro.SchemaBuilder;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificRecord;
import org.apache.avro.util.RandomData;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Durable schemas (issue 12, item 7): the local stack's schema registry keeps every schema, under the
 * same id, across a restart and across a crash (SIGKILL right after a registration). Records of every
 * contract type are registered through the project's serializer, the registry is restarted with
 * {@code scripts/stack.sh restart registry}, and then every record of the history (the contract topics
 * as the suite left them, plus this test's own) decodes again, with fresh registry clients, to the same
 * datum, and every subject version keeps its id and schema. Needs the stack of {@code ./egressctl test}
 * (KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL, EGRESS_HOME).
 */
class RegistryRestartIT {

    /** Every value type of the contract topics, and the topic whose subject it belongs to (the network events log carries two). */
    private static final Map<Class<? extends SpecificRecord>, String> TYPES = Map.of(
            RuleEvent.class, Topics.NETWORK_EVENTS,
            WorkloadEvent.class, Topics.NETWORK_EVENTS,
            HostUpdate.class, Topics.HOST_UPDATES,
            EnforcementReport.class, Topics.ENFORCEMENT_REPORTS);
    private static final int PER_TYPE = 20;
    private static final ObjectMapper JSON = new ObjectMapper();

    private static String bootstrap;
    private static String registryUrl;
    private static Path root;
    private static Admin admin;
    private static final String RUN = UUID.randomUUID().toString().substring(0, 8);
    private static final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @BeforeAll
    static void stack() {
        Infrastructure.assumeStack("it kills and restarts the local stack's registry process");
        bootstrap = required("KAFKA_BOOTSTRAP_SERVERS");
        registryUrl = required("SCHEMA_REGISTRY_URL");
        required("EGRESS_HOME");
        root = Path.of("").toAbsolutePath().getParent();
        assertThat(root.resolve("scripts/stack.sh")).exists();
        admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap));
    }

    @AfterAll
    static void cleanUp() throws Exception {
        if (admin != null) {
            List<String> ours = admin.listTopics().names().get().stream().filter(t -> t.contains(RUN)).toList();
            if (!ours.isEmpty()) {
                admin.deleteTopics(ours).all().get(30, TimeUnit.SECONDS);
            }
            admin.close();
        }
    }

    @Test
    void schemaIdsAndTheWholeHistorySurviveARestartAndACrashOfTheRegistry() throws Exception {
        // Records of every type, through the project's serializer, to topics of this run (subjects
        // <topic>-value, the same schemas as the contract topics', hence the same ids).
        Map<String, SpecificRecord> produced = produceEveryType("a");
        Map<String, Entry> before = history();
        Map<String, Versioned> subjectsBefore = subjectVersions();
        assertThat(before.values().stream().filter(e -> e.datum != null).count())
                .as("records of this run decode before any restart").isGreaterThanOrEqualTo(produced.size());

        stack("restart", "registry");

        assertSameAfterRestart(produced, before, subjectsBefore, "after a restart (SIGTERM)");
        assertReRegisteringGivesTheSameIds(before);

        // A crash right after new registrations: new subjects for every type, and a schema the registry
        // has never seen (a new id), with records carrying them in the log before the registry dies.
        List<Integer> idsBefore = subjectVersions().values().stream().map(Versioned::id).toList();
        Map<String, SpecificRecord> producedAfter = produceEveryType("b");
        Schema novel = novelSchema(RUN);
        HttpSchemaRegistryClient writer = new HttpSchemaRegistryClient(registryUrl);
        int novelId = writer.register("egress.it-durability." + RUN + ".novel-value", novel);
        killRegistryNow(); // at once: H2's default write delay (500 ms) lost such a registration in a trial
        assertThat(idsBefore).as("schema id %d is new", novelId).doesNotContain(novelId);
        stack("restart", "registry");

        assertThat(new HttpSchemaRegistryClient(registryUrl).schemaById(novelId))
                .as("schema id %d registered just before the SIGKILL", novelId).isEqualTo(novel);
        assertThat(subjectVersions()).containsKey("egress.it-durability." + RUN + ".novel-value/1");

        Map<String, SpecificRecord> all = new LinkedHashMap<>(produced);
        all.putAll(producedAfter);
        Map<String, Entry> beforeCrash = new LinkedHashMap<>(before);
        // the second batch decoded when it was written: the serializer registered its ids
        for (Map.Entry<String, SpecificRecord> p : producedAfter.entrySet()) {
            beforeCrash.put(p.getKey(), new Entry(-1, p.getValue()));
        }
        assertSameAfterRestart(all, beforeCrash, subjectsBefore, "after a SIGKILL right after registering");
    }

    // ---------------------------------------------------------------- steps

    /**
     * {@code PER_TYPE} random records of every contract type (Avro's RandomData over the generated
     * schema, so every field and branch is exercised), produced with the project's serializer and a
     * fresh registry client. Returns "topic/partition/offset" -> the record as sent.
     */
    private static Map<String, SpecificRecord> produceEveryType(String batch) throws Exception {
        Map<String, SpecificRecord> sent = new LinkedHashMap<>();
        Map<String, Object> p = KafkaDefaults.orderedProducer(bootstrap, "registry-restart-it");
        try (KafkaProducer<String, SpecificRecord> producer = new KafkaProducer<>(p, new StringSerializer(),
                new AvroSerializer<>(new HttpSchemaRegistryClient(registryUrl)))) {
            for (Map.Entry<Class<? extends SpecificRecord>, String> t : TYPES.entrySet()) {
                String topic = "egress.it-durability." + RUN + "." + batch + "." + t.getKey().getSimpleName();
                admin.createTopics(List.of(KafkaDefaults.keptForever(topic, 1, KafkaDefaults.Durability.SINGLE_BROKER)))
                        .all().get(30, TimeUnit.SECONDS);
                long seed = 42;
                for (SpecificRecord r : randomRecords(t.getKey(), PER_TYPE, seed)) {
                    RecordMetadata m = producer.send(new ProducerRecord<>(topic, "k", r)).get(30, TimeUnit.SECONDS);
                    sent.put(m.topic() + "/" + m.partition() + "/" + m.offset(), r);
                }
            }
        }
        return sent;
    }

    /**
     * Every record of the contract topics and of this run's topics, by "topic/partition/offset": its
     * schema id and what a fresh deserializer (no cached ids) makes of it. Records that do not decode
     * (left in the topics by older stacks whose registry forgot their ids, or poison) have a null datum.
     */
    private static Map<String, Entry> history() throws Exception {
        List<String> topics = new ArrayList<>(new java.util.TreeSet<>(TYPES.values()));
        admin.listTopics().names().get().stream().filter(t -> t.contains(RUN)).sorted().forEach(topics::add);
        AvroDeserializer<SpecificRecord> fresh = new AvroDeserializer<>(new HttpSchemaRegistryClient(registryUrl));
        Map<String, Entry> out = new TreeMap<>();
        Map<String, Object> c = Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false, ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 2000,
                ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, false);
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(c, new StringDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> tps = new ArrayList<>();
            for (String t : topics) {
                List<PartitionInfo> infos = consumer.partitionsFor(t, Duration.ofSeconds(10));
                if (infos != null) {
                    infos.forEach(i -> tps.add(new TopicPartition(t, i.partition())));
                }
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> end = consumer.endOffsets(tps, Duration.ofSeconds(30));
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
            while (tps.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp))) {
                assertThat(System.nanoTime() - deadline).as("reading the history took over 3 minutes").isNegative();
                for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    if (r.value() == null || r.offset() >= end.get(new TopicPartition(r.topic(), r.partition()))) {
                        continue;
                    }
                    String key = r.topic() + "/" + r.partition() + "/" + r.offset();
                    int id;
                    try {
                        id = WireFormat.schemaId(r.topic(), r.value());
                    } catch (RuntimeException e) {
                        out.put(key, new Entry(-1, null));
                        continue;
                    }
                    SpecificRecord datum;
                    try {
                        datum = fresh.deserialize(r.topic(), r.value());
                    } catch (RuntimeException e) {
                        datum = null;
                    }
                    out.put(key, new Entry(id, datum));
                }
            }
        }
        return out;
    }

    private static void assertSameAfterRestart(Map<String, SpecificRecord> produced, Map<String, Entry> before,
                                               Map<String, Versioned> subjectsBefore, String when) throws Exception {
        Map<String, Versioned> subjectsAfter = subjectVersions();
        for (Map.Entry<String, Versioned> s : subjectsBefore.entrySet()) {
            assertThat(subjectsAfter.get(s.getKey())).as("subject version %s %s", s.getKey(), when).isEqualTo(s.getValue());
        }

        Map<String, Entry> after = history();
        long decodedBefore = 0;
        long undecodableBefore = 0;
        for (Map.Entry<String, Entry> b : before.entrySet()) {
            if (b.getValue().datum == null) {
                undecodableBefore++;
                continue;
            }
            decodedBefore++;
            Entry a = after.get(b.getKey());
            assertThat(a).as("record %s is still in the log %s", b.getKey(), when).isNotNull();
            assertThat(a.datum).as("record %s (schema id %s) decodes %s", b.getKey(), a.id, when).isNotNull();
            assertThat(a.datum).as("record %s decodes to the same datum %s", b.getKey(), when).isEqualTo(b.getValue().datum);
        }
        for (Map.Entry<String, SpecificRecord> p : produced.entrySet()) {
            assertThat(after.get(p.getKey())).as("record %s", p.getKey()).isNotNull();
            assertThat(after.get(p.getKey()).datum).as("record %s decodes to what was sent %s", p.getKey(), when)
                    .isEqualTo(p.getValue());
        }
        System.out.printf("RegistryRestartIT %s: %d records of the history decoded before and after with the same datum"
                + " (%d were undecodable before the restart: written with ids an older, non-persistent registry forgot),"
                + " %d subject versions kept their ids%n", when, decodedBefore, undecodableBefore, subjectsBefore.size());
    }

    /** A restarted service registers its schemas again: it must get the ids its records were written with. */
    private static void assertReRegisteringGivesTheSameIds(Map<String, Entry> before) {
        HttpSchemaRegistryClient fresh = new HttpSchemaRegistryClient(registryUrl);
        Map<String, Integer> idBySchema = new LinkedHashMap<>();
        for (Entry e : before.values()) {
            if (e.datum != null && e.id >= 0) {
                idBySchema.putIfAbsent(e.datum.getSchema().getFullName(), e.id);
            }
        }
        for (Map.Entry<Class<? extends SpecificRecord>, String> t : TYPES.entrySet()) {
            Schema current = SpecificData.get().getSchema(t.getKey());
            int id = fresh.register(io.egressctl.schemas.serde.SubjectNameStrategy.forTopic(t.getValue(), false)
                    .subject(t.getValue(), false, current), current);
            Integer written = idBySchema.get(current.getFullName());
            if (written != null) {
                assertThat(fresh.schemaById(written)).isNotNull();
            }
            assertThat(fresh.schemaById(id)).as("schema id %d of %s after the restart", id, t.getKey().getSimpleName())
                    .isEqualTo(current);
        }
    }

    // ---------------------------------------------------------------- the registry process

    private static void stack(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("bash", root.resolve("scripts/stack.sh").toString()));
        cmd.addAll(List.of(args));
        Path log = Files.createTempFile("stack-", ".log");
        Process p = new ProcessBuilder(cmd).directory(root.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile()).start();
        assertThat(p.waitFor(6, TimeUnit.MINUTES)).as("stack.sh %s finished in time", String.join(" ", args)).isTrue();
        String out = Files.readString(log);
        System.out.print(out);
        assertThat(p.exitValue()).as("stack.sh %s: %s", String.join(" ", args), out).isZero();
    }

    /** SIGKILL of the registry, the moment the last registration returned (no graceful shutdown). */
    private static void killRegistryNow() throws IOException, InterruptedException {
        Path pidFile = Path.of(System.getenv("EGRESS_HOME"), "pids", "registry.pid");
        long pid = Long.parseLong(Files.readString(pidFile).trim());
        ProcessHandle h = ProcessHandle.of(pid).orElseThrow(() -> new AssertionError("registry pid " + pid + " not running"));
        assertThat(h.info().commandLine().orElse("")).contains("-jar");
        h.destroyForcibly();
        h.onExit().join();
    }

    /** Every subject version of the registry: subject/version -> (id, schema). */
    private static Map<String, Versioned> subjectVersions() throws Exception {
        Map<String, Versioned> out = new TreeMap<>();
        for (JsonNode s : get("/subjects")) {
            String subject = s.asString();
            for (JsonNode v : get("/subjects/" + enc(subject) + "/versions")) {
                JsonNode sv = get("/subjects/" + enc(subject) + "/versions/" + v.asInt());
                out.put(subject + "/" + v.asInt(), new Versioned(sv.get("id").asInt(), new Schema.Parser().parse(sv.get("schema").asString())));
            }
        }
        return out;
    }

    private static JsonNode get(String path) throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(registryUrl + path)).timeout(Duration.ofSeconds(10)).GET()
                .build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as("GET %s: %s", path, r.body()).isEqualTo(200);
        return JSON.readTree(r.body());
    }

    private static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
    }

    // ---------------------------------------------------------------- data

    /** Random but valid records of a generated type: RandomData over its schema, re-read as the class. */
    private static List<SpecificRecord> randomRecords(Class<? extends SpecificRecord> type, int count, long seed) throws IOException {
        Schema schema = SpecificData.get().getSchema(type);
        List<SpecificRecord> out = new ArrayList<>();
        for (Object generic : new RandomData(schema, count, seed)) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            BinaryEncoder enc = EncoderFactory.get().binaryEncoder(bytes, null);
            new GenericDatumWriter<>(schema).write(generic, enc);
            enc.flush();
            SpecificDatumReader<SpecificRecord> reader = new SpecificDatumReader<>(schema, schema, SpecificData.getForClass(type));
            out.add(reader.read(null, DecoderFactory.get().binaryDecoder(bytes.toByteArray(), null)));
        }
        return out;
    }

    /** A record schema no registry has seen: its own name per run, so registering it makes a new id. */
    private static Schema novelSchema(String run) {
        return SchemaBuilder.record("Crash" + run).namespace("io.egressctl.it").fields()
                .requiredString("note").requiredLong("at").endRecord();
    }

    private static String required(String name) {
        String v = System.getenv(name);
        if (v == null || v.isBlank()) {
            throw new IllegalStateException(name + " is not set: run the end-to-end tests with ./egressctl test, which starts the stack");
        }
        return v;
    }

    private record Entry(int id, SpecificRecord datum) {
    }

    private record Versioned(int id, Schema schema) {
    }
}
