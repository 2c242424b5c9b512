package io.egressctl.core.model;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatIllegalArgumentException;

class CidrTest {

    @ParameterizedTest(name = "{0} reads as {1}")
    @CsvSource({
            "10.0.0.0/8, 10.0.0.0/8",
            "192.168.1.0/24, 192.168.1.0/24",
            "10.1.2.3/32, 10.1.2.3/32",
            "10.1.2.3, 10.1.2.3/32",
            "0.0.0.0/0, 0.0.0.0/0",
            "' 172.16.0.0/12 ', 172.16.0.0/12",
    })
    void ipv4PrefixesParseAndPrintCanonically(String text, String canonical) {
        Cidr c = Cidr.parse(text);

        assertThat(c.isIpv4()).isTrue();
        assertThat(c).hasToString(canonical);
        assertThat(Cidr.parse(c.toString())).isEqualTo(c);
    }

    @ParameterizedTest(name = "{0} reads as {1}")
    @CsvSource({
            "2001:db8::/32, 2001:db8::/32",
            "2001:DB8:0:0:0:0:0:0/32, 2001:db8::/32",
            "2001:0db8:0000:0000:0000:0000:0000:0001, 2001:db8::1/128",
            "::1, ::1/128",
            "::/0, ::/0",
            "fd00:0:0:1::/64, fd00:0:0:1::/64",
            "2001:db8:0:0:1:0:0:1, 2001:db8::1:0:0:1/128",
            "2001:0:0:1:0:0:0:1, 2001:0:0:1::1/128",
            "1:2:3:4:5:6:7::, 1:2:3:4:5:6:7:0/128",
            "::ffff:192.0.2.1, ::ffff:c000:201/128",
    })
    void ipv6PrefixesParseAndPrintInRfc5952Form(String text, String canonical) {
        Cidr c = Cidr.parse(text);

        assertThat(c.isIpv4()).isFalse();
        assertThat(c).hasToString(canonical);
        assertThat(Cidr.parse(c.toString())).isEqualTo(c);
    }

    @Test
    void aBareAddressIsAHostPrefix() {
        assertThat(Cidr.parse("10.0.0.5").isHost()).isTrue();
        assertThat(Cidr.parse("10.0.0.5").prefixLength()).isEqualTo(32);
        assertThat(Cidr.parse("2001:db8::5").prefixLength()).isEqualTo(128);
        assertThat(Cidr.parse("10.0.0.0/24").isHost()).isFalse();
        assertThat(Cidr.parse("10.0.0.5").addressText()).isEqualTo("10.0.0.5");
    }

    @Test
    void containsHoldsForSubPrefixesAndAddressesOfTheSameFamilyOnly() {
        Cidr net = Cidr.parse("10.1.0.0/16");

        assertThat(net.contains(Cidr.parse("10.1.2.0/24"))).isTrue();
        assertThat(net.contains(net)).isTrue();
        assertThat(net.contains(Cidr.parse("10.2.0.0/24"))).isFalse();
        assertThat(net.contains(Cidr.parse("10.0.0.0/8"))).as("a wider prefix is not inside").isFalse();
        assertThat(net.containsAddress("10.1.255.255")).isTrue();
        assertThat(net.containsAddress("10.2.0.0")).isFalse();
        assertThat(Cidr.parse("0.0.0.0/0").contains(Cidr.parse("2001:db8::/32"))).as("families never mix").isFalse();
        assertThat(Cidr.parse("::/0").containsAddress("10.0.0.1")).isFalse();
        assertThat(Cidr.parse("2001:db8::/32").containsAddress("2001:db8:ffff::1")).isTrue();
    }

    @ParameterizedTest(name = "{0} is rejected; did you mean {1}")
    @CsvSource({
            "10.0.0.5/24, 10.0.0.0/24",
            "192.168.1.1/16, 192.168.0.0/16",
            "10.0.0.1/0, 0.0.0.0/0",
            "2001:db8::1/32, 2001:db8::/32",
            "2001:db8:0:1::/48, 2001:db8::/48",
    })
    void aPrefixWithHostBitsSetIsRejectedWithTheNormalizedForm(String text, String normalized) {
        assertThatIllegalArgumentException().isThrownBy(() -> Cidr.parse(text))
                .withMessageContaining("host bits set")
                .withMessageContaining("did you mean " + normalized + "?");
    }

    @Test
    void lenientParsingClearsHostBitsInsteadOfRejecting() {
        assertThat(Cidr.parseLenient("10.0.0.5/24")).isEqualTo(Cidr.parse("10.0.0.0/24"));
        assertThat(Cidr.parseLenient("2001:db8::1/32")).isEqualTo(Cidr.parse("2001:db8::/32"));
        assertThatIllegalArgumentException().isThrownBy(() -> Cidr.parseLenient("10.0.0/24"));
    }

    static Stream<Arguments> malformedInputs() {
        return Stream.of(
                Arguments.of("null", null),
                Arguments.of("an empty string", ""),
                Arguments.of("blanks", "   "),
                Arguments.of("three octets", "10.0.0/24"),
                Arguments.of("five octets", "10.0.0.0.0"),
                Arguments.of("an octet over 255", "10.0.0.256"),
                Arguments.of("an empty octet", "10..0.1"),
                Arguments.of("a negative octet", "10.0.0.-1"),
                Arguments.of("an octet with a leading zero (octal or decimal?)", "010.0.0.1"),
                Arguments.of("a prefix over 32", "10.0.0.0/33"),
                Arguments.of("a prefix over 128", "2001:db8::/129"),
                Arguments.of("a negative prefix", "10.0.0.0/-1"),
                Arguments.of("an empty prefix", "10.0.0.0/"),
                Arguments.of("a non-numeric prefix", "10.0.0.0/abc"),
                Arguments.of("two prefixes", "10.0.0.0/8/8"),
                Arguments.of("no address", "/24"),
                Arguments.of("a host name", "example.com"),
                Arguments.of("a host name with a prefix", "example.com/24"),
                Arguments.of("localhost", "localhost"),
                Arguments.of("a port", "10.0.0.1:80"),
                Arguments.of("two double colons", "2001::db8::1"),
                Arguments.of("a triple colon", "2001:::1"),
                Arguments.of("nine IPv6 groups", "1:2:3:4:5:6:7:8:9"),
                Arguments.of("seven IPv6 groups without ::", "1:2:3:4:5:6:7"),
                Arguments.of("a five-digit IPv6 group", "2001:db8:12345::1"),
                Arguments.of("a leading single colon", ":1:2:3:4:5:6:7"),
                Arguments.of("a trailing single colon", "1:2:3:4:5:6:7:"),
                Arguments.of("a non-hex IPv6 group", "2001:db8::g"),
                Arguments.of("an IPv4 tail in the middle", "::1.2.3.4:1"),
                Arguments.of("a bad IPv4 tail", "::1.2.3.256"),
                Arguments.of("a zone id", "fe80::1%eth0"),
                Arguments.of("brackets", "[2001:db8::1]"),
                Arguments.of("a dot before the colons (once resolved as a name)", ".::1"),
                Arguments.of("non-ASCII digits", "\u0661\u0660.0.0.0/8"),
                Arguments.of("an over-long IPv6 text", "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000"),
                Arguments.of("a space inside", "10.0.0.0 /8"));
    }

    @ParameterizedTest(name = "{0} is rejected")
    @MethodSource("malformedInputs")
    void malformedInputIsRejectedWithAMessageFitForAnApiError(String name, String text) {
        assertThatIllegalArgumentException().isThrownBy(() -> Cidr.parse(text))
                .withMessageMatching("(?s)(empty CIDR|malformed CIDR '.*': .+)");
    }

    /**
     * Names must never reach a resolver: before the hand-written IPv6 parser, ".::1" did. Java 17 has
     * no resolver SPI, so a recording SecurityManager observes the lookups InetAddress would make
     * (checkConnect with port -1); on a JVM that forbids one, the test is skipped.
     */
    @ParameterizedTest(name = "parsing {0} resolves no name")
    @ValueSource(strings = {"example.com", "localhost", ".::1", ".:", "a:b.example", "1.2.3.4:80", "::ffff:1.2.3.4",
            "2001:db8::/32", "10.0.0.0/8", "abc.def"})
    @SuppressWarnings("removal")
    void parsingNeverLooksUpAName(String text) {
        List<String> lookups = new ArrayList<>();
        SecurityManager previous = System.getSecurityManager();
        try {
            System.setSecurityManager(new SecurityManager() {
                @Override
                public void checkConnect(String host, int port) {
                    lookups.add(host);
                }

                @Override
                public void checkPermission(java.security.Permission perm) {
                    // everything else is allowed
                }
            });
        } catch (UnsupportedOperationException e) {
            Assumptions.abort("this JVM does not allow a SecurityManager");
            return;
        }
        try {
            Cidr.parse(text);
        } catch (IllegalArgumentException expectedForNames) {
            // only the lookups matter here
        } finally {
            System.setSecurityManager(previous);
        }

        assertThat(lookups).isEmpty();
    }

    @Test
    void equalPrefixesAreEqualAndSortIpv4FirstThenByAddressThenByLength() {
        assertThat(Cidr.parse("2001:DB8::/32")).isEqualTo(Cidr.parse("2001:db8:0::/32"))
                .hasSameHashCodeAs(Cidr.parse("2001:db8:0::/32"));
        List<Cidr> sorted = Stream.of("2001:db8::/32", "10.0.0.0/16", "10.0.0.0/8", "9.0.0.0/8", "::/0")
                .map(Cidr::parse).sorted().toList();

        assertThat(sorted).extracting(Cidr::toString)
                .containsExactly("9.0.0.0/8", "10.0.0.0/8", "10.0.0.0/16", "::/0", "2001:db8::/32");
    }
}
