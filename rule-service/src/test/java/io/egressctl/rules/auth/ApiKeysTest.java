package io.egressctl.rules.auth;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ApiKeysTest {

    @Test
    void eachConfiguredKeyResolvesToItsCaller() {
        ApiKeys keys = new ApiKeys("k-demo=demo:tenant:alice, k-ops=ops:operator:compute");
        assertThat(keys.resolve("k-demo")).contains(new Caller("alice", "demo", false));
        assertThat(keys.resolve("k-ops")).contains(new Caller("compute", "ops", true));
    }

    @Test
    void anUnknownPrefixedOrMissingKeyResolvesToNoCaller() {
        ApiKeys keys = new ApiKeys("k-demo=demo:tenant:alice");
        assertThat(keys.resolve("k-dem")).isEmpty();
        assertThat(keys.resolve("k-demo ")).isEmpty();
        assertThat(keys.resolve("")).isEmpty();
        assertThat(keys.resolve(null)).isEmpty();
        assertThat(new ApiKeys("").resolve("k-demo")).isEmpty();
    }

    @Test
    void keysAreKeptOnlyAsDigests() throws Exception {
        ApiKeys keys = new ApiKeys("k-very-secret=demo:tenant:alice");
        var field = ApiKeys.class.getDeclaredField("entries");
        field.setAccessible(true);
        String held = field.get(keys).toString();
        assertThat(held).doesNotContain("k-very-secret").contains("KeyDigest[sha256]");
        assertThat(KeyDigest.of("k-very-secret").sha256()).hasSize(32);
        assertThat(KeyDigest.of("a").matches(KeyDigest.of("a"))).isTrue();
        assertThat(KeyDigest.of("a").matches(KeyDigest.of("b"))).isFalse();
    }

    @Test
    void aKeyListedTwiceIsRefusedAtStartWithoutPrintingIt() {
        assertThatThrownBy(() -> new ApiKeys("dup-key=demo:tenant:alice,other=demo:tenant:carol,dup-key=beta:operator:bob"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("lists one key twice (entry 3 repeats the key of alice@demo)")
                .hasMessageNotContaining("dup-key");
    }

    @Test
    void theSameKeyTwiceForTheSameCallerIsRefusedToo() {
        assertThatThrownBy(() -> new ApiKeys("k=demo:tenant:alice,k=demo:tenant:alice"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("entry 2");
    }

    @Test
    void malformedEntriesAreRefusedNamingTheirPosition() {
        assertThatThrownBy(() -> new ApiKeys("k=demo:tenant:alice,k2=demo:admin:bob"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("entry 2 is malformed");
        assertThatThrownBy(() -> new ApiKeys("=demo:tenant:alice")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new ApiKeys("k=:tenant:alice")).isInstanceOf(IllegalArgumentException.class);
    }
}
