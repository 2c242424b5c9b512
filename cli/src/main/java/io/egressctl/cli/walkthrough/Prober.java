package io.egressctl.cli.walkthrough;

/** Runs a probe of real traffic: {@link Probe#PASS}, {@link Probe#BLOCKED} or {@code error: <why>}. Thread-safe. */
@FunctionalInterface
public interface Prober {

    String probe(Probe probe);
}
