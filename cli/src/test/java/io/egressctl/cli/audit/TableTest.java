package io.egressctl.cli.audit;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class TableTest {

    @Test
    void padsColumnsToTheWidestCellWithoutTrailingBlanks() {
        Table t = new Table("rule", "action", "match")
                .row("r-1", "deny", "tcp port 80 from all-vms to any")
                .row("rule-long-id", null, "")
                .row("r-2", "allow", "x\ny");
        assertThat(t.render()).isEqualTo("""
                RULE          ACTION  MATCH
                r-1           deny    tcp port 80 from all-vms to any
                rule-long-id  -       -
                r-2           allow   x y
                """);
        assertThat(t.size()).isEqualTo(3);
    }

    @Test
    void anEmptyTableIsItsHeader() {
        assertThat(new Table("a", "bb").render()).isEqualTo("A  BB\n");
        assertThatThrownBy(() -> new Table("a").row("1", "2")).isInstanceOf(IllegalArgumentException.class);
    }
}
