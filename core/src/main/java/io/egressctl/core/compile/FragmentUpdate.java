package io.egressctl.core.compile;

import java.util.List;

/**
 * A new version of one (host, network) fragment, or its removal when {@code fragment} is null
 * (tombstone). Versions only grow per (host, network) (invariant 3).
 *
 * @param hash      the fragment's hash, empty for a tombstone
 * @param changeIds the changes (event ids) this version carries
 */
public record FragmentUpdate(String hostId, String networkId, long version, Fragment fragment, String hash,
                             List<String> changeIds) {

    public FragmentUpdate {
        changeIds = List.copyOf(changeIds);
    }

    public boolean isTombstone() {
        return fragment == null;
    }
}
