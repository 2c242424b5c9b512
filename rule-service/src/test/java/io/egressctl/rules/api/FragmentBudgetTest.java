package io.egressctl.rules.api;

import io.egressctl.core.event.Audit;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.event.WorkloadChange;
import io.egressctl.core.model.Cidr;
import io.egressctl.core.model.DefaultPolicy;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.model.Network;
import io.egressctl.core.model.NetworkKind;
import io.egressctl.core.state.Limits;
import io.egressctl.core.state.NetworkState;
import io.egressctl.core.validation.RuleDraft;
import io.egressctl.core.validation.RuleValidator;
import io.egressctl.schemas.view.NetworkView;
import org.junit.jupiter.api.Test;

import java.time.Instant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

/** The fragment budget checked at the API, by the fold itself on a copy of the network's view. */
class FragmentBudgetTest {

    static final Limits SMALL = new Limits(1000, 10, 2048);
    static final Network NET = new Network("n1", "acme", NetworkKind.BASIC, Cidr.parse("10.0.0.0/24"), null, DefaultPolicy.ALLOW, false,
            1000);
    static final Audit AUDIT = new Audit("alice", "acme", "r", Instant.EPOCH, "rule-service", "test");
    final RuleValidator validator = new RuleValidator();

    EgressRule rule(String id, int port) {
        return validator.validateRule(id, new RuleDraft("tcp", null, null, null, null, null, null, port, null, null, null, null), NET);
    }

    RuleChange created(EgressRule r) {
        return new RuleChange("c-" + r.ruleId(), RuleChange.Operation.RULE_CREATED, "n1", null, null, null, null, r, AUDIT);
    }

    @Test
    void aRuleThatWouldNotFitIsRefusedWith409BeforePublishingAndOneThatFitsPasses() {
        NetworkState s = new NetworkState("n1", SMALL);
        s.applyRule(new RuleChange("c0", RuleChange.Operation.NETWORK_CREATED, "n1", null, null, NET, null, null, AUDIT), 1);
        s.applyWorkload(new WorkloadChange("w1", WorkloadChange.Operation.VM_PLACED, "n1", "vm-1", "h1", null, "tap-1", null, "10.0.0.11",
                null, AUDIT), 2);
        long position = 2;
        int port = 1;
        while (s.applyRule(created(rule("r" + port, port)), ++position).isAccepted()) {
            port++;
        }
        NetworkView full = NetworkView.of(s);
        EgressRule next = rule("r-next", 5000);
        ApiException e = catchThrowableOfType(ApiException.class,
                () -> FragmentBudget.check(full, SMALL, (copy, p) -> copy.applyRule(created(next), p)));
        assertThat(e).isNotNull();
        assertThat(e.status().value()).isEqualTo(409);
        assertThat(e.code()).isEqualTo("FRAGMENT_TOO_LARGE");
        assertThat(e.getMessage()).contains("host h1").contains("over the limit of 2048");
        // Under the default budget the same rule fits.
        assertThatCode(() -> FragmentBudget.check(full, Limits.defaults(), (copy, p) -> copy.applyRule(created(next), p)))
                .doesNotThrowAnyException();
        // A placement on that full host is refused the same way; on an empty host it passes.
        WorkloadChange onFull = new WorkloadChange("w2", WorkloadChange.Operation.VM_PLACED, "n1", "vm-2", "h1", null, "tap-2", null,
                "10.0.0.12", null, AUDIT);
        assertThat(catchThrowableOfType(ApiException.class,
                () -> FragmentBudget.check(full, SMALL, (copy, p) -> copy.applyWorkload(onFull, p))).code()).isEqualTo("FRAGMENT_TOO_LARGE");
        WorkloadChange onEmpty = new WorkloadChange("w3", WorkloadChange.Operation.VM_PLACED, "n1", "vm-3", "h2", null, "tap-3", null,
                "10.0.0.13", null, AUDIT);
        assertThatCode(() -> FragmentBudget.check(full, Limits.defaults(), (copy, p) -> copy.applyWorkload(onEmpty, p)))
                .doesNotThrowAnyException();
    }
}
