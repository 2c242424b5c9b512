package io.egressctl.rules.api;

import io.egressctl.core.validation.Identifiers;
import io.egressctl.core.validation.Interfaces;
import io.egressctl.core.validation.NetworkIds;
import io.egressctl.core.validation.ValidationException;
import io.egressctl.core.validation.Violation;
import io.egressctl.schemas.mapping.EventMapper;
import io.egressctl.schemas.view.NetworkView;
import io.egressctl.schemas.view.RedisKeys;
import org.springframework.http.HttpStatus;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * The checks a placement passes before it is published, without I/O: the body's fields (every
 * violation named with its field), and whether the VM's interface on its host is free. Kept apart
 * from {@link PlacementController} so each answer can be tested on its own.
 */
final class Placements {

    private Placements() {
    }

    /**
     * A placement as the API accepts it: ids checked, the interface name valid, the MAC and addresses
     * in canonical form.
     */
    record Placement(String networkId, String vmId, String hostId, String interfaceName, String mac, String ipv4, String ipv6) {

        /** The value that names this VM in its host's interface index. */
        String holder() {
            return RedisKeys.interfaceHolder(networkId, vmId);
        }
    }

    /**
     * Validates a placement request for VM {@code vmId} of {@code networkId}.
     *
     * @throws ValidationException naming every offending field (422)
     */
    static Placement validate(String networkId, String vmId, Requests.PlacementRequest body) {
        List<Violation> violations = new ArrayList<>();
        check(violations, () -> NetworkIds.requireLogId("networkId", networkId));
        check(violations, () -> Identifiers.require("vmId", vmId));
        check(violations, () -> Identifiers.require("hostId", body.hostId()));
        if (body.tenantId() != null) {
            check(violations, () -> Identifiers.require("tenantId", body.tenantId()));
        }
        String nameReason = interfaceNameReason(body.interfaceName());
        if (nameReason != null) {
            violations.add(new Violation("interfaceName", nameReason));
        }
        String mac = null;
        if (body.mac() != null) {
            mac = Interfaces.canonicalMac(body.mac());
            if (mac == null) {
                violations.add(new Violation("mac", macReason(body.mac())));
            }
        }
        String v4 = null;
        String v6 = null;
        if (body.ipv4() == null && body.ipv6() == null) {
            violations.add(new Violation("ipv4", "a VM needs an IPv4 or IPv6 address"));
        } else {
            v4 = check(violations, () -> EventMapper.address("ipv4", body.ipv4(), true));
            v6 = check(violations, () -> EventMapper.address("ipv6", body.ipv6(), false));
        }
        if (!violations.isEmpty()) {
            throw new ValidationException(violations);
        }
        return new Placement(networkId, vmId, body.hostId(), body.interfaceName(), mac, v4, v6);
    }

    /**
     * The tenant a placement is bound to: the network's owner ({@code owner}: its view's tenant, or
     * before the compiler wrote the view, the tenant that created it, see
     * {@code NetworkNames.tenantOf}). A network no tenant created is answered 404 (a VM placed under an
     * id nobody holds yet would be governed by whoever creates it), unless the request names the
     * tenant; a request naming another tenant than the owner is refused ({@code 409 TENANT_MISMATCH}:
     * the id is now another tenant's network, e.g. deleted and created again). The event carries the
     * tenant, so the log decides it against the network as it is at its turn: another tenant's, or
     * none, and it is rejected.
     */
    static String owningTenant(String networkId, String owner, Requests.PlacementRequest body) {
        if (owner == null && body.tenantId() == null) {
            throw ApiException.notFound("network " + networkId);
        }
        if (owner != null && body.tenantId() != null && !body.tenantId().equals(owner)) {
            throw new ApiException(HttpStatus.CONFLICT, "TENANT_MISMATCH", "the placement names tenant "
                    + body.tenantId() + " but network " + networkId + " belongs to another tenant");
        }
        return owner != null ? owner : body.tenantId();
    }

    /**
     * Refuses (422) an IPv4 address outside the network's guest CIDR; {@code view} is null when the
     * network does not exist (yet), and then there is nothing to check against.
     */
    static void requireInsideGuestCidr(Placement p, NetworkView view) {
        if (view != null && p.ipv4() != null && !view.network().guestCidr().containsAddress(p.ipv4())) {
            throw new ValidationException("ipv4", p.ipv4() + " is outside the guest CIDR " + view.guestCidr());
        }
    }

    /**
     * Refuses (422 {@code INTERFACE_IN_USE}) a placement whose interface on its host another VM
     * holds: another VM of the same network (its view says so), or a VM of any network the host's
     * interface index names. The index is written by the compilers after the network views, in the
     * same round trip, so a claim it names is confirmed against the holder's own view: a claim whose
     * VM that view no longer shows on the interface is a leftover (written by a compiler that was
     * superseded) and does not block. A VM placed again on its own interface passes.
     *
     * @param view       the placement's network view, or null
     * @param indexed    the holder the host's interface index names ({@code networkId/vmId}), or null
     * @param viewOf     the view of another network, by id
     */
    static void requireInterfaceFree(Placement p, NetworkView view, String indexed, Function<String, Optional<NetworkView>> viewOf) {
        if (view != null) {
            for (Map.Entry<String, NetworkView.VmView> vm : view.vms().entrySet()) {
                if (!vm.getKey().equals(p.vmId()) && holds(vm.getValue(), p)) {
                    throw inUse(p, p.networkId(), vm.getKey());
                }
            }
        }
        if (indexed == null || indexed.equals(p.holder())) {
            return;
        }
        int slash = indexed.indexOf('/');
        String network = slash < 0 ? indexed : indexed.substring(0, slash);
        String vm = slash < 0 ? "" : indexed.substring(slash + 1);
        if (network.equals(p.networkId())) {
            // The placement's own network: its view (checked above) is newer than or as new as the index.
            return;
        }
        NetworkView.VmView holder = viewOf.apply(network).map(v -> v.vms().get(vm)).orElse(null);
        if (holder != null && holds(holder, p)) {
            throw inUse(p, network, vm);
        }
    }

    private static boolean holds(NetworkView.VmView vm, Placement p) {
        return vm.hostId().equals(p.hostId()) && p.interfaceName().equals(vm.interfaceName());
    }

    private static ApiException inUse(Placement p, String network, String vm) {
        Map<String, Object> properties = new LinkedHashMap<>();
        properties.put("hostId", p.hostId());
        properties.put("interfaceName", p.interfaceName());
        properties.put("heldBy", Map.of("networkId", network, "vmId", vm));
        return new ApiException(HttpStatus.UNPROCESSABLE_CONTENT, "INTERFACE_IN_USE", "interface " + p.interfaceName() + " on host "
                + p.hostId() + " belongs to vm " + vm + " of network " + network + "; remove or move that VM first", properties);
    }

    /**
     * Why {@code name} is not a valid interface name, or null when it is one. Says which rule it
     * breaks; {@link Interfaces#isValidName} stays the authority.
     */
    static String interfaceNameReason(String name) {
        if (name == null || name.isEmpty()) {
            return "is required: the VM's interface on its host (tap, vnet or veth device), 1-" + Interfaces.MAX_NAME + " characters";
        }
        if (Interfaces.isValidName(name)) {
            return null;
        }
        String shown = "'" + abbreviate(name) + "'";
        if (name.length() > Interfaces.MAX_NAME) {
            return shown + " is " + name.length() + " characters long; Linux interface names have at most " + Interfaces.MAX_NAME;
        }
        if (name.equals(".") || name.equals("..")) {
            return shown + " is not a valid interface name";
        }
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (!(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-')) {
                String what = c == ' ' ? "a space" : Character.isISOControl(c) ? "a control character" : "'" + c + "'";
                return shown + " contains " + what + "; an interface name has letters, digits, _ . - only";
            }
        }
        return shown + " is not a valid interface name (1-" + Interfaces.MAX_NAME + " characters of letters, digits, _ . -)";
    }

    /** Why {@code mac} (not null) is not a NIC's MAC address. */
    static String macReason(String mac) {
        String shown = "'" + abbreviate(mac) + "'";
        String form = mac.replace('-', ':');
        if (form.matches("[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}") && mac.indexOf(':') >= 0 != mac.indexOf('-') >= 0) {
            return (Integer.parseInt(form.substring(0, 2), 16) & 1) == 1
                    ? shown + " is a multicast address, not an interface's (the first octet's lowest bit is set)"
                    : shown + " is the all-zero address, not an interface's";
        }
        return shown + " is not a MAC address: six hex pairs separated by ':' or '-' (aa:bb:cc:dd:ee:ff)";
    }

    private static String abbreviate(String s) {
        String clean = s.replaceAll("\\p{Cntrl}", "?");
        return clean.length() > 40 ? clean.substring(0, 40) + "..." : clean;
    }

    /** Runs one check, collecting its violations instead of stopping at the first. */
    private static <T> T check(List<Violation> violations, java.util.function.Supplier<T> check) {
        try {
            return check.get();
        } catch (ValidationException e) {
            violations.addAll(e.violations());
            return null;
        }
    }
}
