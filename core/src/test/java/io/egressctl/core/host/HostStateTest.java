package io.egressctl.core.host;

import io.egressctl.core.compile.CompiledRule;
import io.egressctl.core.compile.Fragment;
import io.egressctl.core.compile.FragmentUpdate;
import io.egressctl.core.compile.VmAddress;
import io.egressctl.core.hash.CanonicalHash;
import io.egressctl.core.model.Action;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

class HostStateTest {

    private final HostState host = new HostState("host-1");

    private static Fragment fragment(String networkId, String vmId, int port) {
        return new Fragment(networkId, DefaultPolicy.ALLOW, List.of(new VmAddress(vmId, "10.1.0.5", null)),
                List.of(new CompiledRule("r-" + port, Action.DENY, 1000, Protocol.TCP, List.of(vmId), List.of(), List.of(),
                        PortRange.single(port), null)));
    }

    private static FragmentUpdate update(String hostId, String networkId, long version, Fragment f, String changeId) {
        return new FragmentUpdate(hostId, networkId, version, f, f == null ? "" : f.hash(), List.of(changeId));
    }

    private static FragmentUpdate tombstone(String hostId, String networkId, long version) {
        return update(hostId, networkId, version, null, "c-" + version);
    }

    @Test
    void aNewerFragmentReplacesTheHeldOne() {
        host.offer(update("host-1", "net-a", 3, fragment("net-a", "vm-1", 80), "c-3"));

        assertThat(host.offer(update("host-1", "net-a", 5, fragment("net-a", "vm-1", 443), "c-5"))).isTrue();

        assertThat(host.fragments().get("net-a")).isEqualTo(fragment("net-a", "vm-1", 443));
        assertThat(host.versions()).containsEntry("net-a", 5L);
    }

    @Test
    void aStaleUpdateIsIgnored() {
        host.offer(update("host-1", "net-a", 5, fragment("net-a", "vm-1", 443), "c-5"));

        assertThat(host.offer(update("host-1", "net-a", 4, fragment("net-a", "vm-1", 80), "c-4"))).isFalse();

        assertThat(host.fragments().get("net-a")).isEqualTo(fragment("net-a", "vm-1", 443));
        assertThat(host.versions()).containsEntry("net-a", 5L);
    }

    @Test
    void aDuplicateUpdateIsIgnoredEvenWithOtherContent() {
        FragmentUpdate u = update("host-1", "net-a", 5, fragment("net-a", "vm-1", 443), "c-5");
        assertThat(host.offer(u)).isTrue();
        host.drainChangeIds();

        assertThat(host.offer(u)).isFalse();
        assertThat(host.offer(update("host-1", "net-a", 5, fragment("net-a", "vm-1", 22), "c-other"))).isFalse();

        assertThat(host.fragments().get("net-a")).isEqualTo(fragment("net-a", "vm-1", 443));
        assertThat(host.drainChangeIds()).as("ignored updates bring no change ids").isEmpty();
    }

    @Test
    void aTombstoneRemovesTheFragmentAndAnOlderFragmentArrivingLaterIsIgnored() {
        host.offer(update("host-1", "net-a", 3, fragment("net-a", "vm-1", 80), "c-3"));

        assertThat(host.offer(tombstone("host-1", "net-a", 6))).isTrue();
        assertThat(host.offer(update("host-1", "net-a", 4, fragment("net-a", "vm-1", 80), "c-4"))).isFalse();

        assertThat(host.fragments()).isEmpty();
        assertThat(host.versions()).as("the tombstone's version is remembered").containsEntry("net-a", 6L);
        assertThat(host.liveVersions()).isEmpty();
    }

    @Test
    void aFragmentNewerThanTheTombstoneBringsTheNetworkBack() {
        host.offer(tombstone("host-1", "net-a", 6));

        assertThat(host.offer(update("host-1", "net-a", 7, fragment("net-a", "vm-2", 80), "c-7"))).isTrue();

        assertThat(host.fragments()).containsOnlyKeys("net-a");
        assertThat(host.liveVersions()).containsEntry("net-a", 7L);
    }

    @Test
    void aTombstoneForANetworkNeverHeldChangesNothingButIsRemembered() {
        assertThat(host.offer(tombstone("host-1", "net-a", 2))).isFalse();

        assertThat(host.fragments()).isEmpty();
        assertThat(host.offer(update("host-1", "net-a", 1, fragment("net-a", "vm-1", 80), "c-1"))).isFalse();
    }

    @Test
    void anotherHostsUpdatesAreIgnored() {
        assertThat(host.offer(update("host-2", "net-a", 3, fragment("net-a", "vm-1", 80), "c-3"))).isFalse();
        assertThat(host.offer(tombstone("host-2", "net-b", 4))).isFalse();

        assertThat(host.fragments()).isEmpty();
        assertThat(host.versions()).isEmpty();
        assertThat(host.drainChangeIds()).isEmpty();
    }

    @Test
    void anUpdateWithTheSameContentIsTakenButReportsNoChange() {
        host.offer(update("host-1", "net-a", 3, fragment("net-a", "vm-1", 80), "c-3"));

        assertThat(host.offer(update("host-1", "net-a", 4, fragment("net-a", "vm-1", 80), "c-4"))).isFalse();

        assertThat(host.versions()).containsEntry("net-a", 4L);
    }

    @Test
    void versionsAreKeptPerNetwork() {
        host.offer(update("host-1", "net-a", 10, fragment("net-a", "vm-1", 80), "c-10"));

        assertThat(host.offer(update("host-1", "net-b", 2, fragment("net-b", "vm-9", 80), "c-2"))).isTrue();

        assertThat(host.fragments()).containsOnlyKeys("net-a", "net-b");
        assertThat(host.liveVersions()).containsEntry("net-a", 10L).containsEntry("net-b", 2L);
    }

    @Test
    void changeIdsOfTakenUpdatesAreDrainedOnce() {
        host.offer(update("host-1", "net-a", 3, fragment("net-a", "vm-1", 80), "c-3"));
        host.offer(tombstone("host-1", "net-a", 4));

        assertThat(host.drainChangeIds()).containsExactly("c-3", "c-4");
        assertThat(host.drainChangeIds()).isEmpty();
    }

    @Test
    void theHostHashIsTheCanonicalHashOfTheFragmentHashesByNetwork() {
        Fragment a = fragment("net-a", "vm-1", 80);
        Fragment b = fragment("net-b", "vm-9", 443);
        host.offer(update("host-1", "net-b", 2, b, "c-2"));
        host.offer(update("host-1", "net-a", 5, a, "c-5"));

        TreeMap<String, String> hashes = new TreeMap<>();
        hashes.put("net-a", a.hash());
        hashes.put("net-b", b.hash());
        assertThat(host.hash()).isEqualTo(CanonicalHash.host(hashes))
                .isEqualTo(CanonicalHash.sha256("net-a=" + a.hash() + "\nnet-b=" + b.hash() + "\n"))
                .isEqualTo(HostState.hashOf(new TreeMap<>(host.fragments())));
    }

    @Test
    void theHostHashDependsOnContentNotOnArrivalOrderOrVersions() {
        HostState other = new HostState("host-1");
        host.offer(update("host-1", "net-a", 5, fragment("net-a", "vm-1", 80), "c"));
        host.offer(update("host-1", "net-b", 2, fragment("net-b", "vm-9", 443), "c"));
        other.offer(update("host-1", "net-b", 90, fragment("net-b", "vm-9", 443), "c"));
        other.offer(update("host-1", "net-a", 70, fragment("net-a", "vm-1", 80), "c"));

        assertThat(other.hash()).isEqualTo(host.hash());

        other.offer(update("host-1", "net-a", 71, fragment("net-a", "vm-1", 81), "c"));
        assertThat(other.hash()).isNotEqualTo(host.hash());
    }

    @Test
    void anEmptyHostHashesAsTheHashOfNothing() {
        assertThat(host.hash()).isEqualTo(CanonicalHash.sha256(""));
    }

    @Test
    void theFragmentHashIsTheSha256OfItsCanonicalTextWhichLeavesOutNothingThatIsEnforced() {
        Fragment f = fragment("net-a", "vm-1", 80);

        assertThat(f.hash()).isEqualTo(CanonicalHash.sha256(CanonicalHash.canonical(f))).hasSize(64);
        assertThat(CanonicalHash.canonical(f)).isEqualTo("""
                network=net-a
                policy=ALLOW
                vm=vm-1,10.1.0.5,
                rule=r-80|DENY|1000|TCP|vms=vm-1|dst=[]|except=[]|ports=80-80|icmp=
                """);
        assertThat(new Fragment(f.networkId(), DefaultPolicy.DENY, f.vms(), f.rules()).hash()).isNotEqualTo(f.hash());
    }
}
