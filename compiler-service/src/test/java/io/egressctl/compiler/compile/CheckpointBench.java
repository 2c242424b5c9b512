package io.egressctl.compiler.compile;

import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.NetworkKind;
import io.egressctl.core.state.NetworkState;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * What a checkpoint costs the compiler's consumer thread (a program, not a test): one partition of the
 * fleet benchmark's cloud (333 networks of 25 rules and 10 VMs, about 1 MB of JSON), encoded in full
 * (every rule's Avro encoding, then the document) against the document built from the entries kept
 * since the last checkpoint with one network encoded again, which is what {@link CompilerPipeline} does
 * now. Prints medians of {@code -Dbench.rounds} rounds (default 21) after as many untimed ones.
 * Run: {@code mvn -q -pl compiler-service test-compile exec:java -Dexec.classpathScope=test
 * -Dexec.mainClass=io.egressctl.compiler.compile.CheckpointBench}.
 */
public final class CheckpointBench {

    private CheckpointBench() {
    }

    public static void main(String[] args) {
        int rounds = Integer.getInteger("bench.rounds", 21);
        List<NetworkState> states = partition(333, 25, 10);
        double[] full = new double[rounds];
        double[] kept = new double[rounds];
        int bytes = 0;
        for (int round = -rounds; round < rounds; round++) {
            long t0 = System.nanoTime();
            List<Checkpoint.NetworkEntry> entries = new ArrayList<>();
            for (NetworkState s : states) {
                entries.add(Checkpoint.of(s));
            }
            String json = new Checkpoint("t", 1, entries).toJson();
            long t1 = System.nanoTime();
            List<String> cached = new ArrayList<>();
            for (NetworkState s : states) {
                cached.add(Checkpoint.entryJson(s));
            }
            long t2 = System.nanoTime();
            cached.set(round & 127, Checkpoint.entryJson(states.get(round & 127)));
            String again = Checkpoint.toJson("t", 1, cached);
            long t3 = System.nanoTime();
            if (round >= 0) {
                full[round] = (t1 - t0) / 1e6;
                kept[round] = (t3 - t2) / 1e6;
                bytes = Math.max(json.length(), again.length());
            }
        }
        Arrays.sort(full);
        Arrays.sort(kept);
        System.out.printf("checkpoint of one partition (%d networks, %,d bytes): full encoding p50 %.2f ms (p90 %.2f), "
                        + "kept entries with one network encoded again p50 %.3f ms (p90 %.3f): %.0fx%n",
                states.size(), bytes, full[rounds / 2], full[rounds * 9 / 10], kept[rounds / 2], kept[rounds * 9 / 10],
                full[rounds / 2] / kept[rounds / 2]);
    }

    static List<NetworkState> partition(int networks, int rules, int vms) {
        List<NetworkState> states = new ArrayList<>();
        long pos = 1;
        Random random = new Random(1);
        for (int n = 0; n < networks; n++) {
            String id = GeneratedLog.net(n);
            NetworkState s = new NetworkState(id);
            Network net = new Network(id, "tenant-" + n, NetworkKind.BASIC, Cidr.parse("10." + (n % 250) + ".0.0/24"), null,
                    DefaultPolicy.ALLOW, false, 100, false);
            s.applyRule(new RuleChange("e" + pos, RuleChange.Operation.NETWORK_CREATED, id, null, "k" + pos, net, null, null,
                    GeneratedLog.audit(pos)), pos++);
            for (int v = 0; v < vms; v++) {
                s.applyWorkload(new WorkloadChange("e" + pos, WorkloadChange.Operation.VM_PLACED, id, "vm-" + n + "-" + v,
                        "host-" + (n * 10 + v) % 1000, null, "tap" + n + "x" + v, null, "10." + (n % 250) + ".0." + (10 + v), null,
                        GeneratedLog.audit(pos)), pos++);
            }
            for (int r = 0; r < rules; r++) {
                EgressRule rule = GeneratedLog.rule("r" + r, n % 250, r % 5, random);
                s.applyRule(new RuleChange("e" + pos, RuleChange.Operation.RULE_CREATED, id, null, "k" + pos, null, null, rule,
                        GeneratedLog.audit(pos)), pos++);
            }
            states.add(s);
        }
        return states;
    }
}
