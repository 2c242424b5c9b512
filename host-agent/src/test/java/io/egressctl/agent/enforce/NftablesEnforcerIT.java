package io.egressctl.agent.enforce;

import io.egressctl.core.nft.NftRuleset;
import io.egressctl.core.nft.NftScript;
import io.egressctl.core.render.HostMode;
import io.egressctl.core.render.NftRenderer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The enforcer's own paths against the real kernel (no traffic: that is NftablesKernelIT's part): in a
 * network namespace of this test's own, with {@code nft} run there by {@link ProcessNftRunner} with a
 * spare process as the agent runs it, random sequences of host states in each host mode are applied
 * incrementally and each result compared with what a full apply of the same script builds (both
 * tables, canonical listings); the drift check's reading of nft's JSON listing of both tables is
 * checked on a right kernel (and by a restarted enforcer, from the structure alone) and on hand-made
 * drift (a table deleted, an uncommented rule deleted, a source address changed, a stray bridge
 * table); mode changes replace the tables.
 *
 * <p>Skipped, with the reason, when not root or when nft or ip is missing; with
 * {@code EGRESS_REQUIRE_KERNEL_TESTS=true} in the environment (CI) that fails instead. The namespace
 * is named {@code <EGRESS_IT_NETNS_PREFIX, default egenf>-<pid>} and deleted at the end.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(300)
class NftablesEnforcerIT {

    private static final JsonMapper JSON = JsonMapper.builder().build();

    private String ns;
    private String unavailable;
    private ProcessNftRunner nft;

    @BeforeAll
    void namespace() throws Exception {
        unavailable = unavailableReason();
        if (unavailable != null) {
            String message = "real-kernel enforcer tests cannot run here: " + unavailable;
            if ("true".equalsIgnoreCase(System.getenv("EGRESS_REQUIRE_KERNEL_TESTS"))) {
                throw new IllegalStateException(message + " (and EGRESS_REQUIRE_KERNEL_TESTS=true)");
            }
            System.err.println("[NftablesEnforcerIT] SKIPPED: " + message);
            return;
        }
        String prefix = System.getenv().getOrDefault("EGRESS_IT_NETNS_PREFIX", "egenf");
        ns = prefix + "-" + ProcessHandle.current().pid();
        exec("ip", "netns", "del", ns);
        must("ip", "netns", "add", ns);
        nft = new ProcessNftRunner("nft", ns, Duration.ofSeconds(60), true);
    }

    @AfterAll
    void removeNamespace() throws Exception {
        if (ns != null) {
            exec("ip", "netns", "del", ns);
        }
    }

    @BeforeEach
    void cleanKernel() throws Exception {
        Assumptions.assumeTrue(unavailable == null, () -> "skipped: " + unavailable);
        for (String t : NftablesEnforcer.TABLES) {
            nft.run("", List.of("delete", "table", t.split(" ")[0], t.split(" ")[1]));
        }
    }

    @ParameterizedTest
    @EnumSource(HostMode.class)
    void incrementalAppliesBuildWhatAFullApplyBuilds(HostMode mode) throws Exception {
        NftablesEnforcer enforcer = new NftablesEnforcer(nft);
        Random rnd = new Random(mode == HostMode.ROUTED ? 5 : 6);
        for (int step = 0; step < 25; step++) {
            NftRuleset script = NftablesEnforcerTest.randomScript(rnd, mode);
            enforcer.apply(script);
            assertThat(enforcer.inSync(script)).as("step %d: %s", step, enforcer.lastDriftReason()).isTrue();
            assertThat(enforcer.inSync(script)).as("step %d, the cheap path", step).isTrue();
            NftablesEnforcer restarted = new NftablesEnforcer(nft);
            assertThat(restarted.inSync(script)).as("step %d, structure alone: %s", step, restarted.lastDriftReason()).isTrue();
            if (enforcer.lastApplyIncremental()) {
                String incremental = listing();
                NftRunner.Result full = nft.run(NftScript.kernelInput(script), NftRunner.APPLY);
                assertThat(full.ok()).as(full.errorText()).isTrue();
                assertThat(incremental).as("step %d: the delta's result is the full script's", step).isEqualTo(listing());
            }
        }
        assertThat(enforcer.incrementalApplies()).as("incremental applies").isGreaterThan(15);
        assertThat(enforcer.incrementalFallbacks()).as("deltas the kernel refused").isZero();
    }

    /** A host of one network whose VM denies tcp to the ports {@code from}-{@code to} (an interval set element). */
    private static NftRuleset portRangeHost(HostMode mode, int from, int to) {
        NftRenderer renderer = new NftRenderer(false, mode);
        io.egressctl.core.compile.VmAddress vm = new io.egressctl.core.compile.VmAddress("vm-1", "tap-c1", null, "10.1.1.10", null);
        io.egressctl.core.compile.CompiledRule rule = new io.egressctl.core.compile.CompiledRule("deny-range",
                io.egressctl.core.model.Action.DENY, 1000, io.egressctl.core.model.Protocol.TCP, List.of("vm-1"), List.of(), List.of(),
                new io.egressctl.core.model.PortRange(from, to), null);
        java.util.TreeMap<String, io.egressctl.core.compile.Fragment> host = new java.util.TreeMap<>();
        host.put("net-1", new io.egressctl.core.compile.Fragment("net-1", io.egressctl.core.model.DefaultPolicy.ALLOW, List.of(vm),
                List.of(rule), false));
        return renderer.ruleset("enforcer-it", host);
    }

    /** {@code ruleset} with an element overlapping its {@code tcp . from-to} interval: nft parses it, the kernel refuses it. */
    private static NftRuleset withOverlap(NftRuleset ruleset, int from, int to, int inside) {
        String key = ruleset.tables().stream().flatMap(t -> t.sets().stream()).flatMap(st -> st.elements().stream())
                .map(io.egressctl.core.nft.NftElement::key).filter(k -> k.endsWith(" . tcp . " + from + "-" + to)).findFirst().orElseThrow();
        String overlapping = key.substring(0, key.length() - (from + "-" + to).length()) + inside;
        return Rulesets.addingElementBeside(ruleset, key, io.egressctl.core.nft.NftElement.of(overlapping, "overlap"));
    }

    /**
     * {@link NftablesEnforcer#check} asks the kernel and changes nothing: a ruleset the kernel refuses
     * halfway (an overlapping interval, "File exists") is refused by the check with the kernel's words,
     * as a delta from what is in force and as a whole ruleset (an enforcer that applied nothing yet);
     * a ruleset it takes passes the check, and what is in force stays as it was until the apply.
     */
    @ParameterizedTest
    @EnumSource(HostMode.class)
    void aCheckAsksTheKernelAndChangesNothing(HostMode mode) throws Exception {
        NftablesEnforcer enforcer = new NftablesEnforcer(nft);
        NftRuleset first = portRangeHost(mode, 440, 450);
        enforcer.apply(first);
        String inForce = listing();

        NftRuleset next = portRangeHost(mode, 500, 510);
        enforcer.check(next);
        assertThat(listing()).as("a check that passes changes nothing").isEqualTo(inForce);
        enforcer.apply(next);
        assertThat(listing()).isNotEqualTo(inForce);
        assertThat(enforcer.inSync(next)).isTrue();
        String nextInForce = listing();

        NftRuleset refused = withOverlap(portRangeHost(mode, 600, 610), 600, 610, 605);
        assertThatThrownBy(() -> enforcer.check(refused)).isInstanceOf(EnforcementException.class)
                .hasMessageContaining("File exists");
        assertThat(listing()).as("a refused check changes nothing").isEqualTo(nextInForce);
        assertThatThrownBy(() -> enforcer.apply(refused)).as("what the check refuses, the apply refuses")
                .isInstanceOf(EnforcementException.class);
        assertThat(enforcer.inSync(next)).isTrue();

        NftablesEnforcer fresh = new NftablesEnforcer(nft); // nothing applied: the whole ruleset is checked
        assertThatThrownBy(() -> fresh.check(refused)).isInstanceOf(EnforcementException.class).hasMessageContaining("File exists");
        fresh.check(first);
        assertThat(listing()).isEqualTo(nextInForce);
    }

    /**
     * nft 1.0.6 cannot delete an element of a mark-keyed interval set whose fields are all single
     * values ({@code m . tcp . 80}: No such file or directory); the renderer writes a port field of an
     * interval set as a range ({@code 80-80}), which the kernel lists back as {@code 80}. Rendered
     * hosts whose single-port rules come and go are applied incrementally (the kernel takes every
     * delete), without drift, and build what a full apply builds.
     */
    @ParameterizedTest
    @EnumSource(HostMode.class)
    void renderedSinglePortElementsOfIntervalSetsAreDeletedIncrementally(HostMode mode) throws Exception {
        NftablesEnforcer enforcer = new NftablesEnforcer(nft);
        NftRenderer renderer = new NftRenderer(false, mode);
        io.egressctl.core.compile.VmAddress vm = new io.egressctl.core.compile.VmAddress("vm-1", "tap-e1", null, "10.1.1.10", "fd00:1:1::10");
        List<List<Integer>> steps = List.of(List.of(80, 443, 8080), List.of(443, 8080), List.of(8080), List.of(80, 8080), List.of(8080, 9090));
        int step = 0;
        for (List<Integer> ports : steps) {
            List<io.egressctl.core.compile.CompiledRule> rules = new java.util.ArrayList<>();
            for (int port : ports) {
                rules.add(new io.egressctl.core.compile.CompiledRule("deny-" + port, io.egressctl.core.model.Action.DENY, 1000,
                        io.egressctl.core.model.Protocol.TCP, List.of("vm-1"), List.of(), List.of(),
                        io.egressctl.core.model.PortRange.single(port), null));
            }
            java.util.TreeMap<String, io.egressctl.core.compile.Fragment> host = new java.util.TreeMap<>();
            host.put("net-1", new io.egressctl.core.compile.Fragment("net-1", io.egressctl.core.model.DefaultPolicy.ALLOW, List.of(vm),
                    rules, false));
            NftRuleset script = renderer.ruleset("enforcer-it", host);
            assertThat(NftScript.script(script)).as("a port field of an interval set is written as a range").contains(" . tcp . " + ports.get(0) + "-" + ports.get(0));
            enforcer.apply(script);
            assertThat(enforcer.inSync(script)).as("step %d: %s", step, enforcer.lastDriftReason()).isTrue();
            NftablesEnforcer restarted = new NftablesEnforcer(nft);
            assertThat(restarted.inSync(script)).as("step %d, structure alone: %s", step, restarted.lastDriftReason()).isTrue();
            if (step > 0) {
                assertThat(enforcer.lastApplyIncremental()).as("step %d applied incrementally", step).isTrue();
                String incremental = listing();
                NftRunner.Result full = nft.run(NftScript.kernelInput(script), NftRunner.APPLY);
                assertThat(full.ok()).as(full.errorText()).isTrue();
                assertThat(incremental).as("step %d: the delta's result is the full script's", step).isEqualTo(listing());
            }
            step++;
        }
        assertThat(enforcer.incrementalFallbacks()).as("deltas the kernel refused").isZero();
    }

    @Test
    void modeChangesReplaceTheTablesAndADeletedBridgeTableIsDrift() throws Exception {
        NftablesEnforcer enforcer = new NftablesEnforcer(nft);
        Random rnd = new Random(9);
        NftRuleset routed = NftablesEnforcerTest.randomScript(rnd, HostMode.ROUTED);
        NftRuleset bridged = NftablesEnforcerTest.randomScript(rnd, HostMode.BRIDGED);

        enforcer.apply(routed);
        assertThat(tables()).containsExactly("inet egressctl");
        enforcer.apply(bridged);
        assertThat(enforcer.lastApplyIncremental()).isFalse();
        assertThat(tables()).containsExactlyInAnyOrder("inet egressctl", "bridge egressctl");
        assertThat(enforcer.inSync(bridged)).as(enforcer.lastDriftReason()).isTrue();

        must("ip", "netns", "exec", ns, "nft", "delete", "table", "bridge", "egressctl");
        assertThat(enforcer.inSync(bridged)).isFalse();
        assertThat(enforcer.lastDriftReason()).isEqualTo("table bridge egressctl does not exist");
        enforcer.apply(bridged);
        assertThat(enforcer.inSync(bridged)).as(enforcer.lastDriftReason()).isTrue();

        enforcer.apply(routed);
        assertThat(tables()).containsExactly("inet egressctl");
        assertThat(enforcer.inSync(routed)).as(enforcer.lastDriftReason()).isTrue();

        // A bridge table left by an earlier bridged agent, found by a restarted routed one.
        nft.run(NftScript.kernelInput(new NftRuleset(List.of(bridged.table("bridge egressctl")), List.of())),
                NftRunner.APPLY);
        NftablesEnforcer restarted = new NftablesEnforcer(nft);
        assertThat(restarted.inSync(routed)).isFalse();
        assertThat(restarted.lastDriftReason()).isEqualTo("table bridge egressctl is in the kernel but not in the desired ruleset");
        restarted.apply(routed);
        assertThat(tables()).containsExactly("inet egressctl");
        assertThat(restarted.inSync(routed)).as(restarted.lastDriftReason()).isTrue();
    }

    @ParameterizedTest
    @EnumSource(HostMode.class)
    void handMadeDriftIsSeenInTheKernelsListing(HostMode mode) throws Exception {
        NftRuleset script = NftablesEnforcerTest.script(mode, io.egressctl.core.model.DefaultPolicy.ALLOW,
                List.of(new io.egressctl.core.compile.VmAddress("vm1", "tap-a1", null, "10.250.1.11", "fd00:250:1::11"),
                        new io.egressctl.core.compile.VmAddress("vm2", "tap-a2", null, "10.250.1.12", null)),
                NftablesEnforcerTest.deny("r-80", io.egressctl.core.model.Protocol.TCP, io.egressctl.core.model.PortRange.single(80),
                        List.of("vm1", "vm2")));
        String m2 = NftablesEnforcerTest.markOf(script, "tap-a2");
        String portsTable = mode == HostMode.BRIDGED ? "bridge" : "inet";
        NftablesEnforcer enforcer = new NftablesEnforcer(nft);

        enforcer.apply(script);
        assertThat(enforcer.inSync(script)).as(enforcer.lastDriftReason()).isTrue();

        // The uncommented rules of the forward chain (the jump, the stamping of flows towards a VM
        // and, on a routed host, the marking of packets towards a VM).
        must("ip", "netns", "exec", ns, "nft", "flush", "chain", "inet", "egressctl", "forward");
        assertThat(new NftablesEnforcer(nft).inSync(script)).isFalse();
        assertThat(enforcer.inSync(script)).isFalse();
        assertThat(enforcer.lastDriftReason()).contains("chain forward has 0 rules, expected " + (mode == HostMode.ROUTED ? 4 : 3));
        enforcer.apply(script);

        // A VM's source address, its comment kept.
        nft.run("delete element inet egressctl addr4 { " + m2 + " . 10.250.1.12 }\n"
                + "add element inet egressctl addr4 { " + m2 + " . 10.250.1.99 comment \"net net-a vm vm2\" }\n", NftRunner.APPLY);
        NftablesEnforcer restarted = new NftablesEnforcer(nft);
        assertThat(restarted.inSync(script)).isFalse();
        assertThat(restarted.lastDriftReason()).contains("set addr4").contains("10.250.1.99");
        enforcer.apply(script);

        // A port given another mark.
        NftRunner.Result r = nft.run("delete element " + portsTable + " egressctl ports { \"tap-a2\" }\n"
                + "add element " + portsTable + " egressctl ports { \"tap-a2\" : 0x45000001 }\n", NftRunner.APPLY);
        assertThat(r.ok()).as(r.errorText()).isTrue();
        restarted = new NftablesEnforcer(nft);
        assertThat(restarted.inSync(script)).isFalse();
        assertThat(restarted.lastDriftReason()).contains("table " + portsTable + " egressctl: map ports: tap-a2 is '1157627905'");
        restarted.apply(script);
        assertThat(restarted.inSync(script)).as(restarted.lastDriftReason()).isTrue();
    }

    /** Canonical listings of the product's tables in the namespace. */
    private String listing() throws Exception {
        StringBuilder out = new StringBuilder();
        for (String t : NftablesEnforcer.TABLES) {
            NftRunner.Result r = nft.run("", NftablesEnforcer.listArgs(t));
            out.append("=== ").append(t).append('\n');
            if (r.ok()) {
                JsonNode tree = JSON.readTree(r.stdout());
                out.append(NftablesEnforcer.canonical(tree));
            } else {
                out.append("absent\n");
            }
        }
        return out.toString();
    }

    /** The product's tables in the namespace. */
    private List<String> tables() throws Exception {
        NftRunner.Result r = nft.run("", List.of("list", "tables"));
        return r.stdout().lines().map(l -> l.replaceFirst("^table ", "")).filter(NftablesEnforcer.TABLES::contains).toList();
    }

    private static String unavailableReason() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("Uid:") && !line.split("\\s+")[1].equals("0")) {
                    return "needs root (ip netns add, nft); running as uid " + line.split("\\s+")[1];
                }
            }
        } catch (IOException e) {
            return "cannot read /proc/self/status: " + e.getMessage();
        }
        for (String tool : List.of("nft", "ip")) {
            if (!onPath(tool)) {
                return "'" + tool + "' is not installed";
            }
        }
        return null;
    }

    private static boolean onPath(String tool) {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
            if (Files.isExecutable(Path.of(dir, tool))) {
                return true;
            }
        }
        return Files.isExecutable(Path.of("/usr/sbin", tool)) || Files.isExecutable(Path.of("/sbin", tool));
    }

    private static int exec(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException(String.join(" ", cmd) + " did not finish");
        }
        lastOutput = out;
        return p.exitValue();
    }

    private static String lastOutput = "";

    private static void must(String... cmd) throws Exception {
        if (exec(cmd) != 0) {
            throw new IllegalStateException(String.join(" ", cmd) + ": " + lastOutput.strip());
        }
    }
}
