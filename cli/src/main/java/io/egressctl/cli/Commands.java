package io.egressctl.cli;

import io.egressctl.cli.audit.AuditCommand;
import io.egressctl.cli.bench.AuditBench;

import java.util.Arrays;

/** Routes the sub-commands of {@code egressctl}; those not built yet say so plainly and fail. */
final class Commands {

    private Commands() {
    }

    static int bench(Env env, String[] args) {
        String what = args.length == 0 ? "" : args[0];
        String[] rest = args.length == 0 ? args : Arrays.copyOfRange(args, 1, args.length);
        return switch (what) {
            case "audit" -> AuditBench.run(env, rest);
            case "integrity" -> io.egressctl.cli.bench.IntegrityBench.run(rest, System.out);
            case "waiters" -> io.egressctl.cli.bench.WaitersBench.run(env, rest);
            case "propagation" -> io.egressctl.cli.bench.PropagationBench.run(env, rest);
            case "api", "compiler", "agent" -> {
                System.err.println("bench " + what + ": not available in this build");
                yield 3;
            }
            default -> {
                System.err.println("usage: egressctl bench <api|compiler|agent|audit|integrity|waiters|propagation>");
                yield 2;
            }
        };
    }

    static int audit(Env env, String[] args) {
        return AuditCommand.run(env, args);
    }

    static int rebuild(Env env, String[] args) {
        System.err.println("rebuild: not available in this build");
        return 3;
    }
}
