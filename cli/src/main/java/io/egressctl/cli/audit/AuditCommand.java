package io.egressctl.cli.audit;

import io.egressctl.cli.Env;
import io.egressctl.cli.audit.history.DiffCommand;
import io.egressctl.cli.audit.history.ExportCommand;
import io.egressctl.cli.audit.history.HistoryCommand;
import io.egressctl.cli.audit.history.MigrateCommand;
import io.egressctl.cli.audit.history.StateCommand;
import io.egressctl.cli.audit.replay.ReplayCheckCommand;
import io.egressctl.cli.audit.verify.EnforcementCommand;
import io.egressctl.cli.audit.verify.VerifyCommand;

import java.io.PrintStream;
import java.time.Clock;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

/**
 * {@code egressctl audit <command>}: who changed what, what was enforced when, answered from the topics.
 * Exit codes: 0 done (verify: every host converged; replay-check: no difference), 1 differences found,
 * 2 bad command line, 4 could not finish (broker, registry or Redis unreachable, topic missing, ...).
 */
public final class AuditCommand {

    public static final String USAGE = """
            usage: egressctl audit <command> [options]

            commands:
              history       [--network N] [--vm V] [--rule R] [--tenant T] [--from T1] [--to T2] [--decisions]
                            every change between two times (log timestamps, both inclusive) with time, actor,
                            tenant, request id, operation, rule before and after; --decisions replays the
                            partitions from their start to show how the log decided each event
              state         --network N [--network N2 ...] [--at T]
                            the network's definition and rules at T (default now), rebuilt from the log
              diff          --network N --from T1 [--to T2]   rules added, removed, changed between T1 and T2
              enforcement   --host H [--from T1] [--at T]     the host's enforcement reports and what it held at T;
                            with EGRESS_UPDATE_KEYS each report's signature is checked (signed: yes, no,
                            FORGED) and only signed ones count, as for the compiler
              verify        [--host H ...] [--all] [--silent-after 5m] [--no-log-check]
                            last applied hash of every host vs the hash expected from its fragments in Redis;
                            lists hosts lagging, drifted, silent or missing (--all: every host); fails when
                            Redis lost its state or is being rebuilt, or lacks a fragment the log calls for
                            (the log is folded unless --no-log-check); exit 1 when any differs or is missing
              export        --file F [--from T1] [--to T2] [--topic network-events|enforcement-reports|host-updates]
                            the events as JSON Lines; prints the sha256 of the file and writes it to F.sha256;
                            reports and host updates carry "signed" (yes, no, FORGED; - without EGRESS_UPDATE_KEYS)
              replay-check  [--network N ...] [--threads 2]
                            rebuild every network from the log alone and compare it with the compiler's state
                            in Redis; lists each difference with the first event where the two part; exit 1
                            when anything differs
              migrate-0.1   [--dry-run] [--from-prefix egress.]
                            copy a 0.1 history (P + rule-events, P + workload-events) into the empty
                            network events topic, each network's events merged by log time

            times: ISO-8601 (2024-05-01T10:00:00Z, 2024-05-01), relative (-1h, -30m, -2d, now) or epoch ms

            connection (flags win over the environment):
              --bootstrap-server HOST:PORT   or KAFKA_BOOTSTRAP_SERVERS
              --schema-registry URL          or SCHEMA_REGISTRY_URL
              --redis URL                    or REDIS_URL (verify, replay-check)
              --command-config FILE          Kafka client properties (TLS, SASL, ...); schema.registry.* and
                                             basic.auth.* keys go to the registry client
              --consumer-property K=V        one more client property (repeatable; wins over the file)
              --topic-prefix P               topics P + network-events, enforcement-reports
              --event-topic T, --report-topic T   one topic name each (0.2 reads network, rule and
                                             workload events from one topic, egress.network-events)

            output: --output table (default) | json; progress on a terminal (--progress / --no-progress)
            exit codes: 0 done, 1 differences found (verify, replay-check), 2 bad command line, 4 could not finish
            """;

    private AuditCommand() {
    }

    /** From {@code egressctl audit ...}: real streams, the system clock, progress when on a terminal. */
    public static int run(Env env, String[] args) {
        return run(env, args, System.out, System.err, Clock.systemUTC(), System.console() != null);
    }

    public static int run(Env env, String[] args, PrintStream out, PrintStream err, Clock clock, boolean terminal) {
        Logs.quiet();
        if (args.length == 0 || args[0].equals("help") || args[0].equals("--help") || args[0].equals("-h")) {
            (args.length == 0 ? err : out).print(USAGE);
            return args.length == 0 ? 2 : 0;
        }
        String command = args[0];
        String[] rest = Arrays.copyOfRange(args, 1, args.length);
        String bootstrap = env.kafkaBootstrap();
        try {
            Set<String> own = switch (command) {
                case "history" -> HistoryCommand.OPTIONS;
                case "state" -> StateCommand.OPTIONS;
                case "diff" -> DiffCommand.OPTIONS;
                case "enforcement" -> EnforcementCommand.OPTIONS;
                case "verify" -> VerifyCommand.OPTIONS;
                case "export" -> ExportCommand.OPTIONS;
                case "replay-check" -> ReplayCheckCommand.OPTIONS;
                case "migrate-0.1" -> MigrateCommand.OPTIONS;
                default -> throw new UsageException("unknown command '" + command + "'");
            };
            Options o = Options.parse(rest, AuditContext.FLAGS);
            if (o.has("help")) {
                out.print(USAGE);
                return 0;
            }
            Set<String> allowed = new HashSet<>(AuditContext.COMMON);
            allowed.addAll(own);
            o.check(allowed);
            bootstrap = o.get("bootstrap-server", bootstrap);
            try (AuditContext ctx = new AuditContext(env, o, out, err, clock, terminal)) {
                return switch (command) {
                    case "history" -> new HistoryCommand(ctx, o).run();
                    case "state" -> new StateCommand(ctx, o).run();
                    case "diff" -> new DiffCommand(ctx, o).run();
                    case "enforcement" -> new EnforcementCommand(ctx, o).run();
                    case "verify" -> new VerifyCommand(ctx, o).run();
                    case "export" -> new ExportCommand(ctx, o).run();
                    case "migrate-0.1" -> new MigrateCommand(ctx, o).run();
                    default -> new ReplayCheckCommand(ctx, o).run();
                };
            }
        } catch (UsageException e) {
            err.println("audit " + command + ": " + e.getMessage());
            err.println("(egressctl audit help for usage)");
            return 2;
        } catch (org.apache.kafka.common.errors.TimeoutException e) {
            err.println("audit " + command + ": error: no answer from Kafka at " + bootstrap + ": " + message(e));
            return 4;
        } catch (RuntimeException e) {
            err.println("audit " + command + ": error: " + message(e));
            return 4;
        } finally {
            out.flush();
        }
    }

    /** The message and the causes that add to it. */
    static String message(Throwable e) {
        StringBuilder sb = new StringBuilder(String.valueOf(e.getMessage()));
        Throwable c = e.getCause();
        int depth = 0;
        while (c != null && depth++ < 8) {
            String m = c.getMessage();
            if (m != null && !sb.toString().contains(m)) {
                sb.append("; caused by ").append(c.getClass().getSimpleName()).append(": ").append(m);
            }
            c = c.getCause() == c ? null : c.getCause();
        }
        return sb.toString();
    }
}
