package io.egressctl.schemas.registry;

import java.util.Optional;
import java.util.OptionalInt;

import org.apache.avro.Schema;

/**
 * The few schema-registry operations the project needs, in the terms of the Confluent REST protocol
 * (served by Confluent Schema Registry, Apicurio's ccompat API, Karapace and Redpanda alike).
 *
 * <p>Implementations are thread-safe. Every failure is a {@link SchemaRegistryException}; one that the
 * registry answered (as opposed to one it could not be reached for) carries the HTTP status and, where
 * the registry sent one, its {@code error_code}.
 */
public interface SchemaRegistryClient {

    /**
     * Registers {@code schema} under {@code subject}, or finds it if it is already registered there, and
     * returns its global id. The registry rejects a schema that breaks the subject's compatibility level
     * (HTTP 409).
     */
    int register(String subject, Schema schema);

    /**
     * The id under which {@code schema} is already registered in {@code subject}, without registering it;
     * empty when the subject does not hold it (or does not exist).
     */
    OptionalInt lookupId(String subject, Schema schema);

    /**
     * The schema with global id {@code id}.
     *
     * @throws SchemaRegistryException with {@link SchemaRegistryException#isNotFound()} true when the
     *         registry does not know the id
     */
    Schema schemaById(int id);

    /** The latest version registered under {@code subject}; empty when the subject does not exist. */
    Optional<Schema> latest(String subject);

    /**
     * Whether {@code schema} may be registered as the next version of {@code subject} under the subject's
     * compatibility level. True for a subject that has no version yet.
     */
    boolean isCompatible(String subject, Schema schema);
}
