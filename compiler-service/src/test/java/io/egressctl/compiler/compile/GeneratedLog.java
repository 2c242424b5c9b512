package io.egressctl.compiler.compile;

import io.egressctl.core.event.Audit;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.IcmpMatch;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.NetworkKind;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.Topics;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.record.TimestampType;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;


/**
 * A generated history of the network events log for the replay-determinism tests: {@link #NETWORKS}
 * networks on {@link #PARTITIONS} partitions, created first, then a seeded mix of placements, moves,
 * removals, drains, rule creates (some with a stale If-Match or a repeated idempotency key), updates and
 * deletes, policy changes, network deletions and re-creations, placements with an invalid interface
 * (rejected in log order), and poison records (bytes that are no Avro, an event keyed by another
 * network). Values are serialized as rule-service writes them (each type under its own subject) with
 * the given registry; records are stamped one second apart.
 */
final class GeneratedLog {

    static final int PARTITIONS = 3;
    static final int NETWORKS = 8;
    static final int HOSTS = 6;
    static final int VMS = 6;
    static final int RULE_IDS = 8;
    static final long T0 = Instant.parse("2026-03-01T00:00:00Z").toEpochMilli();
    /**
     * Topic settings of a topic holding a generated log: kept forever, as the product keeps its log. The records
     * are stamped from {@link #T0}, in the past, so a time-based retention deletes them at the broker's next
     * retention check (30 s after it starts, then every 5 minutes): a consumer seeking to the beginning then
     * finds nothing, which once made RedisLossHealIT stall on Testcontainers.
     */
    static final java.util.Map<String, String> KEPT_FOREVER = java.util.Map.of("retention.ms", "-1", "retention.bytes", "-1");

    final String topic;
    final AvroSerializer<SpecificRecord> eventSerializer;
    /** Partition by partition, the records of the topic. */
    final List<List<ConsumerRecord<String, byte[]>>> log = new ArrayList<>();
    /** Event id -> its position (offset + 1 in its partition). */
    final Map<String, Long> positionOf = new HashMap<>();
    int poisonRecords;

    GeneratedLog(io.egressctl.schemas.registry.SchemaRegistryClient registry, String topic) {
        this.topic = topic;
        this.eventSerializer = new AvroSerializer<>(registry);
    }

    static String net(int n) {
        return "net-" + n;
    }

    static Network network(int n, DefaultPolicy policy) {
        return new Network(net(n), "tenant-" + (n % 3), NetworkKind.BASIC, Cidr.parse("10." + n + ".0.0/24"), null, policy,
                false, n % 4 == 3 ? 3 : 100);
    }

    static String ip(int n, int vm) {
        return "10." + n + ".0." + (10 + vm);
    }

    static Audit audit(long i) {
        return new Audit("alice", "tenant", "req-" + i, Instant.ofEpochMilli(T0 + i), "test", "0");
    }

    /** A rule of one of a few shapes, so that duplicates, updates and quota overflows happen. */
    static EgressRule rule(String id, int n, int shape, Random random) {
        List<Cidr> sources = switch (random.nextInt(4)) {
            case 0 -> List.of();
            case 1 -> List.of(Cidr.parse(ip(n, random.nextInt(VMS)) + "/32"));
            case 2 -> List.of(Cidr.parse("10." + n + ".0.8/29"));
            default -> List.of(Cidr.parse(ip(n, 0) + "/32"), Cidr.parse(ip(n, 3) + "/32"));
        };
        List<String> vmIds = sources.isEmpty() && random.nextInt(3) == 0 ? List.of("vm-" + n + "-1", "vm-" + n + "-4") : List.of();
        List<Cidr> destinations = random.nextBoolean() ? List.of() : List.of(Cidr.parse("192.0.2.0/24"));
        return switch (shape) {
            case 0 -> new EgressRule(id, Protocol.TCP, null, EgressRule.DEFAULT_PRIORITY, sources, vmIds, destinations, List.of(),
                    PortRange.single(80), null, null);
            case 1 -> new EgressRule(id, Protocol.TCP, null, EgressRule.DEFAULT_PRIORITY, sources, vmIds, destinations, List.of(),
                    new PortRange(1000, 2000), null, null);
            case 2 -> new EgressRule(id, Protocol.UDP, null, EgressRule.DEFAULT_PRIORITY, sources, vmIds, destinations, List.of(),
                    PortRange.single(53), null, null);
            case 3 -> new EgressRule(id, Protocol.ICMP, null, EgressRule.DEFAULT_PRIORITY, sources, vmIds, destinations, List.of(),
                    null, IcmpMatch.ANY, null);
            default -> new EgressRule(id, Protocol.ALL, null, EgressRule.DEFAULT_PRIORITY, sources, vmIds, destinations, List.of(),
                    null, null, null);
        };
    }

    /** Generates {@code events} records over {@link #NETWORKS} networks, keyed by network id as rule-service writes them. */
    GeneratedLog generate(long seed, int events) {
        Random random = new Random(seed);
        for (int p = 0; p < PARTITIONS; p++) {
            log.add(new ArrayList<>());
        }
        int[] placedOn = new int[NETWORKS * VMS];
        Arrays.fill(placedOn, -1);
        for (int n = 0; n < NETWORKS; n++) {
            append(n, EventMapper.toAvro(new RuleChange("create-" + n, RuleChange.Operation.NETWORK_CREATED, net(n), null, null,
                    network(n, n % 2 == 0 ? DefaultPolicy.ALLOW : DefaultPolicy.DENY), null, null, audit(n))));
        }
        for (int i = 0; i < events; i++) {
            int n = random.nextInt(NETWORKS);
            int vm = random.nextInt(VMS);
            int host = random.nextInt(HOSTS);
            String id = "e" + i;
            int what = random.nextInt(100);
            String vmId = "vm-" + n + "-" + vm;
            String iface = "tap" + n + "-" + vm;
            if (what < 28) {
                boolean move = placedOn[n * VMS + vm] >= 0 && placedOn[n * VMS + vm] != host;
                append(n, EventMapper.toAvro(new WorkloadChange(id, move ? WorkloadChange.Operation.VM_MOVED : WorkloadChange.Operation.VM_PLACED,
                        net(n), vmId, "h" + host, move ? "h" + placedOn[n * VMS + vm] : null, iface, null, ip(n, vm), null, audit(i))));
                placedOn[n * VMS + vm] = host;
            } else if (what < 34) {
                append(n, EventMapper.toAvro(new WorkloadChange(id, WorkloadChange.Operation.VM_REMOVED, net(n), vmId,
                        "h" + Math.max(0, placedOn[n * VMS + vm]), null, null, null, audit(i))));
                placedOn[n * VMS + vm] = -1;
            } else if (what < 36) {
                append(n, EventMapper.toAvro(new WorkloadChange(id, WorkloadChange.Operation.HOST_DRAINED, net(n), null, "h" + host,
                        null, null, null, audit(i))));
                for (int v = 0; v < VMS; v++) {
                    if (placedOn[n * VMS + v] == host) {
                        placedOn[n * VMS + v] = -1;
                    }
                }
            } else if (what < 66) {
                String ruleId = "r" + random.nextInt(RULE_IDS);
                Long expected = random.nextInt(20) == 0 ? (long) random.nextInt(5) : null; // mostly no If-Match, now and then a stale one
                String key = random.nextInt(10) == 0 ? "k" + random.nextInt(4) : null;
                append(n, EventMapper.toAvro(new RuleChange(id, RuleChange.Operation.RULE_CREATED, net(n), expected, key, null, null,
                        rule(ruleId, n, random.nextInt(5), random), audit(i))));
            } else if (what < 76) {
                String ruleId = "r" + random.nextInt(RULE_IDS);
                append(n, EventMapper.toAvro(new RuleChange(id, RuleChange.Operation.RULE_UPDATED, net(n), null, null, null,
                        rule(ruleId, n, 0, random), rule(ruleId, n, random.nextInt(5), random), audit(i))));
            } else if (what < 88) {
                String ruleId = "r" + random.nextInt(RULE_IDS);
                append(n, EventMapper.toAvro(new RuleChange(id, RuleChange.Operation.RULE_DELETED, net(n), null, null, null,
                        rule(ruleId, n, 0, random), null, audit(i))));
            } else if (what < 93) {
                append(n, EventMapper.toAvro(new RuleChange(id, RuleChange.Operation.NETWORK_UPDATED, net(n), null, null,
                        network(n, random.nextBoolean() ? DefaultPolicy.ALLOW : DefaultPolicy.DENY), null, null, audit(i))));
            } else if (what < 95) {
                append(n, EventMapper.toAvro(new RuleChange(id, RuleChange.Operation.NETWORK_DELETED, net(n), null, null, null, null, null,
                        audit(i))));
            } else if (what < 97) {
                append(n, EventMapper.toAvro(new RuleChange(id, RuleChange.Operation.NETWORK_CREATED, net(n), null, null,
                        network(n, DefaultPolicy.ALLOW), null, null, audit(i))));
            } else if (what < 98) {
                appendRaw(n, net(n), "{\"not\":\"avro\"}".getBytes(StandardCharsets.UTF_8));
                poisonRecords++;
            } else if (what < 99) {
                // Keyed by another network than it names: dead-lettered, never decided.
                appendRaw(n, net(n), eventSerializer.serialize(topic, EventMapper.toAvro(new RuleChange(id,
                        RuleChange.Operation.RULE_CREATED, net((n + 1) % NETWORKS), null, null, null, null,
                        rule("r0", (n + 1) % NETWORKS, 0, random), audit(i)))));
                poisonRecords++;
            } else {
                append(n, EventMapper.toAvro(new WorkloadChange(id, WorkloadChange.Operation.VM_PLACED, net(n), vmId, "h" + host, null,
                        "bad name!", null, ip(n, vm), null, audit(i)))); // INVALID: rejected in log order
            }
        }
        return this;
    }

    private void append(int n, SpecificRecord event) {
        ConsumerRecord<String, byte[]> r = appendRaw(n, net(n), eventSerializer.serialize(topic, event));
        String eventId = String.valueOf(event.get(event.getSchema().getField("eventId").pos()));
        positionOf.put(eventId, r.offset() + 1);
    }

    private ConsumerRecord<String, byte[]> appendRaw(int n, String key, byte[] value) {
        int p = Topics.partitionFor(key, PARTITIONS);
        List<ConsumerRecord<String, byte[]>> partition = log.get(p);
        int total = log.stream().mapToInt(List::size).sum();
        ConsumerRecord<String, byte[]> r = new ConsumerRecord<>(topic, p, partition.size(), T0 + 1000L * total,
                TimestampType.CREATE_TIME, key.length(), value.length, key, value, new RecordHeaders(), Optional.empty());
        partition.add(r);
        return r;
    }

    int events() {
        return log.stream().mapToInt(List::size).sum();
    }

}
