package io.egressctl.rules.config;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.UnifiedJedis;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * rule-service's Redis client after Redis restarts, against a real redis-server this test starts on a
 * free port of 127.0.0.1 (not the shared stack's: restarting that would disturb other tests): the first
 * request after the restart succeeds, no request fails on a pooled connection that died with the old
 * server.
 */
class RedisRestartIT {

    private Process redis;
    private Path dir;

    @AfterEach
    void stop() throws Exception {
        if (redis != null) {
            redis.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    private void startRedis(int port) throws Exception {
        if (dir == null) {
            dir = Files.createTempDirectory("redis-restart-it");
        }
        redis = new ProcessBuilder("redis-server", "--port", String.valueOf(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", dir.toString()).redirectErrorStream(true)
                .redirectOutput(dir.resolve("redis.log").toFile()).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < deadline) {
            try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
                return;
            } catch (IOException e) {
                Thread.sleep(50);
            }
        }
        throw new IllegalStateException("redis-server did not listen on " + port);
    }

    @Test
    void theFirstRequestsAfterARedisRestartSucceed() throws Exception {
        Assumptions.assumeTrue(onPath("redis-server"), "redis-server is not installed");
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        startRedis(port);
        try (UnifiedJedis client = InfraConfig.redisClient("redis://127.0.0.1:" + port)) {
            // Several pooled connections, as concurrent requests leave them.
            List<Thread> threads = new java.util.ArrayList<>();
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
            redis.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            startRedis(port);
            for (int i = 0; i < 20; i++) {
                client.set("after-" + i, "ok");
                assertThat(client.get("after-" + i)).as("request %d after the restart", i).isEqualTo("ok");
            }
        }
    }

    private static boolean onPath(String binary) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(d, binary))) {
                return true;
            }
        }
        return false;
    }
}
