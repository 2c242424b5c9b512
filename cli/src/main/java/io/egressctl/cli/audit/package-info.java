/**
 * {@code egressctl audit}: the entry ({@link io.egressctl.cli.audit.AuditCommand}, which parses the command line and
 * runs one command), the {@link io.egressctl.cli.audit.AuditContext} every command gets (connection settings, topic
 * names, output mode, clients made on first use) and what all commands share: option parsing ({@code Options},
 * {@code UsageException}), times ({@code Times}) and output ({@code Table}, {@code Json}, {@code Progress}, {@code Logs}).
 * The commands themselves live in the subpackages: {@code log} reads and decodes the topics, {@code replay} folds the
 * log as the compiler does and checks the compiler's state against it, {@code verify} checks what the hosts enforce,
 * {@code history} answers who changed what and when.
 */
package io.egressctl.cli.audit;
