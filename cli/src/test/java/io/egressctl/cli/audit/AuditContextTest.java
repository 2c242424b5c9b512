package io.egressctl.cli.audit;

import io.egressctl.cli.Env;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Connection settings: flags over the environment, client properties passed through to Kafka. */
class AuditContextTest {

    static final Env ENV = Env.from(Map.of("KAFKA_BOOTSTRAP_SERVERS", "kafka-env:9092", "SCHEMA_REGISTRY_URL", "http://registry-env:8081",
            "REDIS_URL", "redis://redis-env:6379"));
    static final Clock CLOCK = Clock.fixed(Instant.parse("2024-05-01T12:00:00Z"), ZoneOffset.UTC);
    static final PrintStream NULL = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);

    static AuditContext context(boolean terminal, String... args) {
        return new AuditContext(ENV, Options.parse(args, AuditContext.FLAGS), NULL, NULL, CLOCK, terminal);
    }

    @Test
    void endpointsComeFromTheEnvironmentUnlessFlagsSayOtherwise() {
        AuditContext env = context(false);
        assertThat(env.bootstrap()).isEqualTo("kafka-env:9092");
        assertThat(env.registryUrl()).isEqualTo("http://registry-env:8081");
        assertThat(env.redisUrl()).isEqualTo("redis://redis-env:6379");
        AuditContext flags = context(false, "--bootstrap-server", "broker:9093", "--schema-registry", "https://sr:8081",
                "--redis", "rediss://cache:6380");
        assertThat(flags.bootstrap()).isEqualTo("broker:9093");
        assertThat(flags.registryUrl()).isEqualTo("https://sr:8081");
        assertThat(flags.redisUrl()).isEqualTo("rediss://cache:6380");
        assertThat(flags.now()).isEqualTo(Instant.parse("2024-05-01T12:00:00Z"));
    }

    @Test
    void clientSettingsGoStraightToTheConsumerAndRegistrySettingsToTheRegistry(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("client.properties");
        Files.writeString(file, """
                security.protocol=SASL_SSL
                sasl.mechanism=PLAIN
                sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";
                ssl.truststore.location=/etc/kafka/truststore.jks
                group.id=someone-elses-group
                enable.auto.commit=true
                schema.registry.basic.auth.user.info=sr-user:sr-pass
                basic.auth.credentials.source=USER_INFO
                """);
        AuditContext ctx = context(false, "--command-config", file.toString(), "--consumer-property", "sasl.mechanism=SCRAM-SHA-512",
                "--consumer-property", "max.poll.records=500");
        Properties p = ctx.consumerProperties();
        assertThat(p.getProperty("bootstrap.servers")).isEqualTo("kafka-env:9092");
        assertThat(p.getProperty("security.protocol")).isEqualTo("SASL_SSL");
        assertThat(p.getProperty("sasl.mechanism")).as("a flag wins over the file").isEqualTo("SCRAM-SHA-512");
        assertThat(p.getProperty("sasl.jaas.config")).contains("PlainLoginModule");
        assertThat(p.getProperty("ssl.truststore.location")).isEqualTo("/etc/kafka/truststore.jks");
        assertThat(p.getProperty("max.poll.records")).isEqualTo("500");
        assertThat(p.getProperty("group.id")).as("never a consumer group").isNull();
        assertThat(p.getProperty("enable.auto.commit")).as("never commits").isEqualTo("false");
        assertThat(p.getProperty("value.deserializer")).endsWith("ByteArrayDeserializer");
        assertThat(p.stringPropertyNames()).noneMatch(k -> k.contains("basic.auth"));
        assertThat(ctx.registryProperties()).isEqualTo(Map.of("basic.auth.user.info", "sr-user:sr-pass",
                "basic.auth.credentials.source", "USER_INFO"));
    }

    @Test
    void topicsFollowThePrefixOrTheirOwnFlags() {
        AuditContext plain = context(false);
        assertThat(Set.of(plain.eventTopic(), plain.reportTopic()))
                .containsExactlyInAnyOrder("egress.network-events", "egress.enforcement-reports");
        AuditContext prefixed = context(false, "--topic-prefix", "staging.egress.", "--report-topic", "reports");
        assertThat(prefixed.eventTopic()).isEqualTo("staging.egress.network-events");
        assertThat(prefixed.reportTopic()).isEqualTo("reports");
        assertThat(context(false, "--event-topic", "old.egress.rule-events").eventTopic()).isEqualTo("old.egress.rule-events");
    }

    @Test
    void progressOnlyOnATerminalAndOutputTableOrJson() {
        assertThat(context(true).showsProgress()).isTrue();
        assertThat(context(false).showsProgress()).isFalse();
        assertThat(context(true, "--no-progress").showsProgress()).isFalse();
        assertThat(context(false, "--progress").showsProgress()).isTrue();
        assertThat(context(false).json()).isFalse();
        assertThat(context(false, "--output", "json").json()).isTrue();
        assertThatThrownBy(() -> context(false, "--output", "yaml")).isInstanceOf(UsageException.class);
        assertThatThrownBy(() -> context(false, "--consumer-property", "novalue")).isInstanceOf(UsageException.class);
        assertThatThrownBy(() -> context(false, "--command-config", "/nonexistent/file")).isInstanceOf(UsageException.class)
                .hasMessageContaining("/nonexistent/file");
    }

    @Test
    void theCommandLineIsCheckedBeforeAnythingIsContacted() {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8);
        assertThat(AuditCommand.run(ENV, new String[] {"state"}, NULL, e, CLOCK, false)).isEqualTo(2);
        assertThat(AuditCommand.run(ENV, new String[] {"history", "--netwrok", "n"}, NULL, e, CLOCK, false)).isEqualTo(2);
        assertThat(AuditCommand.run(ENV, new String[] {"frobnicate"}, NULL, e, CLOCK, false)).isEqualTo(2);
        assertThat(AuditCommand.run(ENV, new String[] {"diff", "--network", "n", "--from", "-1h", "--to", "-2h"}, NULL, e, CLOCK, false))
                .isEqualTo(2);
        assertThat(err.toString(StandardCharsets.UTF_8)).contains("audit state: --network is required")
                .contains("audit history: unknown option --netwrok").contains("audit frobnicate: unknown command 'frobnicate'")
                .contains("audit diff: --to 2024-05-01T10:00:00.000Z is before --from 2024-05-01T11:00:00.000Z");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        assertThat(AuditCommand.run(ENV, new String[] {"help"}, new PrintStream(out, true, StandardCharsets.UTF_8), e, CLOCK, false))
                .isZero();
        assertThat(out.toString(StandardCharsets.UTF_8)).startsWith("usage: egressctl audit <command> [options]");
    }
}
