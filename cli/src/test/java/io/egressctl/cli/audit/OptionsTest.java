package io.egressctl.cli.audit;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class OptionsTest {

    @Test
    void readsValuesFlagsAndRepeatedOptions() {
        Options o = Options.parse(new String[] {"--network", "net-1", "--from=-1h", "--to", "-5m", "--all",
                "--consumer-property", "security.protocol=SSL", "--consumer-property", "ssl.truststore.location=/t.jks"},
                Set.of("all"));
        assertThat(o.get("network")).isEqualTo("net-1");
        assertThat(o.get("from")).isEqualTo("-1h");
        assertThat(o.get("to")).as("a value starting with a dash is a value").isEqualTo("-5m");
        assertThat(o.has("all")).isTrue();
        assertThat(o.all("consumer-property")).containsExactly("security.protocol=SSL", "ssl.truststore.location=/t.jks");
        assertThat(o.get("missing", "dflt")).isEqualTo("dflt");
    }

    @Test
    void complainsAboutUnknownOptionsMissingValuesAndStrayArguments() {
        assertThatThrownBy(() -> Options.parse(new String[] {"--network"}, Set.of()))
                .isInstanceOf(UsageException.class).hasMessage("option --network needs a value");
        assertThatThrownBy(() -> Options.parse(new String[] {"--netwrok", "n"}, Set.of()).check(Set.of("network")))
                .isInstanceOf(UsageException.class).hasMessage("unknown option --netwrok");
        assertThatThrownBy(() -> Options.parse(new String[] {"stray"}, Set.of()).check(Set.of()))
                .isInstanceOf(UsageException.class).hasMessage("unexpected argument 'stray'");
        assertThatThrownBy(() -> Options.parse(new String[] {}, Set.of()).require("network"))
                .isInstanceOf(UsageException.class).hasMessage("--network is required");
        assertThatThrownBy(() -> Options.parse(new String[] {"--events", "0"}, Set.of()).intValue("events", 1))
                .isInstanceOf(UsageException.class);
        assertThat(Options.parse(new String[] {"--events", "1_000_000"}, Set.of()).intValue("events", 1)).isEqualTo(1_000_000);
        assertThat(Options.parse(new String[] {}, Set.of()).all("host")).isEqualTo(List.of());
    }
}
