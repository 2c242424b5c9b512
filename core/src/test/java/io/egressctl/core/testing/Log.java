package io.egressctl.core.testing;

import io.egressctl.core.compile.CompileResult;
import io.egressctl.core.compile.CompilerEngine;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.state.NetworkState;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The network events log as a test sees it: {@code egress.network-events}, one partition, network,
 * rule and workload events in one order. Appending assigns the next position (offset + 1); the
 * append order is the only order a consumer can see.
 */
public final class Log {

    /** What an event is (both kinds share the log and its positions). */
    public enum Kind { RULE, WORKLOAD }

    /** One record: its kind, its position in the log and the event. */
    public record Delivery(Kind kind, long position, Object event) {

        public CompileResult deliverTo(CompilerEngine engine) {
            return kind == Kind.RULE
                    ? engine.onRuleChange((RuleChange) event, position)
                    : engine.onWorkloadChange((WorkloadChange) event, position);
        }

        public String eventId() {
            return event instanceof RuleChange r ? r.eventId() : ((WorkloadChange) event).eventId();
        }
    }

    private final List<Delivery> deliveries = new ArrayList<>();
    private long position;

    public Log rule(RuleChange c) {
        deliveries.add(new Delivery(Kind.RULE, ++position, c));
        return this;
    }

    public Log workload(WorkloadChange c) {
        deliveries.add(new Delivery(Kind.WORKLOAD, ++position, c));
        return this;
    }

    public List<Delivery> inOrder() {
        return List.copyOf(deliveries);
    }

    /** Every event delivered twice in a row (a consumer that re-polls before committing). */
    public List<Delivery> everyEventTwice() {
        List<Delivery> out = new ArrayList<>();
        for (Delivery d : deliveries) {
            out.add(d);
            out.add(d);
        }
        return out;
    }

    /** Delivers in the given order to an engine, folding every update into {@code hosts}. */
    public static List<CompileResult> replay(List<Delivery> order, CompilerEngine engine, Hosts hosts) {
        List<CompileResult> results = new ArrayList<>();
        for (Delivery d : order) {
            CompileResult r = d.deliverTo(engine);
            hosts.accept(r);
            results.add(r);
        }
        return results;
    }

    /**
     * Every update of some results by (host, network, version), checking on the way that no
     * (host, network, version) was emitted with two different contents.
     */
    public static Map<String, FragmentUpdate> byVersion(List<CompileResult> results) {
        Map<String, FragmentUpdate> out = new TreeMap<>();
        for (CompileResult r : results) {
            for (FragmentUpdate u : r.updates()) {
                FragmentUpdate previous = out.putIfAbsent(u.hostId() + "/" + u.networkId() + "@" + u.version(), u);
                if (previous != null && !previous.equals(u)) {
                    throw new AssertionError("two contents at one version: " + previous + " and " + u);
                }
            }
        }
        return out;
    }

    /** A checkpoint copy of a network state, made only through its public accessors. */
    public static NetworkState checkpoint(NetworkState s) {
        return NetworkState.restore(s.networkId(), s.network(), s.rules(), s.vms(), s.idempotencyKeys(), s.configVersion(),
                s.position());
    }

    /** A new engine restored from checkpoints of every network of {@code engine}. */
    public static CompilerEngine restart(CompilerEngine engine) {
        CompilerEngine fresh = new CompilerEngine();
        engine.states().forEach(s -> fresh.restore(checkpoint(s)));
        return fresh;
    }
}
