package io.egressctl.rules.cloudstack;

import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

class SignaturesTest {

    /**
     * The worked example of CloudStack's developer guide ("How to sign an API call with Python"):
     * listUsers with its published API key and secret signs to TTpdDq/7j/J58XCRHomKoQXEQds=.
     */
    @Test
    void developerGuideExampleVector() {
        Map<String, String[]> params = SignedRequests.raw(Map.of(
                "command", "listUsers",
                "response", "json",
                "apikey", "plgWJfZK4gyS3mOMTVmjUVg-X-jlWlnfaUJ9GAbBbf9EdM-kAYMmAiLqzzq1ElZLYq_u38zCm0bewzGUdP66mg"));
        String secret = "VDaACYb0LV9eNjTetIOElcVQkvJck_J_QljX_FcHRj87ZKiy0z0ty0ZsYBkoXkY9b7eq1EhwJaw7FF3akA3KBQ";

        assertThat(Signatures.canonical(params, false)).isEqualTo(
                "apikey=plgwjfzk4gys3momtvmjuvg-x-jlwlnfauj9gabbbf9edm-kaymmailqzzq1elzlyq_u38zcm0bewzgudp66mg&command=listusers&response=json");
        assertThat(Signatures.sign(params, secret)).isEqualTo("TTpdDq/7j/J58XCRHomKoQXEQds=");
        assertThat(Signatures.matches(params, secret, "TTpdDq/7j/J58XCRHomKoQXEQds=")).isTrue();
    }

    /**
     * A signatureVersion=3 request signed by Debian's cs 2.7.1 client ({@code CloudStack._sign}), with a
     * list, a space and a '*' in the values: hf949VdjnK9zQawW9LtUMfyOg4A=.
     */
    @Test
    void csClientVectorWithExpiresAndSpecialCharacters() {
        Map<String, String> p = new LinkedHashMap<>();
        p.put("apiKey", "KEY-abc");
        p.put("command", "createEgressFirewallRule");
        p.put("networkid", "net-1");
        p.put("protocol", "tcp");
        p.put("cidrlist", "10.1.1.0/24,10.1.2.5/32");
        p.put("startport", "80");
        p.put("response", "json");
        p.put("signatureVersion", "3");
        p.put("expires", "2030-01-01T00:00:00+0000");
        p.put("type", "a b*c");
        Map<String, String[]> params = SignedRequests.raw(p);

        // Worked by hand: names in sort order (as sent: "apiKey" < "cidrlist" < ... < "type"), values
        // URL-encoded ("/" %2F, "," %2C, ":" %3A, "+" %2B, " " %20, "*" kept), everything lower-cased.
        String expected = "apikey=key-abc&cidrlist=10.1.1.0%2f24%2c10.1.2.5%2f32&command=createegressfirewallrule"
                + "&expires=2030-01-01t00%3a00%3a00%2b0000&networkid=net-1&protocol=tcp&response=json"
                + "&signatureversion=3&startport=80&type=a%20b*c";
        assertThat(Signatures.canonical(params, false)).isEqualTo(expected);
        assertThat(SignedRequests.hmac(expected, "SECRET-xyz")).isEqualTo("hf949VdjnK9zQawW9LtUMfyOg4A=");
        assertThat(Signatures.sign(params, "SECRET-xyz")).isEqualTo("hf949VdjnK9zQawW9LtUMfyOg4A=");
    }

    @Test
    void theSignatureParameterIsNotSigned() {
        Map<String, String> p = new LinkedHashMap<>(Map.of("command", "listNetworks", "apikey", "k", "response", "json"));
        String without = Signatures.sign(SignedRequests.raw(p), "s");
        p.put("signature", "anything");
        assertThat(Signatures.sign(SignedRequests.raw(p), "s")).isEqualTo(without);
    }

    @Test
    void namesSortAsSentLikeTheServerAndTheGuidesLowerCaseOrderIsAlsoAccepted() {
        // "Zone" sorts before "apikey" as sent (upper case first), after it lower-cased.
        Map<String, String[]> params = SignedRequests.raw(Map.of("apikey", "k", "command", "listNetworks", "Zone", "z1"));
        assertThat(Signatures.canonical(params, false)).isEqualTo("zone=z1&apikey=k&command=listnetworks");
        assertThat(Signatures.canonical(params, true)).isEqualTo("apikey=k&command=listnetworks&zone=z1");
        String serverOrder = SignedRequests.hmac("zone=z1&apikey=k&command=listnetworks", "s");
        String guideOrder = SignedRequests.hmac("apikey=k&command=listnetworks&zone=z1", "s");
        assertThat(Signatures.matches(params, "s", serverOrder)).isTrue();
        assertThat(Signatures.matches(params, "s", guideOrder)).isTrue();
        assertThat(Signatures.matches(params, "other", serverOrder)).isFalse();
    }

    @Test
    void aPlusSentUnencodedInTheQueryArrivesAsASpaceAndStillMatches() {
        Map<String, String[]> params = SignedRequests.raw(Map.of("apikey", "k", "command", "listNetworks", "response", "json"));
        String sig = Signatures.sign(params, "secret-with-plus");
        assertThat(Signatures.matches(params, "secret-with-plus", sig.replace('+', ' '))).isTrue();
    }

    @Test
    void onlyTheFirstValueOfARepeatedParameterCounts() {
        Map<String, String[]> params = new LinkedHashMap<>(SignedRequests.raw(Map.of("apikey", "k", "command", "listNetworks")));
        params.put("id", new String[] {"a", "b"});
        assertThat(Signatures.canonical(params, false)).isEqualTo("apikey=k&command=listnetworks&id=a");
    }
}
