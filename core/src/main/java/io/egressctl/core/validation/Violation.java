package io.egressctl.core.validation;

/** One reason an input was refused: the offending field (API name) and why. */
public record Violation(String field, String reason) {

    @Override
    public String toString() {
        return field + ": " + reason;
    }
}
