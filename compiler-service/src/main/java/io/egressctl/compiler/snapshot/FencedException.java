package io.egressctl.compiler.snapshot;

import java.util.Set;
import java.util.TreeSet;

/**
 * A write refused because another compiler instance took over an input partition since this one
 * claimed it (the store holds a newer epoch for it). Nothing of the refused write landed; the writer
 * has lost those partitions and must forget them (their new owner writes for their networks).
 */
public class FencedException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final Set<Integer> partitions;

    public FencedException(Set<Integer> partitions) {
        super("fenced: partition(s) " + new TreeSet<>(partitions) + " of the network events log were taken over by another"
                + " compiler instance; this one no longer writes for them");
        this.partitions = Set.copyOf(partitions);
    }

    /** The partitions whose epoch in the store is newer than the writer's. */
    public Set<Integer> partitions() {
        return partitions;
    }
}
