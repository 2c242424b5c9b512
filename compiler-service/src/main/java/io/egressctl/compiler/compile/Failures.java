package io.egressctl.compiler.compile;

import io.egressctl.compiler.snapshot.FencedException;
import io.egressctl.schemas.registry.RegistryOutage;
import org.apache.kafka.common.KafkaException;
import redis.clients.jedis.exceptions.JedisException;

/**
 * What kind of infrastructure failure stopped a batch, for the retry metric's {@code reason} tag and
 * the health reason. Poison records never get here: the pipeline dead-letters them and goes on; every
 * exception that leaves a batch is retried, never skipped.
 */
public final class Failures {

    private Failures() {
    }

    /** A failure's kind ({@code redis}, {@code schema-registry}, {@code kafka}, {@code fenced}, {@code error}) and what it said. */
    public record Failure(String kind, String reason) {
    }

    /** Classifies {@code e} by the first cause that names a seam. */
    public static Failure classify(Throwable e) {
        String kind = "error";
        if (RegistryOutage.isOutage(e)) {
            kind = "schema-registry";
        } else {
            for (Throwable c = e; c != null; c = c.getCause() == c ? null : c.getCause()) {
                if (c instanceof FencedException) {
                    kind = "fenced";
                    break;
                }
                if (c instanceof JedisException) {
                    kind = "redis";
                    break;
                }
                if (c instanceof KafkaException || c instanceof java.util.concurrent.TimeoutException) {
                    kind = "kafka";
                    break;
                }
            }
        }
        return new Failure(kind, describe(e));
    }

    private static String describe(Throwable e) {
        StringBuilder b = new StringBuilder();
        for (Throwable c = e; c != null && b.length() < 400; c = c.getCause() == c ? null : c.getCause()) {
            if (!b.isEmpty()) {
                b.append(" <- ");
            }
            b.append(c.getClass().getSimpleName());
            if (c.getMessage() != null) {
                b.append(": ").append(c.getMessage());
            }
        }
        return b.length() > 400 ? b.substring(0, 400) + "..." : b.toString();
    }
}
