package io.egressctl.rules.cloudstack;

import io.egressctl.rules.auth.Caller;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.stereotype.Component;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * Authenticates a {@code /client/api} request the way CloudStack's {@code ApiServer.verifyRequest}
 * does (API key, HMAC-SHA1 signature over the sorted, encoded, lower-cased parameters; with
 * {@code signatureVersion=3} an {@code expires} time that must not have passed), and adds what
 * CloudStack lacks:
 * <ul>
 *   <li>state-changing commands must carry {@code signatureVersion=3} and {@code expires} (CloudStack's
 *       {@code enforce.post.requests.and.timestamps} mode), at most {@link #MAX_EXPIRES_AHEAD} ahead;</li>
 *   <li>each signature of a state-changing command is accepted once: it is remembered (SET NX EX)
 *       until its {@code expires}, so a captured request cannot be replayed while it is valid.</li>
 * </ul>
 * Reads (list, queryAsyncJobResult) are idempotent and may be repeated; a client polling a job
 * twice in one second sends the same signature twice, legitimately. Reads follow the same expiry
 * rule as writes ({@code signatureVersion=3} and {@code expires}, at most an hour ahead), so a leaked
 * read URL stops working within the hour; {@code egress.cloudstack.reads-without-expiry=true}
 * ({@code EGRESS_CLOUDSTACK_READS_WITHOUT_EXPIRY}) accepts old clients' reads signed without them,
 * which then never expire (the compatibility setting; off by default).
 */
@Component
public class RequestVerifier {

    /** Farthest {@code expires} accepted: bounds how long a signature must be remembered. */
    public static final Duration MAX_EXPIRES_AHEAD = Duration.ofHours(1);

    private static final List<DateTimeFormatter> EXPIRES_FORMATS = List.of(
            DateTimeFormatter.ISO_OFFSET_DATE_TIME,
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ssZ"),
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSSSSX"),
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSSSSZ"),
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss'Z'Z"));

    private final CloudStackKeys keys;
    private final CloudStackStore store;
    private final Clock clock;
    private final boolean readsWithoutExpiry;

    @Autowired
    public RequestVerifier(CloudStackKeys keys, CloudStackStore store,
                           @Value("${egress.cloudstack.reads-without-expiry:false}") boolean readsWithoutExpiry) {
        this(keys, store, Clock.systemUTC(), readsWithoutExpiry);
    }

    /** A verifier under the secure default: reads expire as writes do. */
    public RequestVerifier(CloudStackKeys keys, CloudStackStore store, Clock clock) {
        this(keys, store, clock, false);
    }

    /**
     * @param readsWithoutExpiry accept reads signed without {@code signatureVersion=3} and {@code expires}
     *                           (old clients); such a signature never expires, so it is off by default
     */
    public RequestVerifier(CloudStackKeys keys, CloudStackStore store, Clock clock, boolean readsWithoutExpiry) {
        this.keys = keys;
        this.store = store;
        this.clock = clock;
        this.readsWithoutExpiry = readsWithoutExpiry;
    }

    /**
     * The authenticated caller.
     *
     * @param stateChanging the command changes something (create, update, delete)
     * @throws CloudStackError 401 when the request is unsigned, wrongly signed, expired or replayed
     */
    public Caller verify(Map<String, String[]> params, boolean stateChanging) {
        String apiKey = first(params, "apikey");
        String signature = first(params, "signature");
        if (apiKey == null || signature == null || apiKey.isEmpty() || signature.isEmpty()) {
            throw CloudStackError.unauthorized("the request needs apiKey and signature");
        }
        CloudStackKeys.KeyPair pair = keys.find(apiKey)
                .orElseThrow(() -> CloudStackError.unauthorized("unknown apiKey"));
        if (!Signatures.matches(params, pair.secretKey(), signature)) {
            throw CloudStackError.unauthorized("the signature does not match the request");
        }
        Instant now = clock.instant();
        Instant expires = null;
        if ("3".equals(first(params, "signatureversion"))) {
            String text = first(params, "expires");
            if (text == null || text.isEmpty()) {
                throw CloudStackError.unauthorized("signatureVersion=3 needs an expires parameter");
            }
            expires = parseExpires(text);
            if (expires.isBefore(now)) {
                throw CloudStackError.unauthorized("the request expired at " + text);
            }
            if (expires.isAfter(now.plus(MAX_EXPIRES_AHEAD))) {
                throw CloudStackError.unauthorized("expires " + text + " is more than " + MAX_EXPIRES_AHEAD.toMinutes()
                        + " minutes ahead");
            }
        } else if (stateChanging) {
            throw CloudStackError.unauthorized("commands that change something must be signed with signatureVersion=3 and expires");
        } else if (!readsWithoutExpiry) {
            // A read signed without expires would be valid for ever: a leaked URL could be replayed
            // at will. Old clients are let in only by the operator's compatibility setting.
            throw CloudStackError.unauthorized("requests must be signed with signatureVersion=3 and expires, reads too"
                    + " (the operator may accept old clients' reads with EGRESS_CLOUDSTACK_READS_WITHOUT_EXPIRY=true)");
        }
        if (stateChanging && !store.firstUse(fingerprint(apiKey, signature), Duration.between(now, expires).plusSeconds(1))) {
            throw CloudStackError.unauthorized("replayed request: this signature was already used");
        }
        return pair.caller();
    }

    /** Parses {@code expires} in the formats CloudStack's DateUtil.parseTZDateString accepts. */
    static Instant parseExpires(String text) {
        for (DateTimeFormatter f : EXPIRES_FORMATS) {
            try {
                return OffsetDateTime.parse(text, f).toInstant();
            } catch (DateTimeParseException e) {
                // next format
            }
        }
        try {
            return Instant.parse(text);
        } catch (DateTimeParseException e) {
            throw CloudStackError.unauthorized("expires '" + CloudStackError.clean(text)
                    + "' is not a date like 2030-01-01T12:00:00+0000");
        }
    }

    /** First value of a parameter, its name compared case-insensitively. */
    static String first(Map<String, String[]> params, String name) {
        for (Map.Entry<String, String[]> e : params.entrySet()) {
            if (e.getKey().equalsIgnoreCase(name) && e.getValue() != null && e.getValue().length > 0) {
                return e.getValue()[0];
            }
        }
        return null;
    }

    private static String fingerprint(String apiKey, String signature) {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest((apiKey + "\n" + signature.replace(' ', '+'))
                    .getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(d);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
