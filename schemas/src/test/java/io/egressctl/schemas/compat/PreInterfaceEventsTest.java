package io.egressctl.schemas.compat;

import io.egressctl.core.event.WorkloadChange;
import io.egressctl.events.HostUpdate;
import io.egressctl.events.WorkloadEvent;
import io.egressctl.schemas.mapping.EventMapper;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificDatumReader;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Events written with the 0.1.0 schemas, before a placement named the VM's interface, read with the
 * current ones: the interface is null (the agent then reports the VM as not enforced, see
 * docs/architecture.md), nothing else changes.
 */
class PreInterfaceEventsTest {

    private static final SchemaDir V010 = SchemaDir.load(Path.of(SchemaCompatibilityTest.RELEASED.toString(), "0.1.0"));

    private static byte[] write(Schema schema, GenericRecord record) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
        new GenericDatumWriter<GenericRecord>(schema).write(record, enc);
        enc.flush();
        return out.toByteArray();
    }

    private static <T> T read(Schema writer, Class<T> type, byte[] bytes) throws Exception {
        SpecificDatumReader<T> reader = new SpecificDatumReader<>(writer, (Schema) type.getMethod("getClassSchema").invoke(null));
        return reader.read(null, DecoderFactory.get().binaryDecoder(bytes, null));
    }

    @Test
    void aPlacementWrittenBeforeInterfacesDecodesWithoutAnInterfaceAndMapsToOne() throws Exception {
        Schema old = V010.topLevel.get("WorkloadEvent.avsc");
        GenericRecord source = new GenericData.Record(old.getField("source").schema());
        source.put("actor", "compute");
        source.put("tenantId", "ops");
        source.put("requestId", "req-1");
        source.put("eventTime", 1_700_000_000_000L);
        source.put("service", "nova");
        source.put("serviceVersion", "1");
        GenericRecord e = new GenericData.Record(old);
        e.put("eventId", "wl-1");
        e.put("operation", new GenericData.EnumSymbol(old.getField("operation").schema(), "VM_PLACED"));
        e.put("networkId", "net-1");
        e.put("vmId", "vm-1");
        e.put("hostId", "host-1");
        e.put("ipv4", "10.1.1.10");
        e.put("source", source);

        WorkloadEvent decoded = read(old, WorkloadEvent.class, write(old, e));

        assertThat(decoded.getInterfaceName()).isNull();
        assertThat(decoded.getMac()).isNull();
        WorkloadChange c = EventMapper.fromAvro(decoded);
        assertThat(c.interfaceName()).isNull();
        assertThat(c.ipv4()).isEqualTo("10.1.1.10");
        assertThat(c.hostId()).isEqualTo("host-1");
        assertThat(decoded.getNetworkTenantId()).as("an old placement is bound to no tenant").isNull();
        assertThat(c.networkTenantId()).isNull();
    }

    @Test
    void aPlacementBoundToItsTenantKeepsTheTenantThroughTheMapper() {
        WorkloadChange bound = new WorkloadChange("wl-2", WorkloadChange.Operation.VM_PLACED, "net-1", "vm-1", "host-1", null,
                "tap1", null, "10.1.1.10", null, new io.egressctl.core.event.Audit("compute", "ops", "req-1",
                java.time.Instant.ofEpochMilli(1_700_000_000_000L), "nova", "1")).boundTo("acme");
        WorkloadEvent avro = EventMapper.toAvro(bound);
        assertThat(avro.getNetworkTenantId()).isEqualTo("acme");
        assertThat(EventMapper.fromAvro(avro)).isEqualTo(bound);
    }

    @Test
    void aHostUpdateWrittenBeforeInterfacesDecodesToVmsWithoutInterfaceAndNoKeepEstablished() throws Exception {
        Schema old = V010.topLevel.get("HostUpdate.avsc");
        Schema fragmentSchema = old.getField("fragment").schema().getTypes().get(1);
        Schema vmSchema = fragmentSchema.getField("vms").schema().getElementType();
        GenericRecord vm = new GenericData.Record(vmSchema);
        vm.put("vmId", "vm-1");
        vm.put("ipv4", "10.1.1.10");
        GenericRecord fragment = new GenericData.Record(fragmentSchema);
        fragment.put("defaultPolicy", new GenericData.EnumSymbol(fragmentSchema.getField("defaultPolicy").schema(), "ALLOW"));
        fragment.put("vms", List.of(vm));
        fragment.put("rules", List.of());
        GenericRecord u = new GenericData.Record(old);
        u.put("hostId", "host-1");
        u.put("networkId", "net-1");
        u.put("version", 3L);
        u.put("tombstone", false);
        u.put("fragment", fragment);
        u.put("fragmentHash", "x");
        u.put("changeIds", List.of());
        u.put("compiledAt", 1_700_000_000_000L);

        HostUpdate decoded = read(old, HostUpdate.class, write(old, u));

        var f = EventMapper.fromAvro(decoded).fragment();
        assertThat(f.vms()).singleElement().satisfies(v -> {
            assertThat(v.interfaceName()).isNull();
            assertThat(v.ipv4()).isEqualTo("10.1.1.10");
        });
        assertThat(f.keepEstablished()).isFalse();
    }
}
