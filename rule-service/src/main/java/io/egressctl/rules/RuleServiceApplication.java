package io.egressctl.rules;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.properties.ConfigurationPropertiesScan;

/**
 * rule-service: the tenants' API. Validates every change against the network's current view,
 * publishes accepted ones as RuleEvents (and placements as WorkloadEvents) keyed by network id, and
 * answers change status from what the compiler and the agents reported.
 */
@SpringBootApplication
@ConfigurationPropertiesScan
public class RuleServiceApplication {

    public static void main(String[] args) {
        SpringApplication.run(RuleServiceApplication.class, args);
    }
}
