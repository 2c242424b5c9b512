package io.egressctl.schemas.registry;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.avro.Schema;

/**
 * A fake {@link SchemaRegistryClient} for unit tests: subjects and global ids in memory, with the same
 * rules a real registry applies under BACKWARD compatibility (a schema that the latest version cannot be
 * read by is rejected with HTTP 409; the same schema text gets the same global id in every subject).
 * It counts calls so that tests can see caching, and can play an unreachable registry.
 *
 * <p>Not for production: nothing survives the JVM. Thread-safe (one lock).
 */
public final class InMemorySchemaRegistryClient implements SchemaRegistryClient {

    private final boolean enforceBackward;
    private final Map<String, Integer> idsByText = new HashMap<>();
    private final Map<Integer, Schema> schemasById = new HashMap<>();
    private final Map<String, List<Integer>> versionsBySubject = new HashMap<>();
    private int nextId;
    private volatile boolean unreachable;

    private final AtomicInteger registerCalls = new AtomicInteger();
    private final AtomicInteger lookupCalls = new AtomicInteger();
    private final AtomicInteger schemaByIdCalls = new AtomicInteger();

    /** A registry whose subjects are BACKWARD compatible, ids starting at 1. */
    public InMemorySchemaRegistryClient() {
        this(true, 1);
    }

    /** @param enforceBackward false for compatibility level NONE; @param firstId the first global id handed out */
    public InMemorySchemaRegistryClient(boolean enforceBackward, int firstId) {
        this.enforceBackward = enforceBackward;
        this.nextId = firstId;
    }

    /** From now on every call fails as a registry that cannot be reached would (or works again). */
    public void setUnreachable(boolean unreachable) {
        this.unreachable = unreachable;
    }

    @Override
    public synchronized int register(String subject, Schema schema) {
        registerCalls.incrementAndGet();
        checkReachable();
        String text = schema.toString();
        List<Integer> versions = versionsBySubject.computeIfAbsent(subject, s -> new ArrayList<>());
        Integer known = idsByText.get(text);
        if (known != null && versions.contains(known)) {
            return known;
        }
        if (enforceBackward && !versions.isEmpty()) {
            Schema latest = schemasById.get(versions.get(versions.size() - 1));
            List<String> problems = BackwardCompatibility.problems(schema, latest);
            if (!problems.isEmpty()) {
                throw new SchemaRegistryException("registry rejected schema for subject " + subject + " ("
                        + schema.getFullName() + "): HTTP 409 {\"error_code\":409,\"message\":\"Schema being registered is"
                        + " incompatible with an earlier schema for subject \\\"" + subject + "\\\": " + problems + "\"}",
                        409, 409);
            }
        }
        int id = known != null ? known : nextId++;
        idsByText.put(text, id);
        schemasById.put(id, schema);
        versions.add(id);
        return id;
    }

    @Override
    public synchronized OptionalInt lookupId(String subject, Schema schema) {
        lookupCalls.incrementAndGet();
        checkReachable();
        Integer id = idsByText.get(schema.toString());
        List<Integer> versions = versionsBySubject.get(subject);
        return id != null && versions != null && versions.contains(id) ? OptionalInt.of(id) : OptionalInt.empty();
    }

    @Override
    public synchronized Schema schemaById(int id) {
        schemaByIdCalls.incrementAndGet();
        checkReachable();
        Schema schema = schemasById.get(id);
        if (schema == null) {
            throw new SchemaRegistryException("schema id " + id + " is unknown to the schema registry: HTTP 404"
                    + " {\"error_code\":40403,\"message\":\"Schema " + id + " not found\"}", 404, 40403);
        }
        return schema;
    }

    @Override
    public synchronized Optional<Schema> latest(String subject) {
        checkReachable();
        List<Integer> versions = versionsBySubject.get(subject);
        return versions == null || versions.isEmpty() ? Optional.empty()
                : Optional.of(schemasById.get(versions.get(versions.size() - 1)));
    }

    @Override
    public synchronized boolean isCompatible(String subject, Schema schema) {
        checkReachable();
        return latest(subject).map(l -> !enforceBackward || BackwardCompatibility.isBackwardCompatible(schema, l))
                .orElse(true);
    }

    /** Subjects registered so far. */
    public synchronized List<String> subjects() {
        return List.copyOf(versionsBySubject.keySet());
    }

    public int registerCalls() {
        return registerCalls.get();
    }

    public int lookupCalls() {
        return lookupCalls.get();
    }

    public int schemaByIdCalls() {
        return schemaByIdCalls.get();
    }

    private void checkReachable() {
        if (unreachable) {
            throw new SchemaRegistryUnreachableException("schema registry at in-memory://fake is unreachable:"
                    + " ConnectException (simulated)", new java.net.ConnectException("simulated"));
        }
    }
}
