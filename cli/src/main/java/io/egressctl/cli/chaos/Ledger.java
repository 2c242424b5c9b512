package io.egressctl.cli.chaos;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The changes of one round that the API accepted (answered 2xx), and what counts as their effect in
 * the final state. Pure: {@link #evaluate} compares the ledger with an {@link Observed} state read from
 * the API and Redis by the suite.
 *
 * <ul>
 *   <li>A rule create is lost when its rule (by the id the API answered) is missing from the network's
 *       view, or from the snapshot (fragment) of a host that runs a VM of the network; unless a later
 *       accepted delete removed it.</li>
 *   <li>A rule delete is lost when the rule is still in the view or in a host's snapshot.</li>
 *   <li>A placement (the last one of its VM) is lost when the view does not put the VM on that host,
 *       or that host's snapshot does not hold the VM.</li>
 *   <li>An accepted change applied twice is a duplicated effect: two rules (or more) in the view whose
 *       description carries the same idempotency key.</li>
 * </ul>
 */
public final class Ledger {

    /** What a change did. */
    public enum Kind { CREATE, DELETE, PLACE }

    /**
     * One accepted change.
     *
     * @param seq      its place in the round's burst
     * @param kind     create, delete or placement
     * @param key      its idempotency key (carried in a created rule's description)
     * @param ruleId   the rule created or deleted, null for a placement
     * @param vmId     the VM placed, null for rules
     * @param hostId   the VM's host, null for rules
     * @param changeId the change id the API answered
     */
    public record Change(int seq, Kind kind, String key, String ruleId, String vmId, String hostId, String changeId) {

        String describe() {
            return switch (kind) {
                case CREATE -> "create #" + seq + " rule " + ruleId;
                case DELETE -> "delete #" + seq + " rule " + ruleId;
                case PLACE -> "placement #" + seq + " " + vmId + " on " + hostId;
            };
        }
    }

    /**
     * What the final state holds for the round's network.
     *
     * @param networkFound  false when the API answered 404 for the network
     * @param viewRules     rule id to description, from {@code GET .../egress-rules}
     * @param viewVms       VM id to host id, from {@code GET /networks/{id}}
     * @param fragmentRules host id to the rule ids of the network's fragment in that host's snapshot
     *                      (absent host: no fragment, or a tombstone)
     * @param fragmentVms   host id to the VM ids of that fragment
     */
    public record Observed(boolean networkFound, Map<String, String> viewRules, Map<String, String> viewVms,
                           Map<String, Set<String>> fragmentRules, Map<String, Set<String>> fragmentVms) {
    }

    /** An accepted change whose effect is not there, and why. */
    public record Finding(Change change, String reason) {

        @Override
        public String toString() {
            return change.describe() + " (change " + change.changeId() + "): " + reason;
        }
    }

    /**
     * The verdict.
     *
     * @param accepted       accepted changes
     * @param lost           accepted changes whose effect is missing
     * @param duplicated     extra copies of an accepted change's effect
     * @param duplicates     idempotency key to the rule ids that carry it, for keys with more than one
     * @param unacknowledged rules of the round in the view whose request never got a 2xx (not a failure:
     *                       the request may have been published before its answer was lost)
     */
    public record Outcome(int accepted, List<Finding> lost, int duplicated, Map<String, List<String>> duplicates,
                          int unacknowledged) {
    }

    /** The marker of a created rule's description; the idempotency key follows it. */
    public static final String KEY_MARK = "chaos key=";

    private final List<Change> accepted = new ArrayList<>();
    private final Map<String, String> initialVms;

    /** @param initialVms VM id to host id of the VMs placed (and applied) before the burst */
    public Ledger(Map<String, String> initialVms) {
        this.initialVms = new LinkedHashMap<>(initialVms);
    }

    public synchronized void accept(Change c) {
        accepted.add(c);
    }

    public synchronized List<Change> accepted() {
        return List.copyOf(accepted);
    }

    /** Rules created and not deleted (by accepted changes), oldest first. */
    public synchronized List<String> liveRules() {
        Set<String> deleted = new TreeSet<>();
        accepted.stream().filter(c -> c.kind() == Kind.DELETE).forEach(c -> deleted.add(c.ruleId()));
        return accepted.stream().filter(c -> c.kind() == Kind.CREATE && !deleted.contains(c.ruleId())).map(Change::ruleId).toList();
    }

    /** VM id to host id after every accepted placement. */
    public synchronized Map<String, String> expectedVms() {
        Map<String, String> vms = new TreeMap<>(initialVms);
        accepted.stream().filter(c -> c.kind() == Kind.PLACE).forEach(c -> vms.put(c.vmId(), c.hostId()));
        return vms;
    }

    public synchronized Outcome evaluate(Observed o) {
        List<Finding> lost = new ArrayList<>();
        Set<String> deleted = new TreeSet<>();
        accepted.stream().filter(c -> c.kind() == Kind.DELETE).forEach(c -> deleted.add(c.ruleId()));
        Map<String, Change> lastPlacement = new LinkedHashMap<>();
        accepted.stream().filter(c -> c.kind() == Kind.PLACE).forEach(c -> lastPlacement.put(c.vmId(), c));
        Set<String> hosts = new TreeSet<>(expectedVms().values());
        for (Change c : accepted) {
            if (!o.networkFound()) {
                lost.add(new Finding(c, "the network is not in the API (404)"));
                continue;
            }
            String reason = switch (c.kind()) {
                case CREATE -> deleted.contains(c.ruleId()) ? null : missingRule(c.ruleId(), hosts, o);
                case DELETE -> stillThere(c.ruleId(), o);
                case PLACE -> lastPlacement.get(c.vmId()) != c ? null : missingVm(c, o);
            };
            if (reason != null) {
                lost.add(new Finding(c, reason));
            }
        }
        Map<String, List<String>> byKey = new TreeMap<>();
        o.viewRules().forEach((ruleId, description) -> {
            String key = keyOf(description);
            if (key != null) {
                byKey.computeIfAbsent(key, k -> new ArrayList<>()).add(ruleId);
            }
        });
        Set<String> acceptedKeys = new TreeSet<>();
        accepted.stream().filter(c -> c.kind() == Kind.CREATE).forEach(c -> acceptedKeys.add(c.key()));
        Map<String, List<String>> duplicates = new TreeMap<>();
        int duplicated = 0;
        int unacknowledged = 0;
        for (Map.Entry<String, List<String>> e : byKey.entrySet()) {
            if (!acceptedKeys.contains(e.getKey())) {
                unacknowledged++;
            }
            if (e.getValue().size() > 1) {
                duplicates.put(e.getKey(), List.copyOf(new TreeSet<>(e.getValue())));
                duplicated += e.getValue().size() - 1;
            }
        }
        return new Outcome(accepted.size(), List.copyOf(lost), duplicated, duplicates, unacknowledged);
    }

    /** The idempotency key in a rule's description, or null when the suite did not create it. */
    public static String keyOf(String description) {
        if (description == null) {
            return null;
        }
        int i = description.indexOf(KEY_MARK);
        return i < 0 ? null : description.substring(i + KEY_MARK.length()).strip();
    }

    private static String missingRule(String ruleId, Set<String> hosts, Observed o) {
        if (!o.viewRules().containsKey(ruleId)) {
            return "rule not in the network's view";
        }
        List<String> without = hosts.stream().filter(h -> !o.fragmentRules().getOrDefault(h, Set.of()).contains(ruleId)).toList();
        return without.isEmpty() ? null : "rule not in the snapshot of " + String.join(", ", without);
    }

    private static String stillThere(String ruleId, Observed o) {
        if (o.viewRules().containsKey(ruleId)) {
            return "deleted rule still in the network's view";
        }
        List<String> with = o.fragmentRules().entrySet().stream().filter(e -> e.getValue().contains(ruleId)).map(Map.Entry::getKey)
                .sorted().toList();
        return with.isEmpty() ? null : "deleted rule still in the snapshot of " + String.join(", ", with);
    }

    private static String missingVm(Change c, Observed o) {
        String host = o.viewVms().get(c.vmId());
        if (!c.hostId().equals(host)) {
            return host == null ? "VM not in the network's view" : "the view puts the VM on " + host;
        }
        return o.fragmentVms().getOrDefault(c.hostId(), Set.of()).contains(c.vmId()) ? null
                : "VM not in the snapshot of " + c.hostId();
    }
}
