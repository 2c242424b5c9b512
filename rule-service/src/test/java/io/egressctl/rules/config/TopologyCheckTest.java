package io.egressctl.rules.config;

import io.egressctl.rules.RuleServiceApplication;
import io.egressctl.schemas.serde.TopicTopology;
import io.egressctl.schemas.serde.Topics;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.kafka.test.EmbeddedKafkaKraftBroker;

import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Topology is checked, not changed (issue 12, item 4): rule-service started with another partition
 * count than the existing event log refuses to start, says which topic and which setting, and neither
 * adds partitions nor creates the other topic. A real embedded KRaft broker of this test's own.
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

    @Test
    void aRuleServiceConfiguredForAnotherPartitionCountRefusesToStartAndChangesNothing() throws Exception {
        admin.createTopics(List.of(new NewTopic(Topics.NETWORK_EVENTS, 6, (short) 1))).all().get();

        Throwable failure = null;
        try (ConfigurableApplicationContext ctx = new SpringApplicationBuilder(RuleServiceApplication.class).run(
                "--spring.kafka.bootstrap-servers=" + broker.getBrokersAsString(),
                "--egress.partitions=12",
                "--egress.topics.check-timeout=20s",
                "--egress.redis-url=redis://127.0.0.1:1",
                "--egress.schema-registry-url=http://127.0.0.1:1/apis/ccompat/v7",
                "--server.port=0",
                "--spring.main.banner-mode=off")) {
            throw new AssertionError("rule-service started although its partition count disagrees: " + ctx);
        } catch (AssertionError e) {
            throw e;
        } catch (Throwable t) {
            failure = t;
        }

        TopicTopology.MismatchException mismatch = null;
        for (Throwable c = failure; c != null; c = c.getCause()) {
            if (c instanceof TopicTopology.MismatchException m) {
                mismatch = m;
            }
        }
        assertThat(mismatch).as("cause of %s", failure).isNotNull();
        assertThat(mismatch.getMessage()).startsWith("refusing to start")
                .contains("topic egress.network-events has 6 partitions, this service is configured for 12"
                        + " (egress.partitions / EGRESS_PARTITIONS; set it to 6 to run against this topic)")
                .contains("Nothing was changed");
        assertThat(admin.describeTopics(List.of(Topics.NETWORK_EVENTS)).allTopicNames().get().get(Topics.NETWORK_EVENTS).partitions())
                .hasSize(6);
        assertThat(admin.listTopics().names().get()).containsExactly(Topics.NETWORK_EVENTS);
    }
}
