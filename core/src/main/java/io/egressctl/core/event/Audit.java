package io.egressctl.core.event;

import java.time.Instant;

/** Who asked for a change, in which request, when, through which service. All fields non-null. */
public record Audit(String actor, String tenantId, String requestId, Instant eventTime, String service,
                    String serviceVersion) {
}
