package io.egressctl.cli.audit.verify;

import io.egressctl.cli.audit.Times;

import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Convergence of one host (invariant 6): the host hash the compiler expects (from its fragments in Redis)
 * against the hash the agent last reported as applied. Pure.
 *
 * <ul>
 *   <li>{@code ok}: the hashes are equal;</li>
 *   <li>{@code silent}: the host never reported, or it differs and its last report is older than the
 *       silence threshold;</li>
 *   <li>{@code lagging}: it differs and the agent holds an older version of some network (or none), so it
 *       has not applied the newest fragments yet (a NACK keeps the last good state and shows here too);</li>
 *   <li>{@code drifted}: it differs although the agent reports every expected version: the content it
 *       applied is not what was compiled;</li>
 *   <li>{@code missing}: the log places VMs of a network on the host but Redis holds no fragment of it (Redis
 *       lost its state, or the compiler has not written it): what the host should enforce cannot be checked.</li>
 * </ul>
 * A host whose last report lists VMs it does not enforce ({@code unenforced}) or network versions it
 * refused while applying the others ({@code refused}) is never {@code ok}: it is {@code lagging} (when
 * its hashes agree otherwise) with each VM or network and the reason in the detail.
 */
record HostCheck(String hostId, State state, String expectedHash, String appliedHash, String lastReport,
                 String status, String detail, SortedMap<String, Long> expectedVersions,
                 SortedMap<String, Long> appliedVersions) {

    public enum State { OK, LAGGING, DRIFTED, SILENT, MISSING }

    /** As {@link #classify(String, String, SortedMap, List, List, Map, Instant, Duration)} with nothing missing. */
    public static HostCheck classify(String hostId, String expectedHash, SortedMap<String, Long> expectedVersions,
                                     List<String> problems, Map<String, String> applied, Instant now, Duration silentAfter) {
        return classify(hostId, expectedHash, expectedVersions, problems, List.of(), applied, now, silentAfter);
    }

    /**
     * @param expectedVersions live fragments' versions by network
     * @param problems         notes on the expected side (unreadable fragments, stored hashes that do not match)
     * @param missing          expected state that Redis lacks (networks the log places on the host without a fragment)
     * @param applied          the host's {@code egress:host:{H}:applied} hash (empty when it never reported)
     */
    public static HostCheck classify(String hostId, String expectedHash, SortedMap<String, Long> expectedVersions,
                                     List<String> problems, List<String> missing, Map<String, String> applied, Instant now,
                                     Duration silentAfter) {
        String appliedHash = blankToNull(applied.get("hash"));
        String at = blankToNull(applied.get("at"));
        String status = blankToNull(applied.get("status"));
        SortedMap<String, Long> appliedVersions = new TreeMap<>();
        applied.forEach((k, v) -> {
            if (k.startsWith("v:")) {
                try {
                    appliedVersions.put(k.substring(2), Long.parseLong(v));
                } catch (NumberFormatException e) {
                    // not a version: ignored
                }
            }
        });
        List<String> notes = new ArrayList<>(problems);
        State state;
        if (appliedHash == null) {
            state = State.SILENT;
            notes.add(0, "never reported");
        } else if (appliedHash.equals(expectedHash) && problems.isEmpty()) {
            state = State.OK;
        } else {
            List<String> behind = new ArrayList<>();
            expectedVersions.forEach((n, v) -> {
                Long a = appliedVersions.get(n);
                if (a == null) {
                    behind.add(n + " missing (expected " + v + ")");
                } else if (a < v) {
                    behind.add(n + " " + a + "<" + v);
                }
            });
            Duration quiet = quietFor(at, now);
            if (quiet != null && quiet.compareTo(silentAfter) > 0) {
                state = State.SILENT;
                notes.add(0, "no report for " + Times.shortDuration(quiet));
                notes.addAll(behind);
            } else if (!behind.isEmpty()) {
                state = State.LAGGING;
                notes.addAll(0, behind);
            } else {
                state = State.DRIFTED;
                notes.add(0, "same versions, different content");
            }
            if ("NACK".equals(status)) {
                String error = blankToNull(applied.get("error"));
                notes.add("NACK" + (error == null ? "" : ": " + error));
            }
        }
        List<String> unenforced = unenforced(applied.get("unenforced"));
        if (!unenforced.isEmpty()) {
            if (state == State.OK) {
                state = State.LAGGING;
            }
            notes.addAll(unenforced);
        }
        List<String> refused = refused(applied.get("refused"));
        if (!refused.isEmpty()) {
            if (state == State.OK) {
                state = State.LAGGING;
            }
            notes.addAll(refused);
        }
        if (!missing.isEmpty()) {
            state = State.MISSING;
            notes.addAll(0, missing);
        }
        return new HostCheck(hostId, state, expectedHash, appliedHash, at, status, String.join("; ", notes),
                expectedVersions, appliedVersions);
    }

    /**
     * The report's {@code unenforced} field (JSON list of {@code {networkId, vmId, reason}}) as notes;
     * empty for none, an empty list or a field that does not parse (named as such).
     */
    static List<String> unenforced(String json) {
        if (json == null || json.isBlank()) {
            return List.of();
        }
        try {
            tools.jackson.databind.JsonNode list = JSON.readTree(json);
            List<String> out = new ArrayList<>();
            for (tools.jackson.databind.JsonNode u : list) {
                out.add("not enforced: vm " + u.path("vmId").asString() + " of " + u.path("networkId").asString() + " ("
                        + u.path("reason").asString() + ")");
            }
            return out;
        } catch (RuntimeException e) {
            return List.of("unenforced field unreadable: " + json);
        }
    }

    /**
     * The report's {@code refused} field (JSON list of {@code {networkId, version, reason}}: network
     * versions the host refused while applying the others) as notes; empty for none.
     */
    static List<String> refused(String json) {
        if (json == null || json.isBlank()) {
            return List.of();
        }
        try {
            tools.jackson.databind.JsonNode list = JSON.readTree(json);
            List<String> out = new ArrayList<>();
            for (tools.jackson.databind.JsonNode r : list) {
                out.add("refused: " + r.path("networkId").asString() + " v" + r.path("version").asLong() + " ("
                        + r.path("reason").asString() + ")");
            }
            return out;
        } catch (RuntimeException e) {
            return List.of("refused field unreadable: " + json);
        }
    }

    private static final tools.jackson.databind.json.JsonMapper JSON = tools.jackson.databind.json.JsonMapper.builder().build();

    private static Duration quietFor(String at, Instant now) {
        if (at == null) {
            return null;
        }
        try {
            return Duration.between(Instant.parse(at), now);
        } catch (DateTimeParseException e) {
            return null;
        }
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s;
    }
}
