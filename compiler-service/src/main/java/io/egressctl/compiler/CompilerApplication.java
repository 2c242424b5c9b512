package io.egressctl.compiler;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.properties.ConfigurationPropertiesScan;

/**
 * compiler-service: consumes rule and placement events, decides them in log order, compiles the
 * affected (host, network) fragments, writes them to Redis and publishes HostUpdates.
 */
@SpringBootApplication
@ConfigurationPropertiesScan
public class CompilerApplication {

    public static void main(String[] args) {
        SpringApplication.run(CompilerApplication.class, args);
    }
}
