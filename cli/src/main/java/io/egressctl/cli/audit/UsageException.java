package io.egressctl.cli.audit;

/** A command line the tool cannot act on: exit code 2 with the message and the command's usage. */
public final class UsageException extends RuntimeException {

    public UsageException(String message) {
        super(message);
    }
}
