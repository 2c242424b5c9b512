package io.egressctl.rules.config;

import io.egressctl.schemas.serde.TopicTopology;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.kafka.core.KafkaAdmin;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Runs the start-up topic check with the admin settings Spring Boot built (bootstrap servers, TLS, SASL). */
final class TopicChecks {

    private static final Logger log = LoggerFactory.getLogger(TopicChecks.class);

    private TopicChecks() {
    }

    static TopicTopology.Report ensure(String service, KafkaAdmin kafkaAdmin, List<TopicTopology.Requirement> required,
                                       Duration timeout) {
        Map<String, Object> config = new HashMap<>(kafkaAdmin.getConfigurationProperties());
        config.putIfAbsent(AdminClientConfig.CLIENT_ID_CONFIG, service + "-topic-check");
        try (Admin admin = Admin.create(config)) {
            TopicTopology.Report report;
            try {
                report = TopicTopology.ensure(admin, required, timeout);
            } catch (RuntimeException e) {
                log.error("{}: {}", service, e.getMessage());
                throw e;
            }
            if (!report.created().isEmpty()) {
                log.info("{}: created topics {}", service, report.created());
            }
            if (!report.checked().isEmpty()) {
                log.info("{}: topics {} exist with the configured partition counts", service, report.checked());
            }
            report.warnings().forEach(w -> log.warn("{}: {}", service, w));
            return report;
        }
    }
}
