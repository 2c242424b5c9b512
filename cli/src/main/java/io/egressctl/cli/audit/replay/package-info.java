/**
 * The network events log folded into network states exactly as the compiler folds it ({@code Replay}, one record at a
 * time; {@code ParallelFold}, on worker threads by network), and {@code audit replay-check}
 * ({@code ReplayCheckCommand}), which rebuilds every network from the log alone and compares it item by item
 * ({@code ViewItems}) with the compiler's view in Redis, naming the event where the two part.
 */
package io.egressctl.cli.audit.replay;
