package io.egressctl.cli.bench;

import io.egressctl.events.DefaultPolicy;
import io.egressctl.events.NetworkKind;
import io.egressctl.events.NetworkSpec;
import io.egressctl.events.Protocol;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.RuleOperation;
import io.egressctl.events.RuleSpec;
import io.egressctl.events.Source;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.events.WorkloadOperation;
import org.apache.avro.specific.SpecificRecord;

import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A deterministic, valid history of the network events log over simulated time for benchmarks and
 * tests: networks take turns; each starts with NETWORK_CREATED, then its rules are created, updated and
 * deleted so a network keeps about {@code maxRules} rules (every event is accepted in log order); with
 * {@link #withPlacements} every n-th event of a network is a VM placement or move (WorkloadEvent) instead,
 * as in the one log of 0.2. Event {@code i} is stamped {@code start + i * stepMillis}. The generator
 * knows the rule set and the VMs every network must end with.
 */
public final class SyntheticHistory {

    private final String prefix;
    private final int networks;
    private final int maxRules;
    private final Instant start;
    private final long stepMillis;
    private final int[] steps;
    private final List<LinkedHashMap<String, RuleSpec>> live = new ArrayList<>();
    private final List<TreeMap<String, String>> vms = new ArrayList<>();
    private int placementsEvery;
    private long index;

    /**
     * @param prefix   network ids are {@code prefix + "net-" + n}
     * @param maxRules rules a network holds at most
     */
    public SyntheticHistory(String prefix, int networks, int maxRules, Instant start, long stepMillis) {
        this.prefix = prefix;
        this.networks = networks;
        this.maxRules = maxRules;
        this.start = start;
        this.stepMillis = stepMillis;
        this.steps = new int[networks];
        for (int i = 0; i < networks; i++) {
            live.add(new LinkedHashMap<>());
            vms.add(new TreeMap<>());
        }
    }

    /** Makes every {@code every}-th event of a network (after its creation) a VM placement or move; 0: none. */
    public SyntheticHistory withPlacements(int every) {
        this.placementsEvery = every;
        return this;
    }

    public String networkId(int n) {
        return prefix + "net-" + n;
    }

    /** Timestamp of event {@code i}. */
    public Instant time(long i) {
        return start.plusMillis(i * stepMillis);
    }

    /** Index of the next event. */
    public long index() {
        return index;
    }

    /** The next event, a rule or network event (without {@link #withPlacements}); its timestamp is {@link #time(long)} of its index. */
    public RuleEvent next() {
        if (!(nextEvent() instanceof RuleEvent e)) {
            throw new IllegalStateException("the next event is a placement: use nextEvent()");
        }
        return e;
    }

    /** The next event of the log (RuleEvent or WorkloadEvent); its timestamp is {@link #time(long)} of its index. */
    public SpecificRecord nextEvent() {
        long i = index++;
        int n = (int) (i % networks);
        int k = steps[n]++;
        String net = networkId(n);
        Source source = Source.newBuilder().setActor("user-" + (n % 17)).setTenantId(tenant(n)).setRequestId("req-" + i)
                .setEventTime(time(i)).setService("audit-bench").setServiceVersion("0.2.0").build();
        if (k > 0 && placementsEvery > 0 && k % placementsEvery == 0) {
            int vm = (k / placementsEvery) % 8;
            String vmId = net + "-vm-" + vm;
            String host = "host-" + ((n + k) % 97);
            String previous = vms.get(n).put(vmId, host);
            return WorkloadEvent.newBuilder().setEventId("ev-" + i).setNetworkId(net).setSource(source)
                    .setOperation(previous == null ? WorkloadOperation.VM_PLACED : WorkloadOperation.VM_MOVED)
                    .setVmId(vmId).setHostId(host).setPreviousHostId(previous).setInterfaceName("tap-" + n % 10000 + "-" + vm)
                    .setIpv4(subnet(n) + "." + (10 + vm)).build();
        }
        RuleEvent.Builder e = RuleEvent.newBuilder().setEventId("ev-" + i).setNetworkId(net).setSource(source);
        if (k == 0) {
            return e.setOperation(RuleOperation.NETWORK_CREATED).setNetwork(network(n)).build();
        }
        LinkedHashMap<String, RuleSpec> rules = live.get(n);
        int phase = k % 4;
        if (!rules.isEmpty() && (phase == 3 || rules.size() >= maxRules && phase != 1)) {
            String oldest = rules.keySet().iterator().next();
            RuleSpec before = rules.remove(oldest);
            return e.setOperation(RuleOperation.RULE_DELETED).setRuleBefore(before).build();
        }
        if (!rules.isEmpty() && phase == 1) {
            String oldest = rules.keySet().iterator().next();
            RuleSpec before = rules.remove(oldest);
            RuleSpec after = rule(n, oldest, k);
            rules.put(oldest, after);
            return e.setOperation(RuleOperation.RULE_UPDATED).setRuleBefore(before).setRuleAfter(after).build();
        }
        String id = "r-" + n + "-" + k;
        RuleSpec after = rule(n, id, k);
        rules.put(id, after);
        return e.setOperation(RuleOperation.RULE_CREATED).setRuleAfter(after)
                .setIdempotencyKey(k % 8 == 0 ? "idem-" + n + "-" + k : null).build();
    }

    private String tenant(int n) {
        return "tenant-" + (n % 50);
    }

    private NetworkSpec network(int n) {
        return NetworkSpec.newBuilder().setNetworkId(networkId(n)).setTenantId(tenant(n)).setKind(NetworkKind.BASIC)
                .setGuestCidr(subnet(n) + ".0/24").setGuestCidr6(null).setDefaultPolicy(DefaultPolicy.ALLOW)
                .setAdvanced(false).setRuleQuota(1000).build();
    }

    private static String subnet(int n) {
        return "10." + ((n / 256) % 256) + "." + (n % 256);
    }

    /** A rule whose match is unique in its network: the port comes from the step. */
    private RuleSpec rule(int n, String id, int k) {
        int port = 1 + (k % 65000);
        Protocol protocol = k % 2 == 0 ? Protocol.TCP : Protocol.UDP;
        return RuleSpec.newBuilder().setRuleId(id).setProtocol(protocol).setAction(null).setPriority(1000)
                .setSourceCidrs(List.of(subnet(n) + "." + (1 + k % 250) + "/32"))
                .setSourceVmIds(List.of())
                .setDestinationCidrs(List.of("203.0.113.0/24"))
                .setDestinationExceptCidrs(List.of())
                .setStartPort(port).setEndPort(port).setIcmpType(null).setIcmpCode(null)
                .setDescription(null).build();
    }

    /** The VMs every network holds after the events generated so far: network id to VM id to host. */
    public Map<String, Map<String, String>> expectedVms() {
        Map<String, Map<String, String>> out = new TreeMap<>();
        for (int n = 0; n < networks; n++) {
            if (steps[n] > 0) {
                out.put(networkId(n), new TreeMap<>(vms.get(n)));
            }
        }
        return out;
    }

    /** The rules every network holds after the events generated so far: network id to rule id to port. */
    public Map<String, Map<String, Integer>> expected() {
        Map<String, Map<String, Integer>> out = new TreeMap<>();
        for (int n = 0; n < networks; n++) {
            if (steps[n] == 0) {
                continue;
            }
            Map<String, Integer> rules = new TreeMap<>();
            live.get(n).forEach((id, r) -> rules.put(id, r.getStartPort()));
            out.put(networkId(n), rules);
        }
        return out;
    }
}
