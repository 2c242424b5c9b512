package io.egressctl.cli.audit;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class TimesTest {

    static final Instant NOW = Instant.parse("2024-05-01T12:00:00Z");

    @Test
    void readsIsoInstantsOffsetsLocalTimesAndDates() {
        assertThat(Times.parse("at", "2024-05-01T10:00:00Z", NOW)).isEqualTo(Instant.parse("2024-05-01T10:00:00Z"));
        assertThat(Times.parse("at", "2024-05-01T10:00:00.250Z", NOW)).isEqualTo(Instant.parse("2024-05-01T10:00:00.250Z"));
        assertThat(Times.parse("at", "2024-05-01T12:00:00+02:00", NOW)).isEqualTo(Instant.parse("2024-05-01T10:00:00Z"));
        assertThat(Times.parse("at", "2024-05-01T10:00", NOW)).as("local time is UTC").isEqualTo(Instant.parse("2024-05-01T10:00:00Z"));
        assertThat(Times.parse("at", "2024-05-01", NOW)).as("a date is its midnight UTC").isEqualTo(Instant.parse("2024-05-01T00:00:00Z"));
    }

    @Test
    void readsRelativeTimesFromNow() {
        assertThat(Times.parse("from", "now", NOW)).isEqualTo(NOW);
        assertThat(Times.parse("from", "-1h", NOW)).isEqualTo(NOW.minusSeconds(3600));
        assertThat(Times.parse("from", "-30m", NOW)).isEqualTo(NOW.minusSeconds(1800));
        assertThat(Times.parse("from", "-90s", NOW)).isEqualTo(NOW.minusSeconds(90));
        assertThat(Times.parse("from", "-2d", NOW)).isEqualTo(NOW.minus(Duration.ofDays(2)));
        assertThat(Times.parse("from", "-1w", NOW)).isEqualTo(NOW.minus(Duration.ofDays(7)));
        assertThat(Times.parse("from", "-500ms", NOW)).isEqualTo(NOW.minusMillis(500));
        assertThat(Times.parse("from", "-1h30m", NOW)).isEqualTo(NOW.minusSeconds(5400));
        assertThat(Times.parse("from", "now-15m", NOW)).isEqualTo(NOW.minusSeconds(900));
        assertThat(Times.parse("to", "+5m", NOW)).isEqualTo(NOW.plusSeconds(300));
    }

    @Test
    void readsEpochMilliseconds() {
        assertThat(Times.parse("at", "1714557600000", NOW)).isEqualTo(Instant.parse("2024-05-01T10:00:00Z"));
    }

    @Test
    void rejectsWhatItCannotReadNamingTheOption() {
        assertThatThrownBy(() -> Times.parse("from", "yesterday", NOW)).isInstanceOf(UsageException.class)
                .hasMessageContaining("--from").hasMessageContaining("'yesterday'");
        assertThatThrownBy(() -> Times.parse("at", "-1y", NOW)).isInstanceOf(UsageException.class);
        assertThatThrownBy(() -> Times.parse("at", "2024-13-01", NOW)).isInstanceOf(UsageException.class);
    }

    @Test
    void readsDurations() {
        assertThat(Times.duration("5m")).isEqualTo(Duration.ofMinutes(5));
        assertThat(Times.duration("1h30m")).isEqualTo(Duration.ofMinutes(90));
        assertThatThrownBy(() -> Times.duration("5 minutes")).isInstanceOf(UsageException.class);
        assertThatThrownBy(() -> Times.duration("")).isInstanceOf(UsageException.class);
    }

    @Test
    void formatsUtcWithMilliseconds() {
        assertThat(Times.format(Instant.parse("2024-05-01T10:00:00Z"))).isEqualTo("2024-05-01T10:00:00.000Z");
        assertThat(Times.format(1714557600123L)).isEqualTo("2024-05-01T10:00:00.123Z");
        assertThat(Times.format((Instant) null)).isEqualTo("-");
        assertThat(Times.shortDuration(Duration.ofSeconds(42))).isEqualTo("42s");
        assertThat(Times.shortDuration(Duration.ofSeconds(192))).isEqualTo("3m12s");
        assertThat(Times.shortDuration(Duration.ofMinutes(64))).isEqualTo("1h04m");
    }
}
