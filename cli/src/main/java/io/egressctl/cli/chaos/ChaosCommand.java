package io.egressctl.cli.chaos;

import io.egressctl.cli.Env;

import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code egressctl chaos [--faults a,b,c] [--changes N] [--converge-timeout S] [--no-checks]}: the fault
 * suite ({@link ChaosSuite}) against the running local stack, with the faults of {@code scripts/faults.sh}
 * (EGRESS_FAULT_SCRIPT, set by {@code ./egressctl chaos}). Exit 0 when nothing was lost or duplicated and
 * every check passed, 1 otherwise, 2 for a bad command line.
 */
public final class ChaosCommand {

    static final String USAGE = """
            usage: egressctl chaos [--faults F1,F2,...] [--changes N] [--converge-timeout SECONDS] [--no-checks]
              --faults            which faults, in order (default: all): %s
              --changes           changes per fault (default 30): rule creates, deletes and placements
              --converge-timeout  bound of the wait for convergence after each fault (default 180)
              --no-checks         skip audit verify --all and audit replay-check after each fault
            """.formatted(String.join(",", FaultInjector.FAULTS));

    private ChaosCommand() {
    }

    public static int run(Env env, String[] args) {
        return run(env, args, System.out, System.err);
    }

    static int run(Env env, String[] args, PrintStream out, PrintStream err) {
        System.setProperty("org.slf4j.simpleLogger.log.org.apache.kafka", "error");
        if (args.length == 1 && (args[0].equals("--help") || args[0].equals("-h"))) {
            out.print(USAGE);
            return 0;
        }
        ChaosSuite.Options o;
        try {
            o = options(args);
        } catch (IllegalArgumentException e) {
            err.println("chaos: " + e.getMessage());
            err.print(USAGE);
            return 2;
        }
        if (env.apiKey() == null || env.operatorKey() == null) {
            err.println("chaos: EGRESS_API_KEY and EGRESS_OPERATOR_KEY are not set: run it as ./egressctl chaos");
            return 2;
        }
        String script = System.getenv("EGRESS_FAULT_SCRIPT");
        if (script == null || script.isBlank()) {
            err.println("chaos: EGRESS_FAULT_SCRIPT is not set: run it as ./egressctl chaos");
            return 2;
        }
        FaultInjector faults;
        try {
            faults = new ScriptFaults(Path.of(script), 900, err);
        } catch (IllegalArgumentException e) {
            err.println("chaos: " + e.getMessage());
            return 2;
        }
        return new ChaosSuite(env, faults, o, out, err).run().exitCode();
    }

    static ChaosSuite.Options options(String[] args) {
        List<String> faults = FaultInjector.FAULTS;
        int changes = 30;
        int timeout = 180;
        boolean checks = true;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String value = null;
            if (a.contains("=")) {
                value = a.substring(a.indexOf('=') + 1);
                a = a.substring(0, a.indexOf('='));
            }
            switch (a) {
                case "--faults" -> {
                    String v = value != null ? value : next(args, ++i, a);
                    List<String> list = new ArrayList<>();
                    for (String f : v.split(",")) {
                        String name = f.strip();
                        if (!FaultInjector.FAULTS.contains(name)) {
                            throw new IllegalArgumentException("unknown fault '" + name + "' (known: " + String.join(", ", FaultInjector.FAULTS) + ")");
                        }
                        list.add(name);
                    }
                    faults = List.copyOf(list);
                }
                case "--changes" -> changes = positive(value != null ? value : next(args, ++i, a), a, 1, 10_000);
                case "--converge-timeout" -> timeout = positive(value != null ? value : next(args, ++i, a), a, 1, 3600);
                case "--no-checks" -> checks = false;
                default -> throw new IllegalArgumentException("unknown argument '" + args[i] + "'");
            }
        }
        return new ChaosSuite.Options(faults, changes, Duration.ofSeconds(timeout), Duration.ofSeconds(120), 150, checks, false);
    }

    private static String next(String[] args, int i, String option) {
        if (i >= args.length) {
            throw new IllegalArgumentException(option + " needs a value");
        }
        return args[i];
    }

    private static int positive(String v, String option, int min, int max) {
        try {
            int n = Integer.parseInt(v.strip());
            if (n < min || n > max) {
                throw new NumberFormatException();
            }
            return n;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " must be a whole number from " + min + " to " + max + ", not '" + v + "'");
        }
    }
}
