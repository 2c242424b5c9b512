package io.egressctl.rules.cloudstack;

import io.egressctl.core.event.Audit;
import io.egressctl.core.event.RuleChange;
import io.egressctl.core.model.EgressRule;
import io.egressctl.core.state.Limits;
import io.egressctl.core.validation.Identifiers;
import io.egressctl.core.validation.RuleValidator;
import io.egressctl.core.validation.ValidationException;
import io.egressctl.rules.api.ApiException;
import io.egressctl.rules.auth.Caller;
import io.egressctl.rules.changes.ChangeStatus;
import io.egressctl.rules.config.EgressProperties;
import io.egressctl.rules.logging.LogContext;
import io.egressctl.rules.views.NetworkNames;
import io.egressctl.schemas.view.NetworkView;
import io.egressctl.schemas.view.RuleView;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.stereotype.Component;
import tools.jackson.core.type.TypeReference;
import tools.jackson.databind.json.JsonMapper;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;

/**
 * The CloudStack-compatible API ({@code /client/api}): createEgressFirewallRule,
 * listEgressFirewallRules, updateEgressFirewallRule, deleteEgressFirewallRule, queryAsyncJobResult
 * and listNetworks, with CloudStack's parameter names, defaults, signing and JSON shapes, on top of
 * the same validation, event log and change status as the REST API.
 *
 * <p>Writes are async jobs as in CloudStack: create and delete publish a RuleEvent and answer its
 * change id as {@code jobid}; queryAsyncJobResult answers {@code jobstatus} 0 until the change is
 * APPLIED on every affected host (1, with the {@code firewallrule}) or REJECTED in log order (2, with
 * the reason). updateEgressFirewallRule changes only CloudStack's presentation (customid,
 * fordisplay), so its job is done at once.
 */
@Component
public class CloudStackApi {

    /** An HTTP answer: status, content type and body. */
    public record Reply(int status, String contentType, String body) {
    }

    static final String JSON_TYPE = "application/json; charset=UTF-8";
    static final String XML_TYPE = "text/xml; charset=UTF-8";
    static final Duration JOB_TTL = Duration.ofHours(24);
    /** CloudStack's default.page.size, also the largest page it serves. */
    static final int MAX_PAGE_SIZE = 500;

    private static final Logger log = LoggerFactory.getLogger(CloudStackApi.class);
    private static final DateTimeFormatter DATE = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ssZ").withZone(ZoneOffset.UTC);
    private static final String CMD_PACKAGE = "org.apache.cloudstack.api.command.user.firewall.";
    private static final JsonMapper JSON = JsonMapper.builder().build();

    /** The commands served: lower-cased name to canonical name. */
    private static final Map<String, String> COMMANDS = Map.of(
            "createegressfirewallrule", "createEgressFirewallRule",
            "listegressfirewallrules", "listEgressFirewallRules",
            "updateegressfirewallrule", "updateEgressFirewallRule",
            "deleteegressfirewallrule", "deleteEgressFirewallRule",
            "queryasyncjobresult", "queryAsyncJobResult",
            "listnetworks", "listNetworks");

    private final CloudStackBackend backend;
    private final CloudStackStore store;
    private final RequestVerifier verifier;
    private final Clock clock;
    private final String serviceVersion;
    private final Limits limits;
    private final RuleValidator validator = new RuleValidator();
    private final JsonMapper json = JSON;

    @Autowired
    public CloudStackApi(CloudStackBackend backend, CloudStackStore store, RequestVerifier verifier, EgressProperties props,
                         Limits limits) {
        this(backend, store, verifier, Clock.systemUTC(), props.serviceVersion(), limits);
    }

    /** An API under the default limits. */
    public CloudStackApi(CloudStackBackend backend, CloudStackStore store, RequestVerifier verifier, Clock clock,
                         String serviceVersion) {
        this(backend, store, verifier, clock, serviceVersion, Limits.defaults());
    }

    /** An API checking creates against the operator's {@code limits} (the rule quota is never above its rules per network). */
    public CloudStackApi(CloudStackBackend backend, CloudStackStore store, RequestVerifier verifier, Clock clock,
                         String serviceVersion, Limits limits) {
        this.limits = limits;
        this.backend = backend;
        this.store = store;
        this.verifier = verifier;
        this.clock = clock;
        this.serviceVersion = serviceVersion == null ? "dev" : serviceVersion;
    }

    /** Answers one request: every outcome, errors included, in CloudStack's shape. */
    public Reply handle(Map<String, String[]> params, String requestId) {
        String commandParam = RequestVerifier.first(params, "command");
        String command = commandParam == null ? null : COMMANDS.get(commandParam.toLowerCase(Locale.ROOT));
        String responseName = command == null ? "errorresponse" : command.toLowerCase(Locale.ROOT) + "response";
        String responseType = RequestVerifier.first(params, "response");
        if (responseType == null || !responseType.equalsIgnoreCase("json")) {
            return xmlError(responseName, CloudStackError.param("this endpoint answers JSON only: send response=json"));
        }
        try {
            Caller caller = verifier.verify(params, command != null && isStateChanging(command));
            if (commandParam == null) {
                throw CloudStackError.param("no command specified");
            }
            if (command == null) {
                throw new CloudStackError(CloudStackError.UNSUPPORTED_ACTION, CloudStackError.CS_SERVER_API,
                        "The given command '" + CloudStackError.clean(commandParam) + "' either does not exist, is not available"
                                + " for user, or not available from this endpoint (it serves createEgressFirewallRule,"
                                + " listEgressFirewallRules, updateEgressFirewallRule, deleteEgressFirewallRule,"
                                + " queryAsyncJobResult, listNetworks).");
            }
            Params p = new Params(command, params);
            Map<String, Object> body = switch (command) {
                case "createEgressFirewallRule" -> create(caller, p, requestId);
                case "listEgressFirewallRules" -> listRules(caller, p);
                case "updateEgressFirewallRule" -> update(caller, p);
                case "deleteEgressFirewallRule" -> delete(caller, p, requestId);
                case "queryAsyncJobResult" -> queryJob(caller, p);
                case "listNetworks" -> listNetworks(caller, p);
                default -> throw new IllegalStateException(command);
            };
            return new Reply(200, JSON_TYPE, json.writeValueAsString(Map.of(responseName, body)));
        } catch (CloudStackError e) {
            return jsonError(responseName, e);
        } catch (ApiException e) {
            // From the publisher: the broker or the schema registry is unavailable.
            return jsonError(responseName, new CloudStackError(CloudStackError.RESOURCE_UNAVAILABLE, CloudStackError.CS_RESOURCE_UNAVAILABLE,
                    e.getMessage()));
        } catch (RuntimeException e) {
            log.error("CloudStack command {} failed", command, e);
            return jsonError(responseName, new CloudStackError(CloudStackError.INTERNAL_ERROR, CloudStackError.CS_SERVER_API,
                    "Internal error executing command, please contact your system administrator"));
        }
    }

    static boolean isStateChanging(String command) {
        return command.startsWith("create") || command.startsWith("update") || command.startsWith("delete");
    }

    // ---- createEgressFirewallRule ---------------------------------------------------------------

    private Map<String, Object> create(Caller caller, Params p, String requestId) {
        NetworkView view = visibleNetwork(caller, p, "networkid", p.required("networkid"));
        p.required("protocol");
        String type = p.text("type");
        if (type != null && !type.equalsIgnoreCase("user") && !type.equalsIgnoreCase("system")) {
            throw CloudStackError.invalidValue(p.command(), "type", type);
        }
        String ruleId = UUID.randomUUID().toString();
        EgressRule rule;
        try {
            rule = validator.validateRule(ruleId, FirewallRules.draft(p, view), view.network());
        } catch (ValidationException e) {
            throw FirewallRules.invalid(p.command(), e);
        }
        checkConflicts(caller, view, rule);
        Boolean display = caller.operator() ? p.bool("fordisplay") : null; // admin-only in CloudStack; ignored for users
        String changeId = UUID.randomUUID().toString();
        LogContext.changeId(changeId);
        Instant now = clock.instant();
        Map<String, Object> snapshot = FirewallRules.toCloudStack(RuleView.of(rule, view.network().defaultPolicy()), NetworkNames.shown(caller, view),
                new CloudStackStore.RuleMeta(null, display), caller.operator());
        if (display != null) {
            store.saveRuleMeta(view.networkId(), ruleId, new CloudStackStore.RuleMeta(null, display));
        }
        backend.publish(new RuleChange(changeId, RuleChange.Operation.RULE_CREATED, view.networkId(), null, null, null, null, rule,
                audit(caller, requestId, now)));
        store.saveJob(new CloudStackStore.Job(changeId, p.command(), view.tenantId(), caller.actor(), view.networkId(), ruleId, now,
                null, json.writeValueAsString(snapshot)), JOB_TTL);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("id", ruleId);
        out.put("jobid", changeId);
        return out;
    }

    /** Fast answers to what the log would reject anyway: duplicates and the quota. */
    private void checkConflicts(Caller caller, NetworkView view, EgressRule rule) {
        String key = rule.matchKey();
        for (EgressRule existing : view.ruleList()) {
            if (existing.matchKey().equals(key)) {
                String shown = Optional.ofNullable(store.ruleMeta(view.networkId()).get(existing.ruleId()))
                        .map(CloudStackStore.RuleMeta::customId).orElse(existing.ruleId());
                throw CloudStackError.conflict("There is already an egress firewall rule with the same parameters in network "
                        + NetworkNames.shown(caller, view.networkId()) + ": " + shown);
            }
        }
        int quota = limits.effectiveQuota(view.ruleQuota());
        if (view.rules().size() >= quota) {
            throw new CloudStackError(532, 4370, "Maximum number of egress rules (" + quota + ") for network "
                    + NetworkNames.shown(caller, view.networkId()) + " has been exceeded.");
        }
    }

    // ---- deleteEgressFirewallRule ---------------------------------------------------------------

    private Map<String, Object> delete(Caller caller, Params p, String requestId) {
        String id = p.required("id");
        Located at = locate(caller, p, id);
        EgressRule before = at.view().rule(at.ruleId());
        String changeId = UUID.randomUUID().toString();
        LogContext.changeId(changeId);
        Instant now = clock.instant();
        CloudStackStore.RuleMeta meta = store.ruleMeta(at.view().networkId()).get(at.ruleId());
        backend.publish(new RuleChange(changeId, RuleChange.Operation.RULE_DELETED, at.view().networkId(), null, null, null, before,
                null, audit(caller, requestId, now)));
        store.saveJob(new CloudStackStore.Job(changeId, p.command(), at.view().tenantId(), caller.actor(), at.view().networkId(),
                at.ruleId(), now, null, null), JOB_TTL);
        if (meta != null) {
            store.dropRuleMeta(at.view().networkId(), at.ruleId());
            if (meta.customId() != null) {
                store.dropAlias(meta.customId());
            }
        }
        return Map.of("jobid", changeId);
    }

    // ---- updateEgressFirewallRule ---------------------------------------------------------------

    private Map<String, Object> update(Caller caller, Params p) {
        String id = p.required("id");
        Located at = locate(caller, p, id);
        String networkId = at.view().networkId();
        CloudStackStore.RuleMeta current = Optional.ofNullable(store.ruleMeta(networkId).get(at.ruleId()))
                .orElse(new CloudStackStore.RuleMeta(null, null));
        String customId = p.text("customid");
        Boolean display = caller.operator() ? p.bool("fordisplay") : null;
        if (customId != null && !customId.equals(current.customId())) {
            if (!Identifiers.isValid(customId)) {
                throw CloudStackError.param("customid '" + CloudStackError.clean(customId)
                        + "' is not a valid id (letters, digits, . _ : -; at most 64)");
            }
            if (!customId.equals(at.ruleId()) && (findRule(caller, customId, true).isPresent()
                    || !store.claimAlias(customId, new CloudStackStore.RuleRef(networkId, at.ruleId())))) {
                throw CloudStackError.param("customid " + customId + " is already in use");
            }
            if (current.customId() != null) {
                store.dropAlias(current.customId());
            }
        }
        CloudStackStore.RuleMeta updated = new CloudStackStore.RuleMeta(
                customId == null ? current.customId() : customId.equals(at.ruleId()) ? null : customId,
                display == null ? current.forDisplay() : display);
        store.saveRuleMeta(networkId, at.ruleId(), updated);
        String jobId = UUID.randomUUID().toString();
        Instant now = clock.instant();
        store.saveJob(new CloudStackStore.Job(jobId, p.command(), at.view().tenantId(), caller.actor(), networkId, at.ruleId(), now, now,
                null), JOB_TTL);
        return Map.of("jobid", jobId);
    }

    // ---- listEgressFirewallRules ----------------------------------------------------------------

    private Map<String, Object> listRules(Caller caller, Params p) {
        String id = p.text("id");
        String networkId = p.text("networkid");
        Boolean display = caller.operator() ? p.bool("fordisplay") : Boolean.TRUE;
        Page page = Page.of(p);
        List<NetworkView> networks = new ArrayList<>();
        String onlyRule = null;
        if (id != null) {
            Located at = locate(caller, p, id);
            if (networkId == null || networkId.equals(NetworkNames.shown(caller, at.view().networkId()))) {
                networks.add(at.view());
            }
            onlyRule = at.ruleId();
        } else if (networkId != null) {
            networks.add(visibleNetwork(caller, p, "networkid", networkId));
        } else {
            for (String nid : networkIds(caller, p)) {
                backend.network(nid).filter(v -> caller.canSee(v.tenantId())).ifPresent(networks::add);
            }
        }
        List<Map<String, Object>> rules = new ArrayList<>();
        for (NetworkView view : networks) {
            Map<String, CloudStackStore.RuleMeta> meta = store.ruleMeta(view.networkId());
            for (RuleView r : view.rules().values()) {
                CloudStackStore.RuleMeta m = meta.get(r.ruleId());
                boolean shown = m == null || m.forDisplay() == null || m.forDisplay();
                if ((onlyRule == null || onlyRule.equals(r.ruleId())) && (display == null || display == shown)) {
                    rules.add(FirewallRules.toCloudStack(r, NetworkNames.shown(caller, view), m, caller.operator()));
                }
            }
        }
        return page.of("firewallrule", rules);
    }

    // ---- listNetworks ---------------------------------------------------------------------------

    private Map<String, Object> listNetworks(Caller caller, Params p) {
        String id = p.text("id");
        String keyword = p.text("keyword");
        Page page = Page.of(p);
        List<Map<String, Object>> out = new ArrayList<>();
        List<String> ids = id != null ? List.of(visibleNetwork(caller, p, "id", id).networkId()) : networkIds(caller, p);
        for (String nid : ids) {
            backend.network(nid).filter(v -> caller.canSee(v.tenantId())).map(v -> NetworkNames.shown(caller, v))
                    .filter(v -> keyword == null || v.networkId().toLowerCase(Locale.ROOT).contains(keyword.toLowerCase(Locale.ROOT)))
                    .ifPresent(v -> out.add(FirewallRules.network(v)));
        }
        return page.of("network", out);
    }

    /** The caller's networks; an operator's listall=true lists every tenant's. */
    private List<String> networkIds(Caller caller, Params p) {
        if (caller.operator() && Boolean.TRUE.equals(p.bool("listall"))) {
            return backend.allNetworkIds();
        }
        return backend.networkIds(caller.tenantId());
    }

    // ---- queryAsyncJobResult --------------------------------------------------------------------

    private Map<String, Object> queryJob(Caller caller, Params p) {
        String jobId = p.required("jobid");
        CloudStackStore.Job job = store.job(jobId).filter(j -> caller.operator() || j.tenantId().equals(caller.tenantId()))
                .orElseThrow(() -> CloudStackError.invalidValue(p.command(), "jobid", jobId));
        int status;
        Map<String, Object> result = null;
        if (job.command().equals("updateEgressFirewallRule")) {
            status = 1;
            result = ruleResult(caller, job);
        } else {
            ChangeStatus s = backend.change(jobId).orElse(null);
            String state = s == null ? "PUBLISHED" : s.status();
            switch (state) {
                case "APPLIED" -> {
                    status = 1;
                    result = job.command().equals("deleteEgressFirewallRule") ? Map.of("success", true) : ruleResult(caller, job);
                }
                case "REJECTED" -> {
                    status = 2;
                    CloudStackError e = rejection(NetworkNames.shown(caller, s));
                    result = errorBody(e);
                }
                default -> status = 0;
            }
        }
        Instant completed = job.completed();
        if (status != 0 && completed == null) {
            completed = clock.instant();
            store.markCompleted(jobId, completed);
        }
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("accountid", job.tenantId());
        r.put("userid", job.actor());
        r.put("cmd", CMD_PACKAGE + Character.toUpperCase(job.command().charAt(0)) + job.command().substring(1) + "Cmd");
        r.put("jobstatus", status);
        r.put("jobprocstatus", 0);
        r.put("jobresultcode", status == 2 ? CloudStackError.INTERNAL_ERROR : 0);
        if (status != 0) {
            r.put("jobresulttype", "object");
            r.put("jobresult", result);
        }
        r.put("jobinstancetype", "FirewallRule");
        r.put("jobinstanceid", job.ruleId());
        r.put("created", DATE.format(job.created()));
        if (status != 0) {
            r.put("completed", DATE.format(completed));
        }
        r.put("jobid", jobId);
        return r;
    }

    /** {@code {"firewallrule":{...}}}: the rule as it is now, or as it was submitted when it is gone since. */
    private Map<String, Object> ruleResult(Caller caller, CloudStackStore.Job job) {
        Optional<NetworkView> view = backend.network(job.networkId());
        RuleView live = view.map(v -> v.rules().get(job.ruleId())).orElse(null);
        Map<String, Object> rule;
        if (live != null) {
            rule = FirewallRules.toCloudStack(live, NetworkNames.shown(caller, view.get()), store.ruleMeta(job.networkId()).get(job.ruleId()),
                    caller.operator());
        } else if (job.ruleJson() != null) {
            rule = json.readValue(job.ruleJson(), new TypeReference<LinkedHashMap<String, Object>>() { });
            if (!caller.operator()) {
                rule.remove("fordisplay");
            }
        } else {
            rule = new LinkedHashMap<>(Map.of("id", job.ruleId(), "networkid", NetworkNames.shown(caller, job.networkId())));
        }
        return Map.of("firewallrule", rule);
    }

    /** A change rejected in log order, as CloudStack's error. */
    static CloudStackError rejection(ChangeStatus s) {
        String code = s.code() == null ? "REJECTED" : s.code();
        String text = "the change was rejected in log order (" + code + ")" + (s.reason() == null ? "" : ": " + s.reason());
        return switch (code) {
            case "DUPLICATE_RULE" -> CloudStackError.conflict(text);
            case "QUOTA_EXCEEDED" -> new CloudStackError(532, 4370, text);
            case "NOT_FOUND", "INVALID", "STALE_VERSION" -> CloudStackError.param(text);
            default -> new CloudStackError(CloudStackError.INTERNAL_ERROR, CloudStackError.CS_SERVER_API, text);
        };
    }

    // ---- shared ---------------------------------------------------------------------------------

    private record Located(NetworkView view, String ruleId) {
    }

    /** The rule with CloudStack id {@code id} (a customid or our rule id) that the caller may see. */
    private Located locate(Caller caller, Params p, String id) {
        return findRule(caller, id, false).orElseThrow(() -> CloudStackError.invalidValue(p.command(), "id", id));
    }

    /** @param anyTenant look beyond the caller's networks (to keep customids unique) */
    private Optional<Located> findRule(Caller caller, String id, boolean anyTenant) {
        Optional<CloudStackStore.RuleRef> ref = store.alias(id);
        if (ref.isPresent()) {
            Optional<NetworkView> v = backend.network(ref.get().networkId())
                    .filter(n -> anyTenant || caller.canSee(n.tenantId()))
                    .filter(n -> n.rules().containsKey(ref.get().ruleId()));
            if (v.isPresent()) {
                return Optional.of(new Located(v.get(), ref.get().ruleId()));
            }
        }
        List<String> ids = anyTenant || caller.operator() ? backend.allNetworkIds() : backend.networkIds(caller.tenantId());
        for (String nid : ids) {
            Optional<NetworkView> v = backend.network(nid).filter(n -> anyTenant || caller.canSee(n.tenantId()))
                    .filter(n -> n.rules().containsKey(id));
            if (v.isPresent()) {
                return Optional.of(new Located(v.get(), id));
            }
        }
        return Optional.empty();
    }

    /** The network if the caller may see it; another tenant's network is answered as a missing one. */
    private NetworkView visibleNetwork(Caller caller, Params p, String parameter, String networkId) {
        return backend.visible(caller, networkId).orElseThrow(() -> CloudStackError.invalidValue(p.command(), parameter, networkId));
    }

    private Audit audit(Caller caller, String requestId, Instant now) {
        String id = requestId != null && !requestId.isBlank() && requestId.length() <= 128 ? requestId : UUID.randomUUID().toString();
        return new Audit(caller.actor(), caller.tenantId(), id, now, "rule-service", serviceVersion);
    }

    /** page/pagesize as CloudStack reads them (pagesize -1: everything). */
    private record Page(int page, int size) {

        static Page of(Params p) {
            Integer page = p.integer("page");
            Integer size = p.integer("pagesize");
            if (page != null && page < 1) {
                throw CloudStackError.invalidValue(p.command(), "page", String.valueOf(page));
            }
            if (size != null && size != -1 && (size < 1 || size > MAX_PAGE_SIZE)) {
                throw CloudStackError.param(size > MAX_PAGE_SIZE ? "Page size can't exceed max allowed page size value: " + MAX_PAGE_SIZE
                        : "Invalid parameter pagesize value=" + size);
            }
            return new Page(page == null ? 1 : page, size == null ? (page == null ? -1 : MAX_PAGE_SIZE) : size);
        }

        /** CloudStack's list shape: count (all matches) and the page; an empty list is {@code {}}. */
        Map<String, Object> of(String objectName, List<Map<String, Object>> all) {
            List<Map<String, Object>> sorted = new ArrayList<>(all);
            sorted.sort(Comparator.comparing((Map<String, Object> m) -> String.valueOf(m.get("networkid") == null ? "" : m.get("networkid")))
                    .thenComparing(m -> String.valueOf(m.get("id"))));
            List<Map<String, Object>> slice = sorted;
            if (size != -1) {
                long from = (long) (page - 1) * size;
                slice = from >= sorted.size() ? List.of() : sorted.subList((int) from, (int) Math.min(sorted.size(), from + size));
            }
            Map<String, Object> out = new LinkedHashMap<>();
            if (!sorted.isEmpty()) {
                out.put("count", sorted.size());
            }
            if (!slice.isEmpty()) {
                out.put(objectName, slice);
            }
            return out;
        }
    }

    // ---- error bodies ---------------------------------------------------------------------------

    private static Map<String, Object> errorBody(CloudStackError e) {
        Map<String, Object> b = new LinkedHashMap<>();
        b.put("uuidList", List.of());
        b.put("errorcode", e.errorCode());
        if (e.csErrorCode() != null) {
            b.put("cserrorcode", e.csErrorCode());
        }
        b.put("errortext", e.getMessage());
        return b;
    }

    private Reply jsonError(String responseName, CloudStackError e) {
        return new Reply(e.errorCode(), JSON_TYPE, json.writeValueAsString(Map.of(responseName, errorBody(e))));
    }

    static Reply xmlError(String responseName, CloudStackError e) {
        String body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><" + responseName + " cloud-stack-version=\"egressctl\"><errorcode>"
                + e.errorCode() + "</errorcode>" + (e.csErrorCode() == null ? "" : "<cserrorcode>" + e.csErrorCode() + "</cserrorcode>")
                + "<errortext>" + xmlEscape(e.getMessage()) + "</errortext></" + responseName + ">";
        return new Reply(e.errorCode(), XML_TYPE, body);
    }

    static Reply error(String responseName, CloudStackError e) {
        Map<String, Object> body = errorBody(e);
        return new Reply(e.errorCode(), JSON_TYPE, JSON.writeValueAsString(Map.of(responseName, body)));
    }

    private static String xmlEscape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
