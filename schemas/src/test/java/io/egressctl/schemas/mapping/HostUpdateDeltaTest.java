package io.egressctl.schemas.mapping;

import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.FragmentDelta;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.model.Action;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.core.validation.ValidationException;
import io.egressctl.events.HostUpdate;
import io.egressctl.schemas.integrity.UpdateKeys;
import io.egressctl.schemas.integrity.UpdateMac;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** A host update carrying its fragment as a rule-keyed delta: its Avro form, how it is read back, and its signature. */
class HostUpdateDeltaTest {

    static final Instant T = Instant.parse("2026-01-01T00:00:00Z");
    static final UpdateMac SIGNER = new UpdateMac(UpdateKeys.parse("k1:"
            + Base64.getEncoder().encodeToString("0123456789abcdef0123456789abcdef".getBytes()), null));

    static CompiledRule rule(String id, int port) {
        return new CompiledRule(id, Action.DENY, 1000, Protocol.TCP, List.of("vm-1"), List.of(), List.of(), PortRange.single(port), null);
    }

    /** A network of {@code rules} rules, one of them ({@code r-0}) on {@code port}. */
    static Fragment fragment(int rules, int port) {
        List<CompiledRule> list = new ArrayList<>();
        for (int i = 0; i < rules; i++) {
            list.add(rule("r-" + i, i == 0 ? port : 1000 + i));
        }
        list.sort(java.util.Comparator.comparingInt(CompiledRule::priority).thenComparing(CompiledRule::ruleId));
        return new Fragment("net-1", DefaultPolicy.ALLOW, List.of(new VmAddress("vm-1", "tap-1", null, "10.1.1.10", null)), list);
    }

    static FragmentUpdate update(long version, Fragment f) {
        return new FragmentUpdate("host-1", "net-1", version, f, f.hash(), List.of("c-" + version));
    }

    @Test
    void aDeltaUpdateSurvivesItsEncodingAndResolvesAgainstItsBaseToTheSignedFragment() throws Exception {
        Fragment base = fragment(1_000, 80);
        Fragment next = fragment(1_000, 81);
        FragmentUpdate u = update(8, next);
        HostUpdate delta = SIGNER.sign(EventMapper.toAvroDelta(u, FragmentDelta.between(7, base, next), T));
        HostUpdate whole = SIGNER.sign(EventMapper.toAvro(u, T));

        HostUpdate read = HostUpdate.fromByteBuffer(ByteBuffer.wrap(delta.toByteBuffer().array()));
        assertThat(EventMapper.isDelta(read)).isTrue();
        assertThat(read.getFragment()).isNull();
        FragmentDelta d = EventMapper.deltaFromAvro(read);
        assertThat(d.baseVersion()).isEqualTo(7);
        assertThat(d.upserts()).extracting(CompiledRule::ruleId).containsExactly("r-0");
        FragmentUpdate resolved = EventMapper.resolve(read, d, base);
        assertThat(resolved.fragment()).isEqualTo(next);
        SIGNER.verify(read, resolved);
        // One rule of 1,000 changed: the delta is a small part of the whole update.
        assertThat(delta.toByteBuffer().remaining()).isLessThan(whole.toByteBuffer().remaining() / 20);
        // The same fields are signed, so both forms carry the same MAC.
        assertThat(read.getMac()).isEqualTo(whole.getMac());
    }

    @Test
    void aDeltaAppliedToAnotherBaseDoesNotVerify_theResultIsNotTheSignedFragment() throws Exception {
        Fragment base = fragment(10, 80);
        FragmentUpdate u = update(8, fragment(10, 81));
        HostUpdate delta = SIGNER.sign(EventMapper.toAvroDelta(u, FragmentDelta.between(7, base, u.fragment()), T));

        FragmentUpdate wrong = EventMapper.resolve(delta, EventMapper.deltaFromAvro(delta), fragment(9, 80));

        assertThat(wrong.fragment().hash()).isNotEqualTo(delta.getFragmentHash());
        assertThatThrownBy(() -> SIGNER.verify(delta, wrong)).isInstanceOf(UpdateMac.RefusedUpdateException.class)
                .hasMessageContaining("does not hash to the signed fragmentHash");
    }

    @Test
    void aDeltaIsNeverReadAsAWholeUpdate_norAnUpdateWithoutFragmentAsARemoval() {
        Fragment base = fragment(3, 80);
        HostUpdate delta = EventMapper.toAvroDelta(update(8, fragment(3, 81)), FragmentDelta.between(7, base, fragment(3, 81)), T);
        assertThatThrownBy(() -> EventMapper.fromAvro(delta)).isInstanceOf(ValidationException.class).hasMessageContaining("delta against v7");

        HostUpdate neither = EventMapper.toAvro(update(9, base), T);
        neither.setFragment(null);
        assertThatThrownBy(() -> EventMapper.fromAvro(neither)).isInstanceOf(ValidationException.class)
                .hasMessageContaining("no removal and carries no fragment");
    }

    @Test
    void aDeltaIsValidatedAsAFragmentIs_badAddressRemovalOfAnUnknownRuleMarkedRemoval() {
        Fragment base = fragment(3, 80);
        HostUpdate bad = EventMapper.toAvroDelta(update(8, fragment(3, 81)), FragmentDelta.between(7, base, fragment(3, 81)), T);
        bad.getDelta().getVms().get(0).setIpv4("10.1.1.0/24");
        assertThatThrownBy(() -> EventMapper.deltaFromAvro(bad)).isInstanceOf(ValidationException.class).hasMessageContaining("ipv4");

        HostUpdate unknown = EventMapper.toAvroDelta(update(8, base), new FragmentDelta(7, DefaultPolicy.ALLOW, base.vms(), false,
                List.of(), List.of("r-9")), T);
        assertThatThrownBy(() -> EventMapper.resolve(unknown, EventMapper.deltaFromAvro(unknown), base))
                .isInstanceOf(ValidationException.class).hasMessageContaining("r-9");

        HostUpdate removal = EventMapper.toAvroDelta(update(8, base), FragmentDelta.between(7, base, base), T);
        removal.setTombstone(true);
        assertThatThrownBy(() -> EventMapper.deltaFromAvro(removal)).isInstanceOf(ValidationException.class)
                .hasMessageContaining("removal carries no delta");
        assertThatThrownBy(() -> EventMapper.toAvroDelta(new FragmentUpdate("host-1", "net-1", 9, null, "", List.of()),
                FragmentDelta.between(7, base, base), T)).isInstanceOf(IllegalArgumentException.class);
    }
}
