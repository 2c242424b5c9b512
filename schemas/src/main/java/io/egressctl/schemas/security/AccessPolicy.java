package io.egressctl.schemas.security;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * Least privilege as files the stack applies and the tests read: the Kafka ACLs of each principal
 * ({@code stack/acls/kafka.acl}) and the Redis ACL users ({@code stack/acls/redis-users.acl}).
 *
 * <p>Kafka ACL file: one rule a line, {@code #} starts a comment, fields separated by blanks:
 * <pre>
 * principal  operations(comma-separated)  resource-type(topic|group|cluster|transactional-id)  pattern(literal|prefixed)  name
 * </pre>
 * Every rule allows (the authorizer denies whatever no rule allows); the principal is a SASL user name.
 *
 * <p>Redis users file: Redis ACL file syntax ({@code user NAME on ... }), with two place holders:
 * {@code <PASSWORD>} becomes the user's password (as {@code #<sha256>}, so the file holds no password),
 * and a line naming {@code <HOST>} is written once per host with the host id in its place.
 *
 * <p>{@code main} is what {@code scripts/secure.sh} runs: {@code kafka-apply FILE BOOTSTRAP PASSWORDS}
 * (connecting as {@link KafkaSecurity#fromEnvironment()} says, a super user: sets the SCRAM credential of
 * each principal the file names, adds its rules, then deletes every rule in force that the file does
 * not hold and the SCRAM credential of every user it no longer names but the super user, so a line
 * removed from the file is revoked on a running stack too) and {@code redis-render TEMPLATE HOSTS
 * PASSWORDS} (hosts comma-separated, passwords a file of NAME=PASSWORD lines).
 */
public final class AccessPolicy {

    /** The super user the stack's broker names ({@code super.users=User:admin}); never removed. */
    public static final String SUPER_USER = "admin";

    private AccessPolicy() {
    }

    /** The Kafka ACL rules of {@code text} ({@code source} names it in errors). */
    public static List<AclBinding> kafkaAcls(String text, String source) {
        List<AclBinding> out = new ArrayList<>();
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i];
            int hash = line.indexOf('#');
            if (hash >= 0) {
                line = line.substring(0, hash);
            }
            line = line.trim();
            if (line.isEmpty()) {
                continue;
            }
            String where = source + ":" + (i + 1);
            String[] f = line.split("\\s+");
            if (f.length != 5) {
                throw new IllegalArgumentException(where + ": expected 5 fields (principal operations resource-type pattern name), got "
                        + f.length + ": '" + line + "'");
            }
            ResourceType type = switch (f[2].toLowerCase(Locale.ROOT)) {
                case "topic" -> ResourceType.TOPIC;
                case "group" -> ResourceType.GROUP;
                case "cluster" -> ResourceType.CLUSTER;
                case "transactional-id" -> ResourceType.TRANSACTIONAL_ID;
                default -> throw new IllegalArgumentException(where + ": resource type '" + f[2] + "' is not topic, group, cluster or transactional-id");
            };
            PatternType pattern = switch (f[3].toLowerCase(Locale.ROOT)) {
                case "literal" -> PatternType.LITERAL;
                case "prefixed" -> PatternType.PREFIXED;
                default -> throw new IllegalArgumentException(where + ": pattern '" + f[3] + "' is not literal or prefixed");
            };
            if (!f[0].matches("[A-Za-z0-9._-]+")) {
                throw new IllegalArgumentException(where + ": principal '" + f[0] + "' is not a user name ([A-Za-z0-9._-])");
            }
            for (String op : f[1].split(",")) {
                // DescribeConfigs (as kafka-acls writes it) or DESCRIBE_CONFIGS (the enum's name)
                AclOperation operation = AclOperation.fromString(op.trim().replaceAll("([a-z])([A-Z])", "$1_$2"));
                if (operation == AclOperation.UNKNOWN || operation == AclOperation.ANY) {
                    throw new IllegalArgumentException(where + ": operation '" + op + "' is not a Kafka ACL operation (Read, Write, Create, "
                            + "Describe, DescribeConfigs, IdempotentWrite, ...)");
                }
                out.add(new AclBinding(new ResourcePattern(type, f[4], pattern),
                        new AccessControlEntry("User:" + f[0], "*", operation, AclPermissionType.ALLOW)));
            }
        }
        return out;
    }

    /**
     * The Redis ACL file for {@code hosts} from {@code template}, each user's password taken from
     * {@code passwordOf} (a user without one is refused: every user must be able to log in, or be off).
     */
    public static String redisUsers(String template, List<String> hosts, Function<String, String> passwordOf) {
        StringBuilder out = new StringBuilder();
        for (String raw : template.split("\n", -1)) {
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue; // the ACL file of Redis takes no comments
            }
            List<String> expanded = new ArrayList<>();
            if (line.contains("<HOST>")) {
                for (String h : hosts) {
                    if (!h.matches("[A-Za-z0-9._-]{1,64}")) {
                        throw new IllegalArgumentException("host id '" + h + "' is not [A-Za-z0-9._-], up to 64");
                    }
                    expanded.add(line.replace("<HOST>", h));
                }
            } else {
                expanded.add(line);
            }
            for (String l : expanded) {
                if (l.contains("<PASSWORD>")) {
                    String[] f = l.split("\\s+");
                    if (f.length < 2 || !f[0].equals("user")) {
                        throw new IllegalArgumentException("<PASSWORD> outside a 'user NAME ...' line: " + l);
                    }
                    String pw = passwordOf.apply(f[1]);
                    if (pw == null || pw.isEmpty()) {
                        throw new IllegalArgumentException("no password for Redis user " + f[1]);
                    }
                    l = l.replace("<PASSWORD>", "#" + sha256(pw));
                }
                out.append(l).append('\n');
            }
        }
        return out.toString();
    }

    /** The user names of a Redis users template, {@code <HOST>} expanded. */
    public static List<String> redisUserNames(String template, List<String> hosts) {
        List<String> names = new ArrayList<>();
        for (String l : redisUsers(template, hosts, n -> "x").split("\n")) {
            String[] f = l.split("\\s+");
            if (f.length >= 2 && f[0].equals("user")) {
                names.add(f[1]);
            }
        }
        return names;
    }

    static String sha256(String s) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** 24 random bytes, base64url: a password with nothing a URL, a JAAS line or a shell would have to quote. */
    public static String newPassword() {
        byte[] b = new byte[24];
        new java.security.SecureRandom().nextBytes(b);
        return java.util.Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    }

    /** The user names the rules name, in order, each once. */
    public static List<String> principals(List<AclBinding> acls) {
        return acls.stream().map(b -> b.entry().principal().substring("User:".length())).distinct().toList();
    }

    /** Sets each user's SCRAM-SHA-512 credential to its password (made or changed; a user without one is refused). */
    public static void scramUsers(Admin admin, List<String> users, Map<String, String> passwords) throws Exception {
        List<org.apache.kafka.clients.admin.UserScramCredentialAlteration> alterations = new ArrayList<>();
        for (String u : users) {
            String pw = passwords.get(u);
            if (pw == null || pw.isEmpty()) {
                throw new IllegalArgumentException("no password for Kafka user " + u);
            }
            alterations.add(new org.apache.kafka.clients.admin.UserScramCredentialUpsertion(u,
                    new org.apache.kafka.clients.admin.ScramCredentialInfo(org.apache.kafka.clients.admin.ScramMechanism.SCRAM_SHA_512, 8192), pw));
        }
        admin.alterUserScramCredentials(alterations).all().get(60, TimeUnit.SECONDS);
    }

    /**
     * Makes the rules in force exactly {@code acls}: adds those missing (adding one again changes
     * nothing), then deletes every rule in force that {@code acls} does not hold.
     *
     * @return the rules deleted
     */
    public static List<AclBinding> apply(Admin admin, List<AclBinding> acls) throws Exception {
        admin.createAcls(acls).all().get(60, TimeUnit.SECONDS);
        Collection<AclBinding> inForce = admin.describeAcls(AclBindingFilter.ANY).values().get(60, TimeUnit.SECONDS);
        List<AclBinding> stale = stale(inForce, acls);
        if (!stale.isEmpty()) {
            admin.deleteAcls(stale.stream().map(AclBinding::toFilter).toList()).all().get(60, TimeUnit.SECONDS);
        }
        return stale;
    }

    /** The rules of {@code inForce} that {@code wanted} does not hold, in their order. */
    static List<AclBinding> stale(Collection<AclBinding> inForce, Collection<AclBinding> wanted) {
        Set<AclBinding> keep = new HashSet<>(wanted);
        return inForce.stream().filter(b -> !keep.contains(b)).toList();
    }

    /**
     * Deletes the SCRAM credentials of the users in force that {@code users} does not name, except
     * {@code superUser}: a principal removed from the file can no longer log in.
     *
     * @return the users deleted
     */
    public static List<String> removeOtherScramUsers(Admin admin, List<String> users, String superUser) throws Exception {
        List<String> gone = new ArrayList<>();
        for (org.apache.kafka.clients.admin.UserScramCredentialsDescription d
                : admin.describeUserScramCredentials().all().get(60, TimeUnit.SECONDS).values()) {
            if (!users.contains(d.name()) && !d.name().equals(superUser)) {
                gone.add(d.name());
            }
        }
        List<org.apache.kafka.clients.admin.UserScramCredentialAlteration> deletions = new ArrayList<>();
        for (String u : gone) {
            deletions.add(new org.apache.kafka.clients.admin.UserScramCredentialDeletion(u, org.apache.kafka.clients.admin.ScramMechanism.SCRAM_SHA_512));
        }
        if (!deletions.isEmpty()) {
            admin.alterUserScramCredentials(deletions).all().get(60, TimeUnit.SECONDS);
        }
        return gone;
    }

    /** NAME=VALUE lines (blank lines and # comments skipped). */
    static Map<String, String> readPasswords(Path file) throws IOException {
        Map<String, String> m = new LinkedHashMap<>();
        for (String l : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            if (l.isBlank() || l.startsWith("#")) {
                continue;
            }
            int eq = l.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException(file + ": not NAME=PASSWORD: '" + l + "'");
            }
            m.put(l.substring(0, eq), l.substring(eq + 1));
        }
        return m;
    }

    /** {@code kafka-apply FILE BOOTSTRAP PASSWORDS} or {@code redis-render TEMPLATE HOSTS PASSWORDS}; see the class comment. */
    public static void main(String[] args) throws Exception {
        if (args.length == 4 && args[0].equals("kafka-apply")) {
            Path file = Path.of(args[1]);
            List<AclBinding> acls = kafkaAcls(Files.readString(file), file.getFileName().toString());
            Map<String, String> passwords = readPasswords(Path.of(args[3]));
            Map<String, Object> c = KafkaSecurity.fromEnvironment().applyTo(new LinkedHashMap<>());
            c.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[2]);
            c.put(AdminClientConfig.CLIENT_ID_CONFIG, "egressctl-acls");
            List<String> users = principals(acls);
            List<AclBinding> revoked;
            List<String> removedUsers;
            try (Admin admin = Admin.create(c)) {
                scramUsers(admin, users, passwords);
                revoked = apply(admin, acls);
                removedUsers = removeOtherScramUsers(admin, users, SUPER_USER);
            }
            revoked.forEach(b -> System.out.println("revoked (not in " + file.getFileName() + "): " + b));
            removedUsers.forEach(u -> System.out.println("SCRAM user removed (not in " + file.getFileName() + "): " + u));
            System.out.println("SCRAM users " + String.join(", ", users) + "; " + acls.size() + " ACL rules from " + file.getFileName()
                    + " in force, " + revoked.size() + " revoked");
        } else if (args.length == 4 && args[0].equals("redis-render")) {
            Path passwords = Path.of(args[3]);
            Map<String, String> pw = Files.exists(passwords) ? readPasswords(passwords) : new LinkedHashMap<>();
            List<String> hosts = List.of(args[2].trim().split("[,\\s]+"));
            String template = Files.readString(Path.of(args[1]));
            // A user new to this stack (a new host's agent) gets a password of its own, kept with the others.
            StringBuilder added = new StringBuilder();
            for (String name : redisUserNames(template, hosts)) {
                if (!pw.containsKey(name)) {
                    String p = newPassword();
                    pw.put(name, p);
                    added.append(name).append('=').append(p).append('\n');
                }
            }
            if (!added.isEmpty()) {
                if (!Files.exists(passwords)) {
                    Files.createFile(passwords, java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                            java.nio.file.attribute.PosixFilePermissions.fromString("rw-------")));
                }
                Files.writeString(passwords, added, StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.APPEND);
            }
            System.out.print(redisUsers(template, hosts, pw::get));
        } else {
            System.err.println("usage: AccessPolicy kafka-apply FILE BOOTSTRAP PASSWORDS | redis-render TEMPLATE HOSTS PASSWORDS");
            System.exit(2);
        }
    }
}
