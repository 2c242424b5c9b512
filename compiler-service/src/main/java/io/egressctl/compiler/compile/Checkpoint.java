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

/**
 * The compiler's state for one input partition at a pair of offsets: where to resume in each input
 * topic and the full state of every network of that partition. Written after the batch it covers
 * was stored and published, so a restore plus the log from these offsets equals a full replay.
 * Network definitions and rules are kept as base64 Avro single-object encodings of the contract
 * records, so nothing is lost in translation (explicit actions, priorities, descriptions).
 *
 * @param ruleOffset     next offset to read in egress.rule-events for this partition
 * @param workloadOffset next offset to read in egress.workload-events for this partition
 */
record Checkpoint(long ruleOffset, long workloadOffset, List<NetworkEntry> networks) {

    /** One network's state. */
    record NetworkEntry(String networkId, String network, List<String> rules, List<VmEntry> vms,
                        Map<String, String> idempotencyKeys, long configVersion, long rulePosition, long workloadPosition) {
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
                s.configVersion(), s.rulePosition(), s.workloadPosition());
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
                    e.rulePosition(), e.workloadPosition());
        } catch (IOException ex) {
            throw new UncheckedIOException("corrupt checkpoint for network " + e.networkId(), ex);
        }
    }

    String toJson() {
        return JSON.writeValueAsString(this);
    }

    static Checkpoint fromJson(String json) {
        return JSON.readValue(json, Checkpoint.class);
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
