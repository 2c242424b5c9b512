package io.egressctl.core.validation;

import java.util.Locale;

/**
 * The formats of a VM's network interface on its host: the device name the hypervisor plugged the VM
 * into (tap, vnet, veth) and its MAC address. A name reaches nft as a quoted string and the kernel
 * as an {@code ifname}, so only what Linux itself accepts in practice passes: 1 to 15 characters of
 * {@code [A-Za-z0-9_.-]} (IFNAMSIZ is 16 with the terminating NUL; no {@code /}, no blanks, no
 * quotes), and not {@code .} or {@code ..}.
 */
public final class Interfaces {

    private Interfaces() {
    }

    /** Longest interface name Linux accepts (IFNAMSIZ - 1). */
    public static final int MAX_NAME = 15;

    public static boolean isValidName(String name) {
        if (name == null || name.isEmpty() || name.length() > MAX_NAME || name.equals(".") || name.equals("..")) {
            return false;
        }
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            boolean ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-';
            if (!ok) {
                return false;
            }
        }
        return true;
    }

    /**
     * The canonical form of a MAC address (six lower-case hex pairs joined by {@code :}), or null when
     * {@code mac} is not one. {@code -} is accepted as a separator; a multicast or all-zero address is
     * not a NIC's.
     */
    public static String canonicalMac(String mac) {
        if (mac == null || mac.length() != 17) {
            return null;
        }
        StringBuilder sb = new StringBuilder(17);
        char sep = mac.charAt(2);
        if (sep != ':' && sep != '-') {
            return null;
        }
        for (int i = 0; i < 17; i++) {
            char c = mac.charAt(i);
            if (i % 3 == 2) {
                if (c != sep) {
                    return null;
                }
                sb.append(':');
            } else if (Character.digit(c, 16) >= 0 && c < 128) {
                sb.append(Character.toLowerCase(c));
            } else {
                return null;
            }
        }
        String out = sb.toString().toLowerCase(Locale.ROOT);
        int first = Integer.parseInt(out.substring(0, 2), 16);
        if ((first & 1) == 1 || out.equals("00:00:00:00:00:00")) {
            return null;
        }
        return out;
    }

    /**
     * @throws ValidationException naming {@code field} when {@code name} is not a valid interface name
     */
    public static String requireName(String field, String name) {
        if (name == null || name.isEmpty()) {
            throw new ValidationException(field, "is required");
        }
        if (!isValidName(name)) {
            throw new ValidationException(field, "'" + Identifiers.abbreviate(name)
                    + "' is not a valid interface name (1-15 characters of letters, digits, _ . -)");
        }
        return name;
    }

    /**
     * @return the canonical MAC, or null when {@code mac} is null
     * @throws ValidationException naming {@code field} when {@code mac} is given and not a unicast MAC
     */
    public static String optionalMac(String field, String mac) {
        if (mac == null) {
            return null;
        }
        String c = canonicalMac(mac);
        if (c == null) {
            throw new ValidationException(field, "'" + Identifiers.abbreviate(mac) + "' is not a unicast MAC address (aa:bb:cc:dd:ee:ff)");
        }
        return c;
    }
}
