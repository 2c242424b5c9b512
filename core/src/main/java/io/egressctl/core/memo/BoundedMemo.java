package io.egressctl.core.memo;

import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * Remembers the results of a pure function of immutable keys, for hot paths that see the same keys
 * again and again (a VM's address parsed on every change, a rule's hash on every render). Bounded:
 * when full it is cleared whole, so it never grows with the history of a long-running process and
 * never is a source of truth, only a shortcut to the same value. Thread-safe; two threads may both
 * compute a missing value, which is harmless for a pure function.
 *
 * @param <K> immutable key with value-based equals and hashCode
 * @param <V> the function's result
 */
public final class BoundedMemo<K, V> {

    private final int limit;
    private final Function<K, V> function;
    private final ConcurrentHashMap<K, V> values = new ConcurrentHashMap<>();

    public BoundedMemo(int limit, Function<K, V> function) {
        if (limit < 1) {
            throw new IllegalArgumentException("limit must be at least 1, was " + limit);
        }
        this.limit = limit;
        this.function = Objects.requireNonNull(function, "function");
    }

    /** The function's value for {@code key}, computed at most once while remembered. */
    public V get(K key) {
        V v = values.get(key);
        if (v == null) {
            v = function.apply(key);
            if (values.size() >= limit) {
                values.clear();
            }
            values.put(key, v);
        }
        return v;
    }

    /** How many values are remembered now. */
    int size() {
        return values.size();
    }
}
