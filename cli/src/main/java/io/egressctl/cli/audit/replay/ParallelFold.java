package io.egressctl.cli.audit.replay;

import io.egressctl.cli.audit.log.LogReader;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntFunction;

/**
 * Folds records on worker threads while the calling thread keeps fetching: each record goes to the
 * worker its key hashes to, so every network is folded by one worker, in log order, into that worker's
 * own state (no sharing, no locks on the states). With one worker it folds on the calling thread.
 */
public final class ParallelFold implements LogReader.BatchHandler, AutoCloseable {

    /** One worker's fold; only ever called from that worker's thread. */
    public interface Folder {
        void fold(ConsumerRecord<byte[], byte[]> record);
    }

    private static final List<ConsumerRecord<byte[], byte[]>> STOP = new ArrayList<>();

    private final Folder[] folders;
    private final List<BlockingQueue<List<ConsumerRecord<byte[], byte[]>>>> queues = new ArrayList<>();
    private final List<Thread> threads = new ArrayList<>();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private boolean closed;

    /**
     * @param workers       fold threads (at least one; one folds on the calling thread)
     * @param folderFactory the fold of worker {@code i}, made once per worker
     */
    public ParallelFold(int workers, IntFunction<Folder> folderFactory) {
        this.folders = new Folder[Math.max(1, workers)];
        for (int i = 0; i < folders.length; i++) {
            folders[i] = folderFactory.apply(i);
        }
        if (folders.length > 1) {
            for (int i = 0; i < folders.length; i++) {
                BlockingQueue<List<ConsumerRecord<byte[], byte[]>>> q = new ArrayBlockingQueue<>(16);
                queues.add(q);
                Folder f = folders[i];
                Thread t = new Thread(() -> work(q, f), "audit-fold-" + i);
                t.setDaemon(true);
                threads.add(t);
                t.start();
            }
        }
    }

    /** The number of workers folding. */
    public int workers() {
        return folders.length;
    }

    private void work(BlockingQueue<List<ConsumerRecord<byte[], byte[]>>> q, Folder f) {
        try {
            while (true) {
                List<ConsumerRecord<byte[], byte[]>> batch = q.take();
                if (batch == STOP) {
                    return;
                }
                if (failure.get() != null) {
                    continue; // drain so the fetching thread never blocks
                }
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    f.fold(r);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Throwable t) {
            failure.compareAndSet(null, t);
            drain(q);
        }
    }

    private static void drain(BlockingQueue<List<ConsumerRecord<byte[], byte[]>>> q) {
        try {
            while (q.take() != STOP) {
                // discard
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The worker of a key (null keys go to worker 0). */
    static int worker(byte[] key, int workers) {
        return key == null ? 0 : (Arrays.hashCode(key) & 0x7fffffff) % workers;
    }

    @Override
    public void accept(TopicPartition partition, List<ConsumerRecord<byte[], byte[]>> records) {
        rethrow();
        int w = folders.length;
        if (w == 1) {
            for (ConsumerRecord<byte[], byte[]> r : records) {
                folders[0].fold(r);
            }
            return;
        }
        List<List<ConsumerRecord<byte[], byte[]>>> split = new ArrayList<>(w);
        for (int i = 0; i < w; i++) {
            split.add(new ArrayList<>(records.size() / w + 16));
        }
        for (ConsumerRecord<byte[], byte[]> r : records) {
            split.get(worker(r.key(), w)).add(r);
        }
        try {
            for (int i = 0; i < w; i++) {
                if (!split.get(i).isEmpty()) {
                    queues.get(i).put(split.get(i));
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    /** Waits until every worker has folded everything handed to it. */
    public void finish() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            for (BlockingQueue<List<ConsumerRecord<byte[], byte[]>>> q : queues) {
                q.put(STOP);
            }
            for (Thread t : threads) {
                t.join();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
        rethrow();
    }

    private void rethrow() {
        Throwable t = failure.get();
        if (t instanceof RuntimeException re) {
            throw re;
        }
        if (t instanceof Error err) {
            throw err;
        }
        if (t != null) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            for (int i = 0; i < queues.size(); i++) {
                queues.get(i).clear();
                queues.get(i).offer(STOP);
            }
            for (Thread t : threads) {
                t.interrupt();
            }
        }
    }
}
