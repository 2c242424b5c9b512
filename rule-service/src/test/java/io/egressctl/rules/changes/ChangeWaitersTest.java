package io.egressctl.rules.changes;

import io.egressctl.rules.api.ApiException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The waiter registry against a status source the test changes by hand: waiters complete when a
 * notification says their change or their pending host moved (and not before: nothing polls), on the
 * slow re-check when a notification was missed, and at their timeout with the status so far; a caller
 * refused by the admission check never waits.
 */
class ChangeWaitersTest {

    /** Long enough that no test sees a re-check it did not ask for. */
    private static final Duration NO_RECHECK = Duration.ofHours(1);

    private final Map<String, ChangeStatus> statuses = new ConcurrentHashMap<>();
    private final AtomicInteger reads = new AtomicInteger();
    private ChangeWaiters waiters;

    private ChangeWaiters waiters(Duration recheck) {
        waiters = new ChangeWaiters(id -> {
            reads.incrementAndGet();
            return Optional.ofNullable(statuses.get(id));
        }, recheck);
        return waiters;
    }

    @AfterEach
    void close() {
        if (waiters != null) {
            waiters.close();
        }
    }

    static ChangeStatus compiled(String changeId, String... pendingHosts) {
        return new ChangeStatus(changeId, "net-1", "RULE_CREATED", "COMPILED", null, null, 3L, "r-1", pendingHosts.length, 0,
                List.of(pendingHosts), "2026-01-01T00:00:00Z");
    }

    static ChangeStatus applied(String changeId, int hosts) {
        return new ChangeStatus(changeId, "net-1", "RULE_CREATED", "APPLIED", null, null, 3L, "r-1", hosts, hosts, List.of(),
                "2026-01-01T00:00:00Z");
    }

    static ChangeStatus rejected(String changeId) {
        return new ChangeStatus(changeId, "net-1", "RULE_CREATED", "REJECTED", "STALE_VERSION", "stale", null, null, 0, 0, List.of(), null);
    }

    private static void settleALittle() throws InterruptedException {
        Thread.sleep(200);
    }

    @Test
    void aChangeRecordNotificationCompletesACompiledWaiterAndNothingPollsBeforeIt() throws Exception {
        ChangeWaiters w = waiters(NO_RECHECK);
        CompletableFuture<ChangeStatus> f = w.await("c1", "net-1", "compiled", Duration.ofSeconds(10), s -> { });
        settleALittle();
        statuses.put("c1", compiled("c1", "h1"));
        settleALittle();
        assertThat(f).as("compiled in Redis, but nobody said so: no poll sees it").isNotDone();
        int readsWhileWaiting = reads.get();
        assertThat(readsWhileWaiting).as("the first read and the one closing the registration gap").isLessThanOrEqualTo(2);

        w.changeWritten("c1");
        ChangeStatus s = f.get(2, TimeUnit.SECONDS);
        assertThat(s.status()).isEqualTo("COMPILED");
        assertThat(w.size()).isZero();
        assertThat(w.changes()).isZero();
    }

    @Test
    void anAppliedWaiterCompletesWhenItsPendingHostReportsNotWhenAnotherHostDoes() throws Exception {
        statuses.put("c2", compiled("c2", "h1", "h2"));
        ChangeWaiters w = waiters(NO_RECHECK);
        CompletableFuture<ChangeStatus> f = w.await("c2", "net-1", "applied", Duration.ofSeconds(10), s -> { });
        settleALittle();
        statuses.put("c2", applied("c2", 2));
        w.hostApplied("h9");
        w.changeWritten("c-other");
        settleALittle();
        assertThat(f).as("neither notification concerns this change").isNotDone();

        w.hostApplied("h2");
        assertThat(f.get(2, TimeUnit.SECONDS).status()).isEqualTo("APPLIED");
    }

    @Test
    void aCompiledWaiterIsDoneWhileAnAppliedWaiterOnTheSameChangeWaitsOn() throws Exception {
        ChangeWaiters w = waiters(NO_RECHECK);
        CompletableFuture<ChangeStatus> toCompiled = w.await("c3", "net-1", "compiled", Duration.ofSeconds(10), s -> { });
        CompletableFuture<ChangeStatus> toApplied = w.await("c3", "net-1", "applied", Duration.ofSeconds(10), s -> { });
        statuses.put("c3", compiled("c3", "h1"));
        w.changeWritten("c3");
        assertThat(toCompiled.get(2, TimeUnit.SECONDS).status()).isEqualTo("COMPILED");
        settleALittle();
        assertThat(toApplied).isNotDone();
        assertThat(w.size()).isEqualTo(1);

        statuses.put("c3", applied("c3", 1));
        w.hostApplied("h1");
        assertThat(toApplied.get(2, TimeUnit.SECONDS).status()).isEqualTo("APPLIED");
    }

    @Test
    void thousandsOfWaitersOnOneChangeCostOneReadPerNotification() throws Exception {
        statuses.put("c4", compiled("c4", "h1"));
        ChangeWaiters w = waiters(NO_RECHECK);
        List<CompletableFuture<ChangeStatus>> all = new ArrayList<>();
        for (int i = 0; i < 5_000; i++) {
            all.add(w.await("c4", "net-1", "applied", Duration.ofSeconds(20), s -> { }));
        }
        settleALittle();
        assertThat(w.size()).isEqualTo(5_000);
        assertThat(w.changes()).isEqualTo(1);
        int before = reads.get();

        statuses.put("c4", applied("c4", 1));
        w.hostApplied("h1");
        CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).get(5, TimeUnit.SECONDS);
        assertThat(all).allSatisfy(f -> assertThat(f.join().status()).isEqualTo("APPLIED"));
        assertThat(reads.get() - before).as("one read for all the waiters of the change").isLessThanOrEqualTo(2);
        assertThat(w.size()).isZero();
    }

    @Test
    void aTimeoutAnswersTheStatusSoFarAndNotBefore() throws Exception {
        statuses.put("c5", compiled("c5", "h1"));
        ChangeWaiters w = waiters(NO_RECHECK);
        long start = System.nanoTime();
        CompletableFuture<ChangeStatus> f = w.await("c5", "net-1", "applied", Duration.ofMillis(400), s -> { });
        ChangeStatus s = f.get(5, TimeUnit.SECONDS);
        long tookMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertThat(tookMillis).isBetween(380L, 2_000L);
        assertThat(s.status()).isEqualTo("COMPILED");
        assertThat(s.pendingHosts()).containsExactly("h1");
        assertThat(s.reached("applied")).isFalse();
        assertThat(w.size()).isZero();
    }

    @Test
    void aTimeoutOnAChangeNoCompilerRecordedAnswersPublished() throws Exception {
        ChangeWaiters w = waiters(NO_RECHECK);
        ChangeStatus s = w.await("c6", "net-1", "compiled", Duration.ofMillis(100), x -> { }).get(5, TimeUnit.SECONDS);
        assertThat(s.status()).isEqualTo("PUBLISHED");
        assertThat(s.networkId()).isEqualTo("net-1");
    }

    @Test
    void theSlowRecheckCompletesAWaiterWhoseNotificationWasMissed() throws Exception {
        statuses.put("c7", compiled("c7", "h1"));
        ChangeWaiters w = waiters(Duration.ofMillis(300));
        CompletableFuture<ChangeStatus> f = w.await("c7", "net-1", "applied", Duration.ofSeconds(20), s -> { });
        settleALittle();
        statuses.put("c7", applied("c7", 1)); // and no notification
        assertThat(f.get(3, TimeUnit.SECONDS).status()).isEqualTo("APPLIED");
    }

    @Test
    void theRecheckIsOneReadPerChangeNotPerWaiter() throws Exception {
        statuses.put("c8", compiled("c8", "h1"));
        ChangeWaiters w = waiters(Duration.ofMillis(100));
        for (int i = 0; i < 1_000; i++) {
            w.await("c8", "net-1", "applied", Duration.ofSeconds(20), s -> { });
        }
        int before = reads.get();
        Thread.sleep(1_000);
        assertThat(reads.get() - before).as("about ten re-checks of one change in a second").isBetween(5, 15);
    }

    @Test
    void afterAReconnectEveryWaitedChangeIsReadAgain() throws Exception {
        statuses.put("c9", compiled("c9", "h1"));
        statuses.put("c10", compiled("c10", "h2"));
        ChangeWaiters w = waiters(NO_RECHECK);
        CompletableFuture<ChangeStatus> a = w.await("c9", "net-1", "applied", Duration.ofSeconds(20), s -> { });
        CompletableFuture<ChangeStatus> b = w.await("c10", "net-1", "applied", Duration.ofSeconds(20), s -> { });
        settleALittle();
        statuses.put("c9", applied("c9", 1));
        statuses.put("c10", rejected("c10"));
        w.recheckAll();
        assertThat(a.get(2, TimeUnit.SECONDS).status()).isEqualTo("APPLIED");
        assertThat(b.get(2, TimeUnit.SECONDS).status()).as("a rejected change can never be applied: done").isEqualTo("REJECTED");
    }

    @Test
    void aCallerRefusedByTheAdmissionCheckNeverWaits() {
        statuses.put("c11", compiled("c11", "h1"));
        ChangeWaiters w = waiters(NO_RECHECK);
        List<ChangeStatus> seen = new ArrayList<>();
        assertThatThrownBy(() -> w.await("c11", null, "applied", Duration.ofSeconds(20), s -> {
            seen.add(s);
            throw ApiException.notFound("change c11");
        })).isInstanceOf(ApiException.class);
        assertThat(seen).as("the check saw the change's network before any wait").extracting(ChangeStatus::networkId).containsExactly("net-1");
        assertThat(w.size()).isZero();
        assertThat(w.changes()).isZero();
        assertThat(reads.get()).isEqualTo(1);
    }

    @Test
    void aChangeAlreadyAtItsLevelAnswersAtOnceWithoutWaiting() {
        statuses.put("c12", applied("c12", 2));
        ChangeWaiters w = waiters(NO_RECHECK);
        CompletableFuture<ChangeStatus> f = w.await("c12", "net-1", "applied", Duration.ofSeconds(20), s -> { });
        assertThat(f).isDone();
        assertThat(w.size()).isZero();
    }

    @Test
    void aCancelledWaiterLeavesTheRegistry() throws Exception {
        statuses.put("c13", compiled("c13", "h1"));
        ChangeWaiters w = waiters(NO_RECHECK);
        CompletableFuture<ChangeStatus> f = w.await("c13", "net-1", "applied", Duration.ofSeconds(20), s -> { });
        assertThat(w.size()).isEqualTo(1);
        f.cancel(false);
        assertThat(w.size()).isZero();
        assertThat(w.changes()).isZero();
    }

    @Test
    void beyondTheLimitACallerIsAnsweredAtOnceWithTheStatusSoFar() throws Exception {
        statuses.put("c16", compiled("c16", "h1"));
        waiters = new ChangeWaiters(id -> Optional.ofNullable(statuses.get(id)), NO_RECHECK, 2);
        CompletableFuture<ChangeStatus> a = waiters.await("c16", "net-1", "applied", Duration.ofSeconds(20), s -> { });
        CompletableFuture<ChangeStatus> b = waiters.await("c16", "net-1", "applied", Duration.ofSeconds(20), s -> { });
        CompletableFuture<ChangeStatus> third = waiters.await("c16", "net-1", "applied", Duration.ofSeconds(20), s -> { });
        assertThat(third).as("over the limit: as if its timeout had passed").isCompleted();
        assertThat(third.get().status()).isEqualTo("COMPILED");
        assertThat(waiters.size()).isEqualTo(2);
        assertThat(a).isNotDone();
        a.cancel(false);
        assertThat(waiters.await("c16", "net-1", "applied", Duration.ofSeconds(20), s -> { })).as("room again").isNotDone();
        assertThat(b).isNotDone();
    }

    @Test
    void aLevelOtherThanCompiledOrAppliedIsABadParameter() {
        ChangeWaiters w = waiters(NO_RECHECK);
        assertThatThrownBy(() -> w.await("c14", "net-1", "done", Duration.ofSeconds(1), s -> { }))
                .isInstanceOf(ApiException.class).hasMessageContaining("compiled or applied");
    }

    @Test
    void aStatusReadThatFailsKeepsTheWaiterUntilItsTimeout() throws Exception {
        AtomicInteger failures = new AtomicInteger();
        waiters = new ChangeWaiters(id -> {
            if (failures.getAndIncrement() > 0) {
                throw new IllegalStateException("redis away");
            }
            return Optional.of(compiled(id, "h1"));
        }, Duration.ofMillis(50));
        CompletableFuture<ChangeStatus> f = waiters.await("c15", "net-1", "applied", Duration.ofMillis(500), s -> { });
        ChangeStatus s = f.get(5, TimeUnit.SECONDS);
        assertThat(s.status()).as("the status last read").isEqualTo("COMPILED");
        assertThat(failures.get()).as("re-checks went on failing meanwhile").isGreaterThan(3);
    }

    // ---- announcements of hosts read those hosts only -------------------------------------------------

    /**
     * A change to many hosts is announced once per host: with a refresh, each announcement reads the
     * announced hosts (on top of the last status), not every host, and a full read confirms APPLIED
     * before anyone is answered.
     */
    @Test
    void aHostsAnnouncementRefreshesFromThatHostAloneAndAFullReadConfirmsApplied() throws Exception {
        List<java.util.Set<String>> refreshed = new java.util.concurrent.CopyOnWriteArrayList<>();
        statuses.put("c9", compiled("c9", "h1", "h2", "h3"));
        waiters = new ChangeWaiters(id -> {
            reads.incrementAndGet();
            return Optional.ofNullable(statuses.get(id));
        }, (last, hosts) -> {
            refreshed.add(java.util.Set.copyOf(hosts));
            List<String> pending = new ArrayList<>(last.pendingHosts());
            pending.removeAll(hosts); // every announced host has ACKed in this test
            return Optional.of(pending.isEmpty() ? applied(last.changeId(), last.hostsTotal())
                    : new ChangeStatus(last.changeId(), "net-1", "RULE_CREATED", "COMPILED", null, null, 3L, "r-1", last.hostsTotal(),
                    last.hostsTotal() - pending.size(), pending, "2026-01-01T00:00:00Z"));
        }, NO_RECHECK, Integer.MAX_VALUE);
        CompletableFuture<ChangeStatus> f = waiters.await("c9", "net-1", "applied", Duration.ofSeconds(10), s -> { });
        settleALittle();
        int fullReads = reads.get();

        waiters.hostApplied("h1");
        settleALittle();
        waiters.hostApplied("h2");
        settleALittle();
        assertThat(f).as("h3 still pending").isNotDone();
        assertThat(refreshed).as("each announcement read its own host").containsExactly(java.util.Set.of("h1"), java.util.Set.of("h2"));
        assertThat(reads.get()).as("no full read for an announcement").isEqualTo(fullReads);

        // The refresh would say APPLIED, but the record says otherwise: the full read decides.
        waiters.hostApplied("h3");
        settleALittle();
        assertThat(reads.get()).as("APPLIED from a refresh is confirmed by one full read").isEqualTo(fullReads + 1);
        assertThat(f).as("the full read still has h1..h3 pending").isNotDone();

        // The three report again; the record agrees now.
        statuses.put("c9", applied("c9", 3));
        waiters.hostApplied("h1");
        waiters.hostApplied("h2");
        waiters.hostApplied("h3");
        assertThat(f.get(2, TimeUnit.SECONDS).status()).isEqualTo("APPLIED");
    }

    @Test
    void theRecordsAnnouncementAndTheRecheckReadEveryHost() throws Exception {
        AtomicInteger refreshes = new AtomicInteger();
        statuses.put("c10", compiled("c10", "h1", "h2"));
        waiters = new ChangeWaiters(id -> {
            reads.incrementAndGet();
            return Optional.ofNullable(statuses.get(id));
        }, (last, hosts) -> {
            refreshes.incrementAndGet();
            return Optional.of(last);
        }, Duration.ofMillis(300), Integer.MAX_VALUE);
        CompletableFuture<ChangeStatus> f = waiters.await("c10", "net-1", "applied", Duration.ofSeconds(10), s -> { });
        settleALittle();
        int before = reads.get();
        waiters.changeWritten("c10");
        settleALittle();
        assertThat(reads.get()).as("the change record was written: a full read").isGreaterThan(before);
        statuses.put("c10", applied("c10", 2));
        assertThat(f.get(2, TimeUnit.SECONDS).status()).as("the re-check reads every host, a missed announcement or not").isEqualTo("APPLIED");
        assertThat(refreshes.get()).as("no host was announced").isZero();
    }
}
