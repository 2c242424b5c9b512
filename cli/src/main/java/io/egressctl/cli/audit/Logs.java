package io.egressctl.cli.audit;

/** Keeps the Kafka client's INFO chatter (slf4j-simple) off the tool's output unless asked for. */
public final class Logs {

    private Logs() {
    }

    /** Must run before the first logger is made; an explicit -D setting wins. */
    public static void quiet() {
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        }
        quietKafka();
    }

    /** The Kafka client's loggers at ERROR only, the others as configured (the benchmarks); an explicit -D setting wins. */
    public static void quietKafka() {
        if (System.getProperty("org.slf4j.simpleLogger.log.org.apache.kafka") == null) {
            System.setProperty("org.slf4j.simpleLogger.log.org.apache.kafka", "error");
        }
    }
}
