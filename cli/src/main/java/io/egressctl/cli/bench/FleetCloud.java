package io.egressctl.cli.bench;

import io.egressctl.core.host.HostState;
import io.egressctl.events.DefaultPolicy;
import io.egressctl.events.NetworkKind;
import io.egressctl.events.NetworkSpec;
import io.egressctl.events.Protocol;
import io.egressctl.events.RuleEvent;
import io.egressctl.events.RuleOperation;
import io.egressctl.events.RuleSpec;
import io.egressctl.events.Source;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.events.WorkloadOperation;
import io.egressctl.schemas.registry.HttpSchemaRegistryClient;
import io.egressctl.schemas.serde.AvroSerializer;
import io.egressctl.schemas.serde.KafkaDefaults;
import io.egressctl.schemas.serde.SubjectNameStrategy;
import io.egressctl.schemas.serde.Topics;
import io.egressctl.schemas.view.RedisKeys;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;
import redis.clients.jedis.UnifiedJedis;

import java.io.PrintStream;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The cloud of {@code bench propagation}: {@code hosts} hosts with {@code vmsPerHost} VMs each, and
 * {@code networks} background networks with {@code rules} rules each, plus the three networks the
 * measured changes go to:
 * <ul>
 *   <li>{@code <prefix>-one}: one VM on each of up to 10 hosts spread over the fleet; each measured
 *       change is a rule for one of those VMs ({@code sourceCidrs} its address), so it touches one host;</li>
 *   <li>{@code <prefix>-tenth}: one VM on every tenth host (10% of the hosts);</li>
 *   <li>{@code <prefix>-all}: one VM on every host.</li>
 * </ul>
 * The other VM slots of each host are the background networks' VMs, dealt round robin. Every network
 * gets its rules before its VMs are placed (each placement then compiles one host). The whole cloud is
 * written straight to {@code egress.network-events} as upstream producers do (docs/producers.md:
 * key = network id, an idempotent acks=all producer, TopicRecordNameStrategy), never through the API;
 * only the measured changes go through the API.
 */
final class FleetCloud {

    /** A VM of the cloud. */
    record Vm(String networkId, String vmId, String hostId, String interfaceName, String ipv4) {
    }

    final String prefix;
    final String tenant;
    final List<String> hosts = new ArrayList<>();
    final List<String> networks = new ArrayList<>();
    final List<Vm> vms = new ArrayList<>();
    final List<Vm> oneVms = new ArrayList<>();
    final int rules;

    FleetCloud(String prefix, String tenant, int hostCount, int vmsPerHost, int networkCount, int rules) {
        this.prefix = prefix;
        this.tenant = tenant;
        this.rules = rules;
        for (int i = 0; i < hostCount; i++) {
            hosts.add(prefix + "-h" + i);
        }
        for (int k = 0; k < networkCount; k++) {
            networks.add(prefix + "-n" + k);
        }
        int oneEvery = Math.max(1, hostCount / 10);
        int background = 0;
        for (int i = 0; i < hostCount; i++) {
            String h = hosts.get(i);
            int slot = 0;
            vms.add(new Vm(all(), prefix + "-a" + i, h, "v" + slot++, "172.16." + i / 250 + "." + (2 + i % 250)));
            if (i % 10 == 0 && slot < vmsPerHost) {
                vms.add(new Vm(tenth(), prefix + "-t" + i, h, "v" + slot++, "172.20." + i / 250 + "." + (2 + i % 250)));
            }
            if (i % oneEvery == 0 && oneVms.size() < 10 && slot < vmsPerHost) {
                int j = oneVms.size();
                Vm v = new Vm(one(), prefix + "-o" + i, h, "v" + slot++, "172.24.0." + (2 + j));
                oneVms.add(v);
                vms.add(v);
            }
            for (; slot < vmsPerHost && networkCount > 0; slot++) {
                int k = background % networkCount;
                int ip = 10 + background / networkCount;
                if (ip > 250) {
                    throw new IllegalArgumentException("more than 240 VMs per background network: raise --networks");
                }
                vms.add(new Vm(networks.get(k), prefix + "-vm" + background, h, "v" + slot, subnet(k) + "." + ip));
                background++;
            }
        }
    }

    String one() {
        return prefix + "-one";
    }

    String tenth() {
        return prefix + "-tenth";
    }

    String all() {
        return prefix + "-all";
    }

    /** Hosts a change to every VM of {@code network} touches. */
    int hostsOf(String network) {
        return (int) vms.stream().filter(v -> v.networkId().equals(network)).map(Vm::hostId).distinct().count();
    }

    private static String subnet(int k) {
        return "10." + (k / 256) % 256 + "." + k % 256;
    }

    private List<String[]> allNetworks() {
        List<String[]> out = new ArrayList<>();
        for (int k = 0; k < networks.size(); k++) {
            out.add(new String[] {networks.get(k), subnet(k) + ".0/24"});
        }
        out.add(new String[] {one(), "172.24.0.0/24"});
        out.add(new String[] {tenth(), "172.20.0.0/16"});
        out.add(new String[] {all(), "172.16.0.0/16"});
        return out;
    }

    /**
     * Writes the cloud to the log and waits until the compiler has decided the last event of every
     * partition it wrote to (its change status is in Redis), at most {@code timeoutSeconds}.
     *
     * @return the number of events written
     */
    int load(String bootstrap, String registryUrl, String redisUrl, long timeoutSeconds, PrintStream out) {
        List<SpecificRecord> events = new ArrayList<>();
        for (String[] n : allNetworks()) {
            events.add(ruleEvent(n[0]).setOperation(RuleOperation.NETWORK_CREATED).setNetwork(NetworkSpec.newBuilder()
                    .setNetworkId(n[0]).setTenantId(tenant).setKind(NetworkKind.BASIC).setGuestCidr(n[1]).setGuestCidr6(null)
                    .setDefaultPolicy(DefaultPolicy.ALLOW).setAdvanced(false).setRuleQuota(1000).build()).build());
            for (int r = 0; r < rules; r++) {
                events.add(ruleEvent(n[0]).setOperation(RuleOperation.RULE_CREATED).setRuleAfter(rule(n[0] + "-r" + r, 1000 + r)).build());
            }
        }
        for (Vm v : vms) {
            events.add(WorkloadEvent.newBuilder().setEventId(UUID.randomUUID().toString()).setNetworkId(v.networkId())
                    .setSource(source()).setOperation(WorkloadOperation.VM_PLACED).setVmId(v.vmId()).setHostId(v.hostId())
                    .setPreviousHostId(null).setInterfaceName(v.interfaceName()).setIpv4(v.ipv4()).build());
        }
        long t0 = System.nanoTime();
        Map<Integer, String> lastByPartition = send(bootstrap, registryUrl, events);
        out.printf(Locale.ROOT, "  wrote %,d events (%,d networks, %,d rules, %,d VM placements) in %.1f s; waiting for the compiler ...%n",
                events.size(), networks.size() + 3, (networks.size() + 3) * rules, vms.size(), (System.nanoTime() - t0) / 1e9);
        awaitCompiled(redisUrl, lastByPartition.values(), timeoutSeconds, out);
        out.printf(Locale.ROOT, "  compiled in %.1f s after the first write%n", (System.nanoTime() - t0) / 1e9);
        return events.size();
    }

    /** Deletes every network of the cloud (NETWORK_DELETED straight to the log): the compiler forgets them, the hosts get tombstones. */
    void unload(String bootstrap, String registryUrl) {
        List<SpecificRecord> events = new ArrayList<>();
        for (String[] n : allNetworks()) {
            events.add(ruleEvent(n[0]).setOperation(RuleOperation.NETWORK_DELETED).build());
        }
        send(bootstrap, registryUrl, events);
    }

    /**
     * Waits until every host of the cloud reported holding nothing (its applied hash in Redis is that of an
     * empty host), after {@link #unload} and while the fleet still runs; returns the hosts that did not
     * within {@code timeoutSeconds}. A host left with the cloud's rules in its last report would read as
     * drifted, then silent, in {@code audit verify} (and so in {@code chaos}) ever after.
     */
    List<String> awaitEmpty(String redisUrl, int timeoutSeconds) {
        long deadline = System.nanoTime() + timeoutSeconds * 1_000_000_000L;
        try (UnifiedJedis redis = io.egressctl.schemas.redis.RedisClients.create(redisUrl)) {
            while (true) {
                Map<String, String> applied = new java.util.HashMap<>();
                for (String h : hosts) {
                    String hash = redis.hget(RedisKeys.hostApplied(h), "hash");
                    if (hash != null) {
                        applied.put(h, hash);
                    }
                }
                List<String> holding = stillHolding(hosts, applied);
                if (holding.isEmpty() || System.nanoTime() > deadline) {
                    return holding;
                }
                sleep(500);
            }
        }
    }

    /** The hosts whose applied hash is not that of an empty host (or who never reported). */
    static List<String> stillHolding(List<String> hosts, Map<String, String> appliedHash) {
        String empty = HostState.hashOf(new TreeMap<>());
        return hosts.stream().filter(h -> !empty.equals(appliedHash.get(h))).toList();
    }

    private RuleEvent.Builder ruleEvent(String network) {
        String id = UUID.randomUUID().toString();
        return RuleEvent.newBuilder().setEventId(id).setNetworkId(network).setSource(source()).setIdempotencyKey(id);
    }

    private Source source() {
        return Source.newBuilder().setActor("bench-propagation").setTenantId(tenant).setRequestId(UUID.randomUUID().toString())
                .setEventTime(Instant.now()).setService("bench-propagation").setServiceVersion("0.3.0").build();
    }

    private static RuleSpec rule(String id, int port) {
        return RuleSpec.newBuilder().setRuleId(id).setProtocol(Protocol.TCP).setAction(null).setPriority(1000)
                .setSourceCidrs(List.of()).setSourceVmIds(List.of()).setDestinationCidrs(List.of("203.0.113.0/24"))
                .setDestinationExceptCidrs(List.of()).setStartPort(port).setEndPort(port).setIcmpType(null).setIcmpCode(null)
                .setDescription(null).build();
    }

    /** Sends every event (key = network id), waits for every acknowledgement; the last event id per partition. */
    private static Map<Integer, String> send(String bootstrap, String registryUrl, List<SpecificRecord> events) {
        Map<String, Object> p = KafkaDefaults.orderedProducer(bootstrap, "bench-propagation-loader");
        // Bulk loading, not measured: batches rather than one request per event.
        p.put(ProducerConfig.LINGER_MS_CONFIG, 20);
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, 262_144);
        Map<Integer, long[]> lastOffset = new ConcurrentHashMap<>();
        Map<Integer, String> lastId = new ConcurrentHashMap<>();
        AtomicReference<Exception> failed = new AtomicReference<>();
        try (KafkaProducer<String, SpecificRecord> producer = new KafkaProducer<>(p, new StringSerializer(),
                new AvroSerializer<>(new HttpSchemaRegistryClient(registryUrl), true, SubjectNameStrategy.TOPIC_RECORD_NAME))) {
            for (SpecificRecord e : events) {
                String network = e instanceof RuleEvent r ? r.getNetworkId() : ((WorkloadEvent) e).getNetworkId();
                String id = e instanceof RuleEvent r ? r.getEventId() : ((WorkloadEvent) e).getEventId();
                producer.send(new ProducerRecord<>(Topics.NETWORK_EVENTS, network, e), (md, ex) -> {
                    if (ex != null) {
                        failed.compareAndSet(null, ex);
                        return;
                    }
                    synchronized (lastOffset) {
                        long[] o = lastOffset.computeIfAbsent(md.partition(), k -> new long[] {-1});
                        if (md.offset() > o[0]) {
                            o[0] = md.offset();
                            lastId.put(md.partition(), id);
                        }
                    }
                });
            }
            producer.flush();
        }
        if (failed.get() != null) {
            throw new IllegalStateException("writing the cloud to " + Topics.NETWORK_EVENTS + " failed: " + failed.get().getMessage(),
                    failed.get());
        }
        return lastId;
    }

    private static void awaitCompiled(String redisUrl, java.util.Collection<String> changeIds, long timeoutSeconds, PrintStream out) {
        long deadline = System.nanoTime() + timeoutSeconds * 1_000_000_000L;
        long nextNote = System.nanoTime() + 15_000_000_000L;
        try (UnifiedJedis redis = io.egressctl.schemas.redis.RedisClients.create(redisUrl)) {
            while (true) {
                long done;
                try {
                    done = changeIds.stream().filter(c -> redis.exists(RedisKeys.change(c))).count();
                } catch (redis.clients.jedis.exceptions.JedisException e) {
                    // A busy Redis (the compiler writing the cloud) answers late: ask again, up to the deadline.
                    done = -1;
                }
                if (done == changeIds.size()) {
                    return;
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("the compiler did not decide the cloud's events within " + timeoutSeconds
                            + " s (" + done + " of " + changeIds.size() + " partitions done): is compiler-service running?");
                }
                if (System.nanoTime() > nextNote) {
                    out.printf(Locale.ROOT, "    %d of %d partitions compiled ...%n", done, changeIds.size());
                    nextNote = System.nanoTime() + 15_000_000_000L;
                }
                sleep(250);
            }
        }
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }
}
