package io.egressctl.schemas.integrity;

import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.model.Action;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.mapping.EventMapper;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.Base64;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class UpdateMacTest {

    static final String K1 = Base64.getEncoder().encodeToString("0123456789abcdef0123456789abcdef".getBytes());
    static final String K2 = Base64.getEncoder().encodeToString("fedcba9876543210fedcba9876543210".getBytes());
    static final UpdateMac SIGNER = new UpdateMac(UpdateKeys.parse("k1:" + K1, null));

    static FragmentUpdate update(int port) {
        Fragment f = new Fragment("net-1", DefaultPolicy.ALLOW, List.of(new VmAddress("vm-1", "tap-1", null, "10.1.1.10", null)),
                List.of(new CompiledRule("r-1", Action.DENY, 1000, Protocol.TCP, List.of("vm-1"), List.of(), List.of(),
                        PortRange.single(port), null)));
        return new FragmentUpdate("host-1", "net-1", 7, f, f.hash(), List.of("c-1"));
    }

    static HostUpdate avro(FragmentUpdate u) {
        return EventMapper.toAvro(u, Instant.parse("2026-01-01T00:00:00Z"));
    }

    static void verify(UpdateMac mac, HostUpdate h) throws Exception {
        mac.verify(h, EventMapper.fromAvro(h));
    }

    @Test
    void aSignedUpdateVerifiesAndTheMacIsDeterministic() throws Exception {
        HostUpdate a = SIGNER.sign(avro(update(80)));
        HostUpdate b = SIGNER.sign(avro(update(80)));
        assertThat(a.getMac()).startsWith("hmac-sha256:k1:").isEqualTo(b.getMac());
        verify(SIGNER, a);
        // It survives the single-object encoding the snapshot stores.
        ByteBuffer bytes = a.toByteBuffer();
        verify(SIGNER, HostUpdate.fromByteBuffer(bytes));
    }

    @Test
    void unsignedForgedAndAlteredUpdatesAreRefusedWithTheReason() throws Exception {
        HostUpdate unsigned = avro(update(80));
        assertThatThrownBy(() -> verify(SIGNER, unsigned)).hasMessageContaining("not signed");

        UpdateMac other = new UpdateMac(UpdateKeys.parse("k1:" + K2, null));
        HostUpdate forged = other.sign(avro(update(80))); // right key id, wrong secret
        assertThatThrownBy(() -> verify(SIGNER, forged)).hasMessageContaining("MAC does not match");

        HostUpdate higher = SIGNER.sign(avro(update(80)));
        higher.setVersion(999_999); // a replayed record with a version bumped to block later ones
        assertThatThrownBy(() -> verify(SIGNER, higher)).hasMessageContaining("MAC does not match");

        HostUpdate swapped = SIGNER.sign(avro(update(80)));
        swapped.setFragment(avro(update(443)).getFragment()); // another fragment under the signed hash
        assertThatThrownBy(() -> verify(SIGNER, swapped)).hasMessageContaining("does not hash to the signed fragmentHash");

        HostUpdate unknownKey = new UpdateMac(UpdateKeys.parse("k9:" + K1, null)).sign(avro(update(80)));
        assertThatThrownBy(() -> verify(SIGNER, unknownKey)).hasMessageContaining("signed with key k9");

        HostUpdate garbled = avro(update(80));
        garbled.setMac("hmac-sha256:k1:!!!");
        assertThatThrownBy(() -> verify(SIGNER, garbled)).hasMessageContaining("not base64url");
        garbled.setMac("rot13:whatever");
        assertThatThrownBy(() -> verify(SIGNER, garbled)).hasMessageContaining("unknown MAC scheme");
    }

    @Test
    void rotationAgentsHoldingOldAndNewKeysAcceptBoth() throws Exception {
        UpdateMac agent = new UpdateMac(UpdateKeys.parse("k1:" + K1 + ",k2:" + K2, null));
        UpdateMac newCompiler = new UpdateMac(UpdateKeys.parse("k1:" + K1 + ",k2:" + K2, "k2"));
        verify(agent, SIGNER.sign(avro(update(80))));
        HostUpdate byNew = newCompiler.sign(avro(update(80)));
        assertThat(byNew.getMac()).startsWith("hmac-sha256:k2:");
        verify(agent, byNew);
        assertThatThrownBy(() -> verify(SIGNER, byNew)).as("an agent without k2 yet refuses it").hasMessageContaining("k2");
    }

    @Test
    void withoutKeysNothingIsSignedOrChecked() throws Exception {
        UpdateMac none = new UpdateMac(UpdateKeys.NONE);
        HostUpdate h = none.sign(avro(update(80)));
        assertThat(h.getMac()).isNull();
        verify(none, h);
    }

    @Test
    void badKeySpecificationsAreRefusedWithoutPrintingSecrets() {
        assertThatThrownBy(() -> UpdateKeys.parse("k1", null)).hasMessageContaining("not <keyId>:<base64 secret>");
        assertThatThrownBy(() -> UpdateKeys.parse("k1:" + Base64.getEncoder().encodeToString("short".getBytes()), null))
                .hasMessageContaining("at least 32");
        assertThatThrownBy(() -> UpdateKeys.parse("k 1:" + K1, null)).hasMessageContaining("key id must be");
        assertThatThrownBy(() -> UpdateKeys.parse("k1:%%%", null)).hasMessageContaining("not base64");
        assertThatThrownBy(() -> UpdateKeys.parse("k1:" + K1 + ",k1:" + K2, null)).hasMessageContaining("given twice");
        assertThatThrownBy(() -> UpdateKeys.parse("k1:" + K1, "k2")).hasMessageContaining("not among the keys");
        assertThatThrownBy(() -> UpdateKeys.parse("", "k2")).hasMessageContaining("no keys are given");
        assertThat(UpdateKeys.parse("k1:" + K1, null).toString()).doesNotContain(K1);
    }
}
