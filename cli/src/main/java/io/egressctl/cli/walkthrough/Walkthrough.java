package io.egressctl.cli.walkthrough;

import io.egressctl.cli.Env;
import io.egressctl.cli.api.ApiClient;
import tools.jackson.databind.JsonNode;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The seed user guide's examples, run against the live control plane: a network with VMs on three
 * hosts, then each egress rule through the REST API with {@code wait=applied}, timed from the API
 * call to every affected agent's ACK; then what each host's agent enforces, read from its rendered
 * ruleset, and a check that each rule reached exactly the hosts of the VMs it names.
 *
 * <p>In the data center in network namespaces ({@code scripts/datacenter.sh}, agents enforcing with
 * nft in bridged host namespaces; {@link Env#datacenterScript()} set), every example is also proven
 * with real traffic: probes from the VMs before and after each change (ping for ICMP, TCP connects
 * to the port and to a port in the range, UDP to the destination), two tenants whose networks share
 * 10.1.1.0/24 with a VM at 10.1.1.10 on one host, each getting exactly its own rules, and a VM
 * sending from an address that is not its own. The rulesets are then read from the hosts' kernels.
 */
public final class Walkthrough {

    /** One step: what a tenant asks for on a network, which VMs it covers and what the probes must see. */
    record Step(String tag, String title, String network, boolean tenantB, Map<String, Object> rule, Set<String> vms,
                List<ProbeTable.Check> checks) {

        Step(String tag, String title, Map<String, Object> rule, Set<String> vms, List<ProbeTable.Check> checks) {
            this(tag, title, NETWORK, false, rule, vms, checks);
        }
    }

    /** What a step did: the rule id, the hosts it should reach and how long it took. */
    record Outcome(Step step, String ruleId, Set<String> hosts, double millis, int applied, int total) {
    }

    static final String NETWORK = "demo-net";
    static final String NETWORK_A = "tenant-a-net";
    static final String NETWORK_B = "tenant-b-net";
    /** Where the data center's routers listen (TEST-NET-2), and the seed's udp/53 destination (TEST-NET-1). */
    static final String DEST = "198.51.100.10";
    static final String DNS = "192.0.2.53";

    /**
     * A demo VM: its network, address, which of the environment's first three hosts runs it, its
     * interface on that host (the VM's identity there) and MAC. The same table is in scripts/datacenter.sh.
     */
    record DemoVm(String network, String ipv4, int host, String tap, String mac) {

        /** The VM's name in the data center ({@code tap-vm1} -> {@code vm1}). */
        String dcName() {
            return tap.substring("tap-".length());
        }
    }

    static final Map<String, DemoVm> VMS = new LinkedHashMap<>();

    static {
        VMS.put("vm-1", new DemoVm(NETWORK, "10.1.0.11", 0, "tap-vm1", "52:54:00:ec:00:11"));
        VMS.put("vm-2", new DemoVm(NETWORK, "10.1.0.12", 1, "tap-vm2", "52:54:00:ec:00:12"));
        VMS.put("vm-3", new DemoVm(NETWORK, "10.1.0.13", 2, "tap-vm3", "52:54:00:ec:00:13"));
        VMS.put("vm-4", new DemoVm(NETWORK, "10.1.0.14", 2, "tap-vm4", "52:54:00:ec:00:14"));
        // Two tenants, one CIDR, one address, one host: each VM is told apart by its interface.
        VMS.put("vm-a1", new DemoVm(NETWORK_A, "10.1.1.10", 0, "tap-a1", "52:54:00:ec:0a:10"));
        VMS.put("vm-b1", new DemoVm(NETWORK_B, "10.1.1.10", 0, "tap-b1", "52:54:00:ec:0b:10"));
    }

    private static final String PASS = Probe.PASS;
    private static final String BLOCKED = Probe.BLOCKED;

    private final Env env;
    private final PrintStream out;
    private final ApiClient api;
    private final ScriptProber datacenter;
    private final ProbeTable table = new ProbeTable();
    /** Rules already noted as without element in a host's kernel ({@code ruleId@host}), noted once. */
    private final Set<String> noted = new java.util.HashSet<>();

    /** In the data center when {@link Env#datacenterScript()} names the script, else with dry-run agents. */
    public Walkthrough(Env env, PrintStream out) {
        this(env, out, env.datacenterScript() == null ? null : new ScriptProber(Path.of(env.datacenterScript())));
    }

    /** @param datacenter the data center's probes and kernel listings, or null for dry-run agents */
    public Walkthrough(Env env, PrintStream out, ScriptProber datacenter) {
        this.env = env;
        this.out = out;
        this.api = new ApiClient(env.apiUrl());
        this.datacenter = datacenter;
    }

    static Probe tcp(String vm, int port) {
        return new Probe(vm, VMS.get(vm).dcName(), "tcp", List.of(DEST, Integer.toString(port)));
    }

    static Probe udp(String vm, String dest) {
        return new Probe(vm, VMS.get(vm).dcName(), "udp", List.of(dest, "53"));
    }

    static Probe ping(String vm) {
        return new Probe(vm, VMS.get(vm).dcName(), "ping", List.of(DEST));
    }

    static Probe spoof(String vm, String source) {
        return new Probe(vm, VMS.get(vm).dcName(), "spoof", List.of(source, DEST));
    }

    static ProbeTable.Check check(Probe probe, String before, String after) {
        return new ProbeTable.Check(probe, before, after);
    }

    /** The seed's examples, in the order the walkthrough adds them, with the probes that prove each. */
    static List<Step> steps() {
        return List.of(
                new Step("1 icmp vm-1", "block ICMP for one VM (vm-1)",
                        Map.of("protocol", "icmp", "sourceCidrs", List.of("10.1.0.11/32"), "description", "no ping from vm-1"),
                        Set.of("vm-1"),
                        List.of(check(ping("vm-1"), PASS, BLOCKED), check(tcp("vm-1", 80), PASS, PASS), check(ping("vm-2"), PASS, PASS))),
                new Step("2 tcp/80 vm-2", "block tcp/80 for one VM (vm-2)",
                        Map.of("protocol", "tcp", "startPort", 80, "sourceCidrs", List.of("10.1.0.12/32")),
                        Set.of("vm-2"),
                        List.of(check(tcp("vm-2", 80), PASS, BLOCKED), check(tcp("vm-2", 443), PASS, PASS), check(tcp("vm-1", 80), PASS, PASS))),
                new Step("3 tcp 8000-8100 vm-3,4", "block tcp 8000-8100 for a set of VMs (vm-3, vm-4)",
                        Map.of("protocol", "tcp", "startPort", 8000, "endPort", 8100,
                                "sourceCidrs", List.of("10.1.0.13/32", "10.1.0.14/32")),
                        Set.of("vm-3", "vm-4"),
                        List.of(check(tcp("vm-3", 8080), PASS, BLOCKED), check(tcp("vm-4", 8080), PASS, BLOCKED),
                                check(tcp("vm-3", 80), PASS, PASS), check(tcp("vm-2", 8080), PASS, PASS))),
                new Step("4 udp/53 to 192.0.2.53", "block udp/53 to 192.0.2.53 for every VM of the network",
                        Map.of("protocol", "udp", "startPort", 53, "destinationCidrs", List.of(DNS + "/32")),
                        Set.of("vm-1", "vm-2", "vm-3", "vm-4"),
                        List.of(check(udp("vm-1", DNS), PASS, BLOCKED), check(udp("vm-2", DNS), PASS, BLOCKED),
                                check(udp("vm-3", DNS), PASS, BLOCKED), check(udp("vm-4", DNS), PASS, BLOCKED),
                                check(udp("vm-1", DEST), PASS, PASS))),
                new Step("5 icmp vm-2,3", "block ICMP for a set of VMs (vm-2, vm-3)",
                        Map.of("protocol", "icmp", "sourceVmIds", List.of("vm-2", "vm-3")),
                        Set.of("vm-2", "vm-3"),
                        List.of(check(ping("vm-2"), PASS, BLOCKED), check(ping("vm-3"), PASS, BLOCKED), check(ping("vm-4"), PASS, PASS))),
                new Step("6 all vm-1", "block all outgoing traffic for one VM (vm-1)",
                        Map.of("protocol", "all", "sourceCidrs", List.of("10.1.0.11/32")),
                        Set.of("vm-1"),
                        List.of(check(tcp("vm-1", 80), PASS, BLOCKED), check(tcp("vm-1", 443), PASS, BLOCKED),
                                check(udp("vm-1", DEST), PASS, BLOCKED), check(ping("vm-1"), BLOCKED, BLOCKED),
                                check(tcp("vm-4", 80), PASS, PASS))));
    }

    /** Two tenants, one CIDR: A blocks everything for its VM at 10.1.1.10, B blocks tcp/443 for its VM at 10.1.1.10, same host. */
    static List<Step> tenantSteps() {
        return List.of(
                new Step("A all vm-a1", "tenant A blocks all egress of its VM 10.1.1.10 (vm-a1)", NETWORK_A, false,
                        Map.of("protocol", "all", "sourceCidrs", List.of("10.1.1.10/32")),
                        Set.of("vm-a1"),
                        List.of(check(tcp("vm-a1", 80), PASS, BLOCKED), check(tcp("vm-a1", 443), PASS, BLOCKED), check(ping("vm-a1"), PASS, BLOCKED),
                                check(tcp("vm-b1", 80), PASS, PASS), check(ping("vm-b1"), PASS, PASS), check(udp("vm-b1", DEST), PASS, PASS))),
                new Step("B tcp/443 vm-b1", "tenant B blocks tcp/443 of its VM 10.1.1.10 (vm-b1)", NETWORK_B, true,
                        Map.of("protocol", "tcp", "startPort", 443, "sourceCidrs", List.of("10.1.1.10/32")),
                        Set.of("vm-b1"),
                        List.of(check(tcp("vm-b1", 443), PASS, BLOCKED), check(tcp("vm-b1", 80), PASS, PASS),
                                check(tcp("vm-a1", 443), BLOCKED, BLOCKED), check(tcp("vm-a1", 80), BLOCKED, BLOCKED))));
    }

    /** A VM sending from addresses that are not its own: passes before its placement, dropped once it is enforced. */
    static List<ProbeTable.Check> spoofChecks() {
        return List.of(check(spoof("vm-4", "10.1.0.99"), PASS, BLOCKED),
                check(spoof("vm-4", "10.1.0.13"), PASS, BLOCKED),
                check(udp("vm-4", DEST), PASS, PASS));
    }

    /** The removal of example 2 (tcp/80 of vm-2): its traffic passes again, ICMP stays blocked by example 5. */
    static List<ProbeTable.Check> removalChecks() {
        return List.of(check(tcp("vm-2", 80), BLOCKED, PASS), check(ping("vm-2"), BLOCKED, BLOCKED));
    }

    public int run() throws IOException {
        require(env.apiKey() != null && env.operatorKey() != null, "EGRESS_API_KEY and EGRESS_OPERATOR_KEY must be set (eval \"$(./egressctl env)\")");
        require(env.hosts().size() >= 3, "the walkthrough places its VMs on three hosts; EGRESS_DEMO_HOSTS names " + env.hosts());
        boolean dc = datacenter != null;
        require(!dc || env.apiKeyB() != null, "the data center's two-tenant case needs tenant B's key: EGRESS_API_KEY_B");
        out.println();
        out.println("Egress Control Plane walkthrough: the seed user guide's examples, live");
        out.println("=====================================================================");
        if (dc) {
            out.printf("Data center in network namespaces: agents enforce with nft in bridged hosts %s;%n"
                    + "every change is proven by probes of real traffic from the VMs (destination %s, udp/53 also to %s).%n",
                    String.join(", ", env.hosts().subList(0, 3)), DEST, DNS);
        } else {
            out.println("Dry-run agents (rulesets rendered to files): no real traffic is probed. Probes need root, nft, ip and socat:");
            out.println("run ./egressctl up as root on a machine with nftables to get the data center in network namespaces.");
        }
        resetNetwork(NETWORK, env.apiKey());
        if (dc) {
            resetNetwork(NETWORK_A, env.apiKey());
            resetNetwork(NETWORK_B, env.apiKeyB());
        }
        Map<ProbeTable.Check, String> spoofBefore = dc ? probeAll(spoofChecks()) : Map.of();

        createNetwork(NETWORK, env.apiKey(), "10.1.0.0/24");
        out.printf("network %s: guest CIDR 10.1.0.0/24, default egress policy ALLOW (rules block what they match)%n", NETWORK);
        placeAll(NETWORK);
        if (dc) {
            record("S placement (anti-spoofing)", spoofChecks(), spoofBefore, probeAll(spoofChecks()));
        }
        out.println();
        out.println(" #  change (REST call with wait=applied)                      hosts        API call -> all agents ACKed");
        List<Outcome> outcomes = new ArrayList<>();
        int n = 1;
        for (Step step : steps()) {
            outcomes.add(apply(step, n++));
        }
        if (dc) {
            out.println();
            out.println("Two tenants, one CIDR (10.1.1.0/24), a VM at 10.1.1.10 on the same host each:");
            createNetwork(NETWORK_A, env.apiKey(), "10.1.1.0/24");
            createNetwork(NETWORK_B, env.apiKeyB(), "10.1.1.0/24");
            placeAll(NETWORK_A);
            placeAll(NETWORK_B);
            out.println();
            for (Step step : tenantSteps()) {
                outcomes.add(apply(step, n++));
            }
        }
        out.println();
        boolean ok = verify(outcomes, Set.of());
        printHosts();

        Outcome removed = outcomes.get(1);
        Map<ProbeTable.Check, String> before = dc ? probeAll(removalChecks()) : Map.of();
        long t0 = System.nanoTime();
        ApiClient.Response d = api.send("DELETE", "/api/v1/networks/" + NETWORK + "/egress-rules/" + removed.ruleId()
                + "?wait=applied&timeout=10s", env.apiKey(), null, Map.of());
        double ms = (System.nanoTime() - t0) / 1e6;
        require(d.status() == 200, "deleting the rule failed: " + d.status() + " " + d.body());
        out.printf("%nremoved \"%s\" (rule %s): applied on %s in %.1f ms%n", removed.step().title(), removed.ruleId(),
                String.join(",", removed.hosts()), ms);
        if (dc) {
            record("-2 tcp/80 vm-2 removed", removalChecks(), before, probeAll(removalChecks()));
        }
        ok &= verify(outcomes, Set.of(removed.ruleId()));
        out.println(ok ? "\nevery rule is enforced on exactly the hosts of the VMs it names."
                : "\nMISMATCH: see the lines marked above.");
        if (dc) {
            out.println();
            out.println("Real traffic from the VMs, before and after each change (S: the VMs' placement; A, B: the two tenants;");
            out.println("-2: example 2 removed). tcp: connect and read the server's greeting; udp: an echo; ping: one echo");
            out.println("request; spoofed: a datagram from an address that is not the VM's, seen or not by the destination.");
            out.println("Each failed probe is tried twice before it counts as blocked.");
            table.print(out);
            boolean probed = table.ok();
            out.println(probed ? "\nevery probe saw what its example should do: each tenant's VM at 10.1.1.10 on "
                    + hostOf("vm-a1") + " got exactly its own rules, and spoofed sources were dropped."
                    : "\nWRONG: some probes did not see what their example should do (lines marked WRONG).");
            ok &= probed;
        }
        return ok ? 0 : 1;
    }

    /** Probes before, applies the step's rule with wait=applied (timed), probes after; prints the timing line. */
    private Outcome apply(Step step, int n) {
        boolean dc = datacenter != null;
        Map<ProbeTable.Check, String> before = dc ? probeAll(step.checks()) : Map.of();
        String key = step.tenantB() ? env.apiKeyB() : env.apiKey();
        long t0 = System.nanoTime();
        ApiClient.Response r = api.post("/api/v1/networks/" + step.network() + "/egress-rules?wait=applied&timeout=10s", key, step.rule());
        double ms = (System.nanoTime() - t0) / 1e6;
        require(r.status() == 201, step.title() + " failed: " + r.status() + " " + r.body());
        JsonNode status = r.body().get("status");
        Set<String> hosts = hostsOf(step.vms());
        Outcome o = new Outcome(step, r.text("ruleId"), hosts, ms, status.get("hostsApplied").asInt(), status.get("hostsTotal").asInt());
        out.printf("%2d  %-58s %-12s %7.1f ms  (%d/%d hosts)%n", n, step.title(), String.join(",", hosts), ms, o.applied(), o.total());
        if (dc) {
            record(step.tag(), step.checks(), before, probeAll(step.checks()));
        }
        return o;
    }

    private void record(String example, List<ProbeTable.Check> checks,
                        Map<ProbeTable.Check, String> before, Map<ProbeTable.Check, String> after) {
        for (ProbeTable.Check c : checks) {
            table.add(example, c, before.get(c), after.get(c));
        }
    }

    /** Runs the checks' probes in parallel (a blocked probe waits out its timeouts): outcome per check. */
    private Map<ProbeTable.Check, String> probeAll(List<ProbeTable.Check> checks) {
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(6, checks.size()));
        try {
            Map<ProbeTable.Check, Future<String>> futures = new LinkedHashMap<>();
            checks.forEach(c -> futures.put(c, pool.submit(() -> datacenter.probe(c.probe()))));
            Map<ProbeTable.Check, String> outcomes = new LinkedHashMap<>();
            for (Map.Entry<ProbeTable.Check, Future<String>> f : futures.entrySet()) {
                try {
                    outcomes.put(f.getKey(), f.getValue().get(60, TimeUnit.SECONDS));
                } catch (ExecutionException | TimeoutException e) {
                    outcomes.put(f.getKey(), "error: " + e);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while probing", e);
                }
            }
            return outcomes;
        } finally {
            pool.shutdownNow();
        }
    }

    private void createNetwork(String network, String key, String cidr) {
        ApiClient.Response created = api.post("/api/v1/networks?wait=compiled&timeout=10s", key,
                Map.of("networkId", network, "guestCidr", cidr, "defaultPolicy", "allow"));
        require(created.status() == 201, "creating " + network + " failed: " + created.status() + " " + created.body());
    }

    /** Places the network's VMs on their hosts, each on its interface (the VM's identity there), waiting until applied. */
    private void placeAll(String network) {
        for (Map.Entry<String, DemoVm> vm : VMS.entrySet()) {
            DemoVm v = vm.getValue();
            if (!v.network().equals(network)) {
                continue;
            }
            ApiClient.Response r = api.put("/api/v1/networks/" + network + "/placements/" + vm.getKey() + "?wait=applied&timeout=10s",
                    env.operatorKey(), Map.of("hostId", hostOf(vm.getKey()), "interfaceName", v.tap(), "mac", v.mac(), "ipv4", v.ipv4()));
            require(r.status() == 200, "placing " + vm.getKey() + " failed: " + r.status() + " " + r.body());
            out.printf("  %-5s %-10s on %-8s interface %-8s (%s)%n", vm.getKey(), v.ipv4(), hostOf(vm.getKey()), v.tap(), network);
        }
    }

    /** Deletes a network left by an earlier run (its VMs first), so the walkthrough starts from a clean slate. */
    private void resetNetwork(String network, String key) {
        ApiClient.Response existing = api.get("/api/v1/networks/" + network, key);
        if (existing.status() == 200) {
            // A network with VMs cannot be deleted: take the earlier run's VMs off it first. Wait until this
            // run's hosts applied it (the data center's probes start from VMs that are no longer enforced); a
            // VM on a host of another run (whose agent may be gone) only until compiled.
            JsonNode vms = existing.body().get("vms");
            vms.propertyNames().forEach(vm -> {
                JsonNode host = vms.get(vm).get("hostId");
                boolean ours = host != null && env.hosts().contains(host.asString());
                ApiClient.Response r = api.delete("/api/v1/networks/" + network + "/placements/" + vm
                        + (ours ? "?wait=applied&timeout=10s" : "?wait=compiled&timeout=10s"), env.operatorKey());
                require(r.status() == 200, "removing " + vm + " failed: " + r.status() + " " + r.body());
            });
            ApiClient.Response d = api.delete("/api/v1/networks/" + network + "?wait=applied&timeout=10s", key);
            require(d.status() == 200, "removing the previous " + network + " failed: " + d.status() + " " + d.body());
            out.println(network.equals(NETWORK) ? "(removed the demo network of an earlier run)" : "(removed " + network + " of an earlier run)");
        }
    }

    /**
     * Checks each rule is in the rulesets of exactly its hosts (or of none, when removed): as set
     * elements tagged with it, or as a header note when earlier rules of the VM decide every packet
     * it matches (the renderer then gives it no element).
     */
    private boolean verify(List<Outcome> outcomes, Set<String> removed) throws IOException {
        boolean ok = true;
        Map<String, String> rulesets = new LinkedHashMap<>();
        for (String host : env.hosts()) {
            rulesets.put(host, ruleset(host));
        }
        for (Outcome o : outcomes) {
            for (String host : env.hosts()) {
                boolean present = enforces(rulesets.get(host), o.ruleId());
                boolean expected = o.hosts().contains(host) && !removed.contains(o.ruleId());
                if (present == expected) {
                    continue;
                }
                if (datacenter != null && expected) {
                    // The kernel lists elements, not the script's '# shadowed' notes: a rule that earlier rules
                    // of its VMs fully decide has no element there. The probes show what it does.
                    if (!noted.add(o.ruleId() + "@" + host)) {
                        continue;
                    }
                    out.printf("  note: %s (rule %s) has no element in %s's kernel: earlier rules of its VMs decide all it matches"
                            + " (the probes below show the traffic)%n", o.step().title(), o.ruleId(), host);
                    continue;
                }
                ok = false;
                out.printf("  MISMATCH %s: rule %s is %s on %s%n", o.step().title(), o.ruleId(), present ? "present" : "missing", host);
            }
        }
        return ok;
    }

    /**
     * True when a rendered ruleset enforces the rule: set elements tagged {@code r=<id>}, or a header
     * note that earlier rules of the VM decide every packet it matches (it then has no element).
     */
    static boolean enforces(String ruleset, String ruleId) {
        return ruleset.contains("r=" + ruleId + " ");
    }

    /** Prints each host's ruleset as an operator reads it, per VM interface (see {@link #enforcedByPort}). */
    private void printHosts() throws IOException {
        if (datacenter != null) {
            out.println("What each agent enforces now (its tables in the host's kernel, per VM interface):");
        } else {
            out.println("What each agent enforces now (from its rendered nftables ruleset, per VM interface):");
        }
        for (String host : env.hosts()) {
            if (datacenter != null) {
                out.printf("%n  %s  (nft list in the host's namespace: ./egressctl datacenter ruleset %s)%n", host, host);
            } else {
                out.printf("%n  %s  (%s)%n", host, Path.of(env.agentFiles(), host + ".nft"));
            }
            enforcedByPort(ruleset(host)).forEach((port, lines) -> {
                out.printf("    %s:%n", port);
                lines.forEach(l -> out.printf("      %s%n", l));
            });
        }
    }

    /**
     * A ruleset (rendered script or kernel listing) per VM interface ({@code tap-vm1 (0x45...)}): its VM
     * and default verdict first, its addresses, its rules' set elements (set name, key, first characters
     * of the rule id) and, from a rendered script's header, the rules left without an element.
     */
    static Map<String, List<String>> enforcedByPort(String ruleset) {
        Map<String, List<String>> view = KernelView.byPort(ruleset);
        for (String line : ruleset.split("\n")) {
            String t = line.trim();
            if (t.startsWith("# shadowed: r=")) {
                // "# shadowed: r=<id> h=<hash> vm <vm> (<interface>) ipv4: ..."
                String[] w = t.substring("# shadowed: ".length()).split(" ");
                if (w.length > 4 && w[4].startsWith("(") && w[4].endsWith(")")) {
                    String port = w[4].substring(1, w[4].length() - 1);
                    String key = view.keySet().stream().filter(k -> k.startsWith(port + " ")).findFirst().orElse(port);
                    view.computeIfAbsent(key, k -> new ArrayList<>())
                            .add(String.format("%-45s (%s...)", "no element: earlier rules decide all it matches", shortId(w[0])));
                }
            }
        }
        return view;
    }

    /** "r=<id>[ h=<hash>]" to the id's first 8 characters. */
    private static String shortId(String tag) {
        String id = tag.substring(2).split(" ")[0];
        return id.substring(0, Math.min(8, id.length()));
    }

    private String ruleset(String host) throws IOException {
        if (datacenter != null) {
            return datacenter.ruleset(host);
        }
        Path p = Path.of(env.agentFiles(), host + ".nft");
        return Files.exists(p) ? Files.readString(p) : "";
    }

    private String hostOf(String vm) {
        return env.hosts().get(VMS.get(vm).host());
    }

    private Set<String> hostsOf(Set<String> vms) {
        Set<String> hosts = new TreeSet<>();
        vms.forEach(v -> hosts.add(hostOf(v)));
        return hosts;
    }

    private static void require(boolean condition, String message) {
        if (!condition) {
            throw new IllegalStateException(message);
        }
    }
}
