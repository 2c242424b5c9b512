package io.egressctl.core.host;

import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.core.hash.CanonicalHash;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * A host's desired state: the newest fragment of each network it runs, and the version of every
 * network it has ever heard of (tombstones included), so an older update arriving late, from a
 * replay or from the log tail after a snapshot read, is recognised and ignored (invariants 3, 4).
 * Not thread-safe: the agent's single consumer thread owns it.
 */
public final class HostState {

    private final String hostId;
    private final TreeMap<String, Fragment> fragments = new TreeMap<>();
    private final TreeMap<String, Long> versions = new TreeMap<>();
    private final List<String> pendingChangeIds = new ArrayList<>();

    public HostState(String hostId) {
        this.hostId = hostId;
    }

    public String hostId() {
        return hostId;
    }

    /**
     * Takes an update when it is for this host and newer than what is held.
     *
     * @return true when the desired state changed
     */
    public boolean offer(FragmentUpdate u) {
        if (!hostId.equals(u.hostId())) {
            return false;
        }
        Long known = versions.get(u.networkId());
        if (known != null && u.version() <= known) {
            return false;
        }
        versions.put(u.networkId(), u.version());
        pendingChangeIds.addAll(u.changeIds());
        if (u.isTombstone()) {
            return fragments.remove(u.networkId()) != null;
        }
        Fragment previous = fragments.put(u.networkId(), u.fragment());
        return previous == null || !previous.equals(u.fragment());
    }

    /** Live fragments by network id (read-only view). */
    public SortedMap<String, Fragment> fragments() {
        return Collections.unmodifiableSortedMap(fragments);
    }

    /** Known version per network, tombstones included (read-only view). */
    public SortedMap<String, Long> versions() {
        return Collections.unmodifiableSortedMap(versions);
    }

    /** Version of the live fragments only (what an enforcement report lists). */
    public Map<String, Long> liveVersions() {
        TreeMap<String, Long> out = new TreeMap<>();
        fragments.keySet().forEach(n -> out.put(n, versions.get(n)));
        return out;
    }

    /** Returns and clears the change ids received since the last call. */
    public List<String> drainChangeIds() {
        List<String> out = List.copyOf(pendingChangeIds);
        pendingChangeIds.clear();
        return out;
    }

    /** The host hash of the live fragments (see {@link CanonicalHash#host}). */
    public String hash() {
        return hashOf(fragments);
    }

    /** The host hash of any set of fragments. */
    public static String hashOf(SortedMap<String, Fragment> fragments) {
        TreeMap<String, String> hashes = new TreeMap<>();
        fragments.forEach((n, f) -> hashes.put(n, f.hash()));
        return CanonicalHash.host(hashes);
    }
}
