package io.egressctl.cli.walkthrough;

import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.model.Action;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.core.render.HostMode;
import io.egressctl.core.render.NftRenderer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The walkthrough's reading of a ruleset the renderer really produced (and of one listed by nft from
 * a kernel): which rules it enforces and what it shows per VM interface; its probes of the data
 * center: the VM table shared with scripts/datacenter.sh, expectations that follow from one another,
 * the probe table, and the script prober's reading of the script's answers.
 */
class WalkthroughTest {

    private static String rendered() {
        // vm-1: "all" sorts before its ICMP rule, which is then fully decided (no element); vm-2: udp/53 to one address.
        CompiledRule all = new CompiledRule("a-all", Action.DENY, 1000, Protocol.ALL, List.of("vm-1"), List.of(), List.of(), null, null);
        CompiledRule icmp = new CompiledRule("b-icmp", Action.DENY, 1000, Protocol.ICMP, List.of("vm-1"), List.of(), List.of(), null, null);
        CompiledRule dns = new CompiledRule("c-dns", Action.DENY, 1000, Protocol.UDP, List.of("vm-2"), List.of(Cidr.parse("192.0.2.53/32")),
                List.of(), PortRange.single(53), null);
        Fragment f = new Fragment("demo-net", DefaultPolicy.ALLOW,
                List.of(new VmAddress("vm-1", "tap-vm1", null, "10.1.0.11", null), new VmAddress("vm-2", "tap-vm2", null, "10.1.0.12", null)),
                List.of(all, icmp, dns));
        return new NftRenderer(false, HostMode.BRIDGED).render("host-1", new TreeMap<>(Map.of("demo-net", f)));
    }

    @Test
    void aRuleWithElementsAndAFullyDecidedRuleAreBothEnforcedAndAnAbsentOneIsNot() {
        String ruleset = rendered();
        assertThat(Walkthrough.enforces(ruleset, "a-all")).isTrue();
        assertThat(Walkthrough.enforces(ruleset, "b-icmp")).as("named in the header, no element").isTrue();
        assertThat(Walkthrough.enforces(ruleset, "c-dns")).isTrue();
        assertThat(Walkthrough.enforces(ruleset, "d-none")).isFalse();
        assertThat(Walkthrough.enforces(ruleset, "a-al")).as("ids match whole").isFalse();
    }

    @Test
    void eachInterfaceShowsItsVmAndDefaultThenItsAddressElementsAndRulesWithoutElement() {
        Map<String, List<String>> view = Walkthrough.enforcedByPort(rendered());
        assertThat(view).hasSize(2);
        String vm1 = view.keySet().stream().filter(k -> k.startsWith("tap-vm1 (0x45")).findFirst().orElseThrow();
        String vm2 = view.keySet().stream().filter(k -> k.startsWith("tap-vm2 (0x45")).findFirst().orElseThrow();
        String mark1 = vm1.substring("tap-vm1 (".length(), vm1.length() - 1);
        List<String> lines = view.get(vm1);
        assertThat(lines.get(0)).isEqualTo("default accept  (net demo-net vm vm-1)");
        assertThat(lines.get(1)).as("addresses after the default, before the rules").isEqualTo("address 10.1.0.11");
        assertThat(lines).anyMatch(l -> l.startsWith("l0_all4: " + mark1 + " ") && l.endsWith("(a-all...)"));
        assertThat(lines).anyMatch(l -> l.startsWith("no element: earlier rules decide all it matches") && l.endsWith("(b-icmp...)"));
        assertThat(view.get(vm2)).anyMatch(l -> l.contains(". 192.0.2.53 . udp . 53") && l.endsWith("(c-dns...)"));
    }

    /** nft's own listing: several elements on one line, counters, the ports map in the bridge table. */
    private static final String KERNEL = """
            table inet egressctl {
            \tset addr4 {
            \t\ttype mark . ipv4_addr
            \t\telements = { 0x45000001 . 10.1.1.10 comment "net tenant-a-net vm vm-a1",
            \t\t\t     0x45000002 . 10.1.1.10 comment "net tenant-b-net vm vm-b1" }
            \t}

            \tset l0_port4 {
            \t\ttype mark . inet_proto . inet_service
            \t\telements = { 0x45000002 . tcp . 443 comment "r=0123456789ab h=x" }
            \t}

            \tmap def {
            \t\ttype mark : verdict
            \t\tcounter
            \t\telements = { 0x45000001 counter packets 9 bytes 570 comment "net tenant-a-net vm vm-a1" : drop, 0x45000002 counter packets 4 bytes 253 comment "net tenant-b-net vm vm-b1" : accept }
            \t}

            \tchain forward {
            \t\ttype filter hook forward priority filter; policy accept;
            \t\tmeta mark @vms jump vm
            \t}
            }
            table bridge egressctl {
            \tmap ports {
            \t\ttype ifname : mark
            \t\telements = { "tap-a1" : 0x45000001,
            \t\t\t     "tap-b1" : 0x45000002 }
            \t}
            }
            """;

    @Test
    void aKernelListingShowsTwoVmsWithOneAddressEachOnItsOwnInterface() {
        Map<String, List<String>> view = Walkthrough.enforcedByPort(KERNEL);
        assertThat(view).containsOnlyKeys("tap-a1 (0x45000001)", "tap-b1 (0x45000002)");
        assertThat(view.get("tap-a1 (0x45000001)")).containsExactly("default drop  (net tenant-a-net vm vm-a1)", "address 10.1.1.10");
        assertThat(view.get("tap-b1 (0x45000002)")).hasSize(3)
                .startsWith("default accept  (net tenant-b-net vm vm-b1)", "address 10.1.1.10")
                .anyMatch(l -> l.startsWith("l0_port4: 0x45000002 . tcp . 443") && l.endsWith("(01234567...)"));
        assertThat(Walkthrough.enforces(KERNEL, "0123456789ab")).isTrue();
    }

    @Test
    void theWalkthroughsVmsAreTheDataCentersVms() throws Exception {
        Path script = Path.of("..", "scripts", "datacenter.sh");
        Process p = new ProcessBuilder("bash", script.toString(), "vms").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor()).as(out).isZero();
        List<String> expected = new ArrayList<>();
        Walkthrough.VMS.forEach((id, vm) -> expected.add(String.join(" ", vm.dcName(), vm.network(), Integer.toString(vm.host() + 1),
                vm.ipv4(), vm.mac(), vm.tap(), "ecdc-vm-" + vm.dcName())));
        assertThat(out.lines().toList()).containsExactlyElementsOf(expected);
    }

    /**
     * In the order the walkthrough runs them, a probe's expectation before a change is what it was
     * expected to be after the last change that probed it (pass when never probed): the examples'
     * expectations tell one consistent story.
     */
    @Test
    void everyProbesExpectationBeforeAChangeIsWhatTheLastChangeLeftIt() {
        List<List<ProbeTable.Check>> sequence = new ArrayList<>();
        sequence.add(Walkthrough.spoofChecks());
        Walkthrough.steps().forEach(s -> sequence.add(s.checks()));
        Walkthrough.tenantSteps().forEach(s -> sequence.add(s.checks()));
        sequence.add(Walkthrough.removalChecks());
        Map<Probe, String> state = new HashMap<>();
        int checks = 0;
        for (List<ProbeTable.Check> change : sequence) {
            for (ProbeTable.Check c : change) {
                assertThat(c.before()).as("%s before", c.probe()).isEqualTo(state.getOrDefault(c.probe(), Probe.PASS));
                state.put(c.probe(), c.after());
                checks++;
            }
        }
        assertThat(checks).isGreaterThan(30);
        // Every kind of probe is used, and every example blocks something it probes.
        assertThat(state.keySet()).extracting(Probe::kind).contains("tcp", "udp", "ping", "spoof");
        Walkthrough.steps().forEach(s -> assertThat(s.checks()).as(s.tag()).anyMatch(c -> c.before().equals(Probe.PASS) && c.after().equals(Probe.BLOCKED)));
    }

    @Test
    void theTwoTenantsUseOneAddressOnOneHostOnTwoInterfaces() {
        Walkthrough.DemoVm a = Walkthrough.VMS.get("vm-a1");
        Walkthrough.DemoVm b = Walkthrough.VMS.get("vm-b1");
        assertThat(a.ipv4()).isEqualTo(b.ipv4()).isEqualTo("10.1.1.10");
        assertThat(a.host()).isEqualTo(b.host());
        assertThat(a.tap()).isNotEqualTo(b.tap());
        assertThat(a.network()).isNotEqualTo(b.network());
        assertThat(Walkthrough.tenantSteps()).extracting(Walkthrough.Step::tenantB).containsExactly(false, true);
    }

    @Test
    void theProbeTableShowsEachProbeAndMarksWhatDidNotGoAsExpected() {
        ProbeTable t = new ProbeTable();
        ProbeTable.Check ping = Walkthrough.check(Walkthrough.ping("vm-1"), Probe.PASS, Probe.BLOCKED);
        ProbeTable.Check tcp = Walkthrough.check(Walkthrough.tcp("vm-1", 80), Probe.PASS, Probe.PASS);
        t.add("1 icmp vm-1", ping, Probe.PASS, Probe.BLOCKED);
        t.add("1 icmp vm-1", tcp, Probe.PASS, Probe.BLOCKED);
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        t.print(new PrintStream(buf, true, StandardCharsets.UTF_8));
        String out = buf.toString(StandardCharsets.UTF_8);
        assertThat(out).contains("example", "VM", "probe", "before", "after", "expected", "ok");
        assertThat(out.lines().filter(l -> l.contains("ping 198.51.100.10")).findFirst().orElseThrow())
                .contains("1 icmp vm-1", "vm-1", "pass", "blocked", "pass -> blocked").endsWith(" ok");
        assertThat(out.lines().filter(l -> l.contains("tcp 198.51.100.10:80") && !l.contains("WRONG 1")).findFirst().orElseThrow())
                .contains("pass -> pass").endsWith("WRONG");
        assertThat(t.ok()).isFalse();
    }

    @Test
    void theScriptProberReadsPassBlockedAndErrorsAndPassesTheProbesArguments(@TempDir Path dir) throws Exception {
        Path script = dir.resolve("dc.sh");
        Files.writeString(script, """
                echo "$*" >>"$(dirname "$0")/calls"
                case "$3" in
                  tcp) echo pass ;;
                  ping) echo blocked; exit 1 ;;
                  udp) echo "error: probe failed"; exit 2 ;;
                  *) exit 3 ;;
                esac
                """);
        ScriptProber prober = new ScriptProber(script);
        assertThat(prober.probe(Walkthrough.tcp("vm-2", 443))).isEqualTo("pass");
        assertThat(prober.probe(Walkthrough.ping("vm-a1"))).isEqualTo("blocked");
        assertThat(prober.probe(Walkthrough.udp("vm-1", Walkthrough.DNS))).isEqualTo("error: probe failed");
        assertThat(prober.probe(Walkthrough.spoof("vm-4", "10.1.0.99"))).startsWith("error: no answer");
        assertThat(Files.readAllLines(dir.resolve("calls"))).containsExactly("probe vm2 tcp 198.51.100.10 443", "probe a1 ping 198.51.100.10",
                "probe vm1 udp 192.0.2.53 53", "probe vm4 spoof 10.1.0.99 198.51.100.10");
    }
}
