package io.egressctl.testinfra;

import com.github.dockerjava.api.model.ExposedPort;
import com.github.dockerjava.api.model.PortBinding;
import com.github.dockerjava.api.model.Ports;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.wait.strategy.Wait;
import org.testcontainers.utility.DockerImageName;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * A Redis server of one test's own ({@link Infrastructure#ownRedis()}), which the test may kill and start
 * again on the same address, as a Redis restart does to the services: a redis-server process on the local
 * stack's side, a container on the Testcontainers side. Either way it keeps nothing across a restart
 * (no RDB, no append-only file), listens on 127.0.0.1 under a port fixed at creation, and is removed by
 * {@link #close()}.
 */
public abstract sealed class OwnRedis implements AutoCloseable {

    private static final Duration READY = Duration.ofSeconds(30);

    final int port;

    private OwnRedis(int port) {
        this.port = port;
    }

    /** {@code redis://127.0.0.1:<port>}, the same after every restart. */
    public String url() {
        return "redis://127.0.0.1:" + port;
    }

    /** Kills the server (SIGKILL: no shutdown, connections cut) and waits until it is gone. */
    public abstract void kill();

    /** Starts the server again on the same port and waits until it answers PING. */
    public abstract void start();

    /** Stops and removes the server. */
    @Override
    public abstract void close();

    /**
     * A redis-server process: {@code EGRESS_REDIS_SERVER} when it names a binary, else redis-server on the
     * PATH, else the one the local stack unpacked ({@code $EGRESS_HOME/lib/redis/redis-server}, when the
     * stack runs the embedded-redis binary); none of them is a failure saying what to install.
     */
    /**
     * A redis-server process of this JVM whatever the infrastructure's source: for tests that wire
     * Redis servers to each other (a replica of a primary), which containers on their own networks
     * cannot do at 127.0.0.1.
     */
    public static OwnRedis localProcess() {
        return process(System::getenv);
    }

    static OwnRedis process(Function<String, String> env) {
        Path binary = redisServer(env);
        ServerProcess p = new ServerProcess(binary, Infrastructure.freePort());
        p.start();
        System.out.printf("[test-infra] a Redis of the test's own: %s on 127.0.0.1:%d%n", binary, p.port);
        return p;
    }

    /** The redis-server binary for {@link #process}, or a failure naming what was looked for. */
    static Path redisServer(Function<String, String> env) {
        String named = env.apply("EGRESS_REDIS_SERVER");
        if (named != null && !named.isBlank() && !named.strip().equals("embedded")) {
            Path p = Path.of(named.strip());
            if (!Files.isExecutable(p)) {
                throw new IllegalStateException("EGRESS_REDIS_SERVER=" + named + " is not executable");
            }
            return p;
        }
        String path = env.apply("PATH");
        for (String d : (path == null ? "" : path).split(":")) {
            if (!d.isEmpty() && Files.isExecutable(Path.of(d, "redis-server"))) {
                return Path.of(d, "redis-server");
            }
        }
        String home = env.apply("EGRESS_HOME");
        if (home != null && !home.isBlank() && Files.isExecutable(Path.of(home, "lib", "redis", "redis-server"))) {
            return Path.of(home, "lib", "redis", "redis-server");
        }
        throw new IllegalStateException("this test starts a Redis of its own and finds no redis-server (EGRESS_REDIS_SERVER, the PATH,"
                + " $EGRESS_HOME/lib/redis): install redis-server (apt-get install redis-server), or run it on containers"
                + " (EGRESS_TEST_INFRA=testcontainers with an engine up and the images built: ./egressctl images infra)");
    }

    /** A container of {@code image} whose port 6379 is published on 127.0.0.1 under a fixed free port. */
    static OwnRedis container(String image, String label) {
        ServerContainer c = new ServerContainer(image, label, Infrastructure.freePort());
        c.startFirst();
        System.out.printf("[test-infra] a Redis of the test's own: container of %s on 127.0.0.1:%d%n", image, c.port);
        return c;
    }

    /** Waits until the server answers PING on its port, or fails after {@link #READY}. */
    void awaitPong() {
        long deadline = System.nanoTime() + READY.toNanos();
        while (System.nanoTime() < deadline) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 1_000);
                s.setSoTimeout(1_000);
                OutputStream out = s.getOutputStream();
                out.write("PING\r\n".getBytes(StandardCharsets.US_ASCII));
                out.flush();
                InputStream in = s.getInputStream();
                byte[] b = in.readNBytes(7);
                if (new String(b, StandardCharsets.US_ASCII).equals("+PONG\r\n")) {
                    return;
                }
            } catch (IOException e) {
                // not listening yet (or docker-proxy listens and the server behind it does not yet)
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted waiting for Redis on " + port, e);
            }
        }
        throw new IllegalStateException("Redis did not answer PING on 127.0.0.1:" + port + " within " + READY.toSeconds() + " s");
    }

    /** A redis-server process of this JVM. */
    static final class ServerProcess extends OwnRedis {
        private final Path binary;
        private final Path dir;
        private Process process;

        ServerProcess(Path binary, int port) {
            super(port);
            this.binary = binary;
            try {
                this.dir = Files.createTempDirectory("own-redis-");
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public synchronized void start() {
            if (process != null && process.isAlive()) {
                throw new IllegalStateException("Redis on " + port + " is already running");
            }
            try {
                process = new ProcessBuilder(binary.toString(), "--port", String.valueOf(port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--dir", dir.toString()).redirectErrorStream(true)
                        .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("redis.log").toFile())).start();
            } catch (IOException e) {
                throw new IllegalStateException("cannot start " + binary + ": " + e.getMessage(), e);
            }
            awaitPong();
        }

        @Override
        public synchronized void kill() {
            if (process == null) {
                return;
            }
            process.destroyForcibly();
            try {
                if (!process.waitFor(10, TimeUnit.SECONDS)) {
                    throw new IllegalStateException("redis-server on " + port + " did not exit after SIGKILL");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }

        @Override
        public synchronized void close() {
            kill();
            process = null;
            try (var files = Files.list(dir)) {
                for (Path f : files.toList()) {
                    Files.deleteIfExists(f);
                }
                Files.deleteIfExists(dir);
            } catch (IOException e) {
                // a temporary directory left behind is harmless
            }
        }
    }

    /**
     * A container of the Redis image. Its port binding is fixed (127.0.0.1:port to 6379), so after
     * {@code docker kill} and {@code docker start} of the same container it answers at the same address,
     * which a port mapped by Testcontainers would not guarantee.
     */
    static final class ServerContainer extends OwnRedis {
        private final GenericContainer<?> container;

        ServerContainer(String image, String label, int port) {
            super(port);
            this.container = new GenericContainer<>(DockerImageName.parse(image))
                    .withLabel("io.egressctl.test", label)
                    // As the process: nothing kept across a restart.
                    .withCommand("redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--port", "6379", "--save", "",
                            "--appendonly", "no")
                    .withCreateContainerCmdModifier(cmd -> {
                        ExposedPort p = ExposedPort.tcp(6379);
                        cmd.withExposedPorts(p);
                        cmd.getHostConfig().withPortBindings(new PortBinding(Ports.Binding.bindIpAndPort("127.0.0.1", port), p));
                    })
                    .waitingFor(Wait.forLogMessage(".*Ready to accept connections.*", 1).withStartupTimeout(READY));
        }

        synchronized void startFirst() {
            container.start();
            awaitPong();
        }

        @Override
        public synchronized void start() {
            DockerClientFactory.instance().client().startContainerCmd(container.getContainerId()).exec();
            awaitPong();
        }

        @Override
        public synchronized void kill() {
            var docker = DockerClientFactory.instance().client();
            docker.killContainerCmd(container.getContainerId()).exec();
            docker.waitContainerCmd(container.getContainerId()).start().awaitStatusCode(10, TimeUnit.SECONDS);
        }

        @Override
        public synchronized void close() {
            try {
                container.stop();
            } catch (RuntimeException e) {
                System.err.println("[test-infra] could not stop container " + container.getContainerId() + ": " + e);
            }
        }
    }

    /** For messages. */
    @Override
    public String toString() {
        return "Redis of the test's own at " + url();
    }
}
