package io.egressctl.schemas.view;

/**
 * The Redis key contract. Redis is a cache rebuilt from the log (invariant 1). Keys of one host
 * share the hash tag {@code {hostId}} and keys of one network the tag {@code {networkId}}, so a
 * Redis Cluster keeps each group in one slot and the Lua compare-and-set scripts stay single-slot.
 *
 * <pre>
 * egress:host:{H}:fragments   HASH networkId -> HostUpdate (Avro single-object encoding), tombstones kept
 * egress:host:{H}:versions    HASH networkId -> version of the fragment above (compare-and-set guard)
 * egress:host:{H}:applied     HASH hash, status, error, at, enforcer, v:networkId -> version (from agent reports)
 * egress:host:{H}:interfaces  HASH interfaceName -> "networkId/vmId": which VM holds each interface of the host, across
 *                              networks (the compiler sets a field when it accepts a placement and deletes it, only
 *                              while it still names that VM, when the VM leaves the interface or its network goes;
 *                              the rule-service refuses a placement on an interface another VM holds)
 * egress:hosts                SET  every host id that ever had a fragment
 * egress:applied-hosts        SET  every host id with an applied state (a host may report before or without a fragment)
 * egress:network:{N}          HASH version, json -> the NetworkView without its rules, r:<ruleId> -> one RuleView each
 *                              (compare-and-set on version; a change writes only the rules it touched)
 * egress:views                SET  every network id with a view hash, deleted networks' (a version, empty json) too
 * egress:tenant:T:networks    SET  network ids of tenant T
 * egress:name:{N}             STRING the tenant that holds the bare log id N (rule-service, SET NX at a network's creation:
 *                              the first tenant to create a network named N; another tenant's network named N gets the
 *                              scoped log id T:N). Not in the log: kept by rebuild; lost with Redis, the views decide then
 * egress:change:C             STRING JSON status of change C (networkId, status, code, reason, version, targets JSON), 7 days
 * egress:change-expiry       ZSET change id -> when its status expires (epoch seconds), trimmed at each write
 * egress:checkpoint:P          STRING compiler checkpoint of input partition P (offsets + network states, JSON)
 * egress:{control}:generation STRING the Redis generation marker: "&lt;uuid&gt; &lt;time&gt;", set (SET NX) by the first compiler
 *                              that finds it absent; absent or changed means Redis lost what it held (see docs/architecture.md)
 * egress:{control}:rebuilding HASH partition P -> why and how far: present while the compiler is rebuilding that partition's
 *                              state from the log (no checkpoint, or healing after a loss); rule-service answers 503 meanwhile
 * egress:{control}:changes    CHANNEL (pub/sub) the id of each change whose status record the compiler just wrote, published
 *                              by the script that writes it; rule-service completes the ?wait= waiters of that change
 * egress:{control}:applied    CHANNEL (pub/sub) the id of each host whose applied state the compiler just folded a report
 *                              into, published by the script that writes it; rule-service re-reads the changes pending on
 *                              that host. A message missed (no subscriber at the time) is caught by the waiters' re-check
 * </pre>
 */
public final class RedisKeys {

    private RedisKeys() {
    }

    /** The claim of the bare network log id {@code name} (see {@code NetworkIds}): the tenant that holds it. */
    public static String nameClaim(String name) {
        return "egress:name:{" + name + "}";
    }

    public static String hostFragments(String hostId) {
        return "egress:host:{" + hostId + "}:fragments";
    }

    public static String hostVersions(String hostId) {
        return "egress:host:{" + hostId + "}:versions";
    }

    public static String hostApplied(String hostId) {
        return "egress:host:{" + hostId + "}:applied";
    }

    public static String hostInterfaces(String hostId) {
        return "egress:host:{" + hostId + "}:interfaces";
    }

    /**
     * The value of a {@link #hostInterfaces} field: {@code networkId/vmId}. Ids never contain
     * {@code /}, so the first one splits it.
     */
    public static String interfaceHolder(String networkId, String vmId) {
        return networkId + "/" + vmId;
    }

    public static String hosts() {
        return "egress:hosts";
    }

    /**
     * Every host id with an applied state ({@link #hostApplied}), so that a check of every host that
     * reports is one SMEMBERS instead of a SCAN of the keyspace. Written with the applied state.
     */
    public static String appliedHosts() {
        return "egress:applied-hosts";
    }

    /**
     * Every network id with a view hash ({@link #network}), deleted networks' too (a deleted network's
     * hash keeps its version and an empty json): what a rebuild must drop, without a SCAN.
     */
    public static String views() {
        return "egress:views";
    }

    /**
     * The change ids whose status ({@link #change}) may still be held, scored by when it expires (epoch
     * seconds): bounded as the statuses are, since each write trims what has expired.
     */
    public static String changeExpiry() {
        return "egress:change-expiry";
    }

    /**
     * Every network id that has a view (the union of the tenants' {@link #tenantNetworks} sets), so that
     * an operator's list of all networks is one SMEMBERS instead of a SCAN of the keyspace.
     */
    public static String networks() {
        return "egress:networks";
    }

    public static String network(String networkId) {
        return "egress:network:{" + networkId + "}";
    }

    public static String tenantNetworks(String tenantId) {
        return "egress:tenant:" + tenantId + ":networks";
    }

    public static String change(String changeId) {
        return "egress:change:" + changeId;
    }

    public static String checkpoint(int partition) {
        return "egress:checkpoint:" + partition;
    }

    /**
     * The fencing epoch of one partition of the network events log: bumped by each compiler that takes
     * the partition over; a write carrying an older epoch is refused (docs/architecture.md, "Fencing").
     */
    public static String epoch(int partition) {
        return "egress:epoch:" + partition;
    }

    /** The Redis generation marker (absent or changed: Redis was emptied or restarted empty). */
    public static String generation() {
        return "egress:{control}:generation";
    }

    /** Partitions whose state the compiler is rebuilding from the log (field: partition number). */
    public static String rebuilding() {
        return "egress:{control}:rebuilding";
    }

    /**
     * The pub/sub channel on which the compiler announces each change record it writes (message: the
     * change id), in the same script as the write. Not a key: nothing is stored under it.
     */
    public static String changesChannel() {
        return "egress:{control}:changes";
    }

    /**
     * The pub/sub channel on which the compiler announces each host whose applied state it wrote from an
     * enforcement report (message: the host id), in the same script as the write.
     */
    public static String appliedChannel() {
        return "egress:{control}:applied";
    }

    /** Every key the product writes starts with this, so a rebuild can drop exactly them. */
    public static final String PREFIX = "egress:";
}
