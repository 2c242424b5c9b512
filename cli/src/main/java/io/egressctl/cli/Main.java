package io.egressctl.cli;

import io.egressctl.cli.walkthrough.Walkthrough;

import java.util.Arrays;

/**
 * The Java side of {@code ./egressctl}: walkthrough, benchmarks, audit, rebuild and the fault suite (chaos). Endpoints come
 * from the environment that {@code ./egressctl env} prints (EGRESS_API_URL, EGRESS_API_KEY,
 * KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL, REDIS_URL).
 */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            usage();
            System.exit(2);
        }
        String[] rest = Arrays.copyOfRange(args, 1, args.length);
        int code = switch (args[0]) {
            case "walkthrough" -> new Walkthrough(Env.fromSystem(), System.out).run();
            case "bench" -> rest.length > 0 && rest[0].equals("api")
                    ? io.egressctl.cli.bench.ApiBench.run(Env.fromSystem(), Arrays.copyOfRange(rest, 1, rest.length))
                    : Commands.bench(Env.fromSystem(), rest);
            case "audit" -> Commands.audit(Env.fromSystem(), rest);
            case "rebuild" -> new io.egressctl.cli.rebuild.Rebuild(Env.fromSystem(), System.out).run(rest);
            case "chaos" -> io.egressctl.cli.chaos.ChaosCommand.run(Env.fromSystem(), rest);
            default -> {
                usage();
                yield 2;
            }
        };
        System.exit(code);
    }

    private static void usage() {
        System.err.println("usage: egressctl-cli walkthrough | bench <api|compiler|agent|audit|integrity|waiters|propagation> | audit <command> | rebuild | chaos");
    }
}
