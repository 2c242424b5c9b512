package io.egressctl.core.compile;

import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.state.Decision;
import io.egressctl.core.state.Limits;
import io.egressctl.core.state.NetworkState;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.VmPlacement;

/**
 * The incremental compiler: holds the state of the networks it owns and, for each event of the
 * network events log, decides it, recompiles only that network and returns the fragments whose
 * content changed, plus tombstones for hosts that no longer run the network. Every update carries
 * the network's version, the position of the event that produced it: the same log gives the same
 * (version, content) sequence however it is split into batches or across restarts.
 *
 * <pre>
 *  RuleChange ─┐  (one log,                        ┌─▶ FragmentUpdate (changed hash)
 *              ├─▶ NetworkState ─▶ FragmentCompiler ┤
 *  Workload ───┘   one position)        (per host)  └─▶ FragmentUpdate (tombstone)
 *                                         ▲
 *                              emitted hashes per (network, host)
 * </pre>
 *
 * Not thread-safe: one thread owns an engine (or the networks of one partition).
 */
public final class CompilerEngine {

    private final FragmentCompiler compiler = new FragmentCompiler();
    private final Limits limits;
    private final Map<String, NetworkState> networks = new HashMap<>();
    /** Last emitted fragment hash per network, per host: what the hosts were told. */
    private final Map<String, Map<String, String>> emitted = new HashMap<>();

    /** An engine deciding under the default {@link Limits}. */
    public CompilerEngine() {
        this(Limits.defaults());
    }

    /** An engine deciding every network under the operator's {@code limits} (the same as audit replay's). */
    public CompilerEngine(Limits limits) {
        this.limits = limits;
    }

    /**
     * Decides a network or rule event at {@code position} (offset + 1 in the network's partition of
     * the network events log) and recompiles the hosts it can touch:
     * for a rule change, the hosts of the VMs the rule covered before and covers after; for a
     * network change, every host of the network.
     */
    public CompileResult onRuleChange(RuleChange change, long position) {
        NetworkState state = networks.computeIfAbsent(change.networkId(), n -> new NetworkState(n, limits));
        String ruleId = change.ruleId();
        EgressRule before = ruleId == null ? null : state.rules().get(ruleId);
        Decision d = state.applyRule(change, position);
        Set<String> affected = null;
        if (d.isAccepted() && ruleId != null) {
            affected = new TreeSet<>();
            if (before != null) {
                affected.addAll(compiler.hostsCoveredBy(state, before));
            }
            EgressRule after = state.rules().get(ruleId);
            if (after != null) {
                affected.addAll(compiler.hostsCoveredBy(state, after));
            }
        }
        return result(state, change.eventId(), d, affected);
    }

    /**
     * Decides a placement event at {@code position} (offset + 1 in the network's partition of the
     * network events log, the same positions as rule events) and recompiles the hosts it touches.
     */
    public CompileResult onWorkloadChange(WorkloadChange change, long position) {
        NetworkState state = networks.computeIfAbsent(change.networkId(), n -> new NetworkState(n, limits));
        Set<String> affected = new TreeSet<>();
        affected.add(change.hostId());
        if (change.previousHostId() != null) {
            affected.add(change.previousHostId());
        }
        VmPlacement previous = change.vmId() == null ? null : state.vms().get(change.vmId());
        if (previous != null) {
            affected.add(previous.hostId());
        }
        Decision d = state.applyWorkload(change, position);
        return result(state, change.eventId(), d, affected);
    }

    private CompileResult result(NetworkState state, String eventId, Decision d, Set<String> affected) {
        List<FragmentUpdate> updates = d.isAccepted() ? diff(state, List.of(eventId), affected) : List.of();
        return new CompileResult(state.networkId(), eventId, d, state.version(), updates);
    }

    /** Compares the affected hosts' fresh fragments ({@code null}: all hosts) with what they were sent. */
    private List<FragmentUpdate> diff(NetworkState state, List<String> changeIds, Set<String> affected) {
        Map<String, Fragment> fresh = fresh(state, affected);
        Map<String, String> sent = emitted.computeIfAbsent(state.networkId(), n -> new TreeMap<>());
        List<FragmentUpdate> out = new ArrayList<>();
        for (Map.Entry<String, Fragment> e : fresh.entrySet()) {
            String hash = e.getValue().hash();
            if (!hash.equals(sent.get(e.getKey()))) {
                out.add(new FragmentUpdate(e.getKey(), state.networkId(), state.version(), e.getValue(), hash, changeIds));
                sent.put(e.getKey(), hash);
            }
        }
        for (String host : List.copyOf(sent.keySet())) {
            if ((affected == null || affected.contains(host)) && !fresh.containsKey(host)) {
                out.add(new FragmentUpdate(host, state.networkId(), state.version(), null, "", changeIds));
                sent.remove(host);
            }
        }
        return out;
    }

    /**
     * Fresh fragments of the affected hosts: those the fold's size check compiled for this very event
     * are reused (the state has not changed since), the other hosts are compiled.
     */
    private Map<String, Fragment> fresh(NetworkState state, Set<String> affected) {
        NetworkState.CheckedFragments checked = state.takeCheckedFragments();
        if (checked == null || affected == null || !affected.containsAll(checked.hosts())) {
            return compiler.compile(state, affected);
        }
        Set<String> rest = new TreeSet<>(affected);
        rest.removeAll(checked.hosts());
        Map<String, Fragment> out = new TreeMap<>(checked.fragments());
        if (!rest.isEmpty()) {
            out.putAll(compiler.compile(state, rest));
        }
        return out;
    }

    /** Installs a network restored from a checkpoint; the hosts are assumed to hold its fragments. */
    public void restore(NetworkState state) {
        if (!state.limits().equals(limits)) {
            state = state.withLimits(limits);
        }
        networks.put(state.networkId(), state);
        Map<String, String> sent = new TreeMap<>();
        compiler.compile(state).forEach((host, f) -> sent.put(host, f.hash()));
        emitted.put(state.networkId(), sent);
    }

    /** Forgets a network (its partition was revoked). */
    public void forget(String networkId) {
        networks.remove(networkId);
        emitted.remove(networkId);
    }

    /** The state of a network, or null when unknown. */
    public NetworkState state(String networkId) {
        return networks.get(networkId);
    }

    public Collection<NetworkState> states() {
        return networks.values();
    }

    /** Current fragments of a network by host (a full compile, for checks and rebuilds). */
    public Map<String, Fragment> fragments(String networkId) {
        NetworkState s = networks.get(networkId);
        return s == null ? Map.of() : compiler.compile(s);
    }
}
