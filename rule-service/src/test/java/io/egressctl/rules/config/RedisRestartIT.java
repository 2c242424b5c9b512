package io.egressctl.rules.config;

import io.egressctl.testinfra.Infrastructure;
import io.egressctl.testinfra.OwnRedis;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.UnifiedJedis;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * rule-service's Redis client after Redis restarts, against a Redis of this test's own
 * ({@link Infrastructure#ownRedis()}: a redis-server process on the local stack's side, a container of the
 * Redis image with {@code EGRESS_TEST_INFRA=testcontainers}; not the shared one: restarting that would
 * disturb other tests), killed and started again on the same address: the first request after the restart
 * succeeds, no request fails on a pooled connection that died with the old server.
 */
class RedisRestartIT {

    private OwnRedis redis;

    @AfterEach
    void stop() {
        if (redis != null) {
            redis.close();
        }
    }

    @Test
    void theFirstRequestsAfterARedisRestartSucceed() throws Exception {
        redis = Infrastructure.get().ownRedis();
        try (UnifiedJedis client = InfraConfig.redisClient(redis.url())) {
            // Several pooled connections, as concurrent requests leave them.
            List<Thread> threads = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                int n = i;
                Thread t = new Thread(() -> {
                    for (int j = 0; j < 50; j++) {
                        client.set("k" + n, "v" + j);
                    }
                });
                t.start();
                threads.add(t);
            }
            for (Thread t : threads) {
                t.join();
            }
            assertThat(client.get("k3")).isEqualTo("v49");
            redis.kill();
            redis.start();
            assertThat(client.get("k3")).as("an empty Redis: the restart really happened").isNull();
            for (int i = 0; i < 20; i++) {
                client.set("after-" + i, "ok");
                assertThat(client.get("after-" + i)).as("request %d after the restart", i).isEqualTo("ok");
            }
        }
    }
}
