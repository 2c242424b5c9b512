package io.egressctl.cli.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The fleet JVMs of {@code bench propagation}: each runs {@code io.egressctl.agent.fleet.Fleet} (host-agent's
 * test sources: the real agent sync loop for a share of the hosts) on the classpath in
 * {@code EGRESS_FLEET_CLASSPATH}, and is driven over its standard input (see that class). Their standard
 * error goes to {@code <dir>/fleet-<k>.log}. {@link #close} stops them, and kills what does not stop.
 */
final class FleetProcesses implements AutoCloseable {

    /** What the fleet's consumers counted so far (sums over its agents). */
    record Counts(long fetchedBytes, long ownBytes, long records, long ownRecords, long notReady) {

        Counts minus(Counts o) {
            return new Counts(fetchedBytes - o.fetchedBytes, ownBytes - o.ownBytes, records - o.records, ownRecords - o.ownRecords,
                    notReady);
        }
    }

    private record Child(Process process, PrintWriter in, BlockingQueue<String> lines) {
    }

    private final List<Child> children = new ArrayList<>();

    /**
     * Starts {@code jvms} fleet JVMs over {@code hosts} (dealt round robin) and waits until every agent has
     * enforced its first snapshot, at most {@code readySeconds}.
     */
    FleetProcesses(String classpath, List<String> javaOpts, List<String> hosts, int jvms, Path dir, int reconcileSeconds,
                   int readySeconds) throws IOException {
        Files.createDirectories(dir);
        try {
            for (int k = 0; k < jvms; k++) {
                List<String> share = new ArrayList<>();
                for (int i = k; i < hosts.size(); i += jvms) {
                    share.add(hosts.get(i));
                }
                Path hostsFile = dir.resolve("fleet-" + k + ".hosts");
                Files.write(hostsFile, share);
                List<String> cmd = new ArrayList<>();
                cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
                cmd.addAll(javaOpts);
                cmd.addAll(List.of("-cp", classpath, "io.egressctl.agent.fleet.Fleet", hostsFile.toString(),
                        dir.resolve("agents").toString(), String.valueOf(reconcileSeconds), String.valueOf(readySeconds)));
                Process p = new ProcessBuilder(cmd).redirectError(dir.resolve("fleet-" + k + ".log").toFile()).start();
                BlockingQueue<String> lines = new LinkedBlockingQueue<>();
                Thread reader = new Thread(() -> {
                    try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                        for (String l = r.readLine(); l != null; l = r.readLine()) {
                            lines.add(l);
                        }
                    } catch (IOException e) {
                        lines.add("error " + e.getMessage());
                    }
                    lines.add("exited");
                }, "fleet-" + k + "-stdout");
                reader.setDaemon(true);
                reader.start();
                children.add(new Child(p, new PrintWriter(new OutputStreamWriter(p.getOutputStream(), StandardCharsets.UTF_8), true), lines));
            }
            for (int k = 0; k < children.size(); k++) {
                String l = answer(children.get(k), readySeconds + 30);
                if (!l.startsWith("ready")) {
                    throw new IllegalStateException("fleet JVM " + k + ": " + l + " (log: " + dir.resolve("fleet-" + k + ".log") + ")");
                }
            }
        } catch (RuntimeException | IOException e) {
            close();
            throw e;
        }
    }

    List<Long> pids() {
        return children.stream().map(c -> c.process().pid()).toList();
    }

    Counts counts() {
        long[] sum = new long[5];
        for (Child c : children) {
            c.in().println("stats");
            String[] f = answer(c, 30).split(" ");
            if (!f[0].equals("stats")) {
                throw new IllegalStateException("fleet: " + String.join(" ", f));
            }
            for (int i = 0; i < 5; i++) {
                sum[i] += Long.parseLong(f[i + 1]);
            }
        }
        return new Counts(sum[0], sum[1], sum[2], sum[3], sum[4]);
    }

    /** The receipts of every fleet JVM since the last call: lines {@code host partition offset micros}. */
    List<String> receipts(Path dir) throws IOException {
        List<String> out = new ArrayList<>();
        for (int k = 0; k < children.size(); k++) {
            Path f = dir.resolve("receipts-" + k + ".txt");
            children.get(k).in().println("dump " + f);
            String l = answer(children.get(k), 60);
            if (!l.startsWith("dumped")) {
                throw new IllegalStateException("fleet: " + l);
            }
            out.addAll(Files.readAllLines(f));
        }
        return out;
    }

    private static String answer(Child c, long seconds) {
        try {
            String l = c.lines().poll(seconds, TimeUnit.SECONDS);
            if (l == null) {
                throw new IllegalStateException("a fleet JVM did not answer within " + seconds + " s");
            }
            return l;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    @Override
    public void close() {
        for (Child c : children) {
            c.in().println("stop");
            c.in().close();
        }
        for (Child c : children) {
            try {
                if (!c.process().waitFor(30, TimeUnit.SECONDS)) {
                    c.process().destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                c.process().destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
        children.clear();
    }
}
