package io.egressctl.rules.changes;

import io.egressctl.schemas.view.RedisKeys;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import redis.clients.jedis.Jedis;
import redis.clients.jedis.JedisPubSub;

import java.time.Duration;
import java.util.function.Supplier;

/**
 * The service's one subscription to the compiler's notifications ({@link RedisKeys#changesChannel()}:
 * a change record was written; {@link RedisKeys#appliedChannel()}: a host's applied state was), fed
 * to the {@link ChangeWaiters}. One dedicated connection on one thread, whatever the number of
 * waiters. When the connection drops it reconnects with back-off (100 ms doubling to 5 s), and once
 * subscribed again every waiter re-reads its change, since what was published meanwhile is lost
 * (pub/sub keeps nothing); the waiters' own re-check covers the time until then.
 */
public final class ChangeNotifications implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(ChangeNotifications.class);
    private static final Duration FIRST_BACKOFF = Duration.ofMillis(100);
    private static final Duration MAX_BACKOFF = Duration.ofSeconds(5);

    private final Supplier<Jedis> connect;
    private final ChangeWaiters waiters;
    private final Thread thread;
    private volatile boolean running = true;
    private volatile JedisPubSub current;
    private volatile boolean subscribed;

    /** Subscribes on a connection to {@code redisUrl}. */
    public ChangeNotifications(String redisUrl, ChangeWaiters waiters) {
        // The primary as the Sentinels name it now: a subscriber that lost its connection asks again, and so
        // follows a fail-over (PUBLISH goes to the primary; replicas pass it on too, but may lag).
        this(() -> io.egressctl.schemas.redis.RedisClients.connectPrimary(io.egressctl.schemas.redis.RedisTarget.parse(redisUrl)), waiters);
    }

    ChangeNotifications(Supplier<Jedis> connect, ChangeWaiters waiters) {
        this.connect = connect;
        this.waiters = waiters;
        this.thread = new Thread(this::run, "change-notifications");
        this.thread.setDaemon(true);
    }

    /** Starts the subscriber thread. */
    public void start() {
        thread.start();
    }

    /** Whether the subscription is in place now (health, tests). */
    public boolean subscribed() {
        return subscribed;
    }

    private void run() {
        Duration backoff = FIRST_BACKOFF;
        while (running) {
            Listener listener = new Listener();
            try (Jedis jedis = connect.get()) {
                current = listener;
                // Blocks until unsubscribed or the connection fails.
                jedis.subscribe(listener, RedisKeys.changesChannel(), RedisKeys.appliedChannel());
            } catch (RuntimeException e) {
                if (running) {
                    log.warn("change notifications: no subscription to Redis ({}); again in {} ms, waiters re-check meanwhile",
                            e.getMessage(), backoff.toMillis());
                }
            } finally {
                subscribed = false;
                current = null;
            }
            if (!running) {
                return;
            }
            // A subscription that held starts the back-off over; failing attempts double it.
            backoff = listener.channels == 2 ? FIRST_BACKOFF : backoff;
            try {
                Thread.sleep(backoff.toMillis());
            } catch (InterruptedException e) {
                return;
            }
            backoff = backoff.multipliedBy(2).compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : backoff.multipliedBy(2);
        }
    }

    private final class Listener extends JedisPubSub {
        private volatile int channels;

        @Override
        public void onSubscribe(String channel, int subscribedChannels) {
            if (++channels == 2) {
                subscribed = true;
                // Whatever was published while no subscription was in place is lost: read every waited change again.
                waiters.recheckAll();
                log.info("change notifications: subscribed to {} and {}", RedisKeys.changesChannel(), RedisKeys.appliedChannel());
            }
        }

        @Override
        public void onMessage(String channel, String message) {
            if (channel.equals(RedisKeys.changesChannel())) {
                waiters.changeWritten(message);
            } else if (channel.equals(RedisKeys.appliedChannel())) {
                waiters.hostApplied(message);
            }
        }
    }

    @Override
    public void close() {
        running = false;
        JedisPubSub pubSub = current;
        if (pubSub != null && pubSub.isSubscribed()) {
            try {
                pubSub.unsubscribe();
            } catch (RuntimeException e) {
                // The connection is going away anyway.
            }
        }
        thread.interrupt();
    }
}
