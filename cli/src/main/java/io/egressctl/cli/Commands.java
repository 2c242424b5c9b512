package io.egressctl.cli;

/** Sub-commands that are not built yet say so plainly and fail. */
final class Commands {

    private Commands() {
    }

    static int bench(Env env, String[] args) {
        System.err.println("bench " + String.join(" ", args) + ": not available in this build");
        return 3;
    }

    static int audit(Env env, String[] args) {
        System.err.println("audit: not available in this build");
        return 3;
    }

    static int rebuild(Env env, String[] args) {
        System.err.println("rebuild: not available in this build");
        return 3;
    }
}
