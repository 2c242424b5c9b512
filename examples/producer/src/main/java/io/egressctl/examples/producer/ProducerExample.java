package io.egressctl.examples.producer;

import io.egressctl.events.NetworkSpec;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.RuleSpec;
import io.egressctl.events.Source;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.examples.producer.ChangeStatusClient.Level;
import io.egressctl.examples.producer.ChangeStatusClient.Status;
import io.egressctl.examples.producer.EventLogProducer.Published;

import java.io.PrintStream;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.Function;

/**
 * An upstream compute service publishing straight to the network events log (docs/producers.md): a
 * network, a VM placed on a host with its interface, and a rule blocking TCP port 25 for that VM, each
 * keyed by the network id and acknowledged before the next, then the status of each change read back
 * through the API until it is applied (or compiled, with {@code --wait=compiled}).
 *
 * <pre>
 * eval "$(./egressctl env)"
 * java -jar examples/producer/target/producer-example-*-exec.jar --host=host-1
 * </pre>
 *
 * Settings come from {@code --name=value} arguments, else the environment ({@code ./egressctl env}'s
 * names), else defaults; {@link Options#parse} lists them. Exits 1 when a change is rejected or does not
 * reach the level in time.
 */
public final class ProducerExample {

    private ProducerExample() {
    }

    public static void main(String[] args) {
        Options options;
        try {
            options = Options.parse(args, System::getenv);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(2);
            return;
        }
        Result result = run(options, System.out);
        System.exit(result.allReached() ? 0 : 1);
    }

    /**
     * Publishes the three events and waits for their changes; prints what it does to {@code out}.
     *
     * @return each change with where the log put it and its last status
     */
    public static Result run(Options o, PrintStream out) {
        Source source = NetworkEvents.source(o.actor(), o.tenantId(), "example-" + UUID.randomUUID(), Instant.now(),
                "producer-example", "0.1.0");
        NetworkSpec network = NetworkEvents.basicNetwork(o.networkId(), o.tenantId(), o.guestCidr());
        RuleSpec rule = NetworkEvents.blockTcpPortForVm(o.ruleId(), o.ipv4(), 25, "no SMTP from " + o.vmId());
        // The event ids are the change ids: fixed before the first attempt, so a republish carries the same.
        RuleEvent created = NetworkEvents.networkCreated(UUID.randomUUID().toString(), network, source);
        WorkloadEvent placed = NetworkEvents.vmPlaced(UUID.randomUUID().toString(), o.networkId(), o.tenantId(), o.vmId(), o.hostId(),
                o.interfaceName(), o.mac(), o.ipv4(), null, source);
        RuleEvent ruled = NetworkEvents.ruleCreated(UUID.randomUUID().toString(), o.networkId(), rule, null, source);

        List<Published> published = new ArrayList<>();
        try (EventLogProducer log = new EventLogProducer(o.bootstrapServers(), o.schemaRegistryUrl(), "producer-example")) {
            published.add(print(out, "NETWORK_CREATED " + o.networkId() + " (" + o.guestCidr() + ", tenant " + o.tenantId() + ")",
                    log.publish(created)));
            published.add(print(out, "VM_PLACED " + o.vmId() + " on " + o.hostId() + " via " + o.interfaceName() + " (" + o.ipv4() + ")",
                    log.publish(placed)));
            published.add(print(out, "RULE_CREATED " + o.ruleId() + " (tcp 25 from " + o.ipv4() + "/32 blocked)", log.publish(ruled)));
        }

        ChangeStatusClient changes = new ChangeStatusClient(o.apiUrl(), o.apiKey());
        Map<Published, Status> statuses = new LinkedHashMap<>();
        for (Published p : published) {
            Status s = changes.await(p.eventId(), o.waitFor(), o.timeout());
            statuses.put(p, s);
            out.printf("change %s: %s%s, network version %s, hosts %d/%d applied%s%n", p.eventId(), s.status(),
                    s.code() == null ? "" : " " + s.code() + " (" + s.reason() + ")", s.version(), s.hostsApplied(), s.hostsTotal(),
                    s.pendingHosts().isEmpty() ? "" : ", pending " + s.pendingHosts());
        }
        Result result = new Result(o, statuses);
        out.println(result.allReached() ? "every change " + o.waitFor().name() : "not every change got to " + o.waitFor().name());
        return result;
    }

    private static Published print(PrintStream out, String what, Published p) {
        out.printf("published %s: change %s at %s-%d offset %d (network version %d once decided)%n", what, p.eventId(),
                EventLogProducer.TOPIC, p.partition(), p.offset(), p.position());
        return p;
    }

    /**
     * What a run did.
     *
     * @param changes each published event, in publishing order, with its last status
     */
    public record Result(Options options, Map<Published, Status> changes) {

        /** Whether every change reached the level waited for (a rejection never does). */
        public boolean allReached() {
            return changes.values().stream().allMatch(s -> !s.status().equals("REJECTED") && s.reached(options.waitFor()));
        }

        /** The statuses in publishing order: network, placement, rule. */
        public List<Status> statuses() {
            return List.copyOf(changes.values());
        }
    }

    /**
     * The run's settings.
     *
     * @param apiKey   a key whose caller may read the network's changes: the operator's (compute's role)
     *                 or the network tenant's
     * @param tenantId the tenant that owns the network (its API key sees the network and the rule)
     */
    public record Options(String bootstrapServers, String schemaRegistryUrl, String apiUrl, String apiKey, String tenantId,
                          String actor, String networkId, String guestCidr, String hostId, String vmId, String interfaceName,
                          String mac, String ipv4, String ruleId, Level waitFor, Duration timeout) {

        /**
         * Reads {@code --name=value} arguments, falling back to the environment for the connections:
         * {@code --bootstrap-servers} (KAFKA_BOOTSTRAP_SERVERS), {@code --schema-registry-url}
         * (SCHEMA_REGISTRY_URL), {@code --api-url} (EGRESS_API_URL), {@code --api-key}
         * (EGRESS_OPERATOR_KEY, else EGRESS_API_KEY); and to defaults for the rest: {@code --tenant}
         * (demo: the tenant of {@code ./egressctl up}), {@code --actor} (compute-example), {@code --network} (compute-net-&lt;random&gt;),
         * {@code --guest-cidr} (10.77.0.0/24), {@code --host} (host-1), {@code --vm} (vm-&lt;random&gt;),
         * {@code --interface} (tap-&lt;random&gt;), {@code --mac} (none), {@code --ipv4} (10.77.0.10), {@code --rule}
         * (no-smtp-&lt;random&gt;), {@code --wait} (applied or compiled), {@code --timeout} (seconds, 60).
         *
         * @throws IllegalArgumentException for an unknown argument or a missing connection setting
         */
        public static Options parse(String[] args, Function<String, String> env) {
            Map<String, String> a = new LinkedHashMap<>();
            for (String arg : args) {
                int eq = arg.indexOf('=');
                if (!arg.startsWith("--") || eq < 0) {
                    throw new IllegalArgumentException("arguments are --name=value, not '" + arg + "'");
                }
                String name = arg.substring(2, eq);
                if (!KNOWN.contains(name)) {
                    throw new IllegalArgumentException("unknown argument --" + name + "; known: --" + String.join(", --", KNOWN));
                }
                a.put(name, arg.substring(eq + 1));
            }
            String suffix = UUID.randomUUID().toString().substring(0, 8);
            String waitFor = a.getOrDefault("wait", "applied");
            if (!waitFor.equals("applied") && !waitFor.equals("compiled")) {
                throw new IllegalArgumentException("--wait is applied or compiled, not '" + waitFor + "'");
            }
            return new Options(
                    required(a, "bootstrap-servers", env, "KAFKA_BOOTSTRAP_SERVERS"),
                    required(a, "schema-registry-url", env, "SCHEMA_REGISTRY_URL"),
                    required(a, "api-url", env, "EGRESS_API_URL"),
                    required(a, "api-key", env, "EGRESS_OPERATOR_KEY", "EGRESS_API_KEY"),
                    a.getOrDefault("tenant", "demo"),
                    a.getOrDefault("actor", "compute-example"),
                    a.getOrDefault("network", "compute-net-" + suffix),
                    a.getOrDefault("guest-cidr", "10.77.0.0/24"),
                    a.getOrDefault("host", "host-1"),
                    a.getOrDefault("vm", "vm-" + suffix),
                    // Unique by default: an interface of a host belongs to one VM; a second run's VM of
                    // another network on the same tap would leave both unenforced (the host blocks it).
                    a.getOrDefault("interface", "tap-" + suffix),
                    a.get("mac"),
                    a.getOrDefault("ipv4", "10.77.0.10"),
                    a.getOrDefault("rule", "no-smtp-" + suffix),
                    Level.valueOf(waitFor.toUpperCase(java.util.Locale.ROOT)),
                    Duration.ofSeconds(Long.parseLong(a.getOrDefault("timeout", "60"))));
        }

        private static final List<String> KNOWN = List.of("bootstrap-servers", "schema-registry-url", "api-url", "api-key", "tenant",
                "actor", "network", "guest-cidr", "host", "vm", "interface", "mac", "ipv4", "rule", "wait", "timeout");

        private static String required(Map<String, String> args, String name, Function<String, String> env, String... vars) {
            String v = args.get(name);
            for (int i = 0; (v == null || v.isBlank()) && i < vars.length; i++) {
                v = env.apply(vars[i]);
            }
            if (v == null || v.isBlank()) {
                throw new IllegalArgumentException("--" + name + " is required (or " + String.join(" or ", vars)
                        + " in the environment; eval \"$(./egressctl env)\" sets them for the local stack)");
            }
            return v;
        }
    }
}
