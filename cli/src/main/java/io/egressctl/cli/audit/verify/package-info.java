/**
 * What the hosts enforce: {@code audit verify} ({@code VerifyCommand}) compares every host's last applied hash with
 * the hash expected from its fragments in Redis and from the log, classifying each host ({@code HostCheck}: ok,
 * lagging, drifted, silent, missing); {@code audit enforcement} ({@code EnforcementCommand}) lists a host's
 * enforcement reports and what it held at a given time.
 */
package io.egressctl.cli.audit.verify;
