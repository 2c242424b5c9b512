package io.egressctl.cli.audit.replay;

import io.egressctl.cli.audit.log.EventDecoder;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.state.Decision;
import io.egressctl.core.state.NetworkState;
import io.egressctl.core.validation.ValidationException;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.registry.SchemaRegistryClient;
import org.apache.kafka.common.errors.SerializationException;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * Folds records of the network events log ({@code egress.network-events}: RuleEvent and WorkloadEvent
 * in one order per network) into {@link NetworkState}s exactly as the compiler does: every record decoded
 * and mapped, a record that cannot be decoded or is invalid (or whose key is not its network id) skipped
 * as the compiler dead-letters it, every other one decided by {@link NetworkState#applyRule} /
 * {@link NetworkState#applyWorkload} at position offset + 1, so a network's version is the position of
 * its last event, as the compiler's is. The same log gives the same states on every replay
 * (invariant 2). Not thread-safe.
 */
public final class Replay {

    /**
     * What became of one record: the decoded event (null when undecodable), its domain form (null when
     * skipped), the decision (null when skipped) and why it was skipped.
     */
    public record Step(Object event, Object change, Decision decision, String skipped) {

        public boolean accepted() {
            return decision != null && decision.isAccepted();
        }
    }

    private final Map<String, NetworkState> states = new HashMap<>();
    private final EventDecoder<org.apache.avro.specific.SpecificRecord> events;
    private final io.egressctl.core.state.Limits limits;
    private long records;
    private long skipped;
    private long rejected;

    /**
     * A replay under the operator's limits as the services read them ({@code EGRESS_MAX_RULES_PER_NETWORK}
     * and the others, from the environment; defaults when unset), so it decides as the compiler did.
     */
    public Replay(SchemaRegistryClient registry) {
        this(registry, io.egressctl.core.state.Limits.from(System::getenv));
    }

    /** A replay deciding under {@code limits}. */
    public Replay(SchemaRegistryClient registry, io.egressctl.core.state.Limits limits) {
        this.events = EventDecoder.networkEvents(registry);
        this.limits = limits;
    }

    /** Decodes and folds a record of the network events log, whatever its type. */
    public Step event(String topic, byte[] key, byte[] value, long offset) {
        records++;
        org.apache.avro.specific.SpecificRecord e;
        try {
            e = events.decode(topic, value);
        } catch (SerializationException ex) {
            return skip(null, "undecodable: " + ex.getMessage());
        }
        if (e == null) {
            return skip(null, "undecodable: null value");
        }
        String k = key == null ? null : new String(key, StandardCharsets.UTF_8);
        return e instanceof RuleEvent r ? rule(r, k, offset) : workload((WorkloadEvent) e, k, offset);
    }

    /** Folds a decoded rule event found at {@code offset} under {@code key}. */
    public Step rule(RuleEvent e, String key, long offset) {
        RuleChange c;
        try {
            c = EventMapper.fromAvro(e);
        } catch (ValidationException | IllegalArgumentException | NullPointerException ex) {
            return skip(e, "invalid: " + ex.getMessage());
        }
        if (!c.networkId().equals(key)) {
            return skip(e, "invalid: record key '" + key + "' differs from networkId '" + c.networkId() + "'");
        }
        NetworkState state = states.computeIfAbsent(c.networkId(), n -> new NetworkState(n, limits));
        Decision d = state.applyRule(c, offset + 1);
        state.takeCheckedFragments(); // a replay compiles nothing: not kept for it
        if (d.outcome() == Decision.Outcome.REJECTED) {
            rejected++;
        }
        return new Step(e, c, d, null);
    }

    /** Folds a decoded placement event found at {@code offset} under {@code key}. */
    public Step workload(WorkloadEvent e, String k, long offset) {
        WorkloadChange c;
        try {
            c = EventMapper.fromAvro(e);
        } catch (ValidationException | IllegalArgumentException | NullPointerException ex) {
            return skip(e, "invalid: " + ex.getMessage());
        }
        if (!c.networkId().equals(k)) {
            return skip(e, "invalid: record key '" + k + "' differs from networkId '" + c.networkId() + "'");
        }
        NetworkState state = states.computeIfAbsent(c.networkId(), n -> new NetworkState(n, limits));
        Decision d = state.applyWorkload(c, offset + 1);
        state.takeCheckedFragments(); // a replay compiles nothing: not kept for it
        if (d.outcome() == Decision.Outcome.REJECTED) {
            rejected++;
        }
        return new Step(e, c, d, null);
    }

    private Step skip(Object event, String why) {
        skipped++;
        return new Step(event, null, null, why);
    }

    /** The limits this replay decides under. */
    public io.egressctl.core.state.Limits limits() {
        return limits;
    }

    /** The state of a network (null when no record of it was folded). */
    public NetworkState state(String networkId) {
        return states.get(networkId);
    }

    /** Every network folded so far, by id. */
    public Map<String, NetworkState> states() {
        return new TreeMap<>(states);
    }

    /** Takes over the states and counts of another replay of other networks (parallel folds). */
    public void absorb(Replay other) {
        other.states.forEach((id, st) -> {
            if (states.putIfAbsent(id, st) != null) {
                throw new IllegalStateException("network " + id + " was folded by two replays");
            }
        });
        records += other.records;
        skipped += other.skipped;
        rejected += other.rejected;
    }

    /** Records read (decoded or not). */
    public long records() {
        return records;
    }

    /** Records skipped as the compiler dead-letters them. */
    public long skipped() {
        return skipped;
    }

    /** Events decided and rejected. */
    public long rejected() {
        return rejected;
    }
}
