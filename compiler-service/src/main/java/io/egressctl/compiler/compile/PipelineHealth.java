package io.egressctl.compiler.compile;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.boot.health.contributor.Status;
import org.springframework.stereotype.Component;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Whether the compiler's listeners make progress: UP while they do, {@code DEGRADED} with the reason
 * while a batch is being retried (Redis, the schema registry or Kafka cannot be reached, a send
 * failed, the instance was fenced). The {@code compiler} component of {@code /actuator/health} and of
 * its readiness group; {@code egress_compiler_degraded} is 1 meanwhile and
 * {@code egress_compiler_retries_total{listener,reason}} counts the retries. Thread-safe: the listener
 * threads write, the health endpoint reads.
 */
@Component("compiler")
public class PipelineHealth implements HealthIndicator {

    /** Retrying: the listener holds its place in the log and makes no progress. */
    public static final Status DEGRADED = new Status("DEGRADED", "retrying: infrastructure unavailable, nothing skipped");

    /** One listener's ongoing failure. */
    record Retrying(String kind, String reason, Instant since, int attempts) {
    }

    private final Map<String, Retrying> retrying = new ConcurrentHashMap<>();
    private final MeterRegistry meters;
    private final Clock clock;

    @org.springframework.beans.factory.annotation.Autowired
    public PipelineHealth(MeterRegistry meters) {
        this(meters, Clock.systemUTC());
    }

    PipelineHealth(MeterRegistry meters, Clock clock) {
        this.meters = meters;
        this.clock = clock;
        Gauge.builder("egress.compiler.degraded", retrying, m -> m.isEmpty() ? 0 : 1)
                .description("1 while a listener retries a batch (see the health reason)").register(meters);
    }

    /**
     * Records a failed attempt of {@code listener}'s batch.
     *
     * @return the number of consecutive failed attempts, this one included
     */
    public int failed(String listener, Throwable e) {
        Failures.Failure f = Failures.classify(e);
        meters.counter("egress.compiler.retries", "listener", listener, "reason", f.kind()).increment();
        Retrying now = retrying.compute(listener, (k, before) -> new Retrying(f.kind(), f.reason(),
                before == null ? clock.instant() : before.since(), before == null ? 1 : before.attempts() + 1));
        return now.attempts();
    }

    /** Counts a retry that is not a batch's (a failed poll or commit), without changing the health. */
    public void counted(String listener, Throwable e) {
        meters.counter("egress.compiler.retries", "listener", listener, "reason", Failures.classify(e).kind()).increment();
    }

    /** Records that {@code listener} completed a batch (or was given partitions anew): it is no longer retrying. */
    public void succeeded(String listener) {
        retrying.remove(listener);
    }

    /** Whether any listener is retrying. */
    public boolean degraded() {
        return !retrying.isEmpty();
    }

    @Override
    public Health health() {
        if (retrying.isEmpty()) {
            return Health.up().build();
        }
        Health.Builder b = Health.status(DEGRADED);
        Map<String, Object> listeners = new LinkedHashMap<>();
        StringBuilder reason = new StringBuilder();
        Instant now = clock.instant();
        new java.util.TreeMap<>(retrying).forEach((listener, r) -> {
            long seconds = Duration.between(r.since(), now).toSeconds();
            Map<String, Object> d = new LinkedHashMap<>();
            d.put("kind", r.kind());
            d.put("reason", r.reason());
            d.put("since", r.since().toString());
            d.put("attempts", r.attempts());
            listeners.put(listener, d);
            if (!reason.isEmpty()) {
                reason.append("; ");
            }
            reason.append(listener).append(": retrying for ").append(seconds).append(" s (").append(r.attempts())
                    .append(" attempts), ").append(r.kind()).append(": ").append(r.reason());
        });
        return b.withDetail("reason", reason.toString()).withDetail("listeners", listeners).build();
    }
}
