package io.egressctl.schemas.serde;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidReplicationFactorException;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Topology is checked, never changed. At start a service calls {@link #ensure}: topics that exist are
 * only read; when they agree, topics it needs that do not exist are created (with the configured
 * partitions, replication factor and configs). When an existing topic's partition count differs from the configured one where
 * that count decides which partition a key lands on, {@link #ensure} throws a {@link MismatchException}
 * saying which topic, both counts and what the operator can do: the service refuses to run rather than
 * adding partitions, which would move keys (networks, hosts) to other partitions, hence to other owners
 * and out of their order. Other differences (replication factor, min.insync.replicas, retention...) are
 * returned as warnings and left as they are.
 *
 * <p>Spring Kafka's {@code KafkaAdmin} would add partitions to an existing topic whose {@code NewTopic}
 * bean asks for more, so the services declare no {@code NewTopic} beans, set
 * {@code spring.kafka.admin.auto-create=false}, and use this class instead.
 */
public final class TopicTopology {

    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(TopicTopology.class);

    private static final long MAX_BACKOFF_MS = 5_000;

    private TopicTopology() {
    }

    /**
     * What a service needs of one topic.
     *
     * @param topic              how to create it when it is absent (name, partitions, replication, configs)
     * @param partitionsMustMatch true when the partition count decides where a key lands (the event
     *                           logs, host updates, reports): a different count on an existing topic
     *                           makes the service refuse to run; false for topics whose count decides
     *                           nothing (dead letters): a difference is only a warning
     * @param partitionsSetting  the setting an operator changes to agree with the topic, for messages
     *                           (e.g. {@code egress.partitions (EGRESS_PARTITIONS)})
     */
    public record Requirement(NewTopic topic, boolean partitionsMustMatch, String partitionsSetting) {
        public Requirement {
            Objects.requireNonNull(topic, "topic");
            if (topic.numPartitions() < 1) {
                throw new IllegalArgumentException("topic " + topic.name() + " needs a partition count");
            }
            partitionsSetting = partitionsSetting == null ? "the partition count setting" : partitionsSetting;
        }

        public String name() {
            return topic.name();
        }
    }

    /** A topic whose partition count must be exactly the configured one. */
    public static Requirement keyed(NewTopic topic, String partitionsSetting) {
        return new Requirement(topic, true, partitionsSetting);
    }

    /** A topic created with the configured count when absent, any count accepted when present. */
    public static Requirement anyPartitionCount(NewTopic topic) {
        return new Requirement(topic, false, null);
    }

    /**
     * What {@link #ensure} found.
     *
     * @param created  topics this call created
     * @param checked  topics that existed and agree on what must agree
     * @param warnings differences left as they are (one sentence each)
     */
    public record Report(List<String> created, List<String> checked, List<String> warnings) {
        public Report {
            created = List.copyOf(created);
            checked = List.copyOf(checked);
            warnings = List.copyOf(warnings);
        }
    }

    /** An existing topic disagrees with the configuration: the service must not run. Nothing was changed. */
    public static final class MismatchException extends IllegalStateException {
        private final List<String> mismatches;

        MismatchException(List<String> mismatches) {
            super(message(mismatches));
            this.mismatches = List.copyOf(mismatches);
        }

        /** One sentence per disagreeing topic. */
        public List<String> mismatches() {
            return mismatches;
        }

        private static String message(List<String> mismatches) {
            return "refusing to start: the partition count of " + (mismatches.size() == 1 ? "a topic" : mismatches.size() + " topics")
                    + " differs from this service's configuration: " + String.join("; ", mismatches)
                    + ". A topic's partition count decides which partition, hence which owner and which order, a key"
                    + " belongs to; services never change it (adding partitions on a live system moves networks and hosts"
                    + " to partitions that hold none of their history). Configure this service with the topics' count, or"
                    + " move to new topics with the new count on purpose (docs/operations.md, \"Durability\"). Nothing was changed.";
        }
    }

    /** The topics could not be created (for example a replication factor above the number of brokers). */
    public static final class CreationException extends IllegalStateException {
        CreationException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /**
     * The start-up check of a service: {@link #ensure(Admin, Collection, Duration)} with an admin client
     * made from the service's own admin settings (bootstrap servers, TLS, SASL as Spring Boot built
     * them), its outcome logged under the service's name. Throws what the check throws.
     */
    public static Report ensure(String service, Map<String, Object> adminConfig, Collection<Requirement> required, Duration timeout) {
        Map<String, Object> config = new java.util.HashMap<>(adminConfig);
        config.putIfAbsent(org.apache.kafka.clients.admin.AdminClientConfig.CLIENT_ID_CONFIG, service + "-topic-check");
        try (Admin admin = Admin.create(config)) {
            Report report;
            try {
                report = ensure(admin, required, timeout);
            } catch (RuntimeException e) {
                LOG.error("{}: {}", service, e.getMessage());
                throw e;
            }
            if (!report.created().isEmpty()) {
                LOG.info("{}: created topics {}", service, report.created());
            }
            if (!report.checked().isEmpty()) {
                LOG.info("{}: topics {} exist with the configured partition counts", service, report.checked());
            }
            report.warnings().forEach(w -> LOG.warn("{}: {}", service, w));
            return report;
        }
    }

    /**
     * Creates what is absent, checks what exists, changes nothing that exists. Retries while Kafka cannot
     * be reached or answers with a retriable error, for up to {@code timeout}.
     *
     * @throws MismatchException when an existing topic's partition count disagrees (not retried)
     * @throws CreationException when a topic cannot be created for a reason retrying will not cure
     * @throws IllegalStateException when Kafka did not answer within {@code timeout}
     */
    public static Report ensure(Admin admin, Collection<Requirement> required, Duration timeout) {
        Objects.requireNonNull(admin, "admin");
        List<Requirement> reqs = List.copyOf(required);
        long deadline = System.nanoTime() + Objects.requireNonNull(timeout, "timeout").toNanos();
        long backoff = 200;
        Exception last;
        List<String> created = new ArrayList<>(); // kept across attempts: a retry finds these existing
        while (true) {
            long left = Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()));
            try {
                return attempt(admin, reqs, Math.min(left, 15_000), created);
            } catch (RetryException e) {
                last = e.cause;
            }
            if (System.nanoTime() - deadline >= 0) {
                throw new IllegalStateException("could not check the topics " + names(reqs) + " within " + timeout
                        + " (egress.topics.check-timeout): " + describe(last), last);
            }
            try {
                Thread.sleep(Math.min(backoff, Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()))));
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while checking the topics " + names(reqs), ie);
            }
            backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
        }
    }

    /** Thrown inside one attempt when the whole attempt may be repeated. */
    private static final class RetryException extends Exception {
        final Exception cause;

        RetryException(Exception cause) {
            super(cause);
            this.cause = cause;
        }
    }

    private static Report attempt(Admin admin, List<Requirement> reqs, long timeoutMs, List<String> created)
            throws RetryException {
        List<String> checked = new ArrayList<>();
        List<String> warnings = new ArrayList<>();

        Map<String, TopicDescription> existing = describeTopics(admin, reqs, timeoutMs);
        // Decide before writing: a configuration that disagrees with the existing topics creates nothing.
        List<String> early = partitionMismatches(reqs, existing);
        if (!early.isEmpty()) {
            throw new MismatchException(early);
        }
        List<Requirement> missing = reqs.stream().filter(r -> !existing.containsKey(r.name())).toList();
        if (!missing.isEmpty()) {
            var result = admin.createTopics(missing.stream().map(Requirement::topic).toList(),
                    new CreateTopicsOptions().timeoutMs((int) timeoutMs));
            for (Requirement r : missing) {
                try {
                    await(result.values().get(r.name()), timeoutMs);
                    created.add(r.name());
                } catch (ExecutionException e) {
                    Throwable c = e.getCause();
                    if (c instanceof TopicExistsException) {
                        continue; // another service created it meanwhile: checked below like any existing topic
                    }
                    if (c instanceof InvalidReplicationFactorException) {
                        throw new CreationException("cannot create topic " + r.name() + " with replication factor "
                                + r.topic().replicationFactor() + ": " + c.getMessage() + ". Set egress.topics.replication-factor"
                                + " (EGRESS_TOPIC_REPLICATION_FACTOR) to at most the number of brokers, and"
                                + " egress.topics.min-insync-replicas (EGRESS_TOPIC_MIN_INSYNC_REPLICAS) to at most that:"
                                + " 1/1 for one broker, 3/2 for three", c);
                    }
                    if (c instanceof RetriableException) {
                        throw new RetryException((Exception) c);
                    }
                    throw new CreationException("cannot create topic " + r.name() + ": " + describe(c), c);
                }
            }
        }
        Map<String, TopicDescription> all = existing;
        if (!missing.isEmpty()) {
            all = describeTopics(admin, reqs, timeoutMs);
            for (Requirement r : reqs) {
                if (!all.containsKey(r.name())) {
                    // created but not visible in metadata yet
                    throw new RetryException(new UnknownTopicOrPartitionException("topic " + r.name() + " not visible yet"));
                }
            }
        }

        // Topics another service created meanwhile are checked like the others.
        List<String> mismatches = partitionMismatches(reqs, all);
        if (!mismatches.isEmpty()) {
            throw new MismatchException(mismatches);
        }
        List<Requirement> toCompare = new ArrayList<>();
        for (Requirement r : reqs) {
            TopicDescription d = all.get(r.name());
            int have = d.partitions().size();
            int want = r.topic().numPartitions();
            if (have != want) {
                warnings.add("topic " + r.name() + " has " + have + " partitions, this service is configured for " + want
                        + "; left as it is (its partition count decides nothing)");
            }
            if (created.contains(r.name())) {
                continue;
            }
            int rf = d.partitions().isEmpty() ? 0 : d.partitions().get(0).replicas().size();
            if (r.topic().replicationFactor() > 0 && rf != r.topic().replicationFactor()) {
                warnings.add("topic " + r.name() + " has replication factor " + rf + ", this service is configured for "
                        + r.topic().replicationFactor() + " (egress.topics.replication-factor); left as it is"
                        + " (a partition reassignment changes it)");
            }
            toCompare.add(r);
            checked.add(r.name());
        }
        warnings.addAll(compareConfigs(admin, toCompare, timeoutMs));
        return new Report(created, checked, warnings);
    }

    /** One sentence per existing topic whose partition count must match and does not. */
    private static List<String> partitionMismatches(List<Requirement> reqs, Map<String, TopicDescription> existing) {
        List<String> out = new ArrayList<>();
        for (Requirement r : reqs) {
            TopicDescription d = existing.get(r.name());
            if (d == null || !r.partitionsMustMatch()) {
                continue;
            }
            int have = d.partitions().size();
            int want = r.topic().numPartitions();
            if (have != want) {
                out.add("topic " + r.name() + " has " + have + " partitions, this service is configured for " + want
                        + " (" + r.partitionsSetting() + "; set it to " + have + " to run against this topic)");
            }
        }
        return out;
    }

    private static Map<String, TopicDescription> describeTopics(Admin admin, List<Requirement> reqs, long timeoutMs)
            throws RetryException {
        Map<String, KafkaFuture<TopicDescription>> futures = admin.describeTopics(reqs.stream().map(Requirement::name).toList(),
                new DescribeTopicsOptions().timeoutMs((int) timeoutMs)).topicNameValues();
        Map<String, TopicDescription> found = new LinkedHashMap<>();
        for (Requirement r : reqs) {
            try {
                found.put(r.name(), await(futures.get(r.name()), timeoutMs));
            } catch (ExecutionException e) {
                if (e.getCause() instanceof UnknownTopicOrPartitionException) {
                    continue;
                }
                throw retryOrFail(e, "describe topic " + r.name());
            }
        }
        return found;
    }

    /** Every config the requirement would create the topic with, compared with the topic's own. */
    private static List<String> compareConfigs(Admin admin, List<Requirement> reqs, long timeoutMs) throws RetryException {
        List<String> warnings = new ArrayList<>();
        if (reqs.isEmpty()) {
            return warnings;
        }
        List<ConfigResource> resources = reqs.stream().map(r -> new ConfigResource(ConfigResource.Type.TOPIC, r.name())).toList();
        Map<ConfigResource, KafkaFuture<Config>> futures = admin.describeConfigs(resources,
                new DescribeConfigsOptions().timeoutMs((int) timeoutMs)).values();
        for (Requirement r : reqs) {
            Config config;
            try {
                config = await(futures.get(new ConfigResource(ConfigResource.Type.TOPIC, r.name())), timeoutMs);
            } catch (ExecutionException e) {
                throw retryOrFail(e, "describe the configs of topic " + r.name());
            }
            Map<String, String> wanted = r.topic().configs() == null ? Map.of() : r.topic().configs();
            for (Map.Entry<String, String> w : wanted.entrySet()) {
                ConfigEntry have = config.get(w.getKey());
                String value = have == null ? null : have.value();
                if (!Objects.equals(value, w.getValue())) {
                    warnings.add("topic " + r.name() + " has " + w.getKey() + "=" + value + ", this service would create it with "
                            + w.getValue() + "; left as it is (kafka-configs --alter changes it)");
                }
            }
        }
        return warnings;
    }

    private static <T> T await(KafkaFuture<T> future, long timeoutMs) throws ExecutionException, RetryException {
        try {
            return future.get(timeoutMs + 1_000, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new RetryException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while checking topics", e);
        }
    }

    private static RuntimeException retryOrFailUnchecked(ExecutionException e, String what) {
        return new IllegalStateException("could not " + what + ": " + describe(e.getCause()), e.getCause());
    }

    private static RetryException retryOrFail(ExecutionException e, String what) {
        if (e.getCause() instanceof RetriableException re) {
            return new RetryException(re);
        }
        throw retryOrFailUnchecked(e, what);
    }

    private static String describe(Throwable t) {
        if (t == null) {
            return "no answer";
        }
        return t.getClass().getSimpleName() + (t.getMessage() == null ? "" : ": " + t.getMessage());
    }

    private static List<String> names(List<Requirement> reqs) {
        return reqs.stream().map(Requirement::name).toList();
    }
}
