package io.egressctl.rules.api;

import io.egressctl.core.validation.ValidationException;
import io.egressctl.core.validation.Violation;
import io.egressctl.schemas.view.NetworkView;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

/** Every answer a placement body can get before anything is published: 422s naming the field, INTERFACE_IN_USE, or a placement. */
class PlacementsTest {

    private static Requests.PlacementRequest body(String iface, String mac) {
        return new Requests.PlacementRequest("host-1", iface, mac, "10.0.0.11", null);
    }

    private static List<Violation> refused(Requests.PlacementRequest body) {
        ValidationException e = catchThrowableOfType(ValidationException.class, () -> Placements.validate("net-a", "vm-1", body));
        assertThat(e).as("refused: %s", body).isNotNull();
        return e.violations();
    }

    private static Violation refusedField(Requests.PlacementRequest body, String field) {
        List<Violation> v = refused(body);
        assertThat(v).as("violations of %s", body).extracting(Violation::field).containsExactly(field);
        return v.get(0);
    }

    @Test
    void aValidPlacementCarriesItsInterfaceAndTheCanonicalMac() {
        Placements.Placement p = Placements.validate("net-a", "vm-1",
                new Requests.PlacementRequest("host-1", "tap-a1", "52-54-00-AB-CD-EF", "10.0.0.11", "fd00:0::11"));
        assertThat(p).isEqualTo(new Placements.Placement("net-a", "vm-1", "host-1", "tap-a1", "52:54:00:ab:cd:ef", "10.0.0.11", "fd00::11"));
        assertThat(p.holder()).isEqualTo("net-a/vm-1");
        assertThat(Placements.validate("net-a", "vm-1", body("vnet12", null)).mac()).isNull();
        assertThat(Placements.validate("net-a", "vm-1", body("a23456789012345", null)).interfaceName()).hasSize(15);
        assertThat(Placements.validate("net-a", "vm-1", body("eth0.100_x-y", null)).interfaceName()).isEqualTo("eth0.100_x-y");
    }

    @Test
    void aMissingInterfaceNameIsRefused() {
        assertThat(refusedField(body(null, null), "interfaceName").reason()).startsWith("is required");
        assertThat(refusedField(body("", null), "interfaceName").reason()).startsWith("is required");
    }

    @Test
    void anInterfaceNameOf16CharactersIsRefused() {
        assertThat(refusedField(body("a234567890123456", null), "interfaceName").reason())
                .isEqualTo("'a234567890123456' is 16 characters long; Linux interface names have at most 15");
    }

    @Test
    void anInterfaceNameWithASlashIsRefused() {
        assertThat(refusedField(body("tap/1", null), "interfaceName").reason()).contains("contains '/'");
    }

    @Test
    void anInterfaceNameWithASpaceIsRefused() {
        assertThat(refusedField(body("tap 1", null), "interfaceName").reason()).contains("contains a space");
    }

    @Test
    void dotAndDotDotAreNoInterfaceNames() {
        assertThat(refusedField(body(".", null), "interfaceName").reason()).isEqualTo("'.' is not a valid interface name");
        assertThat(refusedField(body("..", null), "interfaceName").reason()).isEqualTo("'..' is not a valid interface name");
    }

    @Test
    void otherCharactersAreRefusedToo() {
        assertThat(refusedField(body("tap\"1", null), "interfaceName").reason()).contains("contains '\"'");
        assertThat(refusedField(body("tap\n1", null), "interfaceName").reason()).contains("contains a control character");
        assertThat(refusedField(body("täp1", null), "interfaceName").reason()).contains("contains 'ä'");
    }

    @Test
    void aMulticastMacIsRefused() {
        assertThat(refusedField(body("tap-a1", "01:00:5e:00:00:01"), "mac").reason()).contains("is a multicast address");
        assertThat(refusedField(body("tap-a1", "ff:ff:ff:ff:ff:ff"), "mac").reason()).contains("is a multicast address");
        assertThat(refusedField(body("tap-a1", "00:00:00:00:00:00"), "mac").reason()).contains("all-zero");
    }

    @Test
    void aMacOfTheWrongLengthIsRefused() {
        assertThat(refusedField(body("tap-a1", "52:54:00:ab:cd"), "mac").reason()).contains("is not a MAC address");
        assertThat(refusedField(body("tap-a1", "52:54:00:ab:cd:ef:01"), "mac").reason()).contains("is not a MAC address");
    }

    @Test
    void aMacWithNonHexDigitsIsRefused() {
        assertThat(refusedField(body("tap-a1", "52:54:00:ab:cd:eg"), "mac").reason()).contains("is not a MAC address");
        assertThat(refusedField(body("tap-a1", "52:54-00:ab:cd:ef"), "mac").reason()).contains("is not a MAC address");
    }

    @Test
    void everyViolationIsNamedAtOnce() {
        List<Violation> v = refused(new Requests.PlacementRequest("bad host", "tap/1", "xx", null, null));
        assertThat(v).extracting(Violation::field).containsExactly("hostId", "interfaceName", "mac", "ipv4");
        assertThat(refused(new Requests.PlacementRequest("host-1", "tap-a", null, "10.0.0.0/24", "10.0.0.1")))
                .extracting(Violation::field).containsExactly("ipv4", "ipv6");
    }

    @Test
    void anAddressOutsideTheGuestCidrIsRefused() {
        Placements.Placement p = Placements.validate("net-a", "vm-1", new Requests.PlacementRequest("host-1", "tap-a", null, "10.9.0.1", null));
        ValidationException e = catchThrowableOfType(ValidationException.class, () -> Placements.requireInsideGuestCidr(p, view("net-a", Map.of())));
        assertThat(e.violations()).extracting(Violation::field).containsExactly("ipv4");
        assertThatCode(() -> Placements.requireInsideGuestCidr(p, null)).doesNotThrowAnyException();
    }

    // ---- interface claims ----

    private static final Map<String, NetworkView> VIEWS = new HashMap<>();

    private static NetworkView view(String networkId, Map<String, NetworkView.VmView> vms) {
        NetworkView v = new NetworkView(networkId, "acme", "basic", "10.0.0.0/24", null, "allow", false, 1000, 1, 1, Map.of(),
                new TreeMap<>(vms), false);
        VIEWS.put(networkId, v);
        return v;
    }

    @Test
    void aPlacementIsBoundToTheNetworksOwner() {
        assertThat(Placements.owningTenant("net-a", "acme", body("tap-a1", null))).isEqualTo("acme");
        Requests.PlacementRequest named = new Requests.PlacementRequest("host-1", "tap-a1", null, "10.0.0.11", null, "acme");
        assertThat(Placements.owningTenant("net-a", "acme", named)).isEqualTo("acme");
    }

    @Test
    void aPlacementOnANetworkNoTenantCreatedIsRefused404UnlessItNamesTheTenant() {
        ApiException e = catchThrowableOfType(ApiException.class, () -> Placements.owningTenant("net-x", null, body("tap-a1", null)));
        assertThat(e.status().value()).isEqualTo(404);
        Requests.PlacementRequest named = new Requests.PlacementRequest("host-1", "tap-a1", null, "10.0.0.11", null, "acme");
        assertThat(Placements.owningTenant("net-x", null, named)).as("bound: the log decides against the network at its turn")
                .isEqualTo("acme");
    }

    @Test
    void aPlacementNamingAnotherTenantThanTheOwnerIsRefused409TenantMismatch() {
        Requests.PlacementRequest other = new Requests.PlacementRequest("host-1", "tap-a1", null, "10.0.0.11", null, "beta");
        ApiException e = catchThrowableOfType(ApiException.class, () -> Placements.owningTenant("net-a", "acme", other));
        assertThat(e.status().value()).isEqualTo(409);
        assertThat(e.code()).isEqualTo("TENANT_MISMATCH");
        assertThat(e.getMessage()).contains("beta").doesNotContain("acme");
    }

    @Test
    void aMalformedTenantIdInAPlacementIsRefusedNamingTheField() {
        refusedField(new Requests.PlacementRequest("host-1", "tap-a1", null, "10.0.0.11", null, "bad tenant"), "tenantId");
    }

    private static NetworkView.VmView vm(String host, String iface) {
        return new NetworkView.VmView(host, "10.0.0.12", null, iface, null);
    }

    private static Placements.Placement placement(String network, String vm, String host, String iface) {
        return new Placements.Placement(network, vm, host, iface, null, "10.0.0.11", null);
    }

    private static ApiException inUse(Placements.Placement p, NetworkView view, String indexed) {
        return catchThrowableOfType(ApiException.class, () -> Placements.requireInterfaceFree(p, view, indexed,
                id -> Optional.ofNullable(VIEWS.get(id))));
    }

    @Test
    void anInterfaceHeldByAVmOfAnotherNetworkIsRefusedWith422() {
        view("net-b", Map.of("vm-9", vm("host-1", "tap-x")));
        ApiException e = inUse(placement("net-a", "vm-1", "host-1", "tap-x"), view("net-a", Map.of()), "net-b/vm-9");
        assertThat(e).isNotNull();
        assertThat(e.status().value()).isEqualTo(422);
        assertThat(e.code()).isEqualTo("INTERFACE_IN_USE");
        assertThat(e.getMessage()).isEqualTo("interface tap-x on host host-1 belongs to vm vm-9 of network net-b; remove or move that VM first");
        assertThat(e.properties()).containsEntry("hostId", "host-1").containsEntry("interfaceName", "tap-x")
                .containsEntry("heldBy", Map.of("networkId", "net-b", "vmId", "vm-9"));
    }

    @Test
    void anInterfaceHeldByAnotherVmOfTheSameNetworkIsRefused() {
        NetworkView a = view("net-a", Map.of("vm-2", vm("host-1", "tap-x")));
        ApiException e = inUse(placement("net-a", "vm-1", "host-1", "tap-x"), a, null);
        assertThat(e).isNotNull();
        assertThat(e.code()).isEqualTo("INTERFACE_IN_USE");
        assertThat(e.properties()).containsEntry("heldBy", Map.of("networkId", "net-a", "vmId", "vm-2"));
    }

    @Test
    void aVmPlacedAgainOnItsOwnInterfaceIsFine() {
        NetworkView a = view("net-a", Map.of("vm-1", vm("host-1", "tap-x")));
        assertThat(inUse(placement("net-a", "vm-1", "host-1", "tap-x"), a, "net-a/vm-1")).isNull();
    }

    @Test
    void theSameNameOnAnotherHostIsAnotherInterface() {
        NetworkView a = view("net-a", Map.of("vm-2", vm("host-2", "tap-x")));
        assertThat(inUse(placement("net-a", "vm-1", "host-1", "tap-x"), a, null)).isNull();
    }

    @Test
    void aClaimTheHoldersViewNoLongerShowsDoesNotBlock() {
        // The index names net-b/vm-9, but net-b's view has vm-9 elsewhere (moved) or not at all:
        // a leftover claim, not a holder.
        view("net-b", Map.of("vm-9", vm("host-2", "tap-x")));
        assertThat(inUse(placement("net-a", "vm-1", "host-1", "tap-x"), view("net-a", Map.of()), "net-b/vm-9")).isNull();
        view("net-c", Map.of());
        assertThat(inUse(placement("net-a", "vm-1", "host-1", "tap-x"), view("net-a", Map.of()), "net-c/vm-9")).isNull();
        assertThat(inUse(placement("net-a", "vm-1", "host-1", "tap-x"), view("net-a", Map.of()), "net-gone/vm-9")).isNull();
        // Of its own network the view decides: it is written before the index.
        assertThat(inUse(placement("net-a", "vm-1", "host-1", "tap-x"), view("net-a", Map.of()), "net-a/vm-2")).isNull();
    }

    @Test
    void aMovedVmLeavesItsOldInterfaceFree() {
        // vm-2 moved from host-1/tap-x to host-2/tap-y: its view says so, so host-1/tap-x is free for vm-1.
        NetworkView a = view("net-a", Map.of("vm-2", vm("host-2", "tap-y")));
        assertThat(inUse(placement("net-a", "vm-1", "host-1", "tap-x"), a, null)).isNull();
    }
}
