package io.egressctl.rules.cloudstack;

import io.egressctl.rules.auth.Caller;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class RequestVerifierTest {

    static final String KEY = "acme-key";
    static final String SECRET = "acme-secret";

    final MutableClock clock = new MutableClock(Instant.parse("2030-05-01T12:00:00Z"));
    final InMemoryCloudStackStore store = new InMemoryCloudStackStore(clock);
    final RequestVerifier verifier = new RequestVerifier(
            new CloudStackKeys(KEY + ":" + SECRET + "=acme:tenant:alice,ops-key:ops:sec=ret=ops:operator:compute"), store, clock);

    Map<String, String[]> create(Instant expires) {
        return SignedRequests.signed(KEY, SECRET, Map.of("command", "createEgressFirewallRule", "networkid", "net-1", "protocol", "tcp"),
                expires);
    }

    @Test
    void aCorrectlySignedV3RequestAuthenticatesItsCaller() {
        Caller c = verifier.verify(create(clock.instant().plusSeconds(600)), true);
        assertThat(c).isEqualTo(new Caller("alice", "acme", false));
    }

    @Test
    void secretsMayContainColonsAndEqualsSigns() {
        Map<String, String[]> req = SignedRequests.signed("ops-key", "ops:sec=ret", Map.of("command", "listNetworks"),
                clock.instant().plusSeconds(60));
        assertThat(verifier.verify(req, false)).isEqualTo(new Caller("compute", "ops", true));
    }

    @Test
    void aWrongSecretIsRejected() {
        Map<String, String[]> req = SignedRequests.signed(KEY, "not-the-secret", Map.of("command", "listNetworks"),
                clock.instant().plusSeconds(60));
        assertUnauthorized(req, false, "signature does not match");
    }

    @Test
    void aTamperedParameterIsRejected() {
        Map<String, String[]> req = new HashMap<>(create(clock.instant().plusSeconds(600)));
        req.put("protocol", new String[] {"udp"});
        assertUnauthorized(req, true, "signature does not match");
    }

    @Test
    void unknownKeysAndUnsignedRequestsAreRejected() {
        assertUnauthorized(SignedRequests.signed("nobody", SECRET, Map.of("command", "listNetworks"), null), false, "unknown apiKey");
        assertUnauthorized(SignedRequests.raw(Map.of("command", "listNetworks", "apiKey", KEY)), false, "needs apiKey and signature");
    }

    @Test
    void anExpiredRequestIsRejected() {
        Map<String, String[]> req = create(clock.instant().plusSeconds(30));
        clock.advance(Duration.ofSeconds(31));
        assertUnauthorized(req, true, "expired");
        assertThat(store.seenCount()).as("nothing remembered for a refused request").isZero();
    }

    @Test
    void anExpiredReadIsRejectedToo() {
        Map<String, String[]> req = SignedRequests.signed(KEY, SECRET, Map.of("command", "listNetworks"), clock.instant().minusSeconds(1));
        assertUnauthorized(req, false, "expired");
    }

    @Test
    void expiresTooFarAheadIsRejected() {
        assertUnauthorized(create(clock.instant().plus(RequestVerifier.MAX_EXPIRES_AHEAD).plusSeconds(5)), true, "minutes ahead");
    }

    @Test
    void aMalformedExpiresIsRejected() {
        Map<String, String> p = new HashMap<>(Map.of("command", "listNetworks", "apiKey", KEY, "signatureVersion", "3",
                "expires", "tomorrow", "response", "json"));
        p.put("signature", SignedRequests.signature(p, SECRET));
        assertUnauthorized(SignedRequests.raw(p), false, "is not a date");
    }

    @Test
    void aReplayedWriteIsRejectedUntilItsExpiry() {
        Map<String, String[]> req = create(clock.instant().plusSeconds(600));
        verifier.verify(req, true);
        clock.advance(Duration.ofSeconds(5));
        assertUnauthorized(req, true, "replayed");
        // Remembered until the request's own expiry (then it is refused as expired instead).
        clock.advance(Duration.ofSeconds(600));
        assertUnauthorized(req, true, "expired");
    }

    @Test
    void aFreshlySignedIdenticalWriteIsNotAReplay() {
        verifier.verify(create(clock.instant().plusSeconds(600)), true);
        clock.advance(Duration.ofSeconds(1));
        assertThat(verifier.verify(create(clock.instant().plusSeconds(600)), true).tenantId()).isEqualTo("acme");
    }

    @Test
    void readsMayBeRepeated() {
        Map<String, String[]> req = SignedRequests.signed(KEY, SECRET, Map.of("command", "queryAsyncJobResult", "jobid", "j1"),
                clock.instant().plusSeconds(600));
        verifier.verify(req, false);
        assertThat(verifier.verify(req, false).actor()).isEqualTo("alice");
    }

    @Test
    void writesNeedSignatureVersion3WithExpires() {
        assertUnauthorized(create(null), true, "signatureVersion=3");
    }

    @Test
    void readsWithoutExpiryAreRefusedByDefault() {
        Map<String, String[]> read = SignedRequests.signed(KEY, SECRET, Map.of("command", "listNetworks"), null);
        assertUnauthorized(read, false, "requests must be signed with signatureVersion=3 and expires, reads too");
        Map<String, String[]> poll = SignedRequests.signed(KEY, SECRET, Map.of("command", "queryAsyncJobResult", "jobid", "j1"), null);
        assertUnauthorized(poll, false, "EGRESS_CLOUDSTACK_READS_WITHOUT_EXPIRY=true");
    }

    @Test
    void aLeakedReadUrlStopsWorkingOnceItExpires() {
        Map<String, String[]> read = SignedRequests.signed(KEY, SECRET, Map.of("command", "listNetworks"), clock.instant().plusSeconds(600));
        assertThat(verifier.verify(read, false).tenantId()).isEqualTo("acme");
        clock.advance(Duration.ofSeconds(601));
        assertUnauthorized(read, false, "the request expired at");
    }

    @Test
    void theCompatibilitySettingAcceptsOldClientsReadsButNeverTheirWrites() {
        RequestVerifier compat = new RequestVerifier(new CloudStackKeys(KEY + ":" + SECRET + "=acme:tenant:alice"), store, clock, true);
        Map<String, String[]> read = SignedRequests.signed(KEY, SECRET, Map.of("command", "listNetworks"), null);
        assertThat(compat.verify(read, false).tenantId()).isEqualTo("acme");
        clock.advance(Duration.ofDays(30));
        assertThat(compat.verify(read, false).tenantId()).isEqualTo("acme");
        assertThatThrownBy(() -> compat.verify(create(null), true)).isInstanceOf(CloudStackError.class)
                .hasMessageContaining("commands that change something must be signed with signatureVersion=3");
        // A read that does carry expires is held to it under the setting too.
        Map<String, String[]> expired = SignedRequests.signed(KEY, SECRET, Map.of("command", "listNetworks"), clock.instant().minusSeconds(1));
        assertThatThrownBy(() -> compat.verify(expired, false)).isInstanceOf(CloudStackError.class).hasMessageContaining("expired");
    }

    @Test
    void expiresIsReadInTheFormatsCloudStackAccepts() {
        Instant t = Instant.parse("2030-01-01T10:00:00Z");
        assertThat(RequestVerifier.parseExpires("2030-01-01T10:00:00+0000")).isEqualTo(t);
        assertThat(RequestVerifier.parseExpires("2030-01-01T11:00:00+0100")).isEqualTo(t);
        assertThat(RequestVerifier.parseExpires("2030-01-01T10:00:00+00:00")).isEqualTo(t);
        assertThat(RequestVerifier.parseExpires("2030-01-01T10:00:00Z")).isEqualTo(t);
        assertThat(RequestVerifier.parseExpires("2030-01-01T10:00:00Z+0000")).isEqualTo(t);
        assertThat(RequestVerifier.parseExpires("2030-01-01T10:00:00.000000Z")).isEqualTo(t);
    }

    @Test
    void keyConfigurationIsValidated() {
        assertThat(new CloudStackKeys("").isEmpty()).isTrue();
        assertThatThrownBy(() -> new CloudStackKeys("k:s=acme:admin:alice")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new CloudStackKeys("nosecret=acme:tenant:alice")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void aDuplicateApiKeyIsRefusedAtStartWithoutPrintingIt() {
        assertThatThrownBy(() -> new CloudStackKeys("dupkey:s=acme:tenant:alice,other:x=acme:tenant:carol,dupkey:t=beta:tenant:bob"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("lists one API key twice (entry 3 repeats the API key of alice@acme)")
                .hasMessageNotContaining("dupkey");
    }

    @Test
    void apiKeysAreKeptAsDigestsAndStillResolve() {
        CloudStackKeys keys = new CloudStackKeys(KEY + ":" + SECRET + "=acme:tenant:alice");
        CloudStackKeys.KeyPair pair = keys.find(KEY).orElseThrow();
        assertThat(pair.apiKey()).isEqualTo(io.egressctl.rules.auth.KeyDigest.of(KEY));
        assertThat(pair.toString()).doesNotContain(KEY);
        assertThat(keys.find(KEY + "x")).isEmpty();
        assertThat(keys.find(null)).isEmpty();
    }

    private void assertUnauthorized(Map<String, String[]> req, boolean stateChanging, String reason) {
        assertThatThrownBy(() -> verifier.verify(req, stateChanging))
                .isInstanceOfSatisfying(CloudStackError.class, e -> {
                    assertThat(e.errorCode()).isEqualTo(401);
                    assertThat(e.csErrorCode()).isNull();
                    assertThat(e.getMessage()).startsWith("unable to verify user credentials and/or request signature").contains(reason);
                });
    }
}
