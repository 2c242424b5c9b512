package io.egressctl.testinfra;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The switch EGRESS_TEST_INFRA, the images it starts and the own Redis's binary, without an engine. */
class InfrastructureTest {

    @Test
    void unsetBlankOrStackMeansTheLocalStackWhateverTheEngine() {
        assertThat(Infrastructure.choose(null, () -> true)).isEqualTo(Infrastructure.Source.STACK);
        assertThat(Infrastructure.choose("  ", () -> true)).isEqualTo(Infrastructure.Source.STACK);
        assertThat(Infrastructure.choose("stack", () -> true)).isEqualTo(Infrastructure.Source.STACK);
    }

    @Test
    void testcontainersIsTakenAsAskedEvenWithoutAnEngine() {
        // Starting then fails saying which engine to start; never a silent fall-back to the stack.
        assertThat(Infrastructure.choose("Testcontainers", () -> false)).isEqualTo(Infrastructure.Source.TESTCONTAINERS);
    }

    @Test
    void autoFollowsTheEngine() {
        assertThat(Infrastructure.choose("auto", () -> true)).isEqualTo(Infrastructure.Source.TESTCONTAINERS);
        assertThat(Infrastructure.choose("auto", () -> false)).isEqualTo(Infrastructure.Source.STACK);
    }

    @Test
    void anUnknownSettingIsRefusedNamingTheChoices() {
        assertThatThrownBy(() -> Infrastructure.choose("docker", () -> true))
                .hasMessageContaining("EGRESS_TEST_INFRA='docker'").hasMessageContaining("stack (default), testcontainers or auto");
    }

    @Test
    void theStackNeedsItsThreeVariablesAndSaysHowToGetThem() {
        assertThatThrownBy(() -> Infrastructure.fromStack(Map.of("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")::get))
                .hasMessageContaining("SCHEMA_REGISTRY_URL is not set").hasMessageContaining("./egressctl test");
        Infrastructure i = Infrastructure.fromStack(Map.of("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1",
                "SCHEMA_REGISTRY_URL", "http://127.0.0.1:2/apis/ccompat/v7", "REDIS_URL", "redis://127.0.0.1:3")::get);
        assertThat(i.source()).isEqualTo(Infrastructure.Source.STACK);
        assertThat(i.env("REDIS_URL")).isEqualTo("redis://127.0.0.1:3");
    }

    @Test
    void imagesAreTheProjectsOwnByDefaultOfficialOnRequestAndEachCanBeNamed() {
        assertThat(Infrastructure.images(Map.<String, String>of()::get)).containsValues(
                "egressctl/kafka:4.1.2", "egressctl/apicurio-registry:2.6.13.Final", "egressctl/redis:7.0");
        assertThat(Infrastructure.images(Map.of("EGRESS_IMAGES", "official")::get)).containsValues(
                "apache/kafka:4.1.2", "apicurio/apicurio-registry-mem:2.6.13.Final", "redis:7.0.15");
        assertThat(Infrastructure.images(Map.of("EGRESS_IMAGE_REDIS", "my/redis:1")::get)).containsEntry("REDIS_URL", "my/redis:1");
        assertThatThrownBy(() -> Infrastructure.images(Map.of("EGRESS_IMAGES", "hub")::get)).hasMessageContaining("local (default) or official");
    }

    @Test
    void aDatabaseOfItsOwnReplacesOrAddsTheNumberAndOnlyZeroToFifteen() {
        Infrastructure i = Infrastructure.fromStack(Map.of("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1",
                "SCHEMA_REGISTRY_URL", "http://127.0.0.1:2/apis/ccompat/v7", "REDIS_URL", "redis://127.0.0.1:3/0")::get);
        assertThat(i.redisUrl(7)).isEqualTo("redis://127.0.0.1:3/7");
        Infrastructure bare = Infrastructure.fromStack(Map.of("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1",
                "SCHEMA_REGISTRY_URL", "http://127.0.0.1:2/apis/ccompat/v7", "REDIS_URL", "redis://127.0.0.1:3")::get);
        assertThat(bare.redisUrl(12)).isEqualTo("redis://127.0.0.1:3/12");
        assertThatThrownBy(() -> bare.redisUrl(16)).hasMessageContaining("use 0 to 15");
        assertThatThrownBy(() -> bare.env("EGRESS_HOME")).hasMessageContaining("not an infrastructure endpoint");
    }

    @Test
    void theOwnRedisIsTheNamedBinaryThenThePathsThenTheStacksAndNoneSaysWhatToInstall(@TempDir Path dir) throws Exception {
        Path onPath = executable(dir.resolve("bin/redis-server"));
        Path stacks = executable(dir.resolve("home/lib/redis/redis-server"));
        Path named = executable(dir.resolve("other/redis-server"));
        String path = dir.resolve("nothing") + ":" + dir.resolve("bin");
        assertThat(OwnRedis.redisServer(Map.of("EGRESS_REDIS_SERVER", named.toString(), "PATH", path)::get)).isEqualTo(named);
        assertThat(OwnRedis.redisServer(Map.of("PATH", path, "EGRESS_HOME", dir.resolve("home").toString())::get)).isEqualTo(onPath);
        // "embedded" is the stack's word for its unpacked binary.
        assertThat(OwnRedis.redisServer(Map.of("EGRESS_REDIS_SERVER", "embedded", "PATH", dir.resolve("nothing").toString(),
                "EGRESS_HOME", dir.resolve("home").toString())::get)).isEqualTo(stacks);
        assertThatThrownBy(() -> OwnRedis.redisServer(Map.of("PATH", dir.resolve("nothing").toString())::get))
                .hasMessageContaining("finds no redis-server").hasMessageContaining("apt-get install redis-server")
                .hasMessageContaining("EGRESS_TEST_INFRA=testcontainers");
        assertThatThrownBy(() -> OwnRedis.redisServer(Map.of("EGRESS_REDIS_SERVER", dir.resolve("missing").toString())::get))
                .hasMessageContaining("is not executable");
    }

    private static Path executable(Path p) throws Exception {
        Files.createDirectories(p.getParent());
        Files.writeString(p, "#!/bin/sh\n");
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
        return p;
    }
}
