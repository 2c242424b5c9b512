package io.egressctl.rules.cloudstack;

import io.egressctl.core.event.RuleChange;
import io.egressctl.rules.changes.ChangeStatus;
import io.egressctl.schemas.view.NetworkView;
import io.egressctl.schemas.view.RuleView;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Networks in memory. Published changes are kept; {@link #compile} plays the compiler and the agents
 * (applies the change to the view and marks it APPLIED), {@link #reject} a rejection in log order.
 */
final class FakeBackend implements CloudStackBackend {

    final Map<String, NetworkView> networks = new ConcurrentHashMap<>();
    final Map<String, ChangeStatus> changes = new ConcurrentHashMap<>();
    final List<RuleChange> published = new ArrayList<>();

    void addNetwork(String networkId, String tenantId, String guestCidr, Map<String, NetworkView.VmView> vms) {
        networks.put(networkId, new NetworkView(networkId, tenantId, "basic", guestCidr, null, "allow", false, 1000, 1, 1,
                new TreeMap<>(), new TreeMap<>(vms)));
    }

    RuleChange last() {
        return published.get(published.size() - 1);
    }

    /** Applies a published change to its network's view and marks it APPLIED. */
    void compile(String changeId) {
        RuleChange c = published.stream().filter(x -> x.eventId().equals(changeId)).findFirst().orElseThrow();
        NetworkView v = networks.get(c.networkId());
        Map<String, RuleView> rules = new TreeMap<>(v.rules());
        if (c.operation() == RuleChange.Operation.RULE_DELETED) {
            rules.remove(c.ruleBefore().ruleId());
        } else {
            rules.put(c.ruleAfter().ruleId(), RuleView.of(c.ruleAfter(), v.network().defaultPolicy()));
        }
        networks.put(v.networkId(), new NetworkView(v.networkId(), v.tenantId(), v.kind(), v.guestCidr(), v.guestCidr6(), v.defaultPolicy(),
                v.advanced(), v.ruleQuota(), v.configVersion() + 1, v.version() + 1, rules, v.vms()));
        changes.put(changeId, new ChangeStatus(changeId, c.networkId(), c.operation().name(), "APPLIED", null, null, v.version() + 1,
                c.ruleId(), 1, 1, List.of(), "2030-01-01T00:00:00Z"));
    }

    void reject(String changeId, String code, String reason) {
        RuleChange c = published.stream().filter(x -> x.eventId().equals(changeId)).findFirst().orElseThrow();
        changes.put(changeId, new ChangeStatus(changeId, c.networkId(), c.operation().name(), "REJECTED", code, reason, null,
                c.ruleId(), 0, 0, List.of(), "2030-01-01T00:00:00Z"));
    }

    @Override
    public Optional<NetworkView> network(String networkId) {
        return Optional.ofNullable(networks.get(networkId));
    }

    @Override
    public List<String> networkIds(String tenantId) {
        return networks.values().stream().filter(n -> n.tenantId().equals(tenantId)).map(NetworkView::networkId).sorted().toList();
    }

    @Override
    public List<String> allNetworkIds() {
        return networks.keySet().stream().sorted().toList();
    }

    @Override
    public synchronized void publish(RuleChange change) {
        published.add(change);
    }

    @Override
    public Optional<ChangeStatus> change(String changeId) {
        return Optional.ofNullable(changes.get(changeId));
    }
}
