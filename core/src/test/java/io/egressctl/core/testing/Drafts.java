package io.egressctl.core.testing;

import io.egressctl.core.validation.RuleDraft;

import java.util.List;

/** A fluent builder for {@link RuleDraft}: every field starts omitted (null). */
public final class Drafts {

    private String protocol;
    private String action;
    private Integer priority;
    private List<String> sourceCidrs;
    private List<String> sourceVmIds;
    private List<String> destinationCidrs;
    private List<String> destinationExceptCidrs;
    private Integer startPort;
    private Integer endPort;
    private Integer icmpType;
    private Integer icmpCode;
    private String description;

    private Drafts() {
    }

    public static Drafts draft() {
        return new Drafts();
    }

    public static Drafts draft(String protocol) {
        return new Drafts().protocol(protocol);
    }

    public Drafts protocol(String p) {
        protocol = p;
        return this;
    }

    public Drafts action(String a) {
        action = a;
        return this;
    }

    public Drafts priority(Integer p) {
        priority = p;
        return this;
    }

    public Drafts sources(String... cidrs) {
        return sources(List.of(cidrs));
    }

    public Drafts sources(List<String> cidrs) {
        sourceCidrs = cidrs;
        return this;
    }

    public Drafts vms(String... ids) {
        return vms(List.of(ids));
    }

    public Drafts vms(List<String> ids) {
        sourceVmIds = ids;
        return this;
    }

    public Drafts destinations(String... cidrs) {
        return destinations(List.of(cidrs));
    }

    public Drafts destinations(List<String> cidrs) {
        destinationCidrs = cidrs;
        return this;
    }

    public Drafts except(String... cidrs) {
        return except(List.of(cidrs));
    }

    public Drafts except(List<String> cidrs) {
        destinationExceptCidrs = cidrs;
        return this;
    }

    public Drafts port(int p) {
        startPort = p;
        return this;
    }

    public Drafts ports(Integer start, Integer end) {
        startPort = start;
        endPort = end;
        return this;
    }

    public Drafts icmp(Integer type, Integer code) {
        icmpType = type;
        icmpCode = code;
        return this;
    }

    public Drafts description(String d) {
        description = d;
        return this;
    }

    public RuleDraft build() {
        return new RuleDraft(protocol, action, priority, sourceCidrs, sourceVmIds, destinationCidrs, destinationExceptCidrs,
                startPort, endPort, icmpType, icmpCode, description);
    }
}
