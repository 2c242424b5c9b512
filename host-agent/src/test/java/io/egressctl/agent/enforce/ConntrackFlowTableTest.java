package io.egressctl.agent.enforce;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link ConntrackFlowTable} against stand-ins for the conntrack binary (shell scripts that answer
 * as conntrack-tools 1.4.7 does), so the exit statuses and messages are checked without root.
 */
class ConntrackFlowTableTest {

    @TempDir
    Path dir;

    private Path fakeConntrack(String body) throws IOException {
        Path bin = dir.resolve("conntrack");
        Files.writeString(bin, "#!/bin/sh\necho \"$@\" > " + dir.resolve("args") + "\n" + body + "\n");
        Files.setPosixFilePermissions(bin, PosixFilePermissions.fromString("rwxr-xr-x"));
        return bin;
    }

    @Test
    void deletesByMarkAndCountsTheEntries() throws Exception {
        Path bin = fakeConntrack("""
                echo 'udp      17 29 src=10.1.1.11 dst=10.9.0.1 sport=40000 dport=53 mark=1157627905 use=1'
                echo 'conntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted.' >&2
                exit 0""");
        ConntrackFlowTable t = new ConntrackFlowTable(bin.toString(), null, Duration.ofSeconds(5));

        assertThat(t.endFlows(0x45000001)).isEqualTo(2);
        assertThat(Files.readString(dir.resolve("args")).strip()).isEqualTo("-D --mark 1157627905");
    }

    @Test
    void exitOneWithNothingDeletedIsSuccess() throws Exception {
        Path bin = fakeConntrack("""
                echo 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.' >&2
                exit 1""");

        assertThat(new ConntrackFlowTable(bin.toString(), "", Duration.ofSeconds(5)).endFlows(0x45abcdef)).isZero();
    }

    @Test
    void anyOtherFailureSaysWhy() throws Exception {
        Path bin = fakeConntrack("""
                echo 'conntrack v1.4.7 (conntrack-tools): Operation failed: sorry, you must be root or get CAP_NET_ADMIN capability to do this' >&2
                exit 1""");
        ConntrackFlowTable t = new ConntrackFlowTable(bin.toString(), null, Duration.ofSeconds(5));

        assertThatThrownBy(() -> t.endFlows(0x45000001)).isInstanceOf(EnforcementException.class)
                .hasMessageContaining("exit 1").hasMessageContaining("CAP_NET_ADMIN");
        assertThatThrownBy(t::check).isInstanceOf(EnforcementException.class).hasMessageContaining("CAP_NET_ADMIN");
    }

    @Test
    void aMissingBinaryIsAnEnforcementException() {
        ConntrackFlowTable t = new ConntrackFlowTable(dir.resolve("no-such-conntrack").toString(), null, Duration.ofSeconds(5));

        assertThatThrownBy(() -> t.endFlows(0x45000001)).isInstanceOf(EnforcementException.class).hasMessageContaining("cannot start");
    }

    @Test
    void runsInTheAgentsNamespaceLikeNft() {
        ConntrackFlowTable t = new ConntrackFlowTable("conntrack", "ech-host-1", Duration.ofSeconds(5));

        assertThat(t.command(0x45000010)).isEqualTo(List.of("ip", "netns", "exec", "ech-host-1", "conntrack", "-D", "--mark", "1157627920"));
        assertThatThrownBy(() -> new ConntrackFlowTable("conntrack", "../etc", Duration.ofSeconds(5)))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void aHangingRunIsKilled() throws Exception {
        Path bin = fakeConntrack("sleep 30");
        ConntrackFlowTable t = new ConntrackFlowTable(bin.toString(), null, Duration.ofMillis(200));

        assertThatThrownBy(() -> t.endFlows(0x45000001)).isInstanceOf(EnforcementException.class).hasMessageContaining("killed");
    }

    // ---- several ports in one process -------------------------------------------------------------

    @Test
    void severalPortsGoToOneProcessOneLineEach() throws Exception {
        Path bin = fakeConntrack("cat > " + dir.resolve("stdin") + "\nexit 0");
        ConntrackFlowTable t = new ConntrackFlowTable(bin.toString(), null, Duration.ofSeconds(5));

        assertThat(t.endFlows(List.of(0x45000001, 0x45ffffff))).as("conntrack -R does not count").isEqualTo(-1);
        assertThat(Files.readString(dir.resolve("args")).strip()).isEqualTo("-R -");
        assertThat(Files.readString(dir.resolve("stdin"))).isEqualTo("-D --mark 1157627905\n-D --mark 1174405119\n");
    }

    @Test
    void noPortsStartsNothing() throws Exception {
        Path bin = fakeConntrack("exit 0");
        assertThat(new ConntrackFlowTable(bin.toString(), null, Duration.ofSeconds(5)).endFlows(List.of())).isZero();
        assertThat(dir.resolve("args")).doesNotExist();
    }

    @Test
    void aFailedBatchSaysWhy() throws Exception {
        Path bin = fakeConntrack("""
                cat > /dev/null
                echo "conntrack v1.4.7 (conntrack-tools): unknown option '--bogus'" >&2
                exit 2""");
        ConntrackFlowTable t = new ConntrackFlowTable(bin.toString(), null, Duration.ofSeconds(5));

        assertThatThrownBy(() -> t.endFlows(List.of(0x45000001))).isInstanceOf(EnforcementException.class)
                .hasMessageContaining("-R -").hasMessageContaining("exit 2").hasMessageContaining("unknown option");
    }

    @Test
    void theSpareStartedAheadTakesTheBatchAndAnotherIsStartedAfter() throws Exception {
        // Each start appends a line to "starts"; the spare then waits for its input.
        Path bin = fakeConntrack("echo start >> " + dir.resolve("starts") + "\ncat >> " + dir.resolve("stdin") + "\nexit 0");
        ConntrackFlowTable t = new ConntrackFlowTable(bin.toString(), null, Duration.ofSeconds(5), true);
        ProcessHandle first = awaitSpare(t);

        t.endFlows(List.of(0x45000001));

        assertThat(first.isAlive()).as("the spare ran the batch and ended").isFalse();
        ProcessHandle second = awaitSpare(t);
        assertThat(second.pid()).as("a new spare for the next batch").isNotEqualTo(first.pid());
        assertThat(Files.readString(dir.resolve("stdin"))).isEqualTo("-D --mark 1157627905\n");
        assertThat(Files.readAllLines(dir.resolve("starts"))).as("no process started on the batch's path").hasSize(2);
    }

    private static ProcessHandle awaitSpare(ConntrackFlowTable t) throws InterruptedException {
        for (int i = 0; i < 250; i++) {
            if (t.spare().isPresent()) {
                return t.spare().get();
            }
            Thread.sleep(20);
        }
        throw new AssertionError("no spare conntrack started within 5 s");
    }
}
