package io.egressctl.schemas.mapping;

import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.FragmentSize;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.model.Action;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.IcmpMatch;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.core.state.Limits;
import io.egressctl.events.HostUpdate;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificDatumWriter;
import org.apache.avro.specific.SpecificRecord;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link FragmentSize} against Avro itself: worst-case fragments (longest ids, 256-entry IPv6
 * destination and exception lists, every VM of the host covered, non-ASCII text) encode to exactly
 * the size it computes, and a HostUpdate whose fragment is at the operator's default budget, with the
 * largest envelope a batch can give it, fits in Kafka's default record limit of 1 MiB.
 */
class FragmentSizeTest {

    /** Kafka's default {@code max.request.size} and broker {@code message.max.bytes} (about 1 MiB). */
    static final int KAFKA_RECORD_LIMIT = 1_048_576;

    static byte[] encode(SpecificRecord r) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        BinaryEncoder e = EncoderFactory.get().binaryEncoder(out, null);
        @SuppressWarnings("unchecked")
        SpecificDatumWriter<SpecificRecord> w = new SpecificDatumWriter<>((Class<SpecificRecord>) r.getClass());
        w.write(r, e);
        e.flush();
        return out.toByteArray();
    }

    static String id(String prefix, int i) {
        String s = prefix + i + "-";
        return (s + "x".repeat(64)).substring(0, 64);
    }

    static List<VmAddress> vms(int n) {
        List<VmAddress> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(new VmAddress(id("vm", i), "tap-0123456789a", "52:54:00:12:34:56", "255.255.255.255",
                    "fd12:3456:789a:bcde:f012:3456:789a:" + Integer.toHexString(0x1000 + i)));
        }
        return out;
    }

    /** The largest rule a tenant can write: 64-character id, 256 IPv6 destinations and 256 exceptions, all with long text. */
    static CompiledRule worstRule(int index, List<String> vmIds) {
        List<Cidr> dest = new ArrayList<>();
        List<Cidr> except = new ArrayList<>();
        for (int i = 0; i < 256; i++) {
            dest.add(Cidr.parse("fd12:3456:789a:bcde:f012:3456:" + Integer.toHexString(0x1000 + i) + ":0/112"));
            except.add(Cidr.parse("fd12:3456:789a:bcde:f012:3456:" + Integer.toHexString(0x1000 + i) + ":ffff/128"));
        }
        return new CompiledRule(id("rule", index), Action.ALLOW, Integer.MAX_VALUE, Protocol.ICMPV6, vmIds, dest, except, null,
                new IcmpMatch(255, 255));
    }

    static CompiledRule typicalRule(int index, List<String> vmIds) {
        return new CompiledRule(java.util.UUID.nameUUIDFromBytes(new byte[] {(byte) index}).toString(), Action.DENY, 1000, Protocol.TCP,
                vmIds, List.of(), List.of(), new PortRange(1024, 65535), null);
    }

    @Test
    void theComputedSizeIsTheEncodedSizeByteForByte() throws IOException {
        List<VmAddress> vms = vms(40);
        List<String> ids = vms.stream().map(VmAddress::vmId).toList();
        List<CompiledRule> rules = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            rules.add(worstRule(i, ids));
            rules.add(typicalRule(i, ids.subList(0, 1 + i)));
        }
        rules.add(new CompiledRule("r-neg", Action.DENY, -5, Protocol.ICMP, List.of("vm-\u00e9t\u00e9-\u4e2d-\ud83d\ude00"), List.of(), List.of(),
                null, new IcmpMatch(-1, -1)));
        List<VmAddress> withUnicode = new ArrayList<>(vms);
        withUnicode.add(new VmAddress("vm-\u00e9t\u00e9-\u4e2d-\ud83d\ude00", null, null, null, null));
        for (Fragment f : List.of(new Fragment("net-1", DefaultPolicy.DENY, withUnicode, rules, true),
                new Fragment("net-1", DefaultPolicy.ALLOW, List.of(), List.of(), false),
                new Fragment("net-1", DefaultPolicy.ALLOW, vms(1), List.of(typicalRule(1, List.of(id("vm", 0)))), false))) {
            assertThat(FragmentSize.bound(f)).as("%d vms, %d rules", f.vms().size(), f.rules().size())
                    .isEqualTo(encode(EventMapper.toAvro(f)).length);
        }
    }

    @Test
    void aHostUpdateAtTheDefaultBudgetFitsInAKafkaRecord() throws IOException {
        // A fragment grown to the budget: typical rules covering 20 VMs each, until the next one would not fit.
        List<VmAddress> vms = vms(20);
        List<String> ids = vms.stream().map(VmAddress::vmId).toList();
        List<CompiledRule> rules = new ArrayList<>();
        Fragment f = new Fragment("n".repeat(64), DefaultPolicy.ALLOW, vms, rules, false);
        while (true) {
            List<CompiledRule> next = new ArrayList<>(rules);
            next.add(worstRule(next.size(), ids));
            Fragment bigger = new Fragment(f.networkId(), f.defaultPolicy(), vms, next, false);
            if (FragmentSize.bound(bigger) > Limits.DEFAULT_FRAGMENT_BYTES) {
                break;
            }
            rules = next;
            f = bigger;
        }
        // The largest envelope: 64-character ids, a batch's worth of change ids (500 records a poll).
        List<String> changeIds = new ArrayList<>();
        for (int i = 0; i < 500; i++) {
            changeIds.add(java.util.UUID.randomUUID().toString());
        }
        HostUpdate update = EventMapper.toAvro(new FragmentUpdate("h".repeat(64), f.networkId(), Long.MAX_VALUE, f, "a".repeat(64), changeIds),
                Instant.ofEpochMilli(Long.MAX_VALUE));
        int valueBytes = 5 + encode(update).length; // schema-registry wire format: magic byte and schema id
        int recordOverhead = 64 /* key */ + 200 /* record and batch headers, generously */;
        assertThat(FragmentSize.bound(f)).isLessThanOrEqualTo(Limits.DEFAULT_FRAGMENT_BYTES);
        assertThat(valueBytes + recordOverhead).as("a HostUpdate at the budget").isLessThan(KAFKA_RECORD_LIMIT);
        long worstRule = FragmentSize.bound(worstRule(0, ids));
        long typical = FragmentSize.bound(typicalRule(0, ids));
        System.out.printf("fragment budget %d B: %d worst-case rules (%d B each, 20 VMs covered) fit; a typical rule covering 20 VMs "
                        + "is %d B (%d fit); HostUpdate at the budget %d B%n", Limits.DEFAULT_FRAGMENT_BYTES, rules.size(), worstRule,
                typical, Limits.DEFAULT_FRAGMENT_BYTES / typical, valueBytes);
    }
}
