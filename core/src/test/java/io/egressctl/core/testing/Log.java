package io.egressctl.core.testing;

import io.egressctl.core.compile.CompileResult;
import io.egressctl.core.compile.CompilerEngine;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.state.NetworkState;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Two topics as a test sees them: {@code egress.rule-events} and {@code egress.workload-events},
 * one partition each. Appending assigns the next position (offset + 1) of the event's topic; the
 * append order is one possible consumption order.
 */
public final class Log {

    /** The two input topics. */
    public enum Topic { RULES, WORKLOADS }

    /** One record: its topic, its position in that topic and the event. */
    public record Delivery(Topic topic, long position, Object event) {

        public CompileResult deliverTo(CompilerEngine engine) {
            return topic == Topic.RULES
                    ? engine.onRuleChange((RuleChange) event, position)
                    : engine.onWorkloadChange((WorkloadChange) event, position);
        }

        public String eventId() {
            return event instanceof RuleChange r ? r.eventId() : ((WorkloadChange) event).eventId();
        }
    }

    private final List<Delivery> deliveries = new ArrayList<>();
    private long rulePosition;
    private long workloadPosition;

    public Log rule(RuleChange c) {
        deliveries.add(new Delivery(Topic.RULES, ++rulePosition, c));
        return this;
    }

    public Log workload(WorkloadChange c) {
        deliveries.add(new Delivery(Topic.WORKLOADS, ++workloadPosition, c));
        return this;
    }

    public List<Delivery> inOrder() {
        return List.copyOf(deliveries);
    }

    public List<Delivery> topic(Topic t) {
        return deliveries.stream().filter(d -> d.topic() == t).toList();
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

    /** All of one topic, then all of the other: each topic's own order holds. */
    public List<Delivery> topicFirst(Topic first) {
        List<Delivery> out = new ArrayList<>(topic(first));
        out.addAll(topic(first == Topic.RULES ? Topic.WORKLOADS : Topic.RULES));
        return out;
    }

    /** A random merge of the two topics that keeps each topic's own order. */
    public List<Delivery> randomInterleaving(long seed) {
        Random random = new Random(seed);
        List<Delivery> rules = topic(Topic.RULES);
        List<Delivery> workloads = topic(Topic.WORKLOADS);
        List<Delivery> out = new ArrayList<>();
        int r = 0;
        int w = 0;
        while (r < rules.size() || w < workloads.size()) {
            boolean takeRule = w == workloads.size() || (r < rules.size() && random.nextBoolean());
            out.add(takeRule ? rules.get(r++) : workloads.get(w++));
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

    /** A checkpoint copy of a network state, made only through its public accessors. */
    public static NetworkState checkpoint(NetworkState s) {
        return NetworkState.restore(s.networkId(), s.network(), s.rules(), s.vms(), s.idempotencyKeys(), s.configVersion(),
                s.rulePosition(), s.workloadPosition());
    }

    /** A new engine restored from checkpoints of every network of {@code engine}. */
    public static CompilerEngine restart(CompilerEngine engine) {
        CompilerEngine fresh = new CompilerEngine();
        engine.states().forEach(s -> fresh.restore(checkpoint(s)));
        return fresh;
    }
}
