package io.egressctl.agent.enforce;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Pattern;

/**
 * The real {@link NftRunner}: starts {@code nft} with {@link ProcessBuilder} (no shell), optionally
 * inside a network namespace through {@code ip netns exec <ns>}, writes the input to its stdin and
 * reads stdout and stderr concurrently (so a large ruleset cannot dead-lock on a full pipe). A run
 * that outlives the timeout is killed; nft commits a transaction only at its end, so a killed run
 * leaves the previous ruleset in force. Thread-safe.
 *
 * <p>With {@code keepSpare}, one {@code nft -f -} process is kept started and idle, waiting for its
 * input, and the next apply writes to it: starting a process (and {@code ip netns exec}) is taken
 * off the apply's path. nft reads the kernel only once it has read its input, so a spare started
 * long ago applies against the kernel as it is then. When the agent exits, the spare reads the end
 * of its input and exits without a transaction.
 *
 * <p>nft is started with glibc's malloc on transparent huge pages ({@code GLIBC_TUNABLES=glibc.malloc.hugetlb=1},
 * glibc 2.35 and later; older ones ignore it): nft allocates an expression tree per set element, and
 * on the 10,000-rule host most of its time went to page faults for that memory. Measured on this
 * project's machine (a virtual machine, where a page fault is dear): nft's CPU time for the full
 * ruleset 150 -> 105 ms, for 10,000 plain elements 63 -> 48 ms, for the smallest transaction (process
 * start included) 25 -> 13 ms. A {@code GLIBC_TUNABLES} of the agent's own that already says
 * {@code glibc.malloc.hugetlb} (e.g. {@code =0} to turn it off) is passed on unchanged.
 */
public final class ProcessNftRunner implements NftRunner {

    private static final Pattern NETNS = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");

    private final List<String> prefix;
    private final Duration timeout;
    /** The idle {@code nft -f -}, or null without keepSpare. */
    private final SpareProcess spare;
    private final ExecutorService io = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "nft-io");
        t.setDaemon(true);
        return t;
    });

    /**
     * @param nftBinary path or name of nft (looked up on PATH)
     * @param netns     namespace to run in, or null/empty for the agent's own
     * @param timeout   longest a single run may take
     */
    public ProcessNftRunner(String nftBinary, String netns, Duration timeout) {
        this(nftBinary, netns, timeout, false);
    }

    /**
     * @param nftBinary path or name of nft (looked up on PATH)
     * @param netns     namespace to run in, or null/empty for the agent's own
     * @param timeout   longest a single run may take
     * @param keepSpare keep an {@code nft -f -} process started for the next apply (see the class comment)
     */
    public ProcessNftRunner(String nftBinary, String netns, Duration timeout, boolean keepSpare) {
        if (nftBinary == null || nftBinary.isBlank()) {
            throw new IllegalArgumentException("nft binary must be set");
        }
        List<String> p = new ArrayList<>();
        if (netns != null && !netns.isBlank()) {
            if (!NETNS.matcher(netns).matches()) {
                throw new IllegalArgumentException("not a network namespace name: '" + netns + "'");
            }
            p.addAll(List.of("ip", "netns", "exec", netns));
        }
        p.add(nftBinary);
        this.prefix = List.copyOf(p);
        this.timeout = timeout;
        if (keepSpare) {
            this.spare = new SpareProcess(() -> spawn(command(APPLY)), io);
            spare.refill(); // ready for the first apply too
        } else {
            this.spare = null;
        }
    }

    /** The command every run starts with (for logs). */
    public List<String> commandPrefix() {
        return prefix;
    }

    @Override
    public Result run(String stdin, List<String> args) throws EnforcementException {
        return start(stdin, args).await();
    }

    /** Starts nft and feeds its stdin from another thread: the caller is free while nft reads and works. */
    @Override
    public Pending start(String stdin, List<String> args) throws EnforcementException {
        List<String> cmd = command(args);
        boolean apply = spare != null && args.equals(APPLY);
        Process taken = apply ? spare.take() : null;
        Process p = taken != null ? taken : spawn(cmd);
        CompletableFuture<byte[]> out = CompletableFuture.supplyAsync(() -> drain(p.getInputStream()), io);
        CompletableFuture<byte[]> err = CompletableFuture.supplyAsync(() -> drain(p.getErrorStream()), io);
        CompletableFuture.runAsync(() -> {
            try (OutputStream in = p.getOutputStream()) {
                if (stdin != null && !stdin.isEmpty()) {
                    in.write(stdin.getBytes(StandardCharsets.UTF_8));
                }
            } catch (IOException e) {
                // nft exited before reading all its input (it reports why on stderr); its exit code tells.
            }
        }, io);
        if (!apply) {
            return () -> await(p, cmd, out, err);
        }
        return () -> {
            try {
                return await(p, cmd, out, err);
            } finally {
                // The next spare starts once this run is over, not competing with it.
                spare.refill();
            }
        };
    }

    private List<String> command(List<String> args) {
        List<String> cmd = new ArrayList<>(prefix);
        cmd.addAll(args);
        return cmd;
    }

    /** The tunable nft is started with (see the class comment). */
    static final String MALLOC_HUGETLB = "glibc.malloc.hugetlb=1";

    /** GLIBC_TUNABLES for nft: the agent's own with {@link #MALLOC_HUGETLB} added unless it sets that tunable itself. */
    static String tunables(String inherited) {
        if (inherited == null || inherited.isBlank()) {
            return MALLOC_HUGETLB;
        }
        return inherited.contains("glibc.malloc.hugetlb") ? inherited : inherited + ":" + MALLOC_HUGETLB;
    }

    private static Process spawn(List<String> cmd) throws EnforcementException {
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd);
            pb.environment().put("GLIBC_TUNABLES", tunables(System.getenv("GLIBC_TUNABLES")));
            return pb.start();
        } catch (IOException e) {
            throw new EnforcementException("cannot start " + String.join(" ", cmd) + ": " + e.getMessage(), e);
        }
    }

    /** The idle {@code nft -f -} process ready for the next apply, if there is one alive (tests, logs). */
    public java.util.Optional<ProcessHandle> spare() {
        return spare == null ? java.util.Optional.empty() : spare.handle();
    }

    private Result await(Process p, List<String> cmd, CompletableFuture<byte[]> out, CompletableFuture<byte[]> err)
            throws EnforcementException {
        try {
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                p.waitFor(5, TimeUnit.SECONDS);
                throw new EnforcementException(String.join(" ", cmd) + " did not finish within " + timeout
                        + " and was killed; the previous ruleset stays in force");
            }
            long left = Math.max(1000, timeout.toMillis());
            return new Result(p.exitValue(),
                    new String(out.get(left, TimeUnit.MILLISECONDS), StandardCharsets.UTF_8),
                    new String(err.get(left, TimeUnit.MILLISECONDS), StandardCharsets.UTF_8));
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new EnforcementException("interrupted while running " + String.join(" ", cmd), e);
        } catch (ExecutionException | TimeoutException e) {
            p.destroyForcibly();
            throw new EnforcementException("cannot read the output of " + String.join(" ", cmd) + ": " + e, e);
        }
    }

    private static byte[] drain(InputStream in) {
        try (in) {
            ByteArrayOutputStream buf = new ByteArrayOutputStream(8192);
            in.transferTo(buf);
            return buf.toByteArray();
        } catch (IOException e) {
            return ("(output unreadable: " + e.getMessage() + ")").getBytes(StandardCharsets.UTF_8);
        }
    }
}
