package io.egressctl.schemas.serde;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Objects;

/**
 * The project's Kafka topics (see the Contracts table of the design brief), their schema-registry subjects
 * and the partition a key lands on.
 *
 * <p>Everything that decides a network's state is in one topic, {@link #NETWORK_EVENTS}, keyed by network
 * id: network and rule events ({@code RuleEvent}) and placements ({@code WorkloadEvent}) in one order per
 * network, so a network's version is its position in that log. A topic that carries several record types
 * registers each under its own subject (TopicRecordNameStrategy: {@code <topic>-<record full name>});
 * every other topic has one subject (TopicNameStrategy: {@code <topic>-value}).
 */
public final class Topics {

    /**
     * Network, rule and workload events (RuleEvent and WorkloadEvent, each its own schema); key networkId;
     * never expires. The source of truth: a network's version is the position of its last event here.
     */
    public static final String NETWORK_EVENTS = "egress.network-events";
    /**
     * Where 0.1 kept network and rule events (RuleEvent). 0.2 reads only {@link #NETWORK_EVENTS}; the name
     * stays for the migration of old logs (see docs/operations.md).
     */
    @Deprecated
    public static final String RULE_EVENTS = "egress.rule-events";
    /** Where 0.1 kept placements (WorkloadEvent); read only to migrate old logs, like {@link #RULE_EVENTS}. */
    @Deprecated
    public static final String WORKLOAD_EVENTS = "egress.workload-events";
    /** Desired (host, network) fragments or their tombstones; key hostId; value HostUpdate. */
    public static final String HOST_UPDATES = "egress.host-updates";
    /** ACK/NACK of host agents; key hostId; value EnforcementReport. */
    public static final String ENFORCEMENT_REPORTS = "egress.enforcement-reports";
    /** Suffix of a topic's dead-letter topic: original bytes plus reason headers. */
    public static final String DLT = ".DLT";
    /** Name ending of a topic that carries several record types (with a prefix in tests and benches). */
    static final String SEVERAL_TYPES_SUFFIX = "network-events";

    /** The three topics of the contract, in flow order. */
    public static final List<String> ALL = List.of(NETWORK_EVENTS, HOST_UPDATES, ENFORCEMENT_REPORTS);

    private Topics() {
    }

    /** The dead-letter topic of {@code topic}, e.g. {@code egress.network-events.DLT}. */
    public static String dlt(String topic) {
        return Objects.requireNonNull(topic, "topic") + DLT;
    }

    /** TopicNameStrategy subject: {@code <topic>-value}, or {@code <topic>-key} for keys. */
    public static String subject(String topic, boolean isKey) {
        return Objects.requireNonNull(topic, "topic") + (isKey ? "-key" : "-value");
    }

    /** TopicRecordNameStrategy subject: {@code <topic>-<record full name>}, e.g. {@code egress.network-events-io.egressctl.events.RuleEvent}. */
    public static String subject(String topic, String recordFullName) {
        return Objects.requireNonNull(topic, "topic") + "-" + Objects.requireNonNull(recordFullName, "recordFullName");
    }

    /**
     * Whether {@code topic} carries several record types, so that each registers under its own subject:
     * {@link #NETWORK_EVENTS}, and any topic whose name ends like it (tests and benches prefix their own).
     */
    public static boolean carriesSeveralRecordTypes(String topic) {
        return topic != null && topic.endsWith(SEVERAL_TYPES_SUFFIX);
    }

    /**
     * The partition Kafka's default partitioner picks for a non-null String key serialized as UTF-8 (as
     * StringSerializer does): {@code toPositive(murmur2(utf8(key))) % numPartitions}. Host agents use it to
     * find the one partition of {@code egress.host-updates} that holds their hostId.
     */
    public static int partitionFor(String key, int numPartitions) {
        Objects.requireNonNull(key, "key");
        if (numPartitions <= 0) {
            throw new IllegalArgumentException("numPartitions must be positive, was " + numPartitions);
        }
        return (murmur2(key.getBytes(StandardCharsets.UTF_8)) & 0x7fffffff) % numPartitions;
    }

    /** The 32-bit murmur2 hash Kafka's partitioner uses (seed 0x9747b28c). */
    static int murmur2(byte[] data) {
        int length = data.length;
        final int seed = 0x9747b28c;
        final int m = 0x5bd1e995;
        final int r = 24;
        int h = seed ^ length;
        int length4 = length / 4;
        for (int i = 0; i < length4; i++) {
            final int i4 = i * 4;
            int k = (data[i4] & 0xff) + ((data[i4 + 1] & 0xff) << 8) + ((data[i4 + 2] & 0xff) << 16)
                    + ((data[i4 + 3] & 0xff) << 24);
            k *= m;
            k ^= k >>> r;
            k *= m;
            h *= m;
            h ^= k;
        }
        int tail = length4 * 4;
        switch (length % 4) {
            case 3:
                h ^= (data[tail + 2] & 0xff) << 16;
                // fall through
            case 2:
                h ^= (data[tail + 1] & 0xff) << 8;
                // fall through
            case 1:
                h ^= data[tail] & 0xff;
                h *= m;
                break;
            default:
                break;
        }
        h ^= h >>> 13;
        h *= m;
        h ^= h >>> 15;
        return h;
    }
}
