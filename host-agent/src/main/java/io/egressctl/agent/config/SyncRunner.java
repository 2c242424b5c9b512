package io.egressctl.agent.config;

import io.egressctl.agent.sync.HostSync;
import org.springframework.context.SmartLifecycle;

/** Runs the {@link HostSync} loop on its own thread for the life of the application. */
final class SyncRunner implements SmartLifecycle {

    private final HostSync sync;
    private Thread thread;

    SyncRunner(HostSync sync) {
        this.sync = sync;
    }

    @Override
    public synchronized void start() {
        thread = new Thread(sync, "host-sync");
        thread.start();
    }

    @Override
    public synchronized void stop() {
        sync.stop();
        try {
            thread.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        thread = null;
    }

    @Override
    public synchronized boolean isRunning() {
        return thread != null;
    }
}
