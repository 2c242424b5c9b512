package io.egressctl.agent.kernel;

import io.egressctl.agent.kernel.NetnsTopology.Result;
import io.egressctl.core.render.HostMode;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One hypervisor host with two tenants whose networks overlap, built from network namespaces for
 * tests that send real packets: each tenant's network is 10.1.1.0/24 (and fd00:1:1::/64), each has a
 * VM at 10.1.1.10 (fd00:1:1::10) plugged into the host by a veth named {@code tap-a1} / {@code tap-b1}
 * on the host side, and a destination (its gateway, or the router behind its uplink) that serves
 * 203.0.113.1 / 2001:db8:113::1. Everything the tenants see is the same, addresses included; only the
 * port their traffic enters the host from tells them apart. Tenant A's network also holds a machine
 * that is no VM ({@code other}, on port {@code nv-a}), whose traffic the product must leave alone.
 *
 * <h2>Bridged (a Linux bridge per network, as CloudStack KVM and Neutron linuxbridge)</h2>
 * <pre>
 *  P-va eth0 10.1.1.10 ── tap-a1 ─┐
 *  P-oa eth0 10.1.1.20 ── nv-a  ──┼ br-a ── up-a ── eth0 10.1.1.1   P-da (gateway and destination:
 *                                 │  (P-h, no address)                 lo 203.0.113.1, 2001:db8:113::1)
 *  P-vb eth0 10.1.1.10 ── tap-b1 ── br-b ── up-b ── eth0 10.1.1.1   P-db
 * </pre>
 * The host only bridges: br_netfilter hands the bridged IP packets to the inet hooks, where
 * {@code iifname} is the bridge; the product's bridge-family table marks them by port.
 *
 * <h2>Routed (each VM's tap routed by the host)</h2>
 * <pre>
 *  P-va 10.1.1.10 ── tap-a1 10.1.1.1 ┐ table 10       ┌ up-a 10.255.0.1 ── 10.255.0.2 P-da (203.0.113.1 on lo)
 *  P-oa 10.1.2.20 ── nv-a   10.1.2.1 ┘ (ip rule iif)  │
 *  P-vb 10.1.1.10 ── tap-b1 10.1.1.1 ── table 20 ──────── up-b 10.255.0.1 ── 10.255.0.2 P-db (203.0.113.1 on lo)
 * </pre>
 * The same addresses twice on one host need separation. A VRF per tenant would be the cleanest (each
 * tenant's tap and uplink enslaved to {@code vrf-a}/{@code vrf-b}), but this machine kind's kernel
 * has no VRF driver ({@code ip link add ... type vrf} answers "Unknown device type"). So: policy
 * routing by input interface, which every kernel has: the host's addresses carry
 * {@code noprefixroute} (no route in the main table at all), each tenant's routes live in its own
 * table (10 for A, 20 for B), and {@code ip rule iif <port> lookup <table>} for the tenant's tap,
 * uplink and other ports sends each packet to its tenant's table. Replies to 10.1.1.10 that come
 * back on up-a find tap-a1, those on up-b find tap-b1.
 *
 * <p>P is {@code ech5k<pid>-<n><r|b>} ({@code ech5k}: see {@link #PREFIX}); {@link #close()} (also a shutdown hook) kills what was started
 * in the namespaces and deletes them, and namespaces of an earlier run whose JVM is gone are deleted
 * by the next {@link #create}.
 */
final class TenantTopology implements AutoCloseable {

    static final String VM4 = "10.1.1.10";
    static final String VM6 = "fd00:1:1::10";
    /** A second address each VM holds: sending from it is spoofing, as far as the host knows. */
    static final String SPOOF4 = "10.1.1.99";
    static final String SPOOF6 = "fd00:1:1::99";
    static final String DST4 = "203.0.113.1";
    static final String DST6 = "2001:db8:113::1";
    /** The tcp ports each destination answers with {@code <tenant>-<port>}. */
    static final int[] PORTS = {80, 443};
    /** A tcp echo port on each destination (many connections). */
    static final int ECHO = 7000;
    /** A udp echo port on each destination. */
    static final int UDP_ECHO = 53;
    /** Every VM listens here (tcp) and answers {@code hello-<tenant>}. */
    static final int VM_PORT = 2222;

    private static final AtomicInteger SEQ = new AtomicInteger();
    /** The namespaces' prefix: {@code ech5k} unless {@code -Degress.kernel.ns-prefix} names another (letters and digits). */
    static final String PREFIX = System.getProperty("egress.kernel.ns-prefix", "ech5k").replaceAll("[^a-z0-9]", "");
    private static final Pattern OURS = Pattern.compile("^(" + PREFIX + "(\\d+)-\\d+[rb]-[a-z]+)\\b.*");
    private static final Duration PROBE_TIMEOUT = Duration.ofSeconds(8);

    private final HostMode mode;
    private final String prefix;
    private final List<String> namespaces = new ArrayList<>();
    private final List<Process> processes = new ArrayList<>();
    private final Thread hook = new Thread(this::close, "tenant-netns-cleanup");
    private boolean closed;

    private TenantTopology(HostMode mode, String prefix) {
        this.mode = mode;
        this.prefix = prefix;
    }

    /** Why this machine cannot build the topology (root, tools), or null when it can. */
    static String unavailableReason() {
        String r = NetnsTopology.unavailableReason();
        if (r != null) {
            return r;
        }
        if (NetnsTopology.exec(List.of("conntrack", "--version"), "").exitCode() == 127) {
            return "kernel tests need 'conntrack' on PATH (Debian package: conntrack)";
        }
        if (NetnsTopology.exec(List.of("ss", "-V"), "").exitCode() == 127) {
            return "kernel tests need 'ss' on PATH (Debian package: iproute2)";
        }
        return null;
    }

    /** Builds the topology; on any failure whatever was built is removed again. */
    static TenantTopology create(HostMode mode) {
        removeLeftovers();
        TenantTopology t = new TenantTopology(mode, PREFIX + ProcessHandle.current().pid() + "-" + SEQ.incrementAndGet()
                + (mode == HostMode.BRIDGED ? "b" : "r"));
        Runtime.getRuntime().addShutdownHook(t.hook);
        try {
            t.build();
            return t;
        } catch (RuntimeException | Error e) {
            t.close();
            throw e;
        }
    }

    HostMode mode() {
        return mode;
    }

    String host() {
        return prefix + "-h";
    }

    /** The namespace of tenant {@code t}'s VM ("a" or "b"). */
    String vm(String t) {
        return prefix + "-v" + t;
    }

    /** The namespace of tenant {@code t}'s destination (its gateway or router). */
    String dst(String t) {
        return prefix + "-d" + t;
    }

    /** The machine on tenant A's network that is no VM. */
    String other() {
        return prefix + "-oa";
    }

    /** The host interface of tenant {@code t}'s VM. */
    static String tap(String t) {
        return "tap-" + t + "1";
    }

    /** The address the destinations see a VM's traffic come from and send their answers to. */
    String otherAddress() {
        return mode == HostMode.BRIDGED ? "10.1.1.20" : "10.1.2.20";
    }

    /** Where tenant {@code t}'s destination reaches its VM from: its gateway address on the VM's side, or its uplink. */
    static String dstAddressTowardsVm(HostMode mode) {
        return mode == HostMode.BRIDGED ? "10.1.1.1" : "10.255.0.2";
    }

    private void build() {
        String h = host();
        List<String> all = new ArrayList<>(List.of(h, other()));
        for (String t : List.of("a", "b")) {
            all.add(vm(t));
            all.add(dst(t));
        }
        for (String ns : all) {
            must("ip", "netns", "add", ns);
            namespaces.add(ns);
            must("ip", "-n", ns, "link", "set", "lo", "up");
        }
        if (mode == HostMode.BRIDGED) {
            buildBridged();
        } else {
            buildRouted();
        }
        for (String t : List.of("a", "b")) {
            String v = vm(t);
            must("ip", "-n", v, "addr", "add", VM4 + "/24", "dev", "eth0");
            must("ip", "-n", v, "addr", "add", SPOOF4 + "/24", "dev", "eth0");
            must("ip", "-n", v, "addr", "add", VM6 + "/64", "dev", "eth0", "nodad");
            // Deprecated (preferred_lft 0): never a source unless a probe binds to it.
            must("ip", "-n", v, "addr", "add", SPOOF6 + "/64", "dev", "eth0", "nodad", "preferred_lft", "0");
            must("ip", "-n", v, "link", "set", "eth0", "up");
            must("ip", "-n", v, "route", "add", "default", "via", "10.1.1.1");
            must("ip", "-n", v, "-6", "route", "add", "default", "via", "fd00:1:1::1");
            String d = dst(t);
            must("ip", "-n", d, "addr", "add", DST4 + "/32", "dev", "lo");
            must("ip", "-n", d, "addr", "add", DST6 + "/128", "dev", "lo");
            for (int port : PORTS) {
                listen(d, "TCP6-LISTEN:" + port + ",ipv6only=0,fork,reuseaddr", "SYSTEM:echo " + t + "-" + port);
            }
            listen(d, "TCP6-LISTEN:" + ECHO + ",ipv6only=0,fork,reuseaddr", "PIPE");
            // Bound to the destination address, so the answers come from it (not from eth0's address).
            listen(d, "UDP4-RECVFROM:" + UDP_ECHO + ",bind=" + DST4 + ",fork", "PIPE");
            listen(v, "TCP6-LISTEN:" + VM_PORT + ",ipv6only=0,fork,reuseaddr", "SYSTEM:echo hello-" + t);
        }
        awaitReady();
    }

    private void buildBridged() {
        String h = host();
        // br_netfilter is what hands bridged IP to the inet hooks; it is per namespace (on by default
        // in new ones on this machine kind, said so here in case a kernel differs).
        Result nf = NetnsTopology.exec(List.of("ip", "netns", "exec", h, "sh", "-c",
                "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables && echo 1 > /proc/sys/net/bridge/bridge-nf-call-ip6tables"), "");
        if (!nf.ok()) {
            throw new IllegalStateException("bridged hosts need br_netfilter (net.bridge.bridge-nf-call-iptables): " + nf.stderr().strip());
        }
        for (String t : List.of("a", "b")) {
            String br = "br-" + t;
            must("ip", "-n", h, "link", "add", br, "type", "bridge");
            must("ip", "-n", h, "link", "set", br, "up");
            port(br, tap(t), vm(t));
            port(br, "up-" + t, dst(t));
            String d = dst(t);
            must("ip", "-n", d, "addr", "add", "10.1.1.1/24", "dev", "eth0");
            must("ip", "-n", d, "addr", "add", "fd00:1:1::1/64", "dev", "eth0", "nodad");
            must("ip", "-n", d, "link", "set", "eth0", "up");
        }
        port("br-a", "nv-a", other());
        String o = other();
        must("ip", "-n", o, "addr", "add", "10.1.1.20/24", "dev", "eth0");
        must("ip", "-n", o, "link", "set", "eth0", "up");
        must("ip", "-n", o, "route", "add", "default", "via", "10.1.1.1");
    }

    /** A veth from the host's bridge {@code br} (port {@code name}) to {@code eth0} in namespace {@code ns}. */
    private void port(String br, String name, String ns) {
        must("ip", "-n", host(), "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", ns);
        must("ip", "-n", host(), "link", "set", name, "master", br, "up");
    }

    private void buildRouted() {
        String h = host();
        must("ip", "netns", "exec", h, "sh", "-c",
                "echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/ipv6/conf/all/forwarding"
                        + " && echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter && echo 0 > /proc/sys/net/ipv4/conf/default/rp_filter");
        for (String t : List.of("a", "b")) {
            String table = t.equals("a") ? "10" : "20";
            String tap = tap(t);
            String up = "up-" + t;
            link(tap, vm(t), "10.1.1.1/24", "fd00:1:1::1/64");
            link(up, dst(t), "10.255.0.1/30", "fd00:255::1/64");
            must("ip", "-n", h, "route", "add", "10.1.1.0/24", "dev", tap, "src", "10.1.1.1", "table", table);
            must("ip", "-n", h, "route", "add", "10.255.0.0/30", "dev", up, "src", "10.255.0.1", "table", table);
            must("ip", "-n", h, "route", "add", "default", "via", "10.255.0.2", "dev", up, "table", table);
            must("ip", "-n", h, "-6", "route", "add", "fd00:1:1::/64", "dev", tap, "table", table);
            must("ip", "-n", h, "-6", "route", "add", "fd00:255::/64", "dev", up, "table", table);
            must("ip", "-n", h, "-6", "route", "add", "default", "via", "fd00:255::2", "dev", up, "table", table);
            for (String dev : List.of(tap, up)) {
                rule(dev, table);
            }
            String d = dst(t);
            must("ip", "-n", d, "addr", "add", "10.255.0.2/30", "dev", "eth0");
            must("ip", "-n", d, "addr", "add", "fd00:255::2/64", "dev", "eth0", "nodad");
            must("ip", "-n", d, "link", "set", "eth0", "up");
            must("ip", "-n", d, "route", "add", "10.1.0.0/16", "via", "10.255.0.1");
            must("ip", "-n", d, "-6", "route", "add", "fd00:1::/32", "via", "fd00:255::1");
        }
        // A port of tenant A's that is no VM's: another machine routed by the host in A's table.
        link("nv-a", other(), "10.1.2.1/24", "fd00:1:2::1/64");
        must("ip", "-n", h, "route", "add", "10.1.2.0/24", "dev", "nv-a", "src", "10.1.2.1", "table", "10");
        rule("nv-a", "10");
        String o = other();
        must("ip", "-n", o, "addr", "add", "10.1.2.20/24", "dev", "eth0");
        must("ip", "-n", o, "link", "set", "eth0", "up");
        must("ip", "-n", o, "route", "add", "default", "via", "10.1.2.1");
    }

    /** A veth {@code name} in the host with the given addresses (no prefix routes) to {@code eth0} in {@code ns}. */
    private void link(String name, String ns, String a4, String a6) {
        String h = host();
        must("ip", "-n", h, "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", ns);
        must("ip", "-n", h, "addr", "add", a4, "dev", name, "noprefixroute");
        must("ip", "-n", h, "addr", "add", a6, "dev", name, "nodad", "noprefixroute");
        must("ip", "-n", h, "link", "set", name, "up");
    }

    private void rule(String dev, String table) {
        must("ip", "-n", host(), "rule", "add", "iif", dev, "lookup", table, "pref", "100");
        must("ip", "-n", host(), "-6", "rule", "add", "iif", dev, "lookup", table, "pref", "100");
    }

    private void listen(String ns, String address, String action) {
        processes.add(spawn(List.of("ip", "netns", "exec", ns, "socat", address, action)));
    }

    private static Process spawn(List<String> cmd) {
        try {
            return new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        } catch (IOException e) {
            throw new IllegalStateException("cannot start " + cmd + ": " + e.getMessage(), e);
        }
    }

    /** Waits (bounded) until both VMs reach everything and their listeners answer, before any ruleset. */
    private void awaitReady() {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        String missing = "";
        for (int attempt = 0; attempt < 100 && System.nanoTime() < deadline; attempt++) {
            missing = "";
            for (String t : List.of("a", "b")) {
                for (int port : PORTS) {
                    if (!tcpOnce(vm(t), DST4, port, null, t + "-" + port)) {
                        missing += " " + t + "->" + port;
                    }
                }
                if (!tcpOnce(vm(t), DST6, 80, null, t + "-80")) {
                    missing += " " + t + "->[v6]80";
                }
                if (!udpOnce(vm(t))) {
                    missing += " " + t + "->udp";
                }
                if (!tcpOnce(dst(t), VM4, VM_PORT, null, "hello-" + t)) {
                    missing += " " + t + "-dst->vm:" + VM_PORT;
                }
            }
            if (!tcpOnce(other(), DST4, 80, null, "a-80")) {
                missing += " other->80";
            }
            if (!udpOnce(other())) {
                missing += " other->udp";
            }
            if (missing.isEmpty()) {
                return;
            }
            sleep(100);
        }
        throw new IllegalStateException("topology " + prefix + " not ready, unreachable:" + missing);
    }

    // ---- probes --------------------------------------------------------------------------------

    /** How many times a probe is tried before it counts as blocked: on a loaded machine one try can be lost. */
    static final int ATTEMPTS = NetnsTopology.ATTEMPTS;

    /**
     * True when a tcp request from namespace {@code ns} (from address {@code from}, or the default
     * source when null) to {@code address:port} gets {@code expect} back, in any of {@link #ATTEMPTS}
     * tries; false only when every try failed.
     */
    boolean tcp(String ns, String address, int port, String from, String expect) {
        return NetnsTopology.anyOf(ATTEMPTS, NetnsTopology.RETRY_PAUSE, () -> tcpOnce(ns, address, port, from, expect));
    }

    private static boolean tcpOnce(String ns, String address, int port, String from, String expect) {
        boolean v6 = address.contains(":");
        String target = (v6 ? "TCP6:[" + address + "]" : "TCP4:" + address) + ":" + port + ",connect-timeout=1"
                + (from == null ? "" : ",bind=" + (v6 ? "[" + from + "]" : from));
        Result r = NetnsTopology.exec(List.of("ip", "netns", "exec", ns, "timeout", "4", "socat", "-T2", "-u", target, "STDOUT"), "",
                PROBE_TIMEOUT);
        return r.stdout().contains(expect);
    }

    /** True when a ping from {@code ns} to {@code address} is answered in any of {@link #ATTEMPTS} tries. */
    boolean ping(String ns, String address) {
        return NetnsTopology.anyOf(ATTEMPTS, NetnsTopology.RETRY_PAUSE,
                () -> NetnsTopology.exec(List.of("ip", "netns", "exec", ns, "ping", "-n", "-q", "-c1", "-W1", address), "", PROBE_TIMEOUT).ok());
    }

    /** True when a datagram from {@code ns} to the destination's udp echo comes back in any of {@link #ATTEMPTS} tries. */
    boolean udp(String ns) {
        return NetnsTopology.anyOf(ATTEMPTS, NetnsTopology.RETRY_PAUSE, () -> udpOnce(ns));
    }

    private static boolean udpOnce(String ns) {
        String token = "probe-" + ns + "-" + System.nanoTime();
        Result r = NetnsTopology.exec(List.of("ip", "netns", "exec", ns, "timeout", "4", "socat", "-t1", "-T2", "STDIO",
                "UDP4:" + DST4 + ":" + UDP_ECHO), token + "\n", PROBE_TIMEOUT);
        return r.stdout().contains(token);
    }

    // ---- the host's kernel state ---------------------------------------------------------------

    /** Runs a command in the host namespace. */
    Result inHost(String... cmd) {
        List<String> c = new ArrayList<>(List.of("ip", "netns", "exec", host()));
        c.addAll(List.of(cmd));
        return NetnsTopology.exec(c, "");
    }

    /** Removes the product's tables and forgets every tracked flow: the host as if no agent ever ran. */
    void reset() {
        inHost("nft", "delete", "table", "inet", "egressctl");
        inHost("nft", "delete", "table", "bridge", "egressctl");
        inHost("conntrack", "-F");
    }

    /** The conntrack entries of the host with this mark, as {@code conntrack -L} prints them. */
    List<String> conntrack(int mark) {
        Result r = inHost("conntrack", "-L", "--mark", Integer.toUnsignedString(mark));
        List<String> out = new ArrayList<>();
        for (String line : r.stdout().split("\n")) {
            if (!line.isBlank()) {
                out.add(line.strip());
            }
        }
        return out;
    }

    /** What the agent does after an apply for a port whose new rules may block its flows. */
    Result flushMark(int mark) {
        return inHost("conntrack", "-D", "--mark", Integer.toUnsignedString(mark));
    }

    /** The packet counter of the vm chain's rule with this comment. */
    long ruleCounter(String comment) {
        Result r = inHost("nft", "list", "chain", "inet", "egressctl", "vm");
        Matcher m = Pattern.compile("counter packets (\\d+) bytes \\d+ .*comment \"" + Pattern.quote(comment) + "\"").matcher(r.stdout());
        if (!m.find()) {
            throw new AssertionError("no counted rule '" + comment + "' in the vm chain:\n" + r.stdout() + r.stderr());
        }
        return Long.parseLong(m.group(1));
    }

    /** True when the address is a listening tcp port in {@code ns}. */
    boolean listening(String ns, int port) {
        Result r = NetnsTopology.exec(List.of("ip", "netns", "exec", ns, "ss", "-Htln", "sport = :" + port), "");
        return r.ok() && !r.stdout().isBlank();
    }

    // ---- long-lived conversations ---------------------------------------------------------------

    /**
     * A process in a namespace talking line by line on stdin/stdout (a socat end of one tcp
     * connection): {@link #send} writes a line, {@link #next} waits (bounded) for the next line read.
     */
    final class Line implements AutoCloseable {
        private final Process process;
        private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();

        Line(String ns, String... cmd) {
            List<String> c = new ArrayList<>(List.of("ip", "netns", "exec", ns));
            c.addAll(List.of(cmd));
            try {
                process = new ProcessBuilder(c).redirectError(ProcessBuilder.Redirect.DISCARD).start();
            } catch (IOException e) {
                throw new IllegalStateException("cannot start " + c + ": " + e.getMessage(), e);
            }
            synchronized (TenantTopology.this) {
                processes.add(process);
            }
            Thread reader = new Thread(() -> {
                try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                    for (String l = in.readLine(); l != null; l = in.readLine()) {
                        lines.add(l);
                    }
                } catch (IOException e) {
                    // the process ended
                }
            }, "line-reader-" + ns);
            reader.setDaemon(true);
            reader.start();
        }

        void send(String line) {
            try {
                OutputStream out = process.getOutputStream();
                out.write((line + "\n").getBytes(StandardCharsets.UTF_8));
                out.flush();
            } catch (IOException e) {
                throw new IllegalStateException("cannot write to " + process.info().commandLine().orElse("socat") + ": " + e.getMessage(), e);
            }
        }

        /** The next line read within {@code wait}, or null. */
        String next(Duration wait) {
            try {
                return lines.poll(wait.toMillis(), TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }

        boolean alive() {
            return process.isAlive();
        }

        @Override
        public void close() {
            process.descendants().forEach(ProcessHandle::destroyForcibly);
            process.destroyForcibly();
        }
    }

    /**
     * A one-connection tcp server on {@code port} in tenant {@code t}'s destination, and a client in
     * its VM connected to it (from {@code sourcePort}, or any when 0): returned once the server
     * listens; the caller checks that the connection carries data.
     */
    Line[] conversation(String t, int port, int sourcePort) {
        Line server = new Line(dst(t), "socat", "-T120", "TCP4-LISTEN:" + port + ",reuseaddr", "STDIO");
        for (int i = 0; i < 100 && !listening(dst(t), port); i++) {
            sleep(50);
        }
        if (!listening(dst(t), port)) {
            server.close();
            throw new IllegalStateException("the server on port " + port + " in " + dst(t) + " does not listen");
        }
        Line client = new Line(vm(t), "socat", "-T120", "STDIO",
                "TCP4:" + DST4 + ":" + port + ",connect-timeout=3" + (sourcePort == 0 ? "" : ",sourceport=" + sourcePort + ",reuseaddr"));
        return new Line[]{server, client};
    }

    // ---- cleanup ------------------------------------------------------------------------------------

    private static void must(String... cmd) {
        Result r = NetnsTopology.exec(List.of(cmd), "");
        if (!r.ok()) {
            throw new IllegalStateException(String.join(" ", cmd) + " failed (exit " + r.exitCode() + "): " + r.stderr().strip());
        }
    }

    /** Kills what runs in the namespaces (only processes this helper started, and what runs inside them) and deletes them. Idempotent. */
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
        for (Process p : processes) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
        for (Process p : processes) {
            try {
                p.waitFor(2, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        for (String ns : namespaces) {
            deleteNamespace(ns);
        }
    }

    private static void deleteNamespace(String ns) {
        Result pids = NetnsTopology.exec(List.of("ip", "netns", "pids", ns), "");
        for (String pid : pids.stdout().split("\\s+")) {
            if (pid.matches("\\d+")) {
                ProcessHandle.of(Long.parseLong(pid)).ifPresent(ProcessHandle::destroyForcibly);
            }
        }
        Result r = NetnsTopology.exec(List.of("ip", "netns", "del", ns), "");
        if (!r.ok() && !r.stderr().contains("No such file")) {
            System.err.println("[netns] could not delete " + ns + ": " + r.stderr().strip());
        }
    }

    /** Deletes namespaces named like this helper's whose creating JVM is gone (a killed earlier run). */
    private static void removeLeftovers() {
        Result list = NetnsTopology.exec(List.of("ip", "netns", "list"), "");
        for (String line : list.stdout().split("\n")) {
            Matcher m = OURS.matcher(line.strip());
            if (m.matches() && ProcessHandle.of(Long.parseLong(m.group(2))).isEmpty()) {
                deleteNamespace(m.group(1));
            }
        }
    }

    @Override
    public String toString() {
        return mode.name().toLowerCase(Locale.ROOT) + " host " + host();
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }
}
