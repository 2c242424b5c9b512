package io.egressctl.core.compile;

import io.egressctl.core.state.Decision;

import java.util.List;

/** The decision on one event and the fragment updates it caused (empty when nothing changed). */
public record CompileResult(String networkId, String eventId, Decision decision, long networkVersion,
                            List<FragmentUpdate> updates) {

    public CompileResult {
        updates = List.copyOf(updates);
    }
}
