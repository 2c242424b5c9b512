package io.egressctl.cli.rebuild;

import io.egressctl.schemas.view.RedisKeys;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** What {@code rebuild drop} deletes (what the log determines) and what it keeps (what the log cannot give back). */
class RebuildKeysTest {

    @Test
    void dropsEveryKeyTheCompilerDerivesFromTheLog() {
        for (String key : new String[] {RedisKeys.hostFragments("hv-1"), RedisKeys.hostVersions("hv-1"), RedisKeys.hostInterfaces("hv-1"),
                RedisKeys.hosts(), RedisKeys.network("net-1"), RedisKeys.tenantNetworks("acme"), RedisKeys.change("c-1"),
                RedisKeys.checkpoint(3), RedisKeys.views(), RedisKeys.changeExpiry(), RedisKeys.networks()}) {
            assertThat(Rebuild.derivedFromLog(key)).as(key).isTrue();
            assertThat(Rebuild.kept(key)).as(key).isFalse();
        }
    }

    @Test
    void keepsCloudStackJobsFingerprintsAliasesIdempotencyClaimsAppliedStateAndMarkers() {
        for (String key : new String[] {"egress:cs:job:5f1c", "egress:cs:seen:ab12", "egress:cs:meta:{net-1}", "egress:cs:alias:web",
                "egress:idem:acme:k-1", RedisKeys.hostApplied("hv-1"), RedisKeys.appliedHosts(), RedisKeys.generation(),
                RedisKeys.rebuilding(), RedisKeys.epoch(0)}) {
            assertThat(Rebuild.kept(key)).as(key).isTrue();
            assertThat(Rebuild.derivedFromLog(key)).as(key).isFalse();
        }
    }

    @Test
    void keepsNetworkNameClaimsWhichTheLogCannotGiveBack() {
        assertThat(Rebuild.kept(RedisKeys.nameClaim("web"))).isTrue();
        assertThat(Rebuild.derivedFromLog(RedisKeys.nameClaim("web"))).isFalse();
    }

    @Test
    void anUnknownKeyIsNeitherDroppedNorCountedAsDerived() {
        assertThat(Rebuild.derivedFromLog("egress:something-new")).isFalse();
    }
}
