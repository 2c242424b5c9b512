package io.egressctl.e2e.cli;

import io.egressctl.cli.Env;
import io.egressctl.cli.walkthrough.Walkthrough;
import io.egressctl.e2e.support.ControlPlane;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The walkthrough of {@code ./egressctl up} on the real stack, with three dry-run agents of its own:
 * the seed's examples through the REST API, each rule found in the rendered rulesets of exactly the
 * hosts of the VMs it names, then one rule removed. Run twice, as a user running {@code up} again
 * would: the second run clears the first's demo network and starts over.
 */
class WalkthroughIT {

    @Test
    void theWalkthroughRunsTheSeedExamplesAndFindsEveryRuleOnExactlyItsHostsTwiceInARow() throws Exception {
        ControlPlane cp = ControlPlane.shared();
        List<String> hosts = List.of(cp.unique("wt-h1"), cp.unique("wt-h2"), cp.unique("wt-h3"));
        hosts.forEach(cp::startAgent);
        try {
            Env env = new Env(cp.apiUrl(), cp.tenantKey(), cp.operatorKey(), cp.env("KAFKA_BOOTSTRAP_SERVERS"),
                    cp.env("SCHEMA_REGISTRY_URL"), cp.env("REDIS_URL"), cp.rulesetFile(hosts.get(0)).getParent().toString(), hosts);

            String first = run(env);
            assertThat(first).contains("every rule is enforced on exactly the hosts of the VMs it names.")
                    .doesNotContain("MISMATCH").doesNotContain("removed the demo network");
            // vm-1 (host 1) blocks ICMP and then everything: the later ICMP rule is decided by "all".
            assertThat(first).contains("  vm-1  10.1.0.11  on " + hosts.get(0));
            assertThat(cp.ruleset(hosts.get(0))).containsPattern("set l0_all4 \\{[^}]*\n      0x45[0-9a-f]{6} comment \"r=")
                    .contains(". 10.1.0.11 comment \"net demo-net vm vm-1\"");
            assertThat(cp.ruleset(hosts.get(2))).as("vm-3 and vm-4: the port range for both")
                    .containsPattern("(?s)0x45[0-9a-f]{6} \\. tcp \\. 8000-8100 comment.*0x45[0-9a-f]{6} \\. tcp \\. 8000-8100 comment");
            assertThat(cp.ruleset(hosts.get(1))).as("tcp/80 of vm-2 was removed at the end").doesNotContainPattern(" \\. tcp \\. 80(-80)? comment");

            String second = run(env);
            assertThat(second).contains("(removed the demo network of an earlier run)")
                    .contains("every rule is enforced on exactly the hosts of the VMs it names.").doesNotContain("MISMATCH");
        } finally {
            hosts.forEach(h -> cp.stopAgent(h, false));
        }
    }

    private static String run(Env env) throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        int code = new Walkthrough(env, new PrintStream(buf, true, StandardCharsets.UTF_8)).run();
        String out = buf.toString(StandardCharsets.UTF_8);
        assertThat(code).as("walkthrough exit code; its output:%n%s", out).isZero();
        return out;
    }
}
