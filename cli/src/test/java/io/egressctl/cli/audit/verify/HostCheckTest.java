package io.egressctl.cli.audit.verify;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

class HostCheckTest {

    static final Instant NOW = Instant.parse("2024-05-01T12:00:00Z");
    static final Duration SILENT = Duration.ofMinutes(5);

    static SortedMap<String, Long> versions(Object... kv) {
        SortedMap<String, Long> m = new TreeMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], ((Number) kv[i + 1]).longValue());
        }
        return m;
    }

    static HostCheck check(Map<String, String> applied) {
        return HostCheck.classify("h1", "aaaa", versions("net-1", 7, "net-2", 3), List.of(), applied, NOW, SILENT);
    }

    @Test
    void equalHashesAreOk() {
        HostCheck c = check(Map.of("hash", "aaaa", "status", "ACK", "at", "2024-05-01T11:59:00Z", "v:net-1", "7", "v:net-2", "3"));
        assertThat(c.state()).isEqualTo(HostCheck.State.OK);
        assertThat(c.detail()).isEmpty();
        assertThat(c.appliedVersions()).isEqualTo(versions("net-1", 7, "net-2", 3));
    }

    @Test
    void aHostThatNeverReportedIsSilent() {
        HostCheck c = check(Map.of());
        assertThat(c.state()).isEqualTo(HostCheck.State.SILENT);
        assertThat(c.detail()).isEqualTo("never reported");
    }

    @Test
    void olderAppliedVersionsAreLagging() {
        HostCheck c = check(Map.of("hash", "bbbb", "status", "ACK", "at", "2024-05-01T11:59:00Z", "v:net-1", "5"));
        assertThat(c.state()).isEqualTo(HostCheck.State.LAGGING);
        assertThat(c.detail()).isEqualTo("net-1 5<7; net-2 missing (expected 3)");
    }

    @Test
    void aNackKeepsTheLastGoodStateAndSaysWhy() {
        HostCheck c = check(Map.of("hash", "bbbb", "status", "NACK", "error", "nft: syntax error", "at", "2024-05-01T11:59:30Z",
                "v:net-1", "6", "v:net-2", "3"));
        assertThat(c.state()).isEqualTo(HostCheck.State.LAGGING);
        assertThat(c.detail()).isEqualTo("net-1 6<7; NACK: nft: syntax error");
    }

    @Test
    void sameVersionsWithAnotherHashIsDrift() {
        HostCheck c = check(Map.of("hash", "cccc", "status", "ACK", "at", "2024-05-01T11:59:00Z", "v:net-1", "7", "v:net-2", "3",
                "v:net-old", "2"));
        assertThat(c.state()).isEqualTo(HostCheck.State.DRIFTED);
        assertThat(c.detail()).isEqualTo("same versions, different content");
    }

    @Test
    void aDifferingHostQuietForLongerThanTheThresholdIsSilent() {
        HostCheck c = check(Map.of("hash", "bbbb", "status", "ACK", "at", "2024-05-01T11:00:00Z", "v:net-1", "5", "v:net-2", "3"));
        assertThat(c.state()).isEqualTo(HostCheck.State.SILENT);
        assertThat(c.detail()).isEqualTo("no report for 1h00m; net-1 5<7");
    }

    @Test
    void problemsOnTheExpectedSideAreNeverOk() {
        HostCheck c = HostCheck.classify("h1", "aaaa", versions("net-1", 7), List.of("fragment net-1 v7 stored hash does not match its content"),
                Map.of("hash", "aaaa", "at", "2024-05-01T11:59:00Z", "v:net-1", "7"), NOW, SILENT);
        assertThat(c.state()).isEqualTo(HostCheck.State.DRIFTED);
        assertThat(c.detail()).isEqualTo("same versions, different content; fragment net-1 v7 stored hash does not match its content");
    }

    @Test
    void rendersOnlyTheHostsThatDifferUnlessAll() {
        List<HostCheck> checks = List.of(
                check(Map.of("hash", "aaaa", "status", "ACK", "at", "2024-05-01T11:59:00Z", "v:net-1", "7", "v:net-2", "3")),
                HostCheck.classify("h2", "dddd", versions(), List.of(), Map.of(), NOW, SILENT));
        assertThat(VerifyCommand.table(checks, false)).isEqualTo("""
                HOST  STATE   EXPECTED  APPLIED  LAST REPORT  DETAIL
                h2    silent  dddd      -        -            never reported
                2 hosts: 1 ok, 0 lagging, 0 drifted, 1 silent
                """);
        assertThat(VerifyCommand.table(checks, true)).contains("h1    ok ");
        assertThat(VerifyCommand.json(checks, List.of())).contains("\"converged\" : false").contains("\"state\" : \"silent\"");
    }

    @Test
    void aHostWithUnenforcedVmsIsNeverOkAndNamesThem() {
        HostCheck c = check(Map.of("hash", "aaaa", "status", "ACK", "at", "2024-05-01T11:59:00Z", "v:net-1", "7", "v:net-2", "3",
                "unenforced", "[{\"networkId\":\"net-2\",\"vmId\":\"vm-9\",\"reason\":\"no interface in the placement\"}]"));
        assertThat(c.state()).isEqualTo(HostCheck.State.LAGGING);
        assertThat(c.detail()).isEqualTo("not enforced: vm vm-9 of net-2 (no interface in the placement)");
        HostCheck none = check(Map.of("hash", "aaaa", "status", "ACK", "at", "2024-05-01T11:59:00Z", "v:net-1", "7", "v:net-2", "3",
                "unenforced", "[]"));
        assertThat(none.state()).isEqualTo(HostCheck.State.OK);
    }

    @Test
    void aHostThatRefusedANetworkIsNeverOkAndSaysWhy() {
        // The host refused net-2 v4 (over its element limit) and applied net-1: its hash differs, and
        // even were it to agree the refusal alone keeps it from ok.
        HostCheck c = check(Map.of("hash", "aaaa", "status", "ACK", "at", "2024-05-01T11:59:00Z", "v:net-1", "7", "v:net-2", "3",
                "refused", "[{\"networkId\":\"net-2\",\"version\":4,\"reason\":\"over its limit of 10\"}]"));
        assertThat(c.state()).isEqualTo(HostCheck.State.LAGGING);
        assertThat(c.detail()).isEqualTo("refused: net-2 v4 (over its limit of 10)");
        HostCheck unreadable = check(Map.of("hash", "aaaa", "status", "ACK", "at", "2024-05-01T11:59:00Z", "v:net-1", "7",
                "v:net-2", "3", "refused", "{not json"));
        assertThat(unreadable.state()).isEqualTo(HostCheck.State.LAGGING);
        assertThat(unreadable.detail()).contains("refused field unreadable");
    }

    @Test
    void expectedStateTheLogCallsForButRedisLacksIsMissingEvenWhenHashesAgree() {
        // Redis emptied: no fragments (the expected hash of nothing) while the agent still reports its last state.
        HostCheck c = HostCheck.classify("h1", "empty", versions(), List.of(),
                List.of("no snapshot of net-1 in Redis although the log places its VMs on this host"),
                Map.of("hash", "empty", "status", "ACK", "at", "2024-05-01T11:59:00Z"), NOW, SILENT);
        assertThat(c.state()).isEqualTo(HostCheck.State.MISSING);
        assertThat(c.detail()).startsWith("no snapshot of net-1 in Redis");
        assertThat(VerifyCommand.summary(List.of(c))).isEqualTo("1 host: 0 ok, 0 lagging, 0 drifted, 0 silent, 1 missing");
    }

    @Test
    void wholeStateFailuresAreRenderedAndMakeJsonNotConverged() {
        assertThat(VerifyCommand.failures(List.of("Redis holds no generation marker"))).isEqualTo("FAILED: Redis holds no generation marker\n");
        assertThat(VerifyCommand.json(List.of(), List.of("Redis holds no generation marker")))
                .contains("\"converged\" : false").contains("Redis holds no generation marker");
    }
}
