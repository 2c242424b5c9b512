package io.egressctl.rules.changes;

import io.egressctl.schemas.view.RedisKeys;
import io.egressctl.testinfra.Infrastructure;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.Protocol;
import redis.clients.jedis.UnifiedJedis;

import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The subscription against a real Redis ({@link Infrastructure}: the local stack's, or a container with
 * {@code EGRESS_TEST_INFRA=testcontainers}): a
 * message on the compiler's channels completes the waiters it concerns, and when the subscription is
 * cut ({@code CLIENT KILL TYPE pubsub}, as a Redis restart cuts it, without restarting the shared server) the subscriber comes back on its own and reads every waited change
 * again, so a status written while nobody listened still completes its waiters. The waiters' own
 * re-check is set to an hour here: only the subscription can complete them.
 */
class ChangeNotificationsIT {

    private final Map<String, ChangeStatus> statuses = new ConcurrentHashMap<>();
    private UnifiedJedis redis;
    private ChangeWaiters waiters;
    private ChangeNotifications notifications;

    @BeforeEach
    void start() throws Exception {
        String url = Infrastructure.get().env("REDIS_URL");
        redis = new UnifiedJedis(URI.create(url));
        waiters = new ChangeWaiters(id -> Optional.ofNullable(statuses.get(id)), Duration.ofHours(1));
        notifications = new ChangeNotifications(url, waiters);
        notifications.start();
        assertThat(eventually(() -> notifications.subscribed())).as("subscribed").isTrue();
    }

    @AfterEach
    void stop() {
        if (notifications != null) {
            notifications.close();
        }
        if (waiters != null) {
            waiters.close();
        }
        if (redis != null) {
            redis.close();
        }
    }

    private static boolean eventually(java.util.function.BooleanSupplier check) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < deadline) {
            if (check.getAsBoolean()) {
                return true;
            }
            Thread.sleep(20);
        }
        return false;
    }

    private static String unique(String prefix) {
        return prefix + "-" + java.util.UUID.randomUUID().toString().substring(0, 8);
    }

    @Test
    void theCompilersMessagesCompleteTheWaitersTheyConcern() throws Exception {
        String compiledId = unique("c");
        String appliedId = unique("c");
        String host = unique("h");
        statuses.put(appliedId, ChangeWaitersTest.compiled(appliedId, host));
        CompletableFuture<ChangeStatus> toCompiled = waiters.await(compiledId, "net-1", "compiled", Duration.ofSeconds(30), s -> { });
        CompletableFuture<ChangeStatus> toApplied = waiters.await(appliedId, "net-1", "applied", Duration.ofSeconds(30), s -> { });
        Thread.sleep(200);

        statuses.put(compiledId, ChangeWaitersTest.compiled(compiledId, host));
        statuses.put(appliedId, ChangeWaitersTest.applied(appliedId, 1));
        redis.publish(RedisKeys.changesChannel(), compiledId);
        assertThat(toCompiled.get(5, TimeUnit.SECONDS).status()).isEqualTo("COMPILED");
        Thread.sleep(200);
        assertThat(toApplied).as("its host has not reported").isNotDone();

        redis.publish(RedisKeys.appliedChannel(), host);
        assertThat(toApplied.get(5, TimeUnit.SECONDS).status()).isEqualTo("APPLIED");
    }

    @Test
    void aCutSubscriptionComesBackAndWhatWasMissedMeanwhileStillCompletes() throws Exception {
        String changeId = unique("c");
        String host = unique("h");
        statuses.put(changeId, ChangeWaitersTest.compiled(changeId, host));
        CompletableFuture<ChangeStatus> f = waiters.await(changeId, "net-1", "applied", Duration.ofSeconds(30), s -> { });
        Thread.sleep(200);

        // Applied while the subscriber is cut off: its message is lost (pub/sub keeps nothing).
        statuses.put(changeId, ChangeWaitersTest.applied(changeId, 1));
        redis.sendCommand(Protocol.Command.CLIENT, "KILL", "TYPE", "pubsub");
        redis.publish(RedisKeys.appliedChannel(), host);

        assertThat(f.get(10, TimeUnit.SECONDS).status()).as("read again once subscribed again").isEqualTo("APPLIED");
        assertThat(eventually(() -> notifications.subscribed())).as("subscribed again").isTrue();

        // And the new subscription carries messages.
        String next = unique("c");
        CompletableFuture<ChangeStatus> g = waiters.await(next, "net-1", "compiled", Duration.ofSeconds(30), s -> { });
        Thread.sleep(200);
        statuses.put(next, ChangeWaitersTest.compiled(next, host));
        redis.publish(RedisKeys.changesChannel(), next);
        assertThat(g.get(5, TimeUnit.SECONDS).status()).isEqualTo("COMPILED");
    }
}
