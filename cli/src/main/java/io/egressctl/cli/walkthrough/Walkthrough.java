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

/**
 * The seed user guide's examples, run against the live control plane: a network with VMs on three
 * hosts, then each egress rule through the REST API with {@code wait=applied}, timed from the API
 * call to every affected agent's ACK; then what each host's agent enforces, read from its rendered
 * ruleset, and a check that each rule reached exactly the hosts of the VMs it names.
 */
public final class Walkthrough {

    /** One step: what the tenant asks for and which VMs it covers. */
    record Step(String title, Map<String, Object> rule, Set<String> vms) {
    }

    /** What a step did: the rule id, the hosts it should reach and how long it took. */
    record Outcome(Step step, String ruleId, Set<String> hosts, double millis, int applied, int total) {
    }

    static final String NETWORK = "demo-net";
    /** A demo VM: its address and which of the environment's first three hosts runs it. */
    record DemoVm(String ipv4, int host) {
    }

    static final Map<String, DemoVm> VMS = new LinkedHashMap<>();

    static {
        VMS.put("vm-1", new DemoVm("10.1.0.11", 0));
        VMS.put("vm-2", new DemoVm("10.1.0.12", 1));
        VMS.put("vm-3", new DemoVm("10.1.0.13", 2));
        VMS.put("vm-4", new DemoVm("10.1.0.14", 2));
    }

    private final Env env;
    private final PrintStream out;
    private final ApiClient api;

    public Walkthrough(Env env, PrintStream out) {
        this.env = env;
        this.out = out;
        this.api = new ApiClient(env.apiUrl());
    }

    /** The seed's examples, in the order the walkthrough adds them. */
    static List<Step> steps() {
        return List.of(
                new Step("block ICMP for one VM (vm-1)",
                        Map.of("protocol", "icmp", "sourceCidrs", List.of("10.1.0.11/32"), "description", "no ping from vm-1"),
                        Set.of("vm-1")),
                new Step("block tcp/80 for one VM (vm-2)",
                        Map.of("protocol", "tcp", "startPort", 80, "sourceCidrs", List.of("10.1.0.12/32")),
                        Set.of("vm-2")),
                new Step("block tcp 8000-8100 for a set of VMs (vm-3, vm-4)",
                        Map.of("protocol", "tcp", "startPort", 8000, "endPort", 8100,
                                "sourceCidrs", List.of("10.1.0.13/32", "10.1.0.14/32")),
                        Set.of("vm-3", "vm-4")),
                new Step("block udp/53 to 192.0.2.53 for every VM of the network",
                        Map.of("protocol", "udp", "startPort", 53, "destinationCidrs", List.of("192.0.2.53/32")),
                        Set.of("vm-1", "vm-2", "vm-3", "vm-4")),
                new Step("block ICMP for a set of VMs (vm-2, vm-3)",
                        Map.of("protocol", "icmp", "sourceVmIds", List.of("vm-2", "vm-3")),
                        Set.of("vm-2", "vm-3")),
                new Step("block all outgoing traffic for one VM (vm-1)",
                        Map.of("protocol", "all", "sourceCidrs", List.of("10.1.0.11/32")),
                        Set.of("vm-1")));
    }

    public int run() throws IOException {
        require(env.apiKey() != null && env.operatorKey() != null, "EGRESS_API_KEY and EGRESS_OPERATOR_KEY must be set (eval \"$(./egressctl env)\")");
        require(env.hosts().size() >= 3, "the walkthrough places its VMs on three hosts; EGRESS_DEMO_HOSTS names " + env.hosts());
        out.println();
        out.println("Egress Control Plane walkthrough: the seed user guide's examples, live");
        out.println("=====================================================================");
        resetDemoNetwork();
        ApiClient.Response created = api.post("/api/v1/networks?wait=compiled&timeout=10s", env.apiKey(),
                Map.of("networkId", NETWORK, "guestCidr", "10.1.0.0/24", "defaultPolicy", "allow"));
        require(created.status() == 201, "creating the network failed: " + created.status() + " " + created.body());
        out.printf("network %s: guest CIDR 10.1.0.0/24, default egress policy ALLOW (rules block what they match)%n", NETWORK);
        for (Map.Entry<String, DemoVm> vm : VMS.entrySet()) {
            ApiClient.Response r = api.put("/api/v1/networks/" + NETWORK + "/placements/" + vm.getKey() + "?wait=applied&timeout=10s",
                    env.operatorKey(), Map.of("hostId", hostOf(vm.getKey()), "ipv4", vm.getValue().ipv4()));
            require(r.status() == 200, "placing " + vm.getKey() + " failed: " + r.status() + " " + r.body());
            out.printf("  %-5s %-10s on %s%n", vm.getKey(), vm.getValue().ipv4(), hostOf(vm.getKey()));
        }
        out.println();
        out.println(" #  change (REST call with wait=applied)                      hosts        API call -> all agents ACKed");
        List<Outcome> outcomes = new ArrayList<>();
        int n = 1;
        for (Step step : steps()) {
            long t0 = System.nanoTime();
            ApiClient.Response r = api.post("/api/v1/networks/" + NETWORK + "/egress-rules?wait=applied&timeout=10s", env.apiKey(), step.rule());
            double ms = (System.nanoTime() - t0) / 1e6;
            require(r.status() == 201, step.title() + " failed: " + r.status() + " " + r.body());
            JsonNode status = r.body().get("status");
            Set<String> hosts = hostsOf(step.vms());
            Outcome o = new Outcome(step, r.text("ruleId"), hosts, ms, status.get("hostsApplied").asInt(), status.get("hostsTotal").asInt());
            outcomes.add(o);
            out.printf("%2d  %-58s %-12s %7.1f ms  (%d/%d hosts)%n", n++, step.title(), String.join(",", hosts), ms, o.applied(), o.total());
        }
        out.println();
        boolean ok = verify(outcomes, Set.of());
        printHosts();

        Outcome removed = outcomes.get(1);
        long t0 = System.nanoTime();
        ApiClient.Response d = api.send("DELETE", "/api/v1/networks/" + NETWORK + "/egress-rules/" + removed.ruleId()
                + "?wait=applied&timeout=10s", env.apiKey(), null, Map.of());
        double ms = (System.nanoTime() - t0) / 1e6;
        require(d.status() == 200, "deleting the rule failed: " + d.status() + " " + d.body());
        out.printf("%nremoved \"%s\" (rule %s): applied on %s in %.1f ms%n", removed.step().title(), removed.ruleId(),
                String.join(",", removed.hosts()), ms);
        ok &= verify(outcomes, Set.of(removed.ruleId()));
        out.println(ok ? "\nevery rule is enforced on exactly the hosts of the VMs it names."
                : "\nMISMATCH: see the lines marked above.");
        return ok ? 0 : 1;
    }

    /** Deletes the demo network left by an earlier run, so the walkthrough starts from a clean slate. */
    private void resetDemoNetwork() {
        ApiClient.Response existing = api.get("/api/v1/networks/" + NETWORK, env.apiKey());
        if (existing.status() == 200) {
            // A network with VMs cannot be deleted: take the earlier run's VMs off it first.
            existing.body().get("vms").propertyNames().forEach(vm -> {
                ApiClient.Response r = api.delete("/api/v1/networks/" + NETWORK + "/placements/" + vm + "?wait=applied&timeout=10s",
                        env.operatorKey());
                require(r.status() == 200, "removing " + vm + " failed: " + r.status() + " " + r.body());
            });
            ApiClient.Response d = api.delete("/api/v1/networks/" + NETWORK + "?wait=applied&timeout=10s", env.apiKey());
            require(d.status() == 200, "removing the previous demo network failed: " + d.status() + " " + d.body());
            out.println("(removed the demo network of an earlier run)");
        }
    }

    /**
     * Checks each rule is in the rulesets of exactly its hosts (or of none, when removed): as set
     * elements tagged with it, or as a header note when earlier rules of the VM decide every packet
     * it matches (the renderer then gives it no element).
     */
    private boolean verify(List<Outcome> outcomes, Set<String> removed) throws IOException {
        boolean ok = true;
        for (Outcome o : outcomes) {
            for (String host : env.hosts()) {
                boolean present = enforces(ruleset(host), o.ruleId());
                boolean expected = o.hosts().contains(host) && !removed.contains(o.ruleId());
                if (present != expected) {
                    ok = false;
                    out.printf("  MISMATCH %s: rule %s is %s on %s%n", o.step().title(), o.ruleId(), present ? "present" : "missing", host);
                }
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

    /** Prints each host's ruleset as an operator reads it (see {@link #enforcedByAddress}). */
    private void printHosts() throws IOException {
        out.println("What each agent enforces now (from its rendered nftables ruleset):");
        for (String host : env.hosts()) {
            out.printf("%n  %s  (%s)%n", host, Path.of(env.agentFiles(), host + ".nft"));
            enforcedByAddress(ruleset(host)).forEach((address, lines) -> {
                out.printf("    %s:%n", address);
                lines.forEach(l -> out.printf("      %s%n", l));
            });
        }
    }

    /**
     * A rendered ruleset per VM address: its default verdict first, then its rules' set elements
     * (set name, key, first characters of the rule id) and the rules left without an element.
     */
    static java.util.Map<String, List<String>> enforcedByAddress(String ruleset) {
        String set = null;
        java.util.Map<String, List<String>> byAddress = new java.util.TreeMap<>();
        for (String line : ruleset.split("\n")) {
            String t = line.trim();
            if (t.startsWith("# shadowed: r=")) {
                // "# shadowed: r=<id> h=<hash> vm <address>: ..."
                String[] w = t.substring("# shadowed: ".length()).split(" ");
                if (w.length > 3 && w[3].endsWith(":")) {
                    byAddress.computeIfAbsent(w[3].substring(0, w[3].length() - 1), k -> new ArrayList<>())
                            .add(String.format("%-55s (%s...)", "no element: earlier rules decide all it matches", shortId(w[0])));
                }
            } else if (t.startsWith("set ") || t.startsWith("map ")) {
                set = t.split(" ")[1];
            } else if (set != null && t.contains(" comment \"")) {
                int c = t.indexOf(" comment \"");
                String key = t.substring(0, c);
                String tag = t.substring(c + 10, t.indexOf('"', c + 10));
                String address = key.split(" ")[0];
                if (tag.startsWith("r=")) {
                    byAddress.computeIfAbsent(address, k -> new ArrayList<>())
                            .add(String.format("%-55s (%s...)", set + ": " + key, shortId(tag)));
                } else if (tag.startsWith("net ")) {
                    String verdict = t.substring(t.lastIndexOf(':') + 1).replace(",", "").trim();
                    byAddress.computeIfAbsent(address, k -> new ArrayList<>()).add(0, "default " + verdict + "  (" + tag + ")");
                }
            }
        }
        return byAddress;
    }

    /** "r=<id>[ h=<hash>]" to the id's first 8 characters. */
    private static String shortId(String tag) {
        String id = tag.substring(2).split(" ")[0];
        return id.substring(0, Math.min(8, id.length()));
    }

    private String ruleset(String host) throws IOException {
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
