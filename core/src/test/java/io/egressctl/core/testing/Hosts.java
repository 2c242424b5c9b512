package io.egressctl.core.testing;

import io.egressctl.core.compile.CompileResult;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.FragmentCompiler;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.core.host.HostState;
import io.egressctl.core.state.NetworkState;

import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A fake fleet of host agents: folds fragment updates into one {@link HostState} per host and
 * asserts, as each update arrives, what every agent relies on (invariant 3 and "delete only what
 * was sent"): versions strictly grow per (host, network), a tombstone only removes a fragment the
 * host holds, and an update's hash is its fragment's hash.
 */
public final class Hosts {

    private final Map<String, HostState> hosts = new TreeMap<>();
    /** Last version emitted per host, per network, tombstones included. */
    private final Map<String, Map<String, Long>> lastVersion = new HashMap<>();
    private int updatesSeen;

    public void accept(CompileResult result) {
        result.updates().forEach(this::accept);
    }

    public void accept(FragmentUpdate u) {
        updatesSeen++;
        Map<String, Long> versions = lastVersion.computeIfAbsent(u.hostId(), h -> new HashMap<>());
        Long previous = versions.get(u.networkId());
        if (previous != null) {
            assertThat(u.version()).as("version of (%s, %s) must grow", u.hostId(), u.networkId()).isGreaterThan(previous);
        }
        versions.put(u.networkId(), u.version());
        HostState host = hosts.computeIfAbsent(u.hostId(), HostState::new);
        if (u.isTombstone()) {
            assertThat(host.fragments()).as("tombstone for (%s, %s) of a fragment the host was sent", u.hostId(), u.networkId())
                    .containsKey(u.networkId());
            assertThat(u.hash()).isEmpty();
        } else {
            assertThat(u.hash()).isEqualTo(u.fragment().hash());
            assertThat(u.fragment().networkId()).isEqualTo(u.networkId());
            assertThat(u.fragment().vms()).as("a fragment is only sent to a host running the network").isNotEmpty();
        }
        assertThat(host.offer(u)).as("every emitted update changes its host's desired state").isTrue();
    }

    public int updatesSeen() {
        return updatesSeen;
    }

    public HostState host(String hostId) {
        return hosts.get(hostId);
    }

    /** Live fragments per host, leaving out hosts that hold none. */
    public SortedMap<String, SortedMap<String, Fragment>> fragments() {
        SortedMap<String, SortedMap<String, Fragment>> out = new TreeMap<>();
        hosts.forEach((h, s) -> {
            if (!s.fragments().isEmpty()) {
                out.put(h, new TreeMap<>(s.fragments()));
            }
        });
        return out;
    }

    /** Host hash per host, leaving out hosts that hold no fragment. */
    public SortedMap<String, String> hashes() {
        SortedMap<String, String> out = new TreeMap<>();
        hosts.forEach((h, s) -> {
            if (!s.fragments().isEmpty()) {
                out.put(h, s.hash());
            }
        });
        return out;
    }

    /** The oracle: a from-scratch compile of every network, grouped per host. */
    public static SortedMap<String, SortedMap<String, Fragment>> fullCompile(Collection<NetworkState> states) {
        FragmentCompiler compiler = new FragmentCompiler();
        SortedMap<String, SortedMap<String, Fragment>> out = new TreeMap<>();
        for (NetworkState s : states) {
            compiler.compile(s).forEach((host, f) -> out.computeIfAbsent(host, h -> new TreeMap<>()).put(s.networkId(), f));
        }
        return out;
    }

    /** Host hashes of a full compile. */
    public static SortedMap<String, String> hashesOf(SortedMap<String, SortedMap<String, Fragment>> perHost) {
        SortedMap<String, String> out = new TreeMap<>();
        perHost.forEach((h, f) -> out.put(h, HostState.hashOf(f)));
        return out;
    }
}
