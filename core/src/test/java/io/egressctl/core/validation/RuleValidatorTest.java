package io.egressctl.core.validation;

import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.IcmpMatch;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.NetworkKind;
import io.egressctl.core.model.PortRange;
import io.egressctl.core.model.Protocol;
import io.egressctl.core.testing.Drafts;
import io.egressctl.core.testing.Events;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Collections;
import java.util.List;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static io.egressctl.core.testing.Drafts.draft;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

class RuleValidatorTest {

    private static final Network BASIC = Events.network("net-a", "10.1.0.0/24");
    private static final Network DUAL_STACK_ADVANCED =
            Events.network("net-b", "10.2.0.0/24", "fd00:b::/64", DefaultPolicy.DENY, true, 100);

    private final RuleValidator validator = new RuleValidator();

    private static Arguments bad(String name, Drafts draft, String field, String reason) {
        return Arguments.of(name, draft.build(), BASIC, field, reason);
    }

    private static Arguments badOnAdvanced(String name, Drafts draft, String field, String reason) {
        return Arguments.of(name, draft.build(), DUAL_STACK_ADVANCED, field, reason);
    }

    static Stream<Arguments> badRules() {
        List<String> tenThousand = IntStream.range(0, 10_000).mapToObj(i -> "192.0." + (i / 256 % 256) + "." + (i % 256)).toList();
        return Stream.of(
                bad("missing protocol", draft(), "protocol", "is required: tcp, udp, icmp, icmpv6 or all"),
                bad("blank protocol", draft(" "), "protocol", "is required"),
                bad("unknown protocol", draft("gre"), "protocol", "unknown protocol 'gre': use tcp, udp, icmp, icmpv6 or all"),
                bad("ports on protocol all", draft("all").port(80), "startPort", "ports are only valid for tcp and udp, not all"),
                bad("ports on icmp", draft("icmp").ports(1, 10), "startPort", "ports are only valid for tcp and udp, not icmp"),
                bad("port 0", draft("tcp").port(0), "startPort", "0 is outside 1..65535"),
                bad("start port 65536", draft("tcp").port(65536), "startPort", "65536 is outside 1..65535"),
                bad("end port 65536", draft("udp").ports(1000, 65536), "endPort", "65536 is outside 1..65535"),
                bad("start port greater than end port", draft("tcp").ports(2000, 1000), "endPort",
                        "start port 2000 is greater than end port 1000"),
                bad("end port without start port", draft("tcp").ports(null, 80), "startPort", "is required when endPort is given"),
                bad("icmp type 256", draft("icmp").icmp(256, null), "icmpType", "256 is outside -1..255 (-1 means any)"),
                bad("icmp type -2", draft("icmp").icmp(-2, null), "icmpType", "-2 is outside -1..255"),
                bad("icmp code 256", draft("icmp").icmp(3, 256), "icmpCode", "256 is outside -1..255 (-1 means any)"),
                bad("icmp code without a type", draft("icmp").icmp(null, 3), "icmpCode", "an icmp code needs an icmp type"),
                bad("icmp code with type -1", draft("icmp").icmp(-1, 3), "icmpCode", "an icmp code needs an icmp type"),
                bad("icmp type with protocol tcp", draft("tcp").icmp(8, null), "icmpType",
                        "icmp type and code need protocol icmp or icmpv6, not tcp"),
                bad("icmp code with protocol all", draft("all").icmp(null, 0), "icmpCode",
                        "icmp type and code need protocol icmp or icmpv6, not all"),
                bad("malformed source CIDR", draft("tcp").sources("10.1.0/24"), "sourceCidrs", "malformed CIDR '10.1.0/24'"),
                bad("malformed destination CIDR", draft("tcp").destinations("300.0.0.0/8"), "destinationCidrs",
                        "octet 300 exceeds 255"),
                bad("a host name as destination", draft("tcp").destinations("example.com"), "destinationCidrs",
                        "malformed CIDR 'example.com'"),
                bad("host bits set in a destination", draft("tcp").destinations("192.0.2.7/24"), "destinationCidrs",
                        "did you mean 192.0.2.0/24?"),
                bad("host bits set in a source", draft("tcp").sources("10.1.0.5/28"), "sourceCidrs", "did you mean 10.1.0.0/28?"),
                bad("source CIDR outside the guest CIDR", draft("tcp").sources("10.9.0.5/32"), "sourceCidrs",
                        "10.9.0.5/32 is outside the guest CIDR 10.1.0.0/24"),
                bad("source CIDR wider than the guest CIDR", draft("tcp").sources("10.0.0.0/8"), "sourceCidrs",
                        "is outside the guest CIDR 10.1.0.0/24"),
                bad("IPv6 source on an IPv4-only network", draft("tcp").sources("fd00::5/128"), "sourceCidrs",
                        "fd00::5/128 is IPv6 but network net-a has no IPv6 prefix"),
                bad("IPv6 destination on an IPv4-only network", draft("tcp").destinations("2001:db8::/32"), "destinationCidrs",
                        "2001:db8::/32 is IPv6 but network net-a has no IPv6 prefix"),
                bad("icmpv6 on an IPv4-only network", draft("icmpv6"), "protocol", "icmpv6 needs a network with an IPv6 prefix"),
                badOnAdvanced("icmp towards an IPv6 destination", draft("icmp").destinations("2001:db8::/32"), "destinationCidrs",
                        "icmp (IPv4) cannot reach IPv6 destination 2001:db8::/32; use icmpv6"),
                badOnAdvanced("icmpv6 towards an IPv4 destination", draft("icmpv6").destinations("192.0.2.0/24"),
                        "destinationCidrs", "icmpv6 cannot reach IPv4 destination 192.0.2.0/24"),
                bad("empty source CIDR list", draft("tcp").sources(List.of()), "sourceCidrs", "is empty; omit it for the default"),
                bad("empty VM id list", draft("tcp").vms(List.of()), "sourceVmIds", "is empty; omit it for the default"),
                bad("empty destination list", draft("tcp").destinations(List.of()), "destinationCidrs", "is empty"),
                bad("empty exception list", draft("tcp").except(List.of()), "destinationExceptCidrs", "is empty"),
                bad("10,000 destinations", draft("tcp").destinations(tenThousand), "destinationCidrs",
                        "has 10000 entries; at most 256 are allowed"),
                bad("10,000 VM ids", draft("tcp").vms(Collections.nCopies(10_000, "vm-1")), "sourceVmIds",
                        "has 10000 entries; at most 256 are allowed"),
                bad("sourceCidrs and sourceVmIds both", draft("tcp").sources("10.1.0.5/32").vms("vm-1"), "sourceVmIds",
                        "give sourceCidrs or sourceVmIds, not both"),
                bad("an invalid VM id", draft("tcp").vms("vm 1; drop"), "sourceVmIds", "'vm 1; drop' is not a valid VM id"),
                bad("an exception outside every destination", draft("tcp").destinations("192.0.2.0/24").except("198.51.100.0/24"),
                        "destinationExceptCidrs", "198.51.100.0/24 lies in none of the destination CIDRs"),
                bad("action on a non-advanced network", draft("tcp").action("allow"), "action",
                        "explicit actions need an advanced network; this network uses CloudStack semantics (rules block what they match)"),
                bad("priority on a non-advanced network", draft("tcp").priority(10), "priority", "priorities need an advanced network"),
                badOnAdvanced("unknown action", draft("tcp").action("reject"), "action", "unknown action 'reject': use allow or deny"),
                badOnAdvanced("priority 0", draft("tcp").priority(0), "priority", "0 is outside 1..65535"),
                badOnAdvanced("priority 65536", draft("tcp").priority(65536), "priority", "65536 is outside 1..65535"),
                bad("description with a newline", draft("tcp").description("block\nweb"), "description", "contains control characters"),
                bad("description with a NUL", draft("tcp").description("a\u0000b"), "description", "contains control characters"),
                bad("description over 255 characters", draft("tcp").description("x".repeat(256)), "description",
                        "is longer than 255 characters"));
    }

    @ParameterizedTest(name = "{0} is refused")
    @MethodSource("badRules")
    void aBadRuleIsRefusedNamingTheFieldAndAClearReason(String name, RuleDraft draft, Network network, String field,
                                                        String reason) {
        ValidationException e = catchThrowableOfType(ValidationException.class,
                () -> validator.validateRule("rule-1", draft, network));

        assertThat(e).as(name).isNotNull();
        assertThat(e.violations()).extracting(Violation::field).containsExactly(field);
        assertThat(e.violations().get(0).reason()).contains(reason);
        assertThat(e).hasMessage(field + ": " + e.violations().get(0).reason());
    }

    @Test
    void everyViolationOfADraftIsListedNotJustTheFirst() {
        RuleDraft draft = draft("tcp").ports(0, 70000).icmp(8, null).sources("10.9.0.0/24").destinations("2001:db8::/32")
                .description("a\tb").build();

        ValidationException e = catchThrowableOfType(ValidationException.class, () -> validator.validateRule("rule-1", draft, BASIC));

        assertThat(e.violations()).extracting(Violation::field)
                .containsExactly("startPort", "icmpType", "sourceCidrs", "destinationCidrs", "description");
    }

    @Test
    void anInvalidRuleIdIsRefused() {
        assertThatThrownBy(() -> validator.validateRule("rule 1\"", draft("tcp").build(), BASIC))
                .isInstanceOf(ValidationException.class).hasMessage("ruleId: is not a valid id");
    }

    @Test
    void aDescriptionWithNftSyntaxIsAcceptedBecauseItIsNeverRendered() {
        EgressRule r = validator.validateRule("rule-1", draft("tcp").port(80).description("\"; flush ruleset; \"").build(), BASIC);

        assertThat(r.description()).isEqualTo("\"; flush ruleset; \"");
    }

    // The seed user guide's six examples: block ICMP, port 80 and a port range, for one VM and for a
    // set of VMs, and block all outgoing traffic for one VM and for a set of VMs.

    @Test
    void seedExampleBlockIcmpForOneVmValidates() {
        EgressRule r = validator.validateRule("r-icmp", draft("icmp").sources("10.1.0.5/32").build(), BASIC);

        assertThat(r.protocol()).isEqualTo(Protocol.ICMP);
        assertThat(r.icmp()).as("type and code omitted mean any").isNull();
        assertThat(r.sourceCidrs()).containsExactly(Cidr.parse("10.1.0.5/32"));
        assertThat(r.effectiveAction(DefaultPolicy.ALLOW)).isEqualTo(io.egressctl.core.model.Action.DENY);
    }

    @Test
    void seedExampleBlockIcmpForASetOfVmsValidatesWithAnyTypeSpelledAsMinusOne() {
        EgressRule r = validator.validateRule("r-icmp", draft("icmp").icmp(-1, -1).sources("10.1.0.6/32", "10.1.0.5/32").build(), BASIC);

        assertThat(r.icmp()).isNull();
        assertThat(r.sourceCidrs()).as("sorted").containsExactly(Cidr.parse("10.1.0.5/32"), Cidr.parse("10.1.0.6/32"));
    }

    @Test
    void seedExampleBlockPort80ForOneVmValidates() {
        EgressRule r = validator.validateRule("r-80", draft("tcp").port(80).sources("10.1.0.5/32").build(), BASIC);

        assertThat(r.ports()).isEqualTo(PortRange.single(80));
        assertThat(r.coversWholeNetwork()).isFalse();
    }

    @Test
    void seedExampleBlockPort80ForASetOfVmsValidatesAsSeveralHostsOrASubCidrOrVmIds() {
        EgressRule hosts = validator.validateRule("r-80", draft("tcp").port(80).sources("10.1.0.5/32", "10.1.0.6/32").build(), BASIC);
        EgressRule subnet = validator.validateRule("r-80", draft("tcp").port(80).sources("10.1.0.0/28").build(), BASIC);
        EgressRule ids = validator.validateRule("r-80", draft("tcp").port(80).vms("vm-2", "vm-1").build(), BASIC);

        assertThat(hosts.sourceCidrs()).hasSize(2);
        assertThat(subnet.sourceCidrs()).containsExactly(Cidr.parse("10.1.0.0/28"));
        assertThat(ids.sourceVmIds()).containsExactly("vm-1", "vm-2");
    }

    @Test
    void seedExampleBlockAPortRangeForOneVmValidates() {
        EgressRule r = validator.validateRule("r-range", draft("tcp").ports(1000, 2000).sources("10.1.0.5/32").build(), BASIC);

        assertThat(r.ports()).isEqualTo(new PortRange(1000, 2000));
    }

    @Test
    void seedExampleBlockAPortRangeForASetOfVmsValidates() {
        EgressRule r = validator.validateRule("r-range", draft("udp").ports(1000, 2000).sources("10.1.0.0/28", "10.1.0.64/26").build(), BASIC);

        assertThat(r.protocol()).isEqualTo(Protocol.UDP);
        assertThat(r.sourceCidrs()).hasSize(2);
    }

    @Test
    void seedExampleBlockAllOutgoingForOneVmValidates() {
        EgressRule r = validator.validateRule("r-all", draft("all").sources("10.1.0.5/32").build(), BASIC);

        assertThat(r.protocol()).isEqualTo(Protocol.ALL);
        assertThat(r.ports()).isNull();
        assertThat(r.destinationCidrs()).as("anywhere").isEmpty();
    }

    @Test
    void seedExampleBlockAllOutgoingForASetOfVmsValidates() {
        EgressRule r = validator.validateRule("r-all", draft("ALL").vms("vm-1", "vm-2", "vm-3").build(), BASIC);

        assertThat(r.protocol()).isEqualTo(Protocol.ALL);
        assertThat(r.sourceVmIds()).containsExactly("vm-1", "vm-2", "vm-3");
    }

    @Test
    void aRuleWithoutSourcesCoversEveryVmOfTheNetwork() {
        assertThat(validator.validateRule("r", draft("tcp").port(25).build(), BASIC).coversWholeNetwork()).isTrue();
    }

    @Test
    void anAdvancedNetworkTakesActionsPrioritiesIpv6AndIcmpTypes() {
        EgressRule r = validator.validateRule("r", draft("icmpv6").action("Deny").priority(10).icmp(128, 0)
                .sources("fd00:b::5/128").destinations("2001:db8::/32").except("2001:db8:1::/48").build(), DUAL_STACK_ADVANCED);

        assertThat(r.action()).isEqualTo(io.egressctl.core.model.Action.DENY);
        assertThat(r.priority()).isEqualTo(10);
        assertThat(r.icmp()).isEqualTo(new IcmpMatch(128, 0));
        assertThat(r.destinationExceptCidrs()).containsExactly(Cidr.parse("2001:db8:1::/48"));
    }

    @Test
    void equalDraftsValidateToEqualRulesWhateverTheOrderAndRepetitionOfTheirLists() {
        EgressRule a = validator.validateRule("r", draft("tcp").sources("10.1.0.6/32", "10.1.0.5/32", "10.1.0.6/32")
                .destinations("198.51.100.0/24", "192.0.2.0/24").build(), BASIC);
        EgressRule b = validator.validateRule("r", draft("tcp").sources("10.1.0.5/32", "10.1.0.6/32")
                .destinations("192.0.2.0/24", "198.51.100.0/24").build(), BASIC);

        assertThat(a).isEqualTo(b);
        assertThat(a.matchKey()).isEqualTo(b.matchKey());
    }

    @Test
    void aValidatedRuleSurvivesTheRoundTripThroughItsDraft() {
        EgressRule r = validator.validateRule("r", draft("udp").action("allow").priority(7).ports(53, 53).vms("vm-1")
                .destinations("192.0.2.0/24").except("192.0.2.128/25").description("dns").build(), DUAL_STACK_ADVANCED);

        assertThat(validator.revalidate(r, DUAL_STACK_ADVANCED)).isEqualTo(r);
        assertThat(validator.validateRule("r", RuleValidator.toDraft(r), DUAL_STACK_ADVANCED)).isEqualTo(r);
    }

    @Test
    void revalidationHoldsAnEventBuiltRuleToTheSameRules() {
        EgressRule outside = new EgressRule("r", Protocol.ICMP, null, EgressRule.DEFAULT_PRIORITY, List.of(Cidr.parse("10.9.0.0/24")),
                List.of(), List.of(), List.of(), PortRange.single(80), null, null);

        ValidationException e = catchThrowableOfType(ValidationException.class, () -> validator.revalidate(outside, BASIC));

        assertThat(e.violations()).extracting(Violation::field).containsExactly("startPort", "sourceCidrs");
    }

    // Network drafts

    @Test
    void aMinimalNetworkDraftTakesTheDefaults() {
        Network n = validator.validateNetwork(new NetworkDraft("net-1", null, "10.1.0.0/24", null, null, null, null), "tenant-1");

        assertThat(n.kind()).isEqualTo(NetworkKind.BASIC);
        assertThat(n.defaultPolicy()).isEqualTo(DefaultPolicy.ALLOW);
        assertThat(n.advanced()).isFalse();
        assertThat(n.ruleQuota()).isEqualTo(Network.DEFAULT_RULE_QUOTA);
        assertThat(n.ipv6Prefix()).isEmpty();
        assertThat(n.tenantId()).isEqualTo("tenant-1");
    }

    @Test
    void aFullNetworkDraftValidates() {
        Network n = validator.validateNetwork(
                new NetworkDraft("net-1", "vpc-tier", "10.1.0.0/24", "fd00:1::/64", "Deny", true, 50), "tenant-1");

        assertThat(n.kind()).isEqualTo(NetworkKind.VPC_TIER);
        assertThat(n.guestCidr6()).isEqualTo(Cidr.parse("fd00:1::/64"));
        assertThat(n.defaultPolicy()).isEqualTo(DefaultPolicy.DENY);
        assertThat(n.advanced()).isTrue();
        assertThat(n.ruleQuota()).isEqualTo(50);
    }

    static Stream<Arguments> badNetworks() {
        return Stream.of(
                Arguments.of("missing network id", new NetworkDraft(null, null, "10.1.0.0/24", null, null, null, null), "tenant-1",
                        "networkId", "is required"),
                Arguments.of("network id with a space", new NetworkDraft("net 1", null, "10.1.0.0/24", null, null, null, null),
                        "tenant-1", "networkId", "is not a valid id"),
                Arguments.of("invalid tenant id", new NetworkDraft("net-1", null, "10.1.0.0/24", null, null, null, null), "",
                        "tenantId", "is not a valid id"),
                Arguments.of("unknown kind", new NetworkDraft("net-1", "flat", "10.1.0.0/24", null, null, null, null), "tenant-1",
                        "kind", "unknown kind 'flat': use basic or vpc_tier"),
                Arguments.of("missing guest CIDR", new NetworkDraft("net-1", null, null, null, null, null, null), "tenant-1",
                        "guestCidr", "is required"),
                Arguments.of("guest CIDR with host bits", new NetworkDraft("net-1", null, "10.1.0.1/24", null, null, null, null),
                        "tenant-1", "guestCidr", "did you mean 10.1.0.0/24?"),
                Arguments.of("IPv6 guest CIDR", new NetworkDraft("net-1", null, "fd00::/64", null, null, null, null), "tenant-1",
                        "guestCidr", "must be IPv4; give the IPv6 prefix as guestCidr6"),
                Arguments.of("IPv4 guestCidr6", new NetworkDraft("net-1", null, "10.1.0.0/24", "10.2.0.0/24", null, null, null),
                        "tenant-1", "guestCidr6", "must be an IPv6 prefix"),
                Arguments.of("malformed guestCidr6", new NetworkDraft("net-1", null, "10.1.0.0/24", "fd00:::/64", null, null, null),
                        "tenant-1", "guestCidr6", "malformed CIDR"),
                Arguments.of("unknown policy", new NetworkDraft("net-1", null, "10.1.0.0/24", null, "drop", null, null), "tenant-1",
                        "defaultPolicy", "unknown policy 'drop': use allow or deny"),
                Arguments.of("quota 0", new NetworkDraft("net-1", null, "10.1.0.0/24", null, null, null, 0), "tenant-1",
                        "ruleQuota", "0 is outside 1..10000"),
                Arguments.of("quota over the operator's limit", new NetworkDraft("net-1", null, "10.1.0.0/24", null, null, null, 10_001),
                        "tenant-1", "ruleQuota", "10001 is above the operator's limit of 10000 rules per network"),
                Arguments.of("guest CIDR 0.0.0.0/0", new NetworkDraft("net-1", null, "0.0.0.0/0", null, null, null, null),
                        "tenant-1", "guestCidr", "0.0.0.0/0 is too wide for a guest network: the prefix must be /8 or longer"),
                Arguments.of("guest CIDR /7", new NetworkDraft("net-1", null, "10.0.0.0/7", null, null, null, null),
                        "tenant-1", "guestCidr", "the prefix must be /8 or longer"),
                Arguments.of("guestCidr6 ::/0", new NetworkDraft("net-1", null, "10.1.0.0/24", "::/0", null, null, null),
                        "tenant-1", "guestCidr6", "::/0 is too wide for a guest network: the prefix must be /48 or longer"),
                Arguments.of("guestCidr6 /32", new NetworkDraft("net-1", null, "10.1.0.0/24", "fd00::/32", null, null, null),
                        "tenant-1", "guestCidr6", "the prefix must be /48 or longer"));
    }

    @ParameterizedTest(name = "{0} is refused")
    @MethodSource("badNetworks")
    void aBadNetworkDraftIsRefusedNamingTheFieldAndAClearReason(String name, NetworkDraft draft, String tenantId, String field,
                                                                String reason) {
        ValidationException e = catchThrowableOfType(ValidationException.class, () -> validator.validateNetwork(draft, tenantId));

        assertThat(e).as(name).isNotNull();
        assertThat(e.violations()).extracting(Violation::field).containsExactly(field);
        assertThat(e.violations().get(0).reason()).contains(reason);
    }

    @Test
    void theWidestGuestPrefixesAreAccepted() {
        assertThat(validator.validateNetwork(new NetworkDraft("net-1", null, "10.0.0.0/8", "fd00:1::/48", null, null, null), "t")
                .guestCidr().prefixLength()).isEqualTo(8);
    }

    @Test
    void theOperatorsLimitCapsTheQuota() {
        io.egressctl.core.state.Limits limits = new io.egressctl.core.state.Limits(500, 10, 100_000);
        assertThat(validator.validateNetwork(new NetworkDraft("net-1", null, "10.1.0.0/24", null, null, null, null), "t", limits)
                .ruleQuota()).as("the default quota, lowered to the limit").isEqualTo(500);
        assertThat(validator.validateNetwork(new NetworkDraft("net-1", null, "10.1.0.0/24", null, null, null, 500), "t", limits)
                .ruleQuota()).isEqualTo(500);
        ValidationException e = catchThrowableOfType(ValidationException.class, () -> validator.validateNetwork(
                new NetworkDraft("net-1", null, "10.1.0.0/24", null, null, null, 501), "t", limits));
        assertThat(e.violations().get(0).reason()).isEqualTo("501 is above the operator's limit of 500 rules per network");
    }

    @Test
    void identifiersAcceptOnlyTheOneIdFormat() {
        assertThat(Identifiers.isValid("vm-1.a_b:c")).isTrue();
        assertThat(Identifiers.isValid("x".repeat(64))).isTrue();
        assertThat(Identifiers.isValid("x".repeat(65))).isFalse();
        assertThat(Identifiers.isValid("-leading-dash")).isFalse();
        assertThat(Identifiers.isValid("quote\"")).isFalse();
        assertThat(Identifiers.isValid("")).isFalse();
        assertThat(Identifiers.isValid(null)).isFalse();
        assertThatThrownBy(() -> Identifiers.require("vmId", "bad\nid")).isInstanceOf(ValidationException.class)
                .hasMessage("vmId: 'bad?id' is not a valid id (letters, digits, . _ : -; at most 64)");
    }
}
