package io.egressctl.schemas.security;

import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourceType;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The shipped policy files (stack/acls) parse, and say what docs/operations.md says they say. */
class AccessPolicyTest {

    private static final Path ACLS = Path.of("..", "stack", "acls");

    private static List<AclBinding> shipped() throws Exception {
        return AccessPolicy.kafkaAcls(Files.readString(ACLS.resolve("kafka.acl")), "kafka.acl");
    }

    private static Set<String> ops(List<AclBinding> acls, String user, String topic) {
        return acls.stream().filter(b -> b.entry().principal().equals("User:" + user))
                .filter(b -> b.pattern().resourceType() == ResourceType.TOPIC)
                .filter(b -> b.pattern().patternType() == PatternType.LITERAL ? b.pattern().name().equals(topic) : topic.startsWith(b.pattern().name()))
                .map(b -> b.entry().operation().name()).collect(Collectors.toSet());
    }

    @Test
    void writersOfEachTopicAreTheOnesTheDesignNames() throws Exception {
        List<AclBinding> acls = shipped();
        assertThat(AccessPolicy.principals(acls)).containsExactly("rule-service", "compiler-service", "agent", "audit");
        assertThat(ops(acls, "rule-service", "egress.network-events")).contains("WRITE").doesNotContain("READ");
        assertThat(ops(acls, "rule-service", "egress.host-updates")).isEmpty();
        assertThat(ops(acls, "compiler-service", "egress.host-updates")).contains("WRITE");
        assertThat(ops(acls, "compiler-service", "egress.network-events")).contains("READ").doesNotContain("WRITE");
        assertThat(ops(acls, "agent", "egress.host-updates")).containsExactlyInAnyOrder("READ", "DESCRIBE");
        assertThat(ops(acls, "agent", "egress.enforcement-reports")).containsExactlyInAnyOrder("WRITE", "DESCRIBE");
        assertThat(ops(acls, "agent", "egress.network-events")).isEmpty();
        assertThat(acls.stream().filter(b -> b.entry().principal().equals("User:audit")).map(b -> b.entry().operation()))
                .doesNotContain(AclOperation.WRITE, AclOperation.CREATE, AclOperation.ALTER, AclOperation.DELETE);
    }

    @Test
    void badLinesAreRefusedWithTheirPlace() {
        assertThatThrownBy(() -> AccessPolicy.kafkaAcls("# c\nagent Read topic literal\n", "f.acl")).hasMessageStartingWith("f.acl:2: expected 5 fields");
        assertThatThrownBy(() -> AccessPolicy.kafkaAcls("agent Fly topic literal t\n", "f.acl")).hasMessageContaining("'Fly' is not a Kafka ACL operation");
        assertThatThrownBy(() -> AccessPolicy.kafkaAcls("agent Read table literal t\n", "f.acl")).hasMessageContaining("resource type 'table'");
        assertThatThrownBy(() -> AccessPolicy.kafkaAcls("agent Read topic glob t\n", "f.acl")).hasMessageContaining("pattern 'glob'");
        assertThat(AccessPolicy.kafkaAcls("a DescribeConfigs,IDEMPOTENT_WRITE cluster literal kafka-cluster", "f").stream()
                .map(b -> b.entry().operation())).containsExactly(AclOperation.DESCRIBE_CONFIGS, AclOperation.IDEMPOTENT_WRITE);
    }

    @Test
    void redisUsersAreWrittenPerHostWithPasswordDigestsOnly() throws Exception {
        String template = Files.readString(ACLS.resolve("redis-users.acl"));
        Map<String, String> pw = Map.of("admin", "pw-admin", "compiler-service", "pw-compiler", "rule-service", "pw-rules",
                "agent-h1", "pw-agent-1", "agent-h2", "pw-agent-2", "audit", "pw-audit");
        String file = AccessPolicy.redisUsers(template, List.of("h1", "h2"), pw::get);
        assertThat(file.lines()).isNotEmpty().noneMatch(l -> l.startsWith("#")).noneMatch(l -> l.contains("pw-") || l.contains("<"));
        assertThat(file.lines().filter(l -> l.startsWith("user agent-h1 "))).singleElement().asString()
                .contains("#" + AccessPolicy.sha256("pw-agent-1"), "%R~egress:host:{h1}:*").doesNotContain("{h2}");
        assertThat(file).contains("user default off");
        assertThat(AccessPolicy.redisUserNames(template, List.of("h1", "h2")))
                .containsExactly("default", "admin", "compiler-service", "rule-service", "agent-h1", "agent-h2", "audit");
        assertThatThrownBy(() -> AccessPolicy.redisUsers(template, List.of("h1"), n -> null)).hasMessageContaining("no password for Redis user admin");
        assertThatThrownBy(() -> AccessPolicy.redisUsers(template, List.of("h 1"), pw::get)).hasMessageContaining("host id 'h 1'");
    }

    @Test
    void staleRulesAreThoseInForceThatTheFileDoesNotHold() throws Exception {
        List<AclBinding> shipped = shipped();
        List<AclBinding> extra = AccessPolicy.kafkaAcls("someone Read topic literal egress.host-updates", "extra");
        List<AclBinding> inForce = new java.util.ArrayList<>(shipped);
        inForce.addAll(extra);

        assertThat(AccessPolicy.stale(inForce, shipped)).as("a line removed from the file").containsExactlyElementsOf(extra);
        assertThat(AccessPolicy.stale(shipped, shipped)).as("the file as it is in force").isEmpty();
        assertThat(AccessPolicy.stale(List.of(), shipped)).as("nothing in force yet: only additions").isEmpty();
        assertThat(AccessPolicy.stale(AccessPolicy.kafkaAcls("agent Describe,Read,Write topic literal egress.host-updates", "wider"), shipped))
                .as("an operation the file no longer grants").extracting(b -> b.entry().operation()).containsExactly(AclOperation.WRITE);
    }
}
