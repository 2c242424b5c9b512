package io.egressctl.agent.sync;

import java.util.List;

/** Reads a host's snapshot (every fragment and tombstone as encoded HostUpdates) from the cache. */
public interface SnapshotSource {

    List<byte[]> read(String hostId);
}
