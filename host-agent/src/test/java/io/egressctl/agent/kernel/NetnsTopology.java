package io.egressctl.agent.kernel;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A small routed network built from network namespaces, for tests that send real packets through
 * real nftables rules. Nothing outside its own namespaces is touched (the namespaces are created
 * with {@code ip netns add}, every link is made inside them with {@code ip -n}):
 *
 * <pre>
 *  P-vm1 10.250.1.11 fd00:250:1::11 ─┐
 *  P-vm2 10.250.1.12 fd00:250:1::12 ─┼─ br0 10.250.1.1  ┐ P-host             P-out 198.18.0.1  2001:2::1
 *  P-vm3 10.250.1.13 fd00:250:1::13 ─┘   fd00:250:1::1  ├ forwarding ── v-out ── eth0   tcp 80 443 8000 8005 8010 8011
 *                                                        ┘ 198.18.0.254 2001:2::fe            udp 53, icmp
 * </pre>
 *
 * P is {@code ekt<pid>-<n>}, unique per run. The "host" namespace forwards (IPv4 and IPv6) and is where
 * the enforcer applies its table; every VM also listens on tcp/2222 so tests can check traffic that
 * starts outside (return traffic of the VM). An extra empty namespace ({@link #scratch()}) serves
 * for comparing rulesets. Outside listeners are socat processes answering {@code ok-<port>} (tcp)
 * and echoing datagrams (udp), so a probe checks a full request/response, not only a handshake.
 * {@link #close()} (also run from a shutdown hook) kills the processes started in these namespaces
 * and deletes the namespaces; namespaces left behind by an earlier run of this helper that was
 * killed (its pid gone) are deleted on the next {@link #create()}.
 */
public final class NetnsTopology implements AutoCloseable {

    /** Outside addresses. */
    public static final String OUTSIDE4 = "198.18.0.1";
    public static final String OUTSIDE6 = "2001:2::1";
    /** The VMs by name with their IPv4 and IPv6 addresses. */
    public static final Map<String, String[]> VMS = new LinkedHashMap<>();

    static {
        VMS.put("vm1", new String[]{"10.250.1.11", "fd00:250:1::11"});
        VMS.put("vm2", new String[]{"10.250.1.12", "fd00:250:1::12"});
        VMS.put("vm3", new String[]{"10.250.1.13", "fd00:250:1::13"});
    }

    /** The flows a VM probes towards the outside namespace. */
    public enum Flow {
        ICMP, TCP_80, TCP_443, TCP_8000, TCP_8005, TCP_8010, TCP_8011, UDP_53, TCP6_80;

        /** The tcp port, or -1. */
        public int tcpPort() {
            return name().startsWith("TCP") ? Integer.parseInt(name().substring(name().indexOf('_') + 1)) : -1;
        }
    }

    /** What a command returned. */
    public record Result(int exitCode, String stdout, String stderr) {
        public boolean ok() {
            return exitCode == 0;
        }
    }

    private static final AtomicInteger SEQ = new AtomicInteger();
    private static final Pattern OURS = Pattern.compile("^(ekt(\\d+)-\\d+-[a-z0-9]+)\\b.*");
    private static final Duration CMD_TIMEOUT = Duration.ofSeconds(20);

    private final String prefix;
    private final List<String> namespaces = new ArrayList<>();
    private final List<Process> listeners = new ArrayList<>();
    /*
     * Every probe of blocked() at once: a probe of a blocked flow spends its time waiting for its
     * timeouts (three tries), not on a core, so waves of 8 made a fully blocked check four times as
     * long; a probe that should pass and loses a try to the burst is tried again.
     */
    private final ExecutorService pool = Executors.newFixedThreadPool(Flow.values().length * 3, r -> {
        Thread t = new Thread(r, "netns-probe");
        t.setDaemon(true);
        return t;
    });
    private final Thread hook = new Thread(this::close, "netns-cleanup");
    private boolean closed;

    private NetnsTopology(String prefix) {
        this.prefix = prefix;
    }

    /** Why this machine cannot build the topology, or null when it can (root, ip, nft, socat, ping, timeout). */
    public static String unavailableReason() {
        if (!isRoot()) {
            return "kernel tests need root (CAP_NET_ADMIN and CAP_SYS_ADMIN for ip netns); running as uid " + uid();
        }
        for (String tool : List.of("ip", "nft", "socat", "ping", "timeout")) {
            if (which(tool) == null) {
                return "kernel tests need '" + tool + "' on PATH (Debian packages: iproute2 nftables socat iputils-ping coreutils)";
            }
        }
        return null;
    }

    /** Builds the topology; on any failure whatever was built is removed again. */
    public static NetnsTopology create() {
        removeLeftovers();
        NetnsTopology t = new NetnsTopology("ekt" + ProcessHandle.current().pid() + "-" + SEQ.incrementAndGet());
        Runtime.getRuntime().addShutdownHook(t.hook);
        try {
            t.build();
            return t;
        } catch (RuntimeException | Error e) {
            t.close();
            throw e;
        }
    }

    public String host() {
        return prefix + "-host";
    }

    public String outside() {
        return prefix + "-out";
    }

    public String vm(String name) {
        return prefix + "-" + name;
    }

    /** An empty namespace of this topology, for comparing what nft builds there. */
    public String scratch() {
        return prefix + "-scratch";
    }

    private void build() {
        for (String ns : List.of(host(), outside(), scratch(), vm("vm1"), vm("vm2"), vm("vm3"))) {
            must("ip", "netns", "add", ns);
            namespaces.add(ns);
            must("ip", "-n", ns, "link", "set", "lo", "up");
        }
        String h = host();
        must("ip", "-n", h, "link", "add", "br0", "type", "bridge");
        must("ip", "-n", h, "addr", "add", "10.250.1.1/24", "dev", "br0");
        must("ip", "-n", h, "addr", "add", "fd00:250:1::1/64", "dev", "br0", "nodad");
        must("ip", "-n", h, "link", "set", "br0", "up");
        for (Map.Entry<String, String[]> vm : VMS.entrySet()) {
            String ns = vm(vm.getKey());
            String port = "v-" + vm.getKey();
            must("ip", "-n", h, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns);
            must("ip", "-n", h, "link", "set", port, "master", "br0", "up");
            must("ip", "-n", ns, "addr", "add", vm.getValue()[0] + "/24", "dev", "eth0");
            must("ip", "-n", ns, "addr", "add", vm.getValue()[1] + "/64", "dev", "eth0", "nodad");
            must("ip", "-n", ns, "link", "set", "eth0", "up");
            must("ip", "-n", ns, "route", "add", "default", "via", "10.250.1.1");
            must("ip", "-n", ns, "-6", "route", "add", "default", "via", "fd00:250:1::1");
        }
        must("ip", "-n", h, "link", "add", "v-out", "type", "veth", "peer", "name", "eth0", "netns", outside());
        must("ip", "-n", h, "addr", "add", "198.18.0.254/24", "dev", "v-out");
        must("ip", "-n", h, "addr", "add", "2001:2::fe/64", "dev", "v-out", "nodad");
        must("ip", "-n", h, "link", "set", "v-out", "up");
        String o = outside();
        must("ip", "-n", o, "addr", "add", OUTSIDE4 + "/24", "dev", "eth0");
        must("ip", "-n", o, "addr", "add", OUTSIDE6 + "/64", "dev", "eth0", "nodad");
        must("ip", "-n", o, "link", "set", "eth0", "up");
        must("ip", "-n", o, "route", "add", "default", "via", "198.18.0.254");
        must("ip", "-n", o, "-6", "route", "add", "default", "via", "2001:2::fe");
        // /proc/sys/net is per network namespace: these writes change the "host" namespace only.
        must("ip", "netns", "exec", h, "sh", "-c",
                "echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/ipv6/conf/all/forwarding");

        for (Flow f : Flow.values()) {
            if (f.tcpPort() > 0 && f != Flow.TCP6_80) {
                listen(o, "TCP6-LISTEN:" + f.tcpPort() + ",ipv6only=0,fork,reuseaddr", "EXEC:echo ok-" + f.tcpPort());
            }
        }
        // An echo server: PIPE sends each datagram back (EXEC:echo raced with socat writing the request
        // into the already finished echo, and lost answers).
        listen(o, "UDP4-RECVFROM:53,fork", "PIPE");
        for (String vm : VMS.keySet()) {
            listen(vm(vm), "TCP6-LISTEN:2222,ipv6only=0,fork,reuseaddr", "EXEC:echo hello-from-" + vm);
        }
        awaitReady();
    }

    private void listen(String ns, String address, String action) {
        try {
            Process p = new ProcessBuilder("ip", "netns", "exec", ns, "socat", address, action)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .redirectError(ProcessBuilder.Redirect.DISCARD)
                    .start();
            listeners.add(p);
        } catch (IOException e) {
            throw new IllegalStateException("cannot start socat in " + ns + ": " + e.getMessage(), e);
        }
    }

    /** Waits (bounded) until every listener answers from the host namespace and every VM reaches the outside. */
    private void awaitReady() {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        String missing = "";
        for (int attempt = 0; attempt < 150 && System.nanoTime() < deadline; attempt++) {
            missing = "";
            for (Flow f : Flow.values()) {
                if (!probe(host(), f)) {
                    missing += " " + f;
                }
            }
            for (String vm : VMS.keySet()) {
                if (!probeTcp(outside(), VMS.get(vm)[0], 2222, "hello-from-" + vm)) {
                    missing += " " + vm + ":2222";
                }
            }
            if (missing.isEmpty()) {
                return;
            }
            sleep(100);
        }
        throw new IllegalStateException("topology " + prefix + " not ready, unreachable:" + missing);
    }

    /** How many times a probe is tried before it counts as blocked: on a loaded machine one try can be lost. */
    public static final int ATTEMPTS = 3;
    /** The pause between two tries of a failed probe. */
    public static final Duration RETRY_PAUSE = Duration.ofMillis(200);

    /**
     * True when {@code once} succeeds in any of {@code attempts} tries, pausing {@code pause} after each
     * failed one; false only when every try failed. So a probe that should pass is not failed by one lost
     * answer, and one that should be blocked is checked to fail every time.
     */
    public static boolean anyOf(int attempts, Duration pause, java.util.function.BooleanSupplier once) {
        for (int i = 0; i < attempts; i++) {
            if (once.getAsBoolean()) {
                return true;
            }
            if (i + 1 < attempts) {
                sleep(pause.toMillis());
            }
        }
        return false;
    }

    /**
     * True when {@code vm} (vm1..vm3) gets the answer of flow {@code f} from the outside namespace, in any
     * of {@link #ATTEMPTS} tries; false (blocked) only when every try failed.
     */
    public boolean reach(String vm, Flow f) {
        return anyOf(ATTEMPTS, RETRY_PAUSE, () -> probe(vm(vm), f));
    }

    private boolean probe(String ns, Flow f) {
        return switch (f) {
            case ICMP -> exec(List.of("ip", "netns", "exec", ns, "ping", "-n", "-q", "-c1", "-W1", OUTSIDE4), "").ok();
            case UDP_53 -> {
                String token = "probe-" + ns + "-" + System.nanoTime();
                Result r = exec(List.of("ip", "netns", "exec", ns, "timeout", "4", "socat", "-t1", "-T2", "STDIO",
                        "UDP4:" + OUTSIDE4 + ":53"), token + "\n");
                yield r.stdout().contains(token);
            }
            case TCP6_80 -> probeTcp(ns, "[" + OUTSIDE6 + "]", 80, "ok-80");
            default -> probeTcp(ns, OUTSIDE4, f.tcpPort(), "ok-" + f.tcpPort());
        };
    }

    /** A tcp request/response from namespace {@code ns}: true when {@code expect} comes back. */
    public boolean probeTcp(String ns, String address, int port, String expect) {
        String proto = address.startsWith("[") ? "TCP6:" : "TCP4:";
        Result r = exec(List.of("ip", "netns", "exec", ns, "timeout", "4", "socat", "-T2", "-u",
                proto + address + ":" + port + ",connect-timeout=1", "STDOUT"), "");
        return r.stdout().contains(expect);
    }

    /** True when a ping from the outside namespace to the VM is answered (in any of {@link #ATTEMPTS} tries). */
    public boolean pingFromOutside(String vm) {
        return anyOf(ATTEMPTS, RETRY_PAUSE,
                () -> exec(List.of("ip", "netns", "exec", outside(), "ping", "-n", "-q", "-c1", "-W1", VMS.get(vm)[0]), "").ok());
    }

    /** True when a tcp connection from the outside namespace to the VM's port 2222 gets its greeting (in any of {@link #ATTEMPTS} tries). */
    public boolean tcpFromOutside(String vm) {
        return anyOf(ATTEMPTS, RETRY_PAUSE, () -> probeTcp(outside(), VMS.get(vm)[0], 2222, "hello-from-" + vm));
    }

    /** Probes every flow of every VM in parallel: the flows that did NOT get through, per VM. */
    public Map<String, Set<Flow>> blocked() {
        Map<String, Map<Flow, CompletableFuture<Boolean>>> futures = new TreeMap<>();
        for (String vm : VMS.keySet()) {
            Map<Flow, CompletableFuture<Boolean>> m = new EnumMap<>(Flow.class);
            for (Flow f : Flow.values()) {
                m.put(f, CompletableFuture.supplyAsync(() -> reach(vm, f), pool));
            }
            futures.put(vm, m);
        }
        Map<String, Set<Flow>> out = new TreeMap<>();
        futures.forEach((vm, m) -> {
            Set<Flow> b = EnumSet.noneOf(Flow.class);
            m.forEach((f, fut) -> {
                if (!fut.join()) {
                    b.add(f);
                }
            });
            out.put(vm, b);
        });
        return out;
    }

    /** A set element of the product's table as the kernel holds it: set, key (as nft reads it), comment, counter. */
    public record KernelElement(String set, String key, String comment, long packets) {
    }

    /**
     * The elements of the product's table in namespace {@code ns} whose comment starts with
     * {@code commentPrefix} (say {@code "r=<rule id> "}), read from {@code nft -j list table}: each
     * key rebuilt in nft's input syntax, so {@code nft delete element ... { key }} takes it back.
     */
    public List<KernelElement> elements(String ns, String commentPrefix) {
        Result r = nft(ns, "", "-j", "list", "table", "inet", "egressctl");
        if (!r.ok()) {
            throw new IllegalStateException("nft list: " + r.stderr());
        }
        List<KernelElement> out = new ArrayList<>();
        tools.jackson.databind.JsonNode listing = tools.jackson.databind.json.JsonMapper.builder().build().readTree(r.stdout());
        for (tools.jackson.databind.JsonNode item : listing.path("nftables")) {
            tools.jackson.databind.JsonNode set = item.path("set");
            if (set.isMissingNode()) {
                continue;
            }
            for (tools.jackson.databind.JsonNode el : set.path("elem")) {
                tools.jackson.databind.JsonNode e = el.path("elem");
                String comment = e.path("comment").asString("");
                if (comment.startsWith(commentPrefix)) {
                    out.add(new KernelElement(set.path("name").asString(), keyText(e.path("val")), comment,
                            e.path("counter").path("packets").asLong(-1)));
                }
            }
        }
        return out;
    }

    private static String keyText(tools.jackson.databind.JsonNode v) {
        if (v.has("concat")) {
            List<String> parts = new ArrayList<>();
            v.get("concat").forEach(p -> parts.add(keyText(p)));
            return String.join(" . ", parts);
        }
        if (v.has("prefix")) {
            return v.get("prefix").path("addr").asString() + "/" + v.get("prefix").path("len").asInt();
        }
        if (v.has("range")) {
            return keyText(v.get("range").get(0)) + "-" + keyText(v.get("range").get(1));
        }
        return v.isNumber() ? Long.toString(v.asLong()) : v.asString();
    }

    /** Runs nft in a namespace of this topology (for hand edits in tests). */
    public Result nft(String ns, String stdin, String... args) {
        List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", ns, "nft"));
        cmd.addAll(List.of(args));
        return exec(cmd, stdin);
    }

    /** Runs a command with a bound on its run time; never throws for a non-zero exit. */
    public static Result exec(List<String> cmd, String stdin) {
        return exec(cmd, stdin, CMD_TIMEOUT);
    }

    public static Result exec(List<String> cmd, String stdin, Duration timeout) {
        Process p;
        try {
            p = new ProcessBuilder(cmd).start();
        } catch (IOException e) {
            return new Result(127, "", "cannot start " + cmd + ": " + e.getMessage());
        }
        CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> drain(p.getInputStream()));
        CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> drain(p.getErrorStream()));
        try (OutputStream in = p.getOutputStream()) {
            in.write(stdin.getBytes(StandardCharsets.UTF_8));
        } catch (IOException ignored) {
            // the command did not read its input
        }
        try {
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                p.waitFor(5, TimeUnit.SECONDS);
                return new Result(124, out.getNow(""), "timed out after " + timeout + ": " + cmd);
            }
            return new Result(p.exitValue(), out.get(5, TimeUnit.SECONDS), err.get(5, TimeUnit.SECONDS));
        } catch (Exception e) {
            p.destroyForcibly();
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            return new Result(125, "", e.toString());
        }
    }

    private static String drain(InputStream in) {
        try (in) {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            in.transferTo(b);
            return b.toString(StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }

    private static Result must(String... cmd) {
        Result r = exec(List.of(cmd), "");
        if (!r.ok()) {
            throw new IllegalStateException(String.join(" ", cmd) + " failed (exit " + r.exitCode() + "): " + r.stderr().strip());
        }
        return r;
    }

    /** Kills what runs in the namespaces (only processes this helper started) and deletes them. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException alreadyShuttingDown) {
            // running as the hook itself
        }
        for (Process p : listeners) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
        for (Process p : listeners) {
            try {
                p.waitFor(2, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        for (String ns : namespaces) {
            deleteNamespace(ns);
        }
        pool.shutdownNow();
    }

    /** Kills the processes still inside one of this helper's namespaces (by pid), then deletes it. */
    private static void deleteNamespace(String ns) {
        Result pids = exec(List.of("ip", "netns", "pids", ns), "");
        for (String pid : pids.stdout().split("\\s+")) {
            if (pid.matches("\\d+")) {
                ProcessHandle.of(Long.parseLong(pid)).ifPresent(ProcessHandle::destroyForcibly);
            }
        }
        Result r = exec(List.of("ip", "netns", "del", ns), "");
        if (!r.ok() && !r.stderr().contains("No such file")) {
            System.err.println("[netns] could not delete " + ns + ": " + r.stderr().strip());
        }
    }

    /** Deletes namespaces named like this helper's whose creating JVM is gone (a killed earlier run). */
    private static void removeLeftovers() {
        Result list = exec(List.of("ip", "netns", "list"), "");
        for (String line : list.stdout().split("\n")) {
            Matcher m = OURS.matcher(line.strip());
            if (m.matches()) {
                long pid = Long.parseLong(m.group(2));
                if (ProcessHandle.of(pid).isEmpty()) {
                    deleteNamespace(m.group(1));
                }
            }
        }
    }

    private static boolean isRoot() {
        return "0".equals(uid());
    }

    private static String uid() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("Uid:")) {
                    return line.split("\\s+")[1];
                }
            }
        } catch (IOException e) {
            return "unknown";
        }
        return "unknown";
    }

    private static String which(String tool) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            Path p = Path.of(dir, tool);
            if (Files.isExecutable(p)) {
                return p.toString();
            }
        }
        return null;
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }
}
