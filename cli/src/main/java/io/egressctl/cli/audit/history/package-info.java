/**
 * The past of the network events log: {@code audit history} (every change with its actor, tenant and request, and
 * with {@code --decisions} how the log decided it), {@code audit state} (a network as it stood at a time, replayed by
 * {@code NetworkReplay}), {@code audit diff} (what changed between two times, {@code RuleDiff}), {@code audit export}
 * (the events as JSON Lines with a checksum, {@code ExportWriter}) and {@code audit migrate-0.1} (a 0.1 history copied
 * into the one log). Rules and networks are shown in the words of {@code RuleText}.
 */
package io.egressctl.cli.audit.history;
