package io.egressctl.compiler.compile;

import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.VmPlacement;
import io.egressctl.core.state.NetworkState;
import io.egressctl.events.NetworkSpec;
import io.egressctl.events.RuleSpec;
import io.egressctl.schemas.mapping.EventMapper;
import tools.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The compiler's state for one partition of the network events log at one offset: where to resume
 * and the full state of every network of that partition. Written after the batch it covers was
 * stored and published, so a restore plus the log from this offset equals a full replay.
 * Network definitions and rules are kept as base64 Avro single-object encodings of the contract
 * records, so nothing is lost in translation (explicit actions, priorities, descriptions).
 *
 * @param topic  the topic the offset is in ({@code egress.network-events}): a checkpoint of another
 *               topic, or of 0.1's two topics (no such field), is not restored
 * @param offset next offset to read in that topic's partition
 * @param format {@link #FORMAT} when written; a checkpoint of an earlier format is not restored
 */
record Checkpoint(String topic, long offset, List<NetworkEntry> networks, int format) {

    /**
     * 2: a deleted network holds no placements. A checkpoint written before (no format, read as 0) may
     * hold the VMs of a deleted network, which a replay of the log no longer keeps: restoring it would
     * make the state from the checkpoint differ from a replay, so such a partition replays the log from
     * the beginning instead (once, after the upgrade).
     */
    static final int FORMAT = 2;

    /** A checkpoint of the current format. */
    Checkpoint(String topic, long offset, List<NetworkEntry> networks) {
        this(topic, offset, networks, FORMAT);
    }

    /** One network's state; {@code position} is the network's version (offset + 1 of its last event). */
    record NetworkEntry(String networkId, String network, List<String> rules, List<VmEntry> vms,
                        Map<String, String> idempotencyKeys, long configVersion, long position) {
    }

    /** One VM placement; interface and MAC absent (null) in checkpoints written before they were kept. */
    record VmEntry(String vmId, String hostId, String ipv4, String ipv6, String interfaceName, String mac) {
    }

    private static final JsonMapper JSON = JsonMapper.builder().build();

    static NetworkEntry of(NetworkState s) {
        List<String> rules = new ArrayList<>();
        for (EgressRule r : s.rules().values()) {
            rules.add(encode(bytes(EventMapper.toAvro(r))));
        }
        List<VmEntry> vms = new ArrayList<>();
        for (VmPlacement p : s.vms().values()) {
            vms.add(new VmEntry(p.vmId(), p.hostId(), p.ipv4(), p.ipv6(), p.interfaceName(), p.mac()));
        }
        String network = s.network() == null ? null : encode(bytes(EventMapper.toAvro(s.network())));
        return new NetworkEntry(s.networkId(), network, rules, vms, new LinkedHashMap<>(s.idempotencyKeys()),
                s.configVersion(), s.position());
    }

    static NetworkState restore(NetworkEntry e) {
        try {
            Map<String, EgressRule> rules = new LinkedHashMap<>();
            for (String r : e.rules()) {
                EgressRule rule = EventMapper.fromAvro(RuleSpec.fromByteBuffer(ByteBuffer.wrap(Base64.getDecoder().decode(r))));
                rules.put(rule.ruleId(), rule);
            }
            Map<String, VmPlacement> vms = new LinkedHashMap<>();
            for (VmEntry v : e.vms()) {
                vms.put(v.vmId(), new VmPlacement(v.vmId(), e.networkId(), v.hostId(), v.interfaceName(), v.mac(), v.ipv4(), v.ipv6()));
            }
            var network = e.network() == null ? null
                    : EventMapper.fromAvro(NetworkSpec.fromByteBuffer(ByteBuffer.wrap(Base64.getDecoder().decode(e.network()))));
            return NetworkState.restore(e.networkId(), network, rules, vms, e.idempotencyKeys(), e.configVersion(),
                    e.position());
        } catch (IOException ex) {
            throw new UncheckedIOException("corrupt checkpoint for network " + e.networkId(), ex);
        }
    }

    String toJson() {
        return JSON.writeValueAsString(this);
    }

    /** One network's entry as JSON: what {@link #toJson(String, long, List)} joins. */
    static String entryJson(NetworkState s) {
        return JSON.writeValueAsString(of(s));
    }

    /**
     * The JSON of a checkpoint of the current format from its entries already written as JSON
     * ({@link #entryJson}): the same document as {@link #toJson()} of the same checkpoint, built without
     * encoding again the networks that did not change (the pipeline keeps their entries between
     * checkpoints; encoding every rule of every network each time cost a partition of 333 networks about
     * 0.2 s of the consumer thread).
     */
    static String toJson(String topic, long offset, List<String> entries) {
        int size = 64 + topic.length();
        for (String e : entries) {
            size += e.length() + 1;
        }
        StringBuilder sb = new StringBuilder(size);
        sb.append("{\"topic\":").append(JSON.writeValueAsString(topic)).append(",\"offset\":").append(offset).append(",\"networks\":[");
        for (int i = 0; i < entries.size(); i++) {
            if (i > 0) {
                sb.append(',');
            }
            sb.append(entries.get(i));
        }
        return sb.append("],\"format\":").append(FORMAT).append('}').toString();
    }

    /**
     * The checkpoint in {@code json} if it was written for {@code topic} in the current {@link #FORMAT};
     * empty for one of another topic, of 0.1's format (offsets of two topics) or of an earlier format,
     * which cannot be resumed from.
     */
    static Optional<Checkpoint> fromJson(String json, String topic) {
        var tree = JSON.readTree(json);
        if (!tree.has("topic") || !topic.equals(tree.get("topic").asString())) {
            return Optional.empty();
        }
        if (!tree.has("format") || tree.get("format").asInt() != FORMAT) {
            return Optional.empty();
        }
        return Optional.of(JSON.treeToValue(tree, Checkpoint.class));
    }

    private static String encode(ByteBuffer b) {
        byte[] bytes = new byte[b.remaining()];
        b.get(bytes);
        return Base64.getEncoder().encodeToString(bytes);
    }

    private static ByteBuffer bytes(RuleSpec rule) {
        try {
            return rule.toByteBuffer();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static ByteBuffer bytes(NetworkSpec network) {
        try {
            return network.toByteBuffer();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
