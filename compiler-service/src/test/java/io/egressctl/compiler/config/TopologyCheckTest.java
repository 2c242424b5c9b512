package io.egressctl.compiler.config;

import io.egressctl.compiler.CompilerApplication;
import io.egressctl.schemas.serde.KafkaDefaults;
import io.egressctl.schemas.serde.TopicTopology;
import io.egressctl.schemas.serde.Topics;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.kafka.test.EmbeddedKafkaKraftBroker;

import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Topology is checked, not changed (issue 12, item 4), against a real embedded KRaft broker of this
 * test's own: the compiler creates the topics it needs when they are absent (partitions, replication,
 * min.insync.replicas, no unclean leader election, retention), and a compiler configured for another
 * partition count than the existing topics refuses to start, says why, and leaves every topic as it was.
 */
class TopologyCheckTest {

    private static EmbeddedKafkaKraftBroker broker;
    private static Admin admin;

    @BeforeAll
    static void startBroker() {
        broker = new EmbeddedKafkaKraftBroker(1, 1);
        broker.brokerProperty("auto.create.topics.enable", "false");
        broker.afterPropertiesSet();
        admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.getBrokersAsString()));
    }

    @AfterAll
    static void stopBroker() {
        if (admin != null) {
            admin.close();
        }
        if (broker != null) {
            broker.destroy();
        }
    }

    @BeforeEach
    void noTopics() throws Exception {
        Set<String> names = admin.listTopics().names().get();
        if (!names.isEmpty()) {
            admin.deleteTopics(names).all().get();
            // deleted topics leave the broker's metadata a little after the call returns
            long deadline = System.currentTimeMillis() + 30_000;
            while (anyVisible(names) && System.currentTimeMillis() < deadline) {
                Thread.sleep(100);
            }
        }
    }

    private static boolean anyVisible(Collection<String> names) throws Exception {
        if (!admin.listTopics().names().get(10, java.util.concurrent.TimeUnit.SECONDS).isEmpty()) {
            return true;
        }
        for (var f : admin.describeTopics(names).topicNameValues().values()) {
            try {
                f.get();
                return true;
            } catch (java.util.concurrent.ExecutionException e) {
                // UnknownTopicOrPartitionException: gone
            }
        }
        return false;
    }

    @Test
    void absentTopicsAreCreatedDurablyAndASecondCheckOnlyReads() throws Exception {
        TopicTopology.Report first = TopicTopology.ensure(admin, InfraConfig.requiredTopics(6, KafkaDefaults.Durability.SINGLE_BROKER),
                Duration.ofSeconds(30));

        assertThat(first.created()).containsExactlyInAnyOrder(Topics.NETWORK_EVENTS, Topics.HOST_UPDATES,
                Topics.ENFORCEMENT_REPORTS, Topics.dlt(Topics.NETWORK_EVENTS), Topics.dlt(Topics.ENFORCEMENT_REPORTS));
        assertThat(first.warnings()).isEmpty();
        for (String t : first.created()) {
            assertThat(partitions(t)).as(t).isEqualTo(6);
            Config c = config(t);
            assertThat(c.get(TopicConfig.MIN_IN_SYNC_REPLICAS_CONFIG).value()).as(t).isEqualTo("1");
            assertThat(c.get(TopicConfig.UNCLEAN_LEADER_ELECTION_ENABLE_CONFIG).value()).as(t).isEqualTo("false");
            assertThat(describe(t).partitions().get(0).replicas()).as(t).hasSize(1);
        }
        assertThat(config(Topics.NETWORK_EVENTS).get(TopicConfig.RETENTION_MS_CONFIG).value()).isEqualTo("-1");
        assertThat(config(Topics.NETWORK_EVENTS).get(TopicConfig.RETENTION_BYTES_CONFIG).value()).isEqualTo("-1");
        assertThat(config(Topics.HOST_UPDATES).get(TopicConfig.RETENTION_MS_CONFIG).value())
                .isEqualTo(String.valueOf(Duration.ofDays(7).toMillis()));

        TopicTopology.Report second = TopicTopology.ensure(admin, InfraConfig.requiredTopics(6, KafkaDefaults.Durability.SINGLE_BROKER),
                Duration.ofSeconds(30));
        assertThat(second.created()).isEmpty();
        assertThat(second.checked()).hasSize(5);
        assertThat(second.warnings()).isEmpty();
    }

    @Test
    void aCompilerConfiguredForMorePartitionsRefusesToStartAndAddsNone() throws Exception {
        TopicTopology.ensure(admin, InfraConfig.requiredTopics(6, KafkaDefaults.Durability.SINGLE_BROKER), Duration.ofSeconds(30));
        Map<String, Map<String, String>> configsBefore = allConfigs();

        Throwable failure = startCompiler(12);

        TopicTopology.MismatchException mismatch = rootCause(failure, TopicTopology.MismatchException.class);
        assertThat(mismatch.getMessage())
                .startsWith("refusing to start")
                .contains("topic egress.network-events has 6 partitions, this service is configured for 12")
                .contains("topic egress.enforcement-reports has 6 partitions")
                .doesNotContain("topic egress.host-updates") // agents and the producer follow its own count
                .contains("EGRESS_PARTITIONS; set it to 6")
                .contains("Nothing was changed");
        assertThat(mismatch.mismatches()).hasSize(2); // host updates' and dead-letter topics' counts are taken as they are
        for (String t : List.of(Topics.NETWORK_EVENTS, Topics.HOST_UPDATES, Topics.ENFORCEMENT_REPORTS,
                Topics.dlt(Topics.NETWORK_EVENTS))) {
            assertThat(partitions(t)).as(t + " keeps its partitions").isEqualTo(6);
        }
        assertThat(allConfigs()).isEqualTo(configsBefore);
    }

    @Test
    void hostUpdatesAreCreatedWithTheirOwnCountAndAnExistingCountIsTakenWithAWarning() throws Exception {
        TopicTopology.Report created = TopicTopology.ensure(admin, InfraConfig.requiredTopics(6, 64,
                KafkaDefaults.Durability.SINGLE_BROKER), Duration.ofSeconds(30));
        assertThat(created.warnings()).isEmpty();
        assertThat(partitions(Topics.HOST_UPDATES)).isEqualTo(64);
        assertThat(partitions(Topics.NETWORK_EVENTS)).isEqualTo(6);
        assertThat(partitions(Topics.ENFORCEMENT_REPORTS)).isEqualTo(6);

        TopicTopology.Report again = TopicTopology.ensure(admin, InfraConfig.requiredTopics(6, 12,
                KafkaDefaults.Durability.SINGLE_BROKER), Duration.ofSeconds(30));
        assertThat(again.warnings()).containsExactly("topic egress.host-updates has 64 partitions, this service is configured"
                + " for 12; left as it is (its partition count decides nothing)");
        assertThat(partitions(Topics.HOST_UPDATES)).isEqualTo(64);
    }

    @Test
    void aCompilerConfiguredForFewerPartitionsRefusesToo() throws Exception {
        admin.createTopics(List.of(new NewTopic(Topics.NETWORK_EVENTS, 8, (short) 1))).all().get();

        Throwable failure = startCompiler(6);

        assertThat(rootCause(failure, TopicTopology.MismatchException.class).mismatches())
                .containsExactly("topic egress.network-events has 8 partitions, this service is configured for 6"
                        + " (egress.partitions / EGRESS_PARTITIONS; set it to 8 to run against this topic)");
        assertThat(partitions(Topics.NETWORK_EVENTS)).isEqualTo(8);
        // a refused start creates nothing either: the check decides before it writes
        assertThat(admin.listTopics().names().get()).containsExactly(Topics.NETWORK_EVENTS);
    }

    @Test
    void otherDifferencesAreReportedAndLeftAsTheyAre() throws Exception {
        admin.createTopics(List.of(
                new NewTopic(Topics.NETWORK_EVENTS, 6, (short) 1).configs(Map.of(TopicConfig.RETENTION_MS_CONFIG, "86400000")),
                new NewTopic(Topics.dlt(Topics.NETWORK_EVENTS), 1, (short) 1))).all().get();

        TopicTopology.Report report = TopicTopology.ensure(admin, InfraConfig.requiredTopics(6, KafkaDefaults.Durability.SINGLE_BROKER),
                Duration.ofSeconds(30));

        assertThat(report.created()).as(report.toString()).hasSize(3);
        assertThat(report.warnings()).contains(
                "topic egress.network-events has retention.ms=86400000, this service would create it with -1; left as it is"
                        + " (kafka-configs --alter changes it)",
                "topic egress.network-events.DLT has 1 partitions, this service is configured for 6; left as it is"
                        + " (its partition count decides nothing)");
        assertThat(config(Topics.NETWORK_EVENTS).get(TopicConfig.RETENTION_MS_CONFIG).value()).isEqualTo("86400000");
        assertThat(partitions(Topics.dlt(Topics.NETWORK_EVENTS))).isEqualTo(1);
    }

    @Test
    void aReplicationFactorAboveTheBrokersIsRefusedWithTheSettingToChange() {
        assertThatThrownBy(() -> TopicTopology.ensure(admin, InfraConfig.requiredTopics(6, KafkaDefaults.Durability.THREE_BROKERS),
                Duration.ofSeconds(30)))
                .isInstanceOf(TopicTopology.CreationException.class)
                .hasMessageContaining("with replication factor 3")
                .hasMessageContaining("EGRESS_TOPIC_REPLICATION_FACTOR")
                .hasMessageContaining("1/1 for one broker, 3/2 for three");
    }

    @Test
    void aMinInsyncAboveTheReplicationFactorStopsTheStart() {
        Throwable failure = startCompiler(6, "--egress.topics.min-insync-replicas=2");

        assertThat(rootCause(failure, IllegalArgumentException.class).getMessage())
                .contains("min.insync.replicas must be between 1 and the replication factor (1), was 2")
                .contains("EGRESS_TOPIC_MIN_INSYNC_REPLICAS");
    }

    /** Starts the real compiler application against the embedded broker; returns why it failed. */
    private static Throwable startCompiler(int partitions, String... extra) {
        List<String> args = new java.util.ArrayList<>(List.of(
                "--spring.kafka.bootstrap-servers=" + broker.getBrokersAsString(),
                "--egress.partitions=" + partitions,
                "--egress.topics.check-timeout=20s",
                "--egress.redis-url=redis://127.0.0.1:1",
                "--egress.schema-registry-url=http://127.0.0.1:1/apis/ccompat/v7",
                "--server.port=0",
                "--spring.main.banner-mode=off"));
        args.addAll(List.of(extra));
        try (ConfigurableApplicationContext ctx = new SpringApplicationBuilder(CompilerApplication.class)
                .web(WebApplicationType.NONE).run(args.toArray(String[]::new))) {
            throw new AssertionError("the compiler started although its configuration disagrees: " + ctx);
        } catch (AssertionError e) {
            throw e;
        } catch (Throwable t) {
            return t;
        }
    }

    private static <T extends Throwable> T rootCause(Throwable t, Class<T> type) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (type.isInstance(c)) {
                return type.cast(c);
            }
        }
        throw new AssertionError("expected a " + type.getSimpleName() + " among the causes of " + t, t);
    }

    private static TopicDescription describe(String topic) throws Exception {
        return admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
    }

    private static int partitions(String topic) throws Exception {
        return describe(topic).partitions().size();
    }

    private static Config config(String topic) throws Exception {
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        return admin.describeConfigs(List.of(r)).all().get().get(r);
    }

    private static Map<String, Map<String, String>> allConfigs() throws Exception {
        Collection<String> names = admin.listTopics().names().get();
        Map<String, Map<String, String>> all = new HashMap<>();
        for (String n : names) {
            all.put(n, config(n).entries().stream().filter(e -> e.value() != null)
                    .collect(Collectors.toMap(e -> e.name(), e -> e.value())));
        }
        return all;
    }
}
