package io.egressctl.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What README's commands rely on that a machine which never built the project would miss: the producer
 * example's jar is built by {@code up}, {@code datacenter ruleset} without a data center says why and fails
 * instead of printing nothing, and the three services' images come from one Dockerfile whose targets
 * docker-compose.yml and scripts/images.sh both name.
 */
class FreshMachineCommandsTest {

    private static final List<String> SERVICES = List.of("compiler-service", "rule-service", "host-agent");

    @Test
    void upBuildsTheProducerExampleThatDocsProducersRuns() throws IOException {
        Path root = DocumentedVariablesTest.repositoryRoot();
        String services = Files.readString(root.resolve("scripts/services.sh"));
        Matcher pl = Pattern.compile("install -pl (\\S+)").matcher(services);
        assertThat(pl.find()).as("svc_build's Maven line").isTrue();
        assertThat(List.of(pl.group(1).split(","))).contains(".", "core", "schemas", "examples/producer", "cli");
        assertThat(Files.readString(root.resolve("docs/producers.md")))
                .contains("java -jar examples/producer/target/producer-example-0.1.0-SNAPSHOT-exec.jar");
        assertThat(services).contains("examples/producer/target/producer-example-$SVC_VERSION-exec.jar");
    }

    @Test
    void datacenterRulesetWithoutADataCenterFailsSayingWhy(@TempDir Path home) throws Exception {
        Path root = DocumentedVariablesTest.repositoryRoot();
        ProcessBuilder pb = new ProcessBuilder("bash", root.resolve("scripts/datacenter.sh").toString(), "ruleset", "host-2")
                .redirectErrorStream(true);
        pb.environment().put("EGRESS_HOME", home.toString());
        pb.environment().put("EGRESS_DC_PREFIX", "fmct");
        Process q = pb.start();
        String out = new String(q.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(q.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(q.exitValue()).as(out).isEqualTo(1);
        assertThat(out).contains("no data center built from " + home.toRealPath(), home.resolve("agents/host-2.nft").toString());
    }

    @Test
    void theServicesImagesComeFromOneDockerfileWithATargetEach() throws IOException {
        Path root = DocumentedVariablesTest.repositoryRoot();
        String dockerfile = Files.readString(root.resolve("docker/services/Dockerfile"));
        assertThat(count(dockerfile, "mvn -B")).as("one Maven run").isEqualTo(1);
        for (String s : SERVICES) {
            assertThat(dockerfile).containsPattern("(?m)^FROM service AS " + s + "$");
            assertThat(dockerfile).contains("COPY --from=build /src/" + s + "/target/" + s + "-0.1.0-SNAPSHOT.jar /app/app.jar");
            assertThat(root.resolve(s + "/Dockerfile")).as("no Dockerfile of its own").doesNotExist();
        }
        String compose = Files.readString(root.resolve("docker-compose.yml"));
        assertThat(compose).contains("dockerfile: docker/services/Dockerfile");
        for (String s : SERVICES) {
            assertThat(compose).contains("target: " + s);
        }
        String images = Files.readString(root.resolve("scripts/images.sh"));
        assertThat(images).contains("-f \"$LIB_ROOT/docker/services/Dockerfile\" --target \"$m\"");
        assertThat(count(images, "run_parallel \"\\$\\{")).as("one build loop over the waves").isEqualTo(1);
    }

    private static int count(String text, String regex) {
        Matcher m = Pattern.compile(regex).matcher(text);
        List<String> found = new ArrayList<>();
        while (m.find()) {
            found.add(m.group());
        }
        return found.size();
    }
}
