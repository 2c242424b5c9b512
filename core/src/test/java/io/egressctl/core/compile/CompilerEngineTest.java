package io.egressctl.core.compile;

import io.egressctl.core.model.Action;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.state.Decision;
import io.egressctl.core.state.NetworkState;
import io.egressctl.core.testing.Hosts;
import io.egressctl.core.testing.Log;
import io.egressctl.core.testing.Log.Delivery;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.stream.Collectors;

import static io.egressctl.core.testing.Drafts.draft;
import static io.egressctl.core.testing.Events.drained;
import static io.egressctl.core.testing.Events.expecting;
import static io.egressctl.core.testing.Events.moved;
import static io.egressctl.core.testing.Events.network;
import static io.egressctl.core.testing.Events.networkCreated;
import static io.egressctl.core.testing.Events.networkDeleted;
import static io.egressctl.core.testing.Events.networkUpdated;
import static io.egressctl.core.testing.Events.placed;
import static io.egressctl.core.testing.Events.removed;
import static io.egressctl.core.testing.Events.rule;
import static io.egressctl.core.testing.Events.ruleCreated;
import static io.egressctl.core.testing.Events.ruleDeleted;
import static io.egressctl.core.testing.Events.ruleUpdated;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The incremental compiler as a function of the log (invariants 2 and 3), in the style of calico's
 * calc-graph tests: one scenario (network, rule and workload events in one log) replayed in order,
 * with every event twice, split across a restart at every point, with a redelivered tail. Every run
 * emits the same (version, content) sequence. A fake fleet of agents ({@link Hosts}) folds the
 * updates and asserts the agents' invariants as they arrive.
 */
class CompilerEngineTest {

    private static final Network NET_A = network("net-a", "10.1.0.0/24");
    private static final Network NET_B = network("net-b", "10.2.0.0/24", "fd00:b::/64", DefaultPolicy.DENY, true, 100);
    private static final Network NET_C = network("net-c", "10.3.0.0/24");

    private static final EgressRule A_ICMP = rule("r-icmp", NET_A, draft("icmp").sources("10.1.0.5/32").build());
    private static final EgressRule A_80 = rule("r-80", NET_A, draft("tcp").port(80).sources("10.1.0.5/32", "10.1.0.6/32").build());
    private static final EgressRule A_8080 = rule("r-80", NET_A, draft("tcp").port(8080).sources("10.1.0.5/32", "10.1.0.6/32").build());
    private static final EgressRule A_RANGE = rule("r-range", NET_A, draft("tcp").ports(1000, 2000).sources("10.1.0.0/28").build());
    private static final EgressRule B_HTTPS = rule("r-https", NET_B, draft("tcp").port(443).build());
    private static final EgressRule B_DNS = rule("r-dns", NET_B, draft("udp").action("allow").priority(10).port(53)
            .destinations("192.0.2.0/24").build());
    private static final EgressRule C_ALL = rule("r-all", NET_C, draft("all").vms("c1").build());
    private static final EgressRule C_ALL_SET = rule("r-all-set", NET_C, draft("all").vms("c1", "c2").build());

    /** Three networks, VMs on four hosts, rule creates/updates/deletes and rejections, moves, removals, a drain. */
    private static Log scenario() {
        return new Log()
                .rule(networkCreated(NET_A))
                .rule(networkCreated(NET_B))
                .workload(placed("net-a", "a1", "h1", "10.1.0.5"))
                .workload(placed("net-a", "a2", "h2", "10.1.0.6"))
                .rule(ruleCreated("net-a", A_ICMP))
                .workload(placed("net-a", "a3", "h1", "10.1.0.20"))
                .rule(ruleCreated("net-a", A_80))
                .workload(placed("net-b", "b1", "h1", "10.2.0.5", "fd00:b::5"))
                .rule(ruleCreated("net-b", B_HTTPS))
                .rule(networkCreated(NET_C))
                .workload(placed("net-b", "b2", "h3", "10.2.0.6"))
                .workload(placed("net-c", "c1", "h2", "10.3.0.5"))
                .rule(ruleCreated("net-a", A_RANGE))
                .workload(placed("net-c", "c2", "h4", "10.3.0.6"))
                .rule(ruleCreated("net-c", C_ALL))
                .rule(ruleUpdated("net-a", A_80, A_8080))
                .workload(moved("net-a", "a1", "h1", "h3", "10.1.0.5"))
                .rule(expecting(1, ruleCreated("net-b", B_DNS)))
                .rule(ruleCreated("net-a", A_ICMP.withId("r-icmp-2")))
                .workload(removed("net-a", "a3", "h1"))
                .rule(ruleCreated("net-c", C_ALL_SET))
                .workload(drained("net-b", "h3"))
                .rule(ruleDeleted("net-a", A_RANGE))
                .workload(placed("net-a", "a4", "h4", "10.1.0.7"))
                .rule(networkUpdated(NET_C.withDefaultPolicy(DefaultPolicy.DENY)))
                .workload(removed("net-c", "c2", "h4"))
                .workload(removed("net-a", "a-unknown", "h4"))
                .rule(ruleCreated("net-b", B_DNS))
                .rule(networkDeleted("net-c"));
    }

    /** What one delivery order produced. */
    private record Run(CompilerEngine engine, Hosts hosts, List<CompileResult> results) {

        SortedMap<String, SortedMap<String, Fragment>> fragments() {
            return hosts.fragments();
        }

        List<FragmentUpdate> updates() {
            return results.stream().flatMap(r -> r.updates().stream()).toList();
        }

        /** The decision on every event, by event id (the first delivery's). */
        Map<String, Decision> decisions() {
            Map<String, Decision> out = new TreeMap<>();
            results.forEach(r -> out.putIfAbsent(r.eventId(), r.decision()));
            return out;
        }
    }

    private static Run run(List<Delivery> order) {
        CompilerEngine engine = new CompilerEngine();
        Hosts hosts = new Hosts();
        return new Run(engine, hosts, Log.replay(order, engine, hosts));
    }

    private static void assertSameOutcome(Run actual, Run expected) {
        assertThat(actual.fragments()).isEqualTo(expected.fragments());
        assertThat(actual.hosts().hashes()).isEqualTo(expected.hosts().hashes());
        assertThat(actual.decisions()).isEqualTo(expected.decisions());
        assertThat(actual.fragments()).isEqualTo(Hosts.fullCompile(actual.engine().states()));
    }

    @Test
    void theScenarioReplayedInOrderEndsInTheStateAFullCompileGives() {
        Run run = run(scenario().inOrder());

        SortedMap<String, SortedMap<String, Fragment>> expected = Hosts.fullCompile(run.engine().states());
        assertThat(run.fragments()).isEqualTo(expected);
        assertThat(run.hosts().hashes()).isEqualTo(Hosts.hashesOf(expected));
        assertThat(run.fragments()).containsOnlyKeys("h1", "h2", "h3", "h4");
        assertThat(run.fragments().get("h1")).containsOnlyKeys("net-b");
        assertThat(run.fragments().get("h2")).containsOnlyKeys("net-a");
        assertThat(run.fragments().get("h3")).containsOnlyKeys("net-a");
        assertThat(run.fragments().get("h4")).containsOnlyKeys("net-a");
        assertThat(run.fragments().get("h3").get("net-a").rules()).extracting(CompiledRule::ruleId)
                .containsExactly("r-80", "r-icmp");
        assertThat(run.fragments().get("h1").get("net-b").rules()).extracting(CompiledRule::ruleId, CompiledRule::action)
                .containsExactly(org.assertj.core.groups.Tuple.tuple("r-dns", Action.ALLOW),
                        org.assertj.core.groups.Tuple.tuple("r-https", Action.ALLOW));
    }

    @Test
    void theScenarioDecidesConflictsInLogOrder() {
        Map<String, Decision> decisions = run(scenario().inOrder()).decisions();

        assertThat(decisions.values()).extracting(Decision::code).filteredOn(c -> c != null)
                .containsExactlyInAnyOrder("STALE_VERSION", "DUPLICATE_RULE", "VM_NOT_FOUND");
    }

    @Test
    void everyEventDeliveredTwiceEndsTheSameAndTheSecondCopiesChangeNothing() {
        Log log = scenario();
        Run once = run(log.inOrder());

        Run twice = run(log.everyEventTwice());

        assertSameOutcome(twice, once);
        for (int i = 1; i < twice.results().size(); i += 2) {
            assertThat(twice.results().get(i).decision().outcome()).isEqualTo(Decision.Outcome.ALREADY_APPLIED);
            assertThat(twice.results().get(i).updates()).isEmpty();
        }
        assertThat(twice.updates()).as("the very same update stream").isEqualTo(once.updates());
    }

    @Test
    void replayingTheWholeLogAgainAfterwardsEmitsNothing() {
        Log log = scenario();
        Run run = run(log.inOrder());

        List<CompileResult> again = Log.replay(log.inOrder(), run.engine(), run.hosts());

        assertThat(again).allSatisfy(r -> {
            assertThat(r.decision().outcome()).isEqualTo(Decision.Outcome.ALREADY_APPLIED);
            assertThat(r.updates()).isEmpty();
        });
    }

    @Test
    void aRestartFromCheckpointsAtAnyPointEndsTheSameWithTheSameUpdates() {
        Log log = scenario();
        List<Delivery> order = log.inOrder();
        Run expected = run(order);

        for (int split = 0; split <= order.size(); split++) {
            CompilerEngine first = new CompilerEngine();
            Hosts hosts = new Hosts();
            List<CompileResult> results = new ArrayList<>(Log.replay(order.subList(0, split), first, hosts));
            CompilerEngine second = Log.restart(first);
            results.addAll(Log.replay(order.subList(split, order.size()), second, hosts));
            Run restarted = new Run(second, hosts, results);

            assertThat(restarted.fragments()).as("split at %d", split).isEqualTo(expected.fragments());
            assertThat(restarted.hosts().hashes()).as("split at %d", split).isEqualTo(expected.hosts().hashes());
            assertThat(restarted.updates()).as("split at %d", split).isEqualTo(expected.updates());
        }
    }

    @Test
    void aRestartThatRedeliversTheUncommittedTailEndsTheSame() {
        Log log = scenario();
        List<Delivery> order = log.inOrder();
        Run expected = run(order);

        for (int split = 0; split <= order.size(); split++) {
            CompilerEngine first = new CompilerEngine();
            Hosts hosts = new Hosts();
            Log.replay(order.subList(0, split), first, hosts);
            CompilerEngine second = Log.restart(first);
            // The consumer committed a few records before the checkpoint: they come again.
            Log.replay(order.subList(Math.max(0, split - 3), order.size()), second, hosts);

            assertThat(hosts.fragments()).as("split at %d", split).isEqualTo(expected.fragments());
            assertThat(hosts.hashes()).as("split at %d", split).isEqualTo(expected.hosts().hashes());
        }
    }

    @Test
    void versionsArePositionsInTheOneLogWhateverTheKindOfEvent() {
        Log log = scenario();
        Run run = run(log.inOrder());

        for (int i = 0; i < run.results().size(); i++) {
            Delivery d = log.inOrder().get(i);
            assertThat(run.results().get(i).networkVersion()).as("event %s", d.eventId()).isEqualTo(d.position());
            assertThat(run.results().get(i).updates()).allSatisfy(u -> assertThat(u.version()).isEqualTo(d.position()));
        }
        // A network's version is the position of its last event, whatever its kind: net-a ends on a placement.
        long lastOfNetA = log.inOrder().stream().filter(d -> d.eventId() != null && networkOf(d).equals("net-a"))
                .mapToLong(Delivery::position).max().orElseThrow();
        assertThat(run.engine().state("net-a").version()).isEqualTo(lastOfNetA);
    }

    @Test
    void anEventBehindTheNetworksPositionIsAlreadyAppliedWhateverItsKind() {
        twoNetworksOnThreeHosts();
        long at = engine.state("net-a").version();

        CompileResult late = engine.onRuleChange(ruleCreated("net-a", A_ICMP), at - 1);

        assertThat(late.decision().outcome()).isEqualTo(Decision.Outcome.ALREADY_APPLIED);
        assertThat(late.updates()).isEmpty();
        assertThat(engine.state("net-a").rules()).isEmpty();
    }

    @Test
    void duplicatedAndRestartedWithARedeliveredTailAllAtOnceEmitsTheSameVersionsAndContents() {
        Log log = scenario();
        Run expected = run(log.inOrder());
        Map<String, FragmentUpdate> expectedUpdates = Log.byVersion(expected.results());

        for (int seed = 0; seed < 20; seed++) {
            List<Delivery> order = log.inOrder();
            int split = (seed * 7) % order.size();
            CompilerEngine first = new CompilerEngine();
            Hosts hosts = new Hosts();
            List<CompileResult> results = new ArrayList<>();
            for (Delivery d : order.subList(0, split)) {
                results.add(d.deliverTo(first));
                results.add(d.deliverTo(first));
            }
            results.forEach(hosts::accept);
            CompilerEngine second = Log.restart(first);
            List<CompileResult> after = Log.replay(order.subList(Math.max(0, split - 2), order.size()), second, hosts);
            results.addAll(after);

            assertThat(hosts.fragments()).as("seed %d", seed).isEqualTo(expected.fragments());
            assertThat(hosts.hashes()).as("seed %d", seed).isEqualTo(expected.hosts().hashes());
            assertThat(Log.byVersion(results)).as("seed %d: the same (version, content) sequence", seed).isEqualTo(expectedUpdates);
            assertThat(versions(second)).as("seed %d", seed).isEqualTo(versions(expected.engine()));
        }
    }

    private static String networkOf(Delivery d) {
        return d.event() instanceof io.egressctl.core.event.RuleChange r ? r.networkId()
                : ((io.egressctl.core.event.WorkloadChange) d.event()).networkId();
    }

    private static Map<String, Long> versions(CompilerEngine engine) {
        Map<String, Long> out = new TreeMap<>();
        engine.states().forEach(s -> out.put(s.networkId(), s.version()));
        return out;
    }

    // Targeted behaviour

    private final CompilerEngine engine = new CompilerEngine();
    private final Hosts hosts = new Hosts();
    private long position;

    private CompileResult deliverRule(io.egressctl.core.event.RuleChange c) {
        CompileResult r = engine.onRuleChange(c, ++position);
        hosts.accept(r);
        return r;
    }

    private CompileResult deliverWorkload(io.egressctl.core.event.WorkloadChange c) {
        CompileResult r = engine.onWorkloadChange(c, ++position);
        hosts.accept(r);
        return r;
    }

    private static Set<String> hostsOf(CompileResult r) {
        return r.updates().stream().map(FragmentUpdate::hostId).collect(Collectors.toSet());
    }

    /** net-a on h1 (two VMs) and h2; net-b on h1 and h3. */
    private void twoNetworksOnThreeHosts() {
        deliverRule(networkCreated(NET_A));
        deliverRule(networkCreated(NET_B));
        deliverWorkload(placed("net-a", "a1", "h1", "10.1.0.5"));
        deliverWorkload(placed("net-a", "a3", "h1", "10.1.0.20"));
        deliverWorkload(placed("net-a", "a2", "h2", "10.1.0.6"));
        deliverWorkload(placed("net-b", "b1", "h1", "10.2.0.5"));
        deliverWorkload(placed("net-b", "b2", "h3", "10.2.0.6"));
    }

    @Test
    void aRuleChangeInOneNetworkEmitsUpdatesOnlyForTheHostsRunningItsVms() {
        twoNetworksOnThreeHosts();

        CompileResult r = deliverRule(ruleCreated("net-a", rule("r-web", NET_A, draft("tcp").port(80).build())));

        assertThat(hostsOf(r)).containsExactlyInAnyOrder("h1", "h2");
        assertThat(r.updates()).allSatisfy(u -> {
            assertThat(u.networkId()).isEqualTo("net-a");
            assertThat(u.isTombstone()).isFalse();
            assertThat(u.changeIds()).containsExactly(r.eventId());
            assertThat(u.version()).isEqualTo(r.networkVersion());
        });
    }

    @Test
    void aRuleForOneVmEmitsAnUpdateOnlyForThatVmsHost() {
        twoNetworksOnThreeHosts();

        CompileResult r = deliverRule(ruleCreated("net-a", A_ICMP));

        assertThat(hostsOf(r)).containsExactly("h1");
        assertThat(r.updates().get(0).fragment().rules()).singleElement()
                .satisfies(c -> assertThat(c.vmIds()).containsExactly("a1"));
    }

    @Test
    void aRuleThatCoversNoPlacedVmOrChangesNoFragmentEmitsNothing() {
        twoNetworksOnThreeHosts();
        EgressRule nobody = rule("r-nobody", NET_A, draft("all").sources("10.1.0.200/32").build());
        EgressRule withDescription = rule("r-icmp", NET_A, draft("icmp").sources("10.1.0.5/32").description("now documented").build());
        deliverRule(ruleCreated("net-a", A_ICMP));

        assertThat(deliverRule(ruleCreated("net-a", nobody)).updates()).isEmpty();
        assertThat(deliverRule(ruleUpdated("net-a", A_ICMP, withDescription)).updates()).as("descriptions are not compiled").isEmpty();
    }

    @Test
    void aVmMoveEmitsAFragmentForTheNewHostAndATombstoneForTheOldOne() {
        twoNetworksOnThreeHosts();
        deliverWorkload(removed("net-a", "a3", "h1"));

        CompileResult r = deliverWorkload(moved("net-a", "a1", "h1", "h3", "10.1.0.5"));

        Map<String, FragmentUpdate> byHost = r.updates().stream().collect(Collectors.toMap(FragmentUpdate::hostId, u -> u));
        assertThat(byHost).containsOnlyKeys("h1", "h3");
        assertThat(byHost.get("h1").isTombstone()).isTrue();
        assertThat(byHost.get("h1").hash()).isEmpty();
        assertThat(byHost.get("h3").fragment().vms()).extracting(VmAddress::vmId).containsExactly("a1");
        assertThat(hosts.host("h1").fragments()).containsOnlyKeys("net-b");
        assertThat(hosts.host("h3").fragments()).containsOnlyKeys("net-a", "net-b");
    }

    @Test
    void aVmMoveLeavingAnotherVmOfTheNetworkBehindUpdatesTheOldHostInsteadOfTombstoningIt() {
        twoNetworksOnThreeHosts();

        CompileResult r = deliverWorkload(moved("net-a", "a1", "h1", "h2", "10.1.0.5"));

        assertThat(r.updates()).extracting(FragmentUpdate::hostId).containsExactlyInAnyOrder("h1", "h2");
        assertThat(r.updates()).noneMatch(FragmentUpdate::isTombstone);
        assertThat(hosts.host("h1").fragments().get("net-a").vms()).extracting(VmAddress::vmId).containsExactly("a3");
        assertThat(hosts.host("h2").fragments().get("net-a").vms()).extracting(VmAddress::vmId).containsExactly("a1", "a2");
    }

    @Test
    void aHostDrainTombstonesTheNetworkOnThatHostOnly() {
        twoNetworksOnThreeHosts();

        CompileResult r = deliverWorkload(drained("net-a", "h1"));

        assertThat(r.updates()).singleElement().satisfies(u -> {
            assertThat(u.hostId()).isEqualTo("h1");
            assertThat(u.isTombstone()).isTrue();
        });
        assertThat(engine.state("net-b").vms()).containsKey("b1");
    }

    @Test
    void deletingANetworkTombstonesItOnEveryHostThatHeldIt() {
        twoNetworksOnThreeHosts();

        CompileResult r = deliverRule(networkDeleted("net-b"));

        assertThat(r.updates()).allMatch(FragmentUpdate::isTombstone);
        assertThat(hostsOf(r)).containsExactlyInAnyOrder("h1", "h3");
        assertThat(hosts.host("h3").fragments()).isEmpty();
    }

    @Test
    void aNetworkCreatedAgainAfterItsDeleteStartsWithoutTheOldVmsAndSendsNoHostAnything() {
        twoNetworksOnThreeHosts();
        deliverRule(networkDeleted("net-b"));

        CompileResult again = deliverRule(networkCreated(io.egressctl.core.testing.Events.ofTenant("tenant-2", NET_B)));

        assertThat(again.decision().isAccepted()).isTrue();
        assertThat(engine.state("net-b").vms()).as("the old network's VMs are not inherited").isEmpty();
        assertThat(again.updates()).as("no host gets a fragment for VMs placed under the old network").isEmpty();
        assertThat(hosts.host("h3").fragments()).doesNotContainKey("net-b");
    }

    @Test
    void vmsPlacedBeforeTheirNetworkExistsAreCompiledWhenItIsCreated() {
        assertThat(deliverWorkload(placed("net-a", "a1", "h1", "10.1.0.5")).updates()).isEmpty();

        CompileResult r = deliverRule(networkCreated(NET_A));

        assertThat(hostsOf(r)).containsExactly("h1");
    }

    @Test
    void aDefaultPolicyChangeFlipsTheActionOfCloudStackRules() {
        twoNetworksOnThreeHosts();
        deliverRule(ruleCreated("net-a", A_ICMP));
        assertThat(hosts.host("h1").fragments().get("net-a").rules().get(0).action()).isEqualTo(Action.DENY);

        deliverRule(networkUpdated(NET_A.withDefaultPolicy(DefaultPolicy.DENY)));

        Fragment f = hosts.host("h1").fragments().get("net-a");
        assertThat(f.defaultPolicy()).isEqualTo(DefaultPolicy.DENY);
        assertThat(f.rules().get(0).action()).isEqualTo(Action.ALLOW);
    }

    @Test
    void rejectedAndAlreadyAppliedEventsEmitNothing() {
        twoNetworksOnThreeHosts();
        deliverRule(ruleCreated("net-a", A_ICMP));

        CompileResult duplicate = deliverRule(ruleCreated("net-a", A_ICMP.withId("again")));
        CompileResult redelivered = engine.onRuleChange(ruleCreated("net-a", A_80), position);

        assertThat(duplicate.decision().code()).isEqualTo("DUPLICATE_RULE");
        assertThat(duplicate.updates()).isEmpty();
        assertThat(redelivered.decision().outcome()).isEqualTo(Decision.Outcome.ALREADY_APPLIED);
        assertThat(redelivered.updates()).isEmpty();
    }

    @ParameterizedTest(name = "versions only grow per (host, network) with a restart after {0} events")
    @ValueSource(ints = {0, 3, 9, 17, 28})
    void versionsOnlyGrowPerHostAndNetwork(int split) {
        Map<String, Long> last = new HashMap<>();
        List<Delivery> order = scenario().inOrder();
        CompilerEngine first = new CompilerEngine();
        List<CompileResult> results = new ArrayList<>();
        order.subList(0, split).forEach(d -> results.add(d.deliverTo(first)));
        CompilerEngine second = Log.restart(first);
        order.subList(Math.max(0, split - 3), order.size()).forEach(d -> results.add(d.deliverTo(second)));

        for (CompileResult r : results) {
            for (FragmentUpdate u : r.updates()) {
                Long previous = last.put(u.hostId() + "/" + u.networkId(), u.version());
                if (previous != null) {
                    assertThat(u.version()).isGreaterThan(previous);
                }
            }
        }
        assertThat(last).isNotEmpty();
    }

    @Test
    void aRestoredNetworkEmitsNothingUntilItChangesAndThenOnlyTheDifference() {
        twoNetworksOnThreeHosts();
        CompilerEngine restarted = new CompilerEngine();
        engine.states().forEach(s -> restarted.restore(Log.checkpoint(s)));

        assertThat(restarted.fragments("net-a")).isEqualTo(engine.fragments("net-a"));
        assertThat(restarted.onWorkloadChange(placed("net-a", "a1", "h1", "10.1.0.5"), position).updates())
                .as("a redelivery").isEmpty();

        CompileResult r = restarted.onRuleChange(ruleCreated("net-a", A_ICMP), position + 1);

        assertThat(hostsOf(r)).containsExactly("h1");
        assertThat(r.updates().get(0).version()).isGreaterThan(engine.state("net-a").version());
    }

    @Test
    void aForgottenNetworkIsUnknownToTheEngine() {
        twoNetworksOnThreeHosts();

        engine.forget("net-a");

        assertThat(engine.state("net-a")).isNull();
        assertThat(engine.fragments("net-a")).isEmpty();
        assertThat(engine.states()).extracting(NetworkState::networkId).containsExactly("net-b");
    }
}
