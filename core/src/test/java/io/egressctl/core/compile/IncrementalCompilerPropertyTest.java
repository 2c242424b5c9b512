package io.egressctl.core.compile;

import io.egressctl.core.event.RuleChange;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.VmPlacement;
import io.egressctl.core.state.NetworkState;
import io.egressctl.core.testing.Drafts;
import io.egressctl.core.testing.Events;
import io.egressctl.core.testing.Hosts;
import io.egressctl.core.testing.Log;
import io.egressctl.core.testing.Log.Delivery;
import io.egressctl.core.validation.ValidationException;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.constraints.IntRange;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

import static io.egressctl.core.testing.Events.expecting;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The incremental compiler against its oracle: after any sequence of rule and placement events
 * (with redeliveries and restarts mixed in), what the hosts were told adds up to exactly a
 * from-scratch compile of every network, hash for hash; and a host without VMs of a network holds
 * no fragment of it. A second property: a restart from checkpoints at any point, with any tail
 * delivered again, emits the same (version, content) sequence as one run in log order.
 */
class IncrementalCompilerPropertyTest {

    private static final String[] HOSTS = {"h0", "h1", "h2", "h3"};
    private static final int VMS_PER_NETWORK = 6;
    private static final int RULE_SLOTS = 4;

    /** n0: ALLOW, basic; n1: DENY, basic, quota 3; n2: ALLOW, advanced, dual stack. */
    private static Network network(int n, DefaultPolicy policy) {
        return switch (n) {
            case 0 -> Events.network("n0", "10.0.0.0/24", null, policy, false, 100);
            case 1 -> Events.network("n1", "10.1.0.0/24", null, policy, false, 3);
            default -> Events.network("n2", "10.2.0.0/24", "fd00:2::/64", policy, true, 100);
        };
    }

    private static final DefaultPolicy[] INITIAL_POLICY = {DefaultPolicy.ALLOW, DefaultPolicy.DENY, DefaultPolicy.ALLOW};

    private static String netId(int n) {
        return "n" + n;
    }

    private static String vmId(int n, int vm) {
        return "n" + n + "-vm" + vm;
    }

    private static String ipv4(int n, int vm) {
        return "10." + n + ".0." + (10 + vm);
    }

    private static String ipv6(int n, int vm) {
        return n == 2 ? "fd00:2::" + Integer.toHexString(10 + vm) : null;
    }

    // Steps a generated sequence is made of

    sealed interface Step permits NetworkStep, RuleStep, WorkloadStep, Redeliver, Restart {
    }

    record NetworkStep(int net, int kind, DefaultPolicy policy) implements Step {
        // kind: 0 create, 1 update (policy), 2 delete
    }

    /** kind: 0 create, 1 update, 2 delete, 3 create with a stale If-Match. */
    record RuleStep(int net, int kind, int slot, Shape shape) implements Step {
    }

    /** kind: 0 place, 1 move, 2 remove, 3 drain (of {@code host}). */
    record WorkloadStep(int net, int kind, int vm, int host) implements Step {
    }

    /** Deliver again the record {@code back} deliveries ago. */
    record Redeliver(int back) implements Step {
    }

    /** Checkpoint every network and continue on a new engine. */
    record Restart() implements Step {
    }

    /** What a rule matches, as small choices so that duplicates and collisions happen often. */
    record Shape(int protocol, int ports, int source, int destination, int action, int priority) {

        Drafts draft(int net) {
            String[] protocols = {"tcp", "udp", "icmp", "all", "icmpv6"};
            Drafts d = Drafts.draft(protocols[protocol]);
            if (protocol <= 1) {
                switch (ports) {
                    case 1 -> d.port(80);
                    case 2 -> d.ports(1000, 2000);
                    default -> { }
                }
            } else if (protocol == 2 && ports == 1) {
                d.icmp(8, -1);
            }
            switch (source) {
                case 1 -> d.sources(ipv4(net, 0) + "/32");
                case 2 -> d.sources(ipv4(net, 1) + "/32", ipv4(net, 3) + "/32");
                case 3 -> d.sources("10." + net + ".0.12/30");
                case 4 -> d.vms(vmId(net, 2), vmId(net, 4));
                case 5 -> d.sources("fd00:2::a/128");
                default -> { }
            }
            switch (destination) {
                case 1 -> d.destinations("192.0.2.0/24");
                case 2 -> d.destinations("198.51.100.0/24").except("198.51.100.128/25");
                default -> { }
            }
            if (net == 2) {
                d.action(action == 0 ? null : action == 1 ? "allow" : "deny");
                d.priority(priority == 0 ? null : priority * 10);
            }
            return d;
        }
    }

    @Provide
    Arbitrary<List<Step>> steps() {
        Arbitrary<Integer> net = Arbitraries.integers().between(0, 2);
        Arbitrary<DefaultPolicy> policy = Arbitraries.of(DefaultPolicy.class);
        Arbitrary<Shape> anyShape = Combinators.combine(Arbitraries.integers().between(0, 4), Arbitraries.integers().between(0, 2),
                Arbitraries.integers().between(0, 5), Arbitraries.integers().between(0, 2), Arbitraries.integers().between(0, 2),
                Arbitraries.integers().between(0, 3)).as(Shape::new);
        // A few common shapes (the seed examples) make duplicates and quota overflows frequent.
        Arbitrary<Shape> commonShape = Arbitraries.of(
                new Shape(2, 0, 1, 0, 0, 0), new Shape(0, 1, 2, 0, 0, 0), new Shape(0, 2, 3, 0, 0, 0),
                new Shape(3, 0, 1, 0, 0, 0), new Shape(3, 0, 4, 0, 0, 0), new Shape(1, 1, 0, 1, 1, 1));
        Arbitrary<Shape> shape = Arbitraries.frequencyOf(Tuple.of(2, commonShape), Tuple.of(1, anyShape));
        Arbitrary<Integer> ruleKind = Arbitraries.frequency(Tuple.of(5, 0), Tuple.of(2, 1), Tuple.of(2, 2), Tuple.of(1, 3));
        Arbitrary<Step> networkStep = Combinators.combine(net, Arbitraries.integers().between(0, 2), policy).as(NetworkStep::new);
        Arbitrary<Step> ruleStep = Combinators.combine(net, ruleKind,
                Arbitraries.integers().between(0, RULE_SLOTS - 1), shape).as(RuleStep::new);
        Arbitrary<Step> workloadStep = Combinators.combine(net, Arbitraries.integers().between(0, 3),
                Arbitraries.integers().between(0, VMS_PER_NETWORK - 1), Arbitraries.integers().between(0, HOSTS.length - 1))
                .as(WorkloadStep::new);
        Arbitrary<Step> redeliver = Arbitraries.integers().between(1, 8).map(Redeliver::new);
        Arbitrary<Step> restart = Arbitraries.just(new Restart());
        return Arbitraries.frequencyOf(
                Tuple.of(1, networkStep),
                Tuple.of(5, ruleStep),
                Tuple.of(6, workloadStep),
                Tuple.of(1, redeliver),
                Tuple.of(1, restart)).list().ofMaxSize(60);
    }

    /** Turns steps into records of the network events log (every network is created first). */
    private static Log log(List<Step> steps) {
        Log log = new Log();
        for (int n = 0; n < 3; n++) {
            log.rule(Events.networkCreated(network(n, INITIAL_POLICY[n])));
        }
        for (Step step : steps) {
            append(log, step);
        }
        return log;
    }

    private static void append(Log log, Step step) {
        if (step instanceof NetworkStep s) {
            log.rule(switch (s.kind()) {
                case 0 -> Events.networkCreated(network(s.net(), s.policy()));
                case 1 -> Events.networkUpdated(network(s.net(), s.policy()));
                default -> Events.networkDeleted(netId(s.net()));
            });
        } else if (step instanceof RuleStep s) {
            String ruleId = "r" + s.slot();
            EgressRule rule;
            try {
                rule = Events.rule(ruleId, network(s.net(), DefaultPolicy.ALLOW), s.shape().draft(s.net()).build());
            } catch (ValidationException e) {
                return; // the rule-service would have refused it
            }
            RuleChange c = switch (s.kind()) {
                case 0 -> Events.ruleCreated(netId(s.net()), rule);
                case 1 -> Events.ruleUpdated(netId(s.net()), rule, rule);
                case 2 -> Events.ruleDeleted(netId(s.net()), rule);
                default -> expecting(0, Events.ruleCreated(netId(s.net()), rule));
            };
            log.rule(c);
        } else if (step instanceof WorkloadStep s) {
            log.workload(switch (s.kind()) {
                case 0 -> Events.placed(netId(s.net()), vmId(s.net(), s.vm()), HOSTS[s.host()], ipv4(s.net(), s.vm()),
                        ipv6(s.net(), s.vm()));
                case 1 -> Events.moved(netId(s.net()), vmId(s.net(), s.vm()), "unknown", HOSTS[s.host()], ipv4(s.net(), s.vm()),
                        ipv6(s.net(), s.vm()));
                case 2 -> Events.removed(netId(s.net()), vmId(s.net(), s.vm()), HOSTS[s.host()]);
                default -> Events.drained(netId(s.net()), HOSTS[s.host()]);
            });
        }
    }

    @Property
    void foldedUpdatesEqualAFromScratchCompileAfterAnySequence(@ForAll("steps") List<Step> steps) {
        CompilerEngine engine = new CompilerEngine();
        Hosts hosts = new Hosts();
        Log log = new Log();
        List<Delivery> delivered = new ArrayList<>();
        for (int n = 0; n < 3; n++) {
            log.rule(Events.networkCreated(network(n, INITIAL_POLICY[n])));
        }
        for (Step step : steps) {
            if (step instanceof Redeliver r) {
                if (delivered.size() >= r.back()) {
                    hosts.accept(delivered.get(delivered.size() - r.back()).deliverTo(engine));
                }
            } else if (step instanceof Restart) {
                engine = Log.restart(engine);
            } else {
                append(log, step);
            }
            List<Delivery> all = log.inOrder();
            for (Delivery d : all.subList(delivered.size(), all.size())) {
                hosts.accept(d.deliverTo(engine));
                delivered.add(d);
            }
        }

        SortedMap<String, SortedMap<String, Fragment>> expected = Hosts.fullCompile(engine.states());
        assertThat(hosts.fragments()).isEqualTo(expected);
        assertThat(hosts.hashes()).isEqualTo(Hosts.hashesOf(expected));
        assertHostsHoldFragmentsExactlyWhereVmsRun(engine, hosts);
    }

    private static void assertHostsHoldFragmentsExactlyWhereVmsRun(CompilerEngine engine, Hosts hosts) {
        for (NetworkState s : engine.states()) {
            for (String host : HOSTS) {
                List<String> vmsHere = s.vms().values().stream().filter(p -> p.hostId().equals(host)).map(VmPlacement::vmId).toList();
                Fragment f = hosts.host(host) == null ? null : hosts.host(host).fragments().get(s.networkId());
                if (s.network() == null || vmsHere.isEmpty()) {
                    assertThat(f).as("%s holds no fragment of %s", host, s.networkId()).isNull();
                } else {
                    assertThat(f).as("%s holds a fragment of %s", host, s.networkId()).isNotNull();
                    assertThat(f.vms()).extracting(VmAddress::vmId).containsExactlyElementsOf(vmsHere);
                }
            }
        }
    }

    @Property
    void aRestartAtAnyPointWithARedeliveredTailEmitsTheSameVersionsAndContents(@ForAll("steps") List<Step> steps,
                                                                               @ForAll @IntRange(min = 0, max = 100) int restartPercent,
                                                                               @ForAll @IntRange(min = 0, max = 10) int redelivered) {
        Log log = log(steps);
        CompilerEngine inOrder = new CompilerEngine();
        Hosts expected = new Hosts();
        var expectedResults = Log.replay(log.inOrder(), inOrder, expected);

        List<Delivery> order = log.inOrder();
        int split = order.size() * restartPercent / 100;
        CompilerEngine first = new CompilerEngine();
        Hosts actual = new Hosts();
        var results = new ArrayList<>(Log.replay(order.subList(0, split), first, actual));
        CompilerEngine second = Log.restart(first);
        results.addAll(Log.replay(order.subList(Math.max(0, split - redelivered), order.size()), second, actual));

        assertThat(actual.fragments()).isEqualTo(expected.fragments());
        assertThat(actual.hashes()).isEqualTo(expected.hashes());
        assertThat(Log.byVersion(results)).as("the same (version, content) sequence").isEqualTo(Log.byVersion(expectedResults));
        assertThat(versions(second)).as("final versions are positions in the log").isEqualTo(versions(inOrder));
    }

    private static Map<String, Long> versions(CompilerEngine engine) {
        Map<String, Long> out = new TreeMap<>();
        engine.states().forEach(s -> out.put(s.networkId(), s.version()));
        return out;
    }
}
