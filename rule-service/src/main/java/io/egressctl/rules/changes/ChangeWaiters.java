package io.egressctl.rules.changes;

import io.egressctl.rules.api.ApiException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.http.HttpStatus;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The callers waiting for a change to reach a level ({@code ?wait=compiled|applied}), completed from
 * events rather than by polling. A waiter holds no thread: it is a {@link CompletableFuture} in a
 * registry keyed by change id, and by host for the changes still pending on a host. The compiler
 * announces each change record it writes and each host whose applied state it updates
 * ({@link ChangeNotifications}); on such a notification the registry reads the change's status once
 * ({@link ChangeTracker#find}), however many callers wait on it, and completes those whose level it
 * reached.
 *
 * <p>A notification can be missed (the subscriber was reconnecting, Redis restarted), so each watched
 * change is also read again every {@code recheck} (one task per change on one scheduler thread, not
 * a thread per waiter). A waiter whose timeout passes is completed with the status read then, the
 * status so far (PUBLISHED when the compiler has not recorded the change yet). Thread-safe.
 */
public final class ChangeWaiters implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(ChangeWaiters.class);

    /** A timeout may reuse a status read this recently instead of reading it again (many waiters expire together). */
    private static final long FRESH_NANOS = TimeUnit.MILLISECONDS.toNanos(5);

    private final Function<String, Optional<ChangeStatus>> statuses;
    /** Brings a status up to date from some hosts' states ({@link ChangeTracker#refresh}); null: every read is a full one. */
    private final java.util.function.BiFunction<ChangeStatus, Set<String>, Optional<ChangeStatus>> refresh;
    private final Duration recheck;
    private final int maxWaiters;
    /** Guarded by {@link #lock}: callers waiting, across changes. */
    private int waiting;
    private volatile long overLimitLoggedAt;
    private final ScheduledExecutorService scheduler;
    private final Object lock = new Object();
    /** Guarded by {@link #lock}. */
    private final Map<String, Watch> byChange = new HashMap<>();
    /** Guarded by {@link #lock}: the watches of changes that are COMPILED and still pending on the host. */
    private final Map<String, Set<Watch>> byHost = new HashMap<>();

    /** Without a limit on the number of callers waiting. */
    public ChangeWaiters(Function<String, Optional<ChangeStatus>> statuses, Duration recheck) {
        this(statuses, recheck, Integer.MAX_VALUE);
    }

    /**
     * @param statuses   a change's status, empty while no compiler has recorded it ({@link ChangeTracker#find})
     * @param recheck    how often a watched change is read again without a notification
     * @param maxWaiters callers that may wait at once; one more is answered at once with the status so
     *                   far, as if its timeout had passed (each waiting request holds its connection's
     *                   buffers, about 80 KB of heap: the limit keeps a crowd of waiters from exhausting it)
     */
    public ChangeWaiters(Function<String, Optional<ChangeStatus>> statuses, Duration recheck, int maxWaiters) {
        this(statuses, null, recheck, maxWaiters);
    }

    /**
     * @param refresh a status brought up to date from the states of the hosts announced since it was
     *                read ({@link ChangeTracker#refresh}), or null to read every host each time. With
     *                it, an announcement of a host reads that host (and the change record) only; a full
     *                read still comes with the record's announcement, every {@code recheck}, at a
     *                timeout, and before a change is answered as APPLIED
     */
    public ChangeWaiters(Function<String, Optional<ChangeStatus>> statuses,
                         java.util.function.BiFunction<ChangeStatus, Set<String>, Optional<ChangeStatus>> refresh,
                         Duration recheck, int maxWaiters) {
        this.statuses = statuses;
        this.refresh = refresh;
        this.recheck = recheck;
        this.maxWaiters = maxWaiters;
        ScheduledThreadPoolExecutor s = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "change-waiters");
            t.setDaemon(true);
            return t;
        });
        // Thousands of waiters' timeout tasks, most of them cancelled when the change gets there.
        s.setRemoveOnCancelPolicy(true);
        this.scheduler = s;
    }

    /**
     * Waits for {@code changeId} to reach {@code level} ({@code compiled} or {@code applied}) or for
     * {@code timeout} to pass, whichever comes first; the future then holds the status (the level's, or
     * the status so far). The status is read once before anything waits and handed to {@code admit},
     * which refuses a caller by throwing (that caller's tenant may not see the change's network): it
     * is thrown from here and nothing waits. Cancelling the future drops the waiter.
     *
     * @param networkId the change's network when the caller knows it (a write), for the status of a
     *                  change not recorded yet; may be null
     */
    public CompletableFuture<ChangeStatus> await(String changeId, String networkId, String level, Duration timeout,
                                                 Consumer<ChangeStatus> admit) {
        if (!level.equals("compiled") && !level.equals("applied")) {
            throw new ApiException(HttpStatus.BAD_REQUEST, "BAD_PARAMETER", "wait must be compiled or applied");
        }
        Duration t = timeout.compareTo(ChangeTracker.MAX_WAIT) > 0 ? ChangeTracker.MAX_WAIT : timeout;
        ChangeStatus first = statuses.apply(changeId).orElse(ChangeTracker.published(changeId, networkId));
        admit.accept(first);
        if (first.reached(level)) {
            return CompletableFuture.completedFuture(first);
        }
        Waiter w = new Waiter(level, System.nanoTime() + t.toNanos());
        Watch watch;
        synchronized (lock) {
            if (waiting >= maxWaiters) {
                overLimit();
                return CompletableFuture.completedFuture(first);
            }
            watch = byChange.computeIfAbsent(changeId, Watch::new);
            watch.waiters.add(w);
            waiting++;
            if (watch.last == null) {
                watch.last = first;
                watch.readAt = System.nanoTime();
            }
            if (watch.recheckTask == null) {
                watch.recheckTask = scheduler.scheduleWithFixedDelay(() -> {
                    markFull(watch);
                    evaluate(watch);
                }, recheck.toNanos(), recheck.toNanos(), TimeUnit.NANOSECONDS);
            }
        }
        ScheduledFuture<?> expiry = scheduler.schedule(() -> expire(watch, w), t.toNanos(), TimeUnit.NANOSECONDS);
        w.result.whenComplete((s, e) -> {
            expiry.cancel(false);
            remove(watch, w);
        });
        // A notification sent between the first read and the registration above was not seen by this
        // waiter: one more (full) read closes that gap.
        markFull(watch);
        request(watch);
        return w.result;
    }

    /** The compiler wrote the change record of {@code changeId}: its waiters re-read it. */
    public void changeWritten(String changeId) {
        Watch watch;
        synchronized (lock) {
            watch = byChange.get(changeId);
        }
        if (watch != null) {
            markFull(watch);
            request(watch);
        }
    }

    /** The compiler folded a report of {@code hostId}: the changes pending on that host are read again. */
    public void hostApplied(String hostId) {
        List<Watch> watches;
        synchronized (lock) {
            Set<Watch> set = byHost.get(hostId);
            watches = set == null ? List.of() : List.copyOf(set);
            watches.forEach(w -> w.announced.add(hostId));
        }
        watches.forEach(this::request);
    }

    /** Every watched change is read again (the notifications of a while may have been missed). */
    public void recheckAll() {
        List<Watch> watches;
        synchronized (lock) {
            watches = List.copyOf(byChange.values());
        }
        watches.forEach(w -> {
            markFull(w);
            request(w);
        });
    }

    /** The number of callers waiting. */
    public int size() {
        synchronized (lock) {
            return waiting;
        }
    }

    private void overLimit() {
        long now = System.nanoTime();
        if (now - overLimitLoggedAt > TimeUnit.SECONDS.toNanos(10)) {
            overLimitLoggedAt = now;
            log.warn("{} callers wait for changes, the limit (egress.change-wait.max-waiters): further waits answer at once with "
                    + "the status so far", maxWaiters);
        }
    }

    /** The number of changes waited on. */
    public int changes() {
        synchronized (lock) {
            return byChange.size();
        }
    }

    /** The watch's next read reads every host. */
    private void markFull(Watch watch) {
        synchronized (lock) {
            watch.full = true;
        }
    }

    /** Schedules one read of the watch unless one is already scheduled and not started. */
    private void request(Watch watch) {
        if (watch.queued.compareAndSet(false, true)) {
            try {
                scheduler.execute(() -> evaluate(watch));
            } catch (java.util.concurrent.RejectedExecutionException e) {
                watch.queued.set(false); // closing
            }
        }
    }

    private void expire(Watch watch, Waiter w) {
        if (w.result.isDone()) {
            return;
        }
        if (System.nanoTime() - watch.readAt > FRESH_NANOS) {
            markFull(watch);
            evaluate(watch);
        } else {
            settle(watch, watch.last);
        }
    }

    /**
     * Reads the change's status and completes the waiters that reached their level or their deadline:
     * a full read, or (only hosts were announced since the last read, and a refresh is given) a
     * refresh from those hosts' states, confirmed by a full read before it answers APPLIED.
     */
    private void evaluate(Watch watch) {
        watch.queued.set(false);
        Set<String> hosts;
        boolean full;
        ChangeStatus last;
        synchronized (lock) {
            hosts = watch.announced.isEmpty() ? Set.of() : new HashSet<>(watch.announced);
            watch.announced.clear();
            full = watch.full || refresh == null || watch.last == null;
            watch.full = false;
            last = watch.last;
        }
        ChangeStatus s;
        try {
            if (full) {
                s = statuses.apply(watch.changeId).orElse(null);
            } else {
                s = refresh.apply(last, hosts).orElse(null);
                if (s != null && s.status().equals("APPLIED")) {
                    s = statuses.apply(watch.changeId).orElse(null);
                }
            }
        } catch (RuntimeException e) {
            // Redis unreachable: the waiters keep what they last saw; the re-check or their timeout comes next.
            log.debug("reading the status of change {} failed: {}", watch.changeId, e.toString());
            synchronized (lock) {
                watch.announced.addAll(hosts);
                watch.full |= full;
            }
            settle(watch, null);
            return;
        }
        settle(watch, s);
    }

    /** Records a status read (null: none new) and completes what it allows; reindexes the watch by its pending hosts. */
    private void settle(Watch watch, ChangeStatus read) {
        List<Map.Entry<Waiter, ChangeStatus>> done = new ArrayList<>();
        long now = System.nanoTime();
        synchronized (lock) {
            if (read != null) {
                watch.last = read;
                watch.readAt = now;
            }
            ChangeStatus s = watch.last;
            for (Waiter w : watch.waiters) {
                if (s.reached(w.level) || now - w.deadline >= 0) {
                    done.add(Map.entry(w, s));
                }
            }
            done.forEach(e -> {
                if (watch.waiters.remove(e.getKey())) {
                    waiting--;
                }
            });
            Set<String> pending = watch.waiters.isEmpty() || !s.status().equals("COMPILED") ? Set.of() : new HashSet<>(s.pendingHosts());
            index(watch, pending);
            dropIfEmpty(watch);
        }
        // Outside the lock: completing runs the callers' continuations (an async dispatch each).
        done.forEach(e -> e.getKey().result.complete(e.getValue()));
    }

    private void remove(Watch watch, Waiter w) {
        synchronized (lock) {
            if (watch.waiters.remove(w)) {
                waiting--;
                dropIfEmpty(watch);
            }
        }
    }

    /** Guarded by {@link #lock}. */
    private void dropIfEmpty(Watch watch) {
        if (watch.waiters.isEmpty() && byChange.get(watch.changeId) == watch) {
            byChange.remove(watch.changeId);
            index(watch, Set.of());
            if (watch.recheckTask != null) {
                watch.recheckTask.cancel(false);
                watch.recheckTask = null;
            }
        }
    }

    /** Guarded by {@link #lock}. */
    private void index(Watch watch, Set<String> hosts) {
        for (String h : watch.hosts) {
            if (!hosts.contains(h)) {
                Set<Watch> set = byHost.get(h);
                if (set != null && set.remove(watch) && set.isEmpty()) {
                    byHost.remove(h);
                }
            }
        }
        for (String h : hosts) {
            if (!watch.hosts.contains(h)) {
                byHost.computeIfAbsent(h, x -> new HashSet<>()).add(watch);
            }
        }
        watch.hosts = hosts;
    }

    @Override
    public void close() {
        scheduler.shutdownNow();
    }

    /** One caller's wait. */
    private static final class Waiter {
        final String level;
        final long deadline;
        final CompletableFuture<ChangeStatus> result = new CompletableFuture<>();

        Waiter(String level, long deadline) {
            this.level = level;
            this.deadline = deadline;
        }
    }

    /** The waiters of one change, with its last status read. */
    private static final class Watch {
        final String changeId;
        /** Guarded by the registry's lock. */
        final Set<Waiter> waiters = new HashSet<>();
        /** A read is scheduled and has not started yet: further notifications need no other. */
        final AtomicBoolean queued = new AtomicBoolean();
        /** Guarded by the registry's lock, set before the watch is shared. */
        volatile ChangeStatus last;
        volatile long readAt;
        /** Guarded by the registry's lock: the next read must read every host (whatever is not a host's announcement asks for it). */
        boolean full;
        /** Guarded by the registry's lock: hosts announced since the last read. */
        final Set<String> announced = new HashSet<>();
        Set<String> hosts = Set.of();
        ScheduledFuture<?> recheckTask;

        Watch(String changeId) {
            this.changeId = changeId;
        }
    }
}
