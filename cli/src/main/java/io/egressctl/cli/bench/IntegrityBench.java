package io.egressctl.cli.bench;

import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.model.Action;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.events.AppliedFragment;
import io.egressctl.events.EnforcementReport;
import io.egressctl.events.EnforcementStatus;
import io.egressctl.events.EnforcementTrigger;
import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.integrity.ReportMac;
import io.egressctl.schemas.integrity.UpdateKeys;
import io.egressctl.schemas.integrity.UpdateMac;
import io.egressctl.schemas.mapping.EventMapper;

import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Locale;

/**
 * {@code egressctl bench integrity}: what authenticating host updates costs per update (docs/operations.md,
 * "Authenticated host updates"), in this JVM, warmed up: the compiler's sign, and the agent's verify
 * (the MAC, and the fragment hashed again to check it against the signed hash), for host fragments of
 * 1, 25 and 1,000 rules over 20 VMs. Beside them, as the floor a change pays anyway, the agent's own
 * decode of the same update (single-object Avro decoding plus the mapping to core values). Medians and
 * p99 of batches, in microseconds per update. Then enforcement reports ({@code ReportMac}): the agent's
 * sign and the compiler's verify of an ACK listing 1, 20 and 200 networks, beside the compiler's decode.
 * Needs no stack.
 */
public final class IntegrityBench {

    private IntegrityBench() {
    }

    public static int run(String[] args, PrintStream out) {
        UpdateMac mac = new UpdateMac(UpdateKeys.parse("bench:" + Base64.getEncoder().encodeToString(new byte[32]), null));
        out.printf(Locale.ROOT, "bench integrity: HMAC-SHA256 host-update MACs, %d cpus, load %s%n",
                Runtime.getRuntime().availableProcessors(), load());
        out.println("rules  vms  bytes   sign_us(med/p99)  verify_us(med/p99)  decode_us(med/p99)  verify/decode");
        StringBuilder summary = new StringBuilder("summary:");
        for (int rules : new int[]{1, 25, 1000}) {
            FragmentUpdate u = update(rules, 20);
            HostUpdate signed = mac.sign(EventMapper.toAvro(u, Instant.parse("2026-01-01T00:00:00Z")));
            byte[] bytes = encode(signed::toByteBuffer);
            int batch = rules >= 1000 ? 20 : 500;
            for (int w = 0; w < 40; w++) { // warm up
                measure(mac, u, bytes, batch);
            }
            List<double[]> samples = new ArrayList<>();
            for (int r = 0; r < 30; r++) {
                samples.add(measure(mac, u, bytes, batch));
            }
            double[] sign = column(samples, 0);
            double[] verify = column(samples, 1);
            double[] decode = column(samples, 2);
            out.printf(Locale.ROOT, "%5d  %3d  %6d  %7.1f / %-7.1f  %8.1f / %-8.1f  %8.1f / %-8.1f  %.2fx%n", rules, 20, bytes.length,
                    median(sign), p99(sign), median(verify), p99(verify), median(decode), p99(decode), median(verify) / median(decode));
            summary.append(String.format(Locale.ROOT, " rules_%d_sign_us=%.1f verify_us=%.1f decode_us=%.1f", rules, median(sign),
                    median(verify), median(decode)));
        }
        reports(mac.keys(), out, summary);
        out.println(summary);
        return 0;
    }

    /**
     * The same for enforcement reports ({@code ReportMac}): the agent's sign and the compiler's verify
     * of a report listing {@code networks} networks and 5 change ids, beside the compiler's own decode
     * of it (single-object Avro), which it pays anyway.
     */
    private static void reports(UpdateKeys keys, PrintStream out, StringBuilder summary) {
        ReportMac mac = new ReportMac(keys);
        out.println("report networks  bytes   sign_us(med/p99)  verify_us(med/p99)  decode_us(med/p99)  verify/decode");
        for (int networks : new int[]{1, 20, 200}) {
            EnforcementReport report = report(networks);
            byte[] bytes = encode(mac.sign(report(networks))::toByteBuffer);
            int batch = 500;
            for (int w = 0; w < 40; w++) {
                measure(mac, networks, bytes, batch);
            }
            List<double[]> samples = new ArrayList<>();
            for (int r = 0; r < 30; r++) {
                samples.add(measure(mac, networks, bytes, batch));
            }
            double[] sign = column(samples, 0);
            double[] verify = column(samples, 1);
            double[] decode = column(samples, 2);
            out.printf(Locale.ROOT, "       %8d  %6d  %7.1f / %-7.1f  %8.1f / %-8.1f  %8.1f / %-8.1f  %.2fx%n", networks, bytes.length,
                    median(sign), p99(sign), median(verify), p99(verify), median(decode), p99(decode), median(verify) / median(decode));
            summary.append(String.format(Locale.ROOT, " report_%d_sign_us=%.1f verify_us=%.1f", networks, median(sign), median(verify)));
            if (report.getMac() != null) {
                throw new IllegalStateException("the sample report was changed");
            }
        }
    }

    /** Microseconds per report for sign, verify and decode, each over {@code n} reports. */
    private static double[] measure(ReportMac mac, int networks, byte[] bytes, int n) {
        long t0 = System.nanoTime();
        long sink = 0;
        EnforcementReport r = report(networks); // built once: the sign alone is timed (the agent builds the report anyway)
        for (int i = 0; i < n; i++) {
            sink += mac.sign(r).getMac().length();
        }
        long t1 = System.nanoTime();
        for (int i = 0; i < n; i++) {
            try {
                mac.verify(decodeReport(bytes));
            } catch (ReportMac.RefusedReportException e) {
                throw new IllegalStateException(e);
            }
        }
        long t2 = System.nanoTime();
        for (int i = 0; i < n; i++) {
            sink += decodeReport(bytes).getFragments().size();
        }
        long t3 = System.nanoTime();
        if (sink == 42) {
            System.out.print("");
        }
        double decodeUs = (t3 - t2) / 1e3 / n;
        return new double[]{(t1 - t0) / 1e3 / n, (t2 - t1) / 1e3 / n - decodeUs, decodeUs};
    }

    /** An ACK of a host holding {@code networks} networks, as an agent reports it. */
    static EnforcementReport report(int networks) {
        List<AppliedFragment> fragments = new ArrayList<>(networks);
        for (int i = 0; i < networks; i++) {
            fragments.add(new AppliedFragment(String.format(Locale.ROOT, "net-%04d", i), 1000L + i));
        }
        return EnforcementReport.newBuilder().setHostId("host-bench").setStatus(EnforcementStatus.ACK)
                .setTrigger(EnforcementTrigger.UPDATE).setFragments(fragments)
                .setAppliedHash("3f".repeat(32)).setChangeIds(List.of("change-1", "change-2", "change-3", "change-4", "change-5"))
                .setError(null).setApplyMicros(12_345).setEnforcer("nftables").setDriftRepairs(0)
                .setReportedAt(Instant.parse("2026-01-01T00:00:00Z")).setUnenforced(List.of()).setRefused(List.of()).build();
    }

    private static EnforcementReport decodeReport(byte[] bytes) {
        try {
            return EnforcementReport.fromByteBuffer(ByteBuffer.wrap(bytes));
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Microseconds per update for sign, verify and decode, each over {@code n} updates. */
    private static double[] measure(UpdateMac mac, FragmentUpdate u, byte[] bytes, int n) {
        long t0 = System.nanoTime();
        long sink = 0;
        for (int i = 0; i < n; i++) {
            HostUpdate h = EventMapper.toAvro(u, Instant.parse("2026-01-01T00:00:00Z"));
            sink += mac.sign(h).getMac().length();
        }
        long t1 = System.nanoTime();
        for (int i = 0; i < n; i++) {
            HostUpdate h = decode(bytes);
            FragmentUpdate d = EventMapper.fromAvro(h);
            try {
                mac.verify(h, d);
            } catch (UpdateMac.RefusedUpdateException e) {
                throw new IllegalStateException(e);
            }
        }
        long t2 = System.nanoTime();
        for (int i = 0; i < n; i++) {
            sink += EventMapper.fromAvro(decode(bytes)).version();
        }
        long t3 = System.nanoTime();
        if (sink == 42) {
            System.out.print("");
        }
        // sign includes building the Avro record (as the compiler does anyway); subtract nothing, say so in docs.
        double decodeUs = (t3 - t2) / 1e3 / n;
        return new double[]{(t1 - t0) / 1e3 / n, (t2 - t1) / 1e3 / n - decodeUs, decodeUs};
    }

    static FragmentUpdate update(int rules, int vms) {
        List<VmAddress> v = new ArrayList<>();
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < vms; i++) {
            v.add(new VmAddress("vm-" + i, "tap-" + i, null, "10.1." + (i / 200) + "." + (10 + i % 200), null));
            ids.add("vm-" + i);
        }
        List<CompiledRule> r = new ArrayList<>();
        for (int i = 0; i < rules; i++) {
            r.add(new CompiledRule(String.format(Locale.ROOT, "rule-%05d", i), Action.DENY, 1000 + i % 7, Protocol.TCP, ids,
                    List.of(Cidr.parse("198.18." + (i % 250) + ".0/24")), List.of(), PortRange.single(1 + i % 60000), null));
        }
        Fragment f = new Fragment("net-bench", DefaultPolicy.ALLOW, v, r);
        return new FragmentUpdate("host-bench", "net-bench", 7, f, f.hash(), List.of("change-1"));
    }

    /** A record's single-object encoding ({@code toByteBuffer} of a generated Avro class). */
    private interface SingleObject {
        ByteBuffer encode() throws java.io.IOException;
    }

    private static byte[] encode(SingleObject record) {
        try {
            ByteBuffer b = record.encode();
            byte[] out = new byte[b.remaining()];
            b.get(out);
            return out;
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static HostUpdate decode(byte[] bytes) {
        try {
            return HostUpdate.fromByteBuffer(ByteBuffer.wrap(bytes));
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static double[] column(List<double[]> rows, int c) {
        double[] out = new double[rows.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = rows.get(i)[c];
        }
        Arrays.sort(out);
        return out;
    }

    private static double median(double[] sorted) {
        return sorted[sorted.length / 2];
    }

    private static double p99(double[] sorted) {
        return sorted[Math.min(sorted.length - 1, (int) Math.ceil(sorted.length * 0.99) - 1)];
    }

    private static String load() {
        try {
            return java.nio.file.Files.readString(java.nio.file.Path.of("/proc/loadavg")).strip();
        } catch (java.io.IOException e) {
            return "unknown";
        }
    }
}
