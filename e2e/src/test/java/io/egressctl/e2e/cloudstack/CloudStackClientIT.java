package io.egressctl.e2e.cloudstack;

import io.egressctl.cli.api.ApiClient;
import io.egressctl.e2e.support.ControlPlane;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static io.egressctl.e2e.support.ControlPlane.lineOf;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * An unmodified CloudStack client, Debian's {@code cs} package (command {@code cloudstack}), run as a
 * subprocess against {@code /client/api} of the running control plane: it signs its requests
 * (signatureVersion 3 with expires), creates egress firewall rules and polls their async jobs itself,
 * lists and deletes them; each rule must reach, and then leave, exactly the rendered ruleset of the
 * agents of the VMs it covers.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class CloudStackClientIT {

    static final JsonMapper JSON = JsonMapper.builder().build();

    static String client;
    static ControlPlane cp;
    static String network;
    static String h1;
    static String h2;
    static String tcpRule;
    static String icmpRule;

    @BeforeAll
    static void setUp() {
        client = findClient();
        Assumptions.assumeTrue(client != null,
                "the CloudStack client is missing: install Debian's 'cs' package (apt-get install -y cs; command 'cloudstack')");
        cp = ControlPlane.shared();
        h1 = cp.unique("cs-h1");
        h2 = cp.unique("cs-h2");
        cp.startAgent(h1);
        cp.startAgent(h2);
        network = cp.unique("cs-net");
        ApiClient api = cp.api();
        ApiClient.Response r = api.post("/api/v1/networks?wait=compiled&timeout=20s", cp.tenantKey(),
                Map.of("networkId", network, "guestCidr", "10.40.0.0/24"));
        assertThat(r.status()).as("create network: %s", r.body()).isEqualTo(201);
        place(api, "vm-a", "10.40.0.11", h1);
        place(api, "vm-b", "10.40.0.12", h2);
    }

    @AfterAll
    static void stopHosts() {
        if (cp != null) {
            cp.stopAgent(h1, false);
            cp.stopAgent(h2, false);
        }
    }

    static void place(ApiClient api, String vm, String ip, String host) {
        ApiClient.Response r = api.put("/api/v1/networks/" + network + "/placements/" + vm + "?wait=applied&timeout=20s",
                cp.operatorKey(), ControlPlane.placement(host, "tap-" + vm, ip));
        assertThat(r.status()).as("place %s: %s", vm, r.body()).isEqualTo(200);
    }

    @Test
    @Order(1)
    void listNetworksShowsTheTenantsNetwork() {
        Run run = cloudstack(cp.cloudstackSecret(), "listNetworks");
        assertThat(run.exit()).as(run.toString()).isZero();
        JsonNode networks = run.json().get("network");
        assertThat(networks).isNotNull();
        JsonNode ours = null;
        for (JsonNode n : networks) {
            if (n.get("id").asString().equals(network)) {
                ours = n;
            }
        }
        assertThat(ours).as("%s in %s", network, run.stdout()).isNotNull();
        assertThat(ours.get("cidr").asString()).isEqualTo("10.40.0.0/24");
    }

    @Test
    @Order(2)
    void createPollsItsJobUntilTheRuleIsOnTheRightAgent() {
        Run run = cloudstack(cp.cloudstackSecret(), "createEgressFirewallRule", "networkid=" + network, "protocol=tcp",
                "startport=80", "cidrlist=10.40.0.11/32");
        assertThat(run.exit()).as(run.toString()).isZero();
        // cs polled queryAsyncJobResult itself and prints the job result: the firewallrule.
        JsonNode rule = run.json().get("firewallrule");
        assertThat(rule).as(run.stdout()).isNotNull();
        tcpRule = rule.get("id").asString();
        assertThat(rule.get("protocol").asString()).isEqualTo("tcp");
        assertThat(rule.get("startport").asInt()).isEqualTo(80);
        assertThat(rule.get("endport").asInt()).isEqualTo(80);
        assertThat(rule.get("cidrlist").asString()).isEqualTo("10.40.0.11/32");
        assertThat(rule.get("networkid").asString()).isEqualTo(network);
        assertThat(rule.get("traffictype").asString()).isEqualTo("Egress");
        // The job finished only once the host ACKed: the ruleset already holds the rule.
        assertThat(lineOf(cp.ruleset(h1), tcpRule)).as("ruleset of %s", h1).startsWith("l0_port4: 10.40.0.11 . tcp . 80 comment");
        assertThat(cp.ruleset(h2)).as("must not reach %s", h2).doesNotContain(tcpRule);
    }

    @Test
    @Order(3)
    void createByPostForTheWholeNetworkReachesBothAgents() {
        Run run = cloudstack(cp.cloudstackSecret(), "--post", "createEgressFirewallRule", "networkid=" + network, "protocol=icmp",
                "icmptype=8", "icmpcode=0");
        assertThat(run.exit()).as(run.toString()).isZero();
        JsonNode rule = run.json().get("firewallrule");
        icmpRule = rule.get("id").asString();
        assertThat(rule.get("cidrlist").asString()).as("cidrlist defaults to the network's CIDR").isEqualTo("10.40.0.0/24");
        assertThat(rule.get("icmptype").asInt()).isEqualTo(8);
        for (String h : List.of(h1, h2)) {
            assertThat(lineOf(cp.ruleset(h), icmpRule)).as("ruleset of %s", h).startsWith("l0_code4: 10.40.0.1").contains(" . 8 . 0 comment");
        }
    }

    @Test
    @Order(4)
    void listShowsBothRules() {
        Run run = cloudstack(cp.cloudstackSecret(), "listEgressFirewallRules", "networkid=" + network);
        assertThat(run.exit()).as(run.toString()).isZero();
        assertThat(run.json().get("count").asInt()).isEqualTo(2);
        List<String> ids = new ArrayList<>();
        run.json().get("firewallrule").forEach(r -> ids.add(r.get("id").asString()));
        assertThat(ids).containsExactlyInAnyOrder(tcpRule, icmpRule);

        Run one = cloudstack(cp.cloudstackSecret(), "listEgressFirewallRules", "id=" + tcpRule);
        assertThat(one.json().get("firewallrule").get(0).get("cidrlist").asString()).isEqualTo("10.40.0.11/32");
    }

    @Test
    @Order(5)
    void deleteAsyncThenQueryAsyncJobResultUntilTheRuleLeavesTheAgent() {
        Run submitted = cloudstack(cp.cloudstackSecret(), "--async", "deleteEgressFirewallRule", "id=" + tcpRule);
        assertThat(submitted.exit()).as(submitted.toString()).isZero();
        String jobId = submitted.json().get("jobid").asString();
        JsonNode job = null;
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (System.nanoTime() < deadline) {
            Run q = cloudstack(cp.cloudstackSecret(), "queryAsyncJobResult", "jobid=" + jobId);
            assertThat(q.exit()).as(q.toString()).isZero();
            job = q.json();
            if (job.get("jobstatus").asInt() != 0) {
                break;
            }
            ControlPlane.sleep(200);
        }
        assertThat(job).isNotNull();
        assertThat(job.get("jobstatus").asInt()).as(job.toString()).isEqualTo(1);
        assertThat(job.get("jobresult").get("success").asBoolean()).isTrue();
        assertThat(cp.ruleset(h1)).as("ruleset of %s", h1).doesNotContain(tcpRule);
        assertThat(lineOf(cp.ruleset(h1), icmpRule)).as("the other rule stays").contains(" . 8 . 0 comment");
    }

    @Test
    @Order(6)
    void deleteWithTheClientsOwnPollingRemovesTheRuleEverywhere() {
        Run run = cloudstack(cp.cloudstackSecret(), "deleteEgressFirewallRule", "id=" + icmpRule);
        assertThat(run.exit()).as(run.toString()).isZero();
        assertThat(run.json().get("success").asBoolean()).isTrue();
        for (String h : List.of(h1, h2)) {
            assertThat(cp.ruleset(h)).as("ruleset of %s", h).doesNotContain(icmpRule);
        }
        Run list = cloudstack(cp.cloudstackSecret(), "listEgressFirewallRules", "networkid=" + network);
        assertThat(list.exit()).isZero();
        assertThat(list.stdout().isBlank() || !list.json().has("firewallrule")).as(list.stdout()).isTrue();
    }

    @Test
    @Order(7)
    void aWrongSecretIsRefusedWith401() {
        Run run = cloudstack("not-the-secret", "listNetworks");
        assertThat(run.exit()).isNotZero();
        assertThat(run.stderr()).contains("HTTP 401");
        JsonNode err = JSON.readTree(run.stdout()).get("listnetworksresponse");
        assertThat(err.get("errorcode").asInt()).isEqualTo(401);
    }

    @Test
    @Order(8)
    void aReplayOfTheClientsSignedCreateIsRefused() throws Exception {
        // --trace makes cs print the signed request it sent; sending that URL again is a replay.
        Run run = cloudstack(cp.cloudstackSecret(), "--trace", "--async", "createEgressFirewallRule", "networkid=" + network,
                "protocol=udp", "startport=53");
        assertThat(run.exit()).as(run.toString()).isZero();
        String url = run.stderr().lines().filter(l -> l.startsWith("GET ") && l.contains("command=createEgressFirewallRule"))
                .map(l -> l.substring(4).trim()).findFirst().orElseThrow(() -> new AssertionError("no trace in " + run.stderr()));
        HttpResponse<String> replay = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(replay.statusCode()).isEqualTo(401);
        assertThat(replay.body()).contains("\"errorcode\":401").contains("replayed");
    }

    // ---- helpers ----

    record Run(int exit, String stdout, String stderr) {
        JsonNode json() {
            return JSON.readTree(stdout);
        }

        @Override
        public String toString() {
            return "exit " + exit + "\nstdout: " + stdout + "\nstderr: " + stderr;
        }
    }

    /** Runs the cs client with the tenant's key and {@code secret}, against the control plane's /client/api. */
    static Run cloudstack(String secret, String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(client);
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        Map<String, String> env = pb.environment();
        env.keySet().removeIf(k -> k.startsWith("CLOUDSTACK_"));
        env.put("CLOUDSTACK_ENDPOINT", cp.apiUrl() + "/client/api");
        env.put("CLOUDSTACK_KEY", cp.cloudstackKey());
        env.put("CLOUDSTACK_SECRET", secret);
        env.put("CLOUDSTACK_TIMEOUT", "30");
        env.put("CLOUDSTACK_POLL_INTERVAL", "0.2");
        try {
            Path out = Files.createTempFile("cs-out", ".json");
            Path err = Files.createTempFile("cs-err", ".txt");
            pb.redirectOutput(out.toFile()).redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
            Process p = pb.start();
            if (!p.waitFor(90, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("cloudstack " + String.join(" ", args) + " did not finish in 90 s: " + Files.readString(err));
            }
            Run r = new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
            return r;
        } catch (IOException e) {
            throw new IllegalStateException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** The cs client's command: {@code cloudstack} in Debian, {@code cs} elsewhere. */
    static String findClient() {
        String path = System.getenv("PATH") == null ? "" : System.getenv("PATH");
        List<String> dirs = new ArrayList<>(List.of(path.split(":")));
        dirs.add("/usr/bin");
        for (String name : List.of("cloudstack", "cs")) {
            for (String dir : dirs) {
                Path p = Path.of(dir.isEmpty() ? "." : dir, name);
                if (Files.isExecutable(p) && (name.equals("cloudstack") || isPythonCs(p))) {
                    return p.toString();
                }
            }
        }
        return null;
    }

    /** {@code cs} may also be csound's; the CloudStack one is a Python script. */
    private static boolean isPythonCs(Path p) {
        try {
            byte[] head = new byte[64];
            int n;
            try (var in = Files.newInputStream(p)) {
                n = in.read(head);
            }
            return n > 2 && new String(head, 0, n, StandardCharsets.US_ASCII).startsWith("#!") && new String(head, 0, n,
                    StandardCharsets.US_ASCII).contains("python");
        } catch (IOException e) {
            return false;
        }
    }
}
