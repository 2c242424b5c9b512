#!/usr/bin/env bash
# The secured local stack (`./egressctl up --secure`), sourced by scripts/stack.sh and scripts/services.sh.
# Nothing here runs unless secure mode is on: EGRESS_SECURE=1 (set by `up --secure`), or a stack whose
# state was made secure ($EGRESS_HOME/secure/enabled: its Kafka log was formatted with SCRAM users and
# its clients need credentials, so it stays secure).
#
#   Kafka   one SASL_SSL listener (SCRAM-SHA-512) for clients and the broker itself; the KRaft controller
#           listener is SASL_PLAINTEXT (PLAIN; KRaft controllers take no SCRAM) on 127.0.0.1;
#           StandardAuthorizer, super user admin, nothing allowed that stack/acls/kafka.acl does not allow.
#   Redis   ACL users from stack/acls/redis-users.acl (no default user) and TLS when the redis-server
#           has it built in (Debian's has; the embedded one has not: then ACLs without TLS, and it says so).
#   TLS     a CA and a server certificate for 127.0.0.1/localhost made at the first secure start, kept in
#           $EGRESS_HOME/secure/tls (ca.pem, server.pem, server.key, truststore.p12 for JVMs).
#   Users   admin (the operator's tools, the broker), compiler-service, rule-service, agent (Kafka) /
#           agent-<host> (Redis), audit; passwords made at the first start, kept in
#           $EGRESS_HOME/secure/passwords.env (mode 600). Each process gets its own (secure_service_env).
#
#   Registry HTTPS only, with the stack's certificate. It does not authenticate: Apicurio (2.x/3.x) does so
#           only with an OIDC server, which the local stack does not run; its clients take user:password
#           in SCHEMA_REGISTRY_URL for a registry that asks (docs/operations.md, "Production deployment:
#           credentials, TLS, ACLs").

SECURE_HOME="${LIB_HOME:?scripts/lib.sh first}/secure"
SECURE_TLS="$SECURE_HOME/tls"
SECURE_PASSWORDS="$SECURE_HOME/passwords.env"
SECURE_KAFKA_ACLS="$LIB_ROOT/stack/acls/kafka.acl"
SECURE_REDIS_USERS="$LIB_ROOT/stack/acls/redis-users.acl"

secure_log() { lib_log secure "$@"; }
secure_die() { lib_die secure "$@"; }

# True when this stack runs secured. EGRESS_SECURE=1 makes it so (and records it).
secure_on() {
  [[ "${EGRESS_SECURE:-}" == 1 || -f "$SECURE_HOME/enabled" ]]
}

secure_enable() {
  mkdir -p "$SECURE_HOME"
  chmod 700 "$SECURE_HOME"
  [[ -f "$SECURE_HOME/enabled" ]] || date -Is >"$SECURE_HOME/enabled"
}

# secure_password NAME: the principal's password, made (24 random bytes, base64url) on first use.
secure_password() {
  local name="$1" pw
  pw="$(lib_env_get "$SECURE_PASSWORDS" "$name")"
  if [[ -z "$pw" ]]; then
    pw="$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    (umask 077 && printf '%s=%s\n' "$name" "$pw" >>"$SECURE_PASSWORDS")
  fi
  printf '%s' "$pw"
}

# The principals of stack/acls/kafka.acl, and admin.
secure_kafka_principals() {
  { echo admin; sed -e 's/#.*//' "$SECURE_KAFKA_ACLS" | awk 'NF { print $1 }'; } | awk '!seen[$0]++'
}

# The redis-server has TLS built in: decided when it starts (secure_redis_args), read by the clients.
secure_redis_tls() {
  [[ "$(cat "$SECURE_HOME/redis-tls" 2>/dev/null)" == yes ]]
}

secure_java() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then echo "$JAVA_HOME/bin/java"; else command -v java; fi
}

# CA and server certificate (127.0.0.1, localhost), made once per state dir.
secure_tls() {
  [[ -s "$SECURE_TLS/server.pem" && -s "$SECURE_TLS/truststore.p12" ]] && return 0
  command -v openssl >/dev/null 2>&1 || secure_die "openssl is needed to make the stack's certificates (apt-get install openssl)"
  local keytool
  keytool="$(dirname "$(readlink -f "$(secure_java)")")/keytool"
  [[ -x "$keytool" ]] || keytool="$(command -v keytool || true)"
  [[ -x "$keytool" ]] || secure_die "keytool (from the JDK) is needed to make the JVMs' trust store"
  rm -rf "$SECURE_TLS"
  mkdir -p "$SECURE_TLS"
  (
    umask 077
    cd "$SECURE_TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 825 -subj "/CN=egressctl local CA" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 825 -extfile server.ext 2>/dev/null
    # Kafka's PEM key store: the (unencrypted PKCS#8) key and the certificate chain in one file.
    cat server.key server.pem ca.pem >broker.pem
    "$keytool" -importcert -noprompt -alias egressctl-ca -file ca.pem -keystore truststore.p12 -storetype PKCS12 \
      -storepass "$(secure_password truststore)" >/dev/null 2>&1
    rm -f server.csr server.ext ca.srl
  ) || secure_die "could not make the certificates in $SECURE_TLS"
  secure_log "made a CA and a certificate for 127.0.0.1 in $SECURE_TLS"
}

# ---------------------------------------------------------------- hooks of scripts/stack.sh

# Before the stack starts: the state dir must not be a plain one (its Kafka log has no SCRAM users).
secure_prepare() {
  if [[ -f "$LIB_HOME/kafka/data/meta.properties" && ! -f "$SECURE_HOME/enabled" ]]; then
    secure_die "$LIB_HOME holds a stack formatted without --secure (no SCRAM users in its Kafka log); its log is kept. Use another EGRESS_HOME for the secured stack, or stop this one and delete $LIB_HOME to start over"
  fi
  secure_enable
  secure_password admin >/dev/null
  secure_tls
}

# secure_kafka_config FILE: the broker's listeners become SASL_SSL (clients, itself) and SASL_PLAINTEXT
# (controller), with the StandardAuthorizer.
secure_kafka_config() {
  local f="$1" pw
  pw="$(secure_password admin)"
  sed -i -e "s|^listeners=.*|listeners=SASL_SSL://127.0.0.1:$EGRESS_KAFKA_PORT,CONTROLLER://127.0.0.1:$EGRESS_KAFKA_CONTROLLER_PORT|" \
    -e "s|^advertised.listeners=.*|advertised.listeners=SASL_SSL://127.0.0.1:$EGRESS_KAFKA_PORT|" \
    -e "s|^inter.broker.listener.name=.*|inter.broker.listener.name=SASL_SSL|" \
    -e "s|^listener.security.protocol.map=.*|listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_SSL:SASL_SSL|" "$f"
  cat >>"$f" <<EOF
# Secured (scripts/secure.sh): SCRAM-SHA-512 over TLS for clients and the broker, PLAIN for the controller
# listener, ACLs from stack/acls/kafka.acl.
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$pw";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$pw" user_admin="$pw";
ssl.keystore.type=PEM
ssl.keystore.location=$SECURE_TLS/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$SECURE_TLS/ca.pem
ssl.client.auth=none
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
EOF
  chmod 600 "$f"
}

# Arguments of kafka-storage format: the admin's SCRAM credential, which the broker needs before it can
# talk to itself; the services' users are made by secure_apply_acls once it runs.
secure_format_args() {
  printf '%s\n' --add-scram "SCRAM-SHA-512=[name=admin,password=$(secure_password admin)]"
}

# TLS handshake with our CA, and the broker said it started.
secure_kafka_healthy() {
  lib_port_listening "$EGRESS_KAFKA_PORT" || return 1
  grep -q 'Kafka Server started' "$LIB_HOME/logs/kafka.log" 2>/dev/null || return 1
  timeout 5 openssl s_client -connect "127.0.0.1:$EGRESS_KAFKA_PORT" -CAfile "$SECURE_TLS/ca.pem" -verify_return_error \
    </dev/null >/dev/null 2>&1
}

# The Redis ACL file for this stack's hosts (made from stack/acls/redis-users.acl).
secure_redis_acl_file() {
  local hosts="${EGRESS_DEMO_HOSTS:-host-1 host-2 host-3}" extra=""
  [[ -f "$SECURE_HOME/hosts" ]] && extra="$(cat "$SECURE_HOME/hosts")"
  hosts="$(printf '%s\n' $hosts $extra | awk 'NF && !seen[$0]++' | paste -sd, -)"
  secure_access_policy redis-render "$SECURE_REDIS_USERS" "$hosts" "$SECURE_PASSWORDS" >"$SECURE_HOME/redis-users.acl.tmp" \
    || secure_die "could not write the Redis ACL file from $SECURE_REDIS_USERS"
  chmod 600 "$SECURE_HOME/redis-users.acl.tmp"
  mv -f "$SECURE_HOME/redis-users.acl.tmp" "$SECURE_HOME/redis-users.acl"
}

# Extra arguments of redis-server: the ACL file, and TLS on the stack's Redis port when built in.
secure_redis_args() {
  secure_redis_acl_file
  printf '%s\n' --aclfile "$SECURE_HOME/redis-users.acl"
  if grep -aq 'tls-cert-file' "$REDIS_BIN" 2>/dev/null; then
    echo yes >"$SECURE_HOME/redis-tls"
    printf '%s\n' --port 0 --tls-port "$EGRESS_REDIS_PORT" --tls-cert-file "$SECURE_TLS/server.pem" \
      --tls-key-file "$SECURE_TLS/server.key" --tls-ca-cert-file "$SECURE_TLS/ca.pem" --tls-auth-clients no
  else
    echo no >"$SECURE_HOME/redis-tls"
    secure_log "redis: $REDIS_BIN has no TLS built in: ACL users and passwords, but no TLS (install Debian's redis-server for TLS)"
  fi
}

secure_redis_cli() {  # secure_redis_cli USER ARGS...: redis-cli as USER
  local user="$1"; shift
  local -a tls=()
  secure_redis_tls && tls=(--tls --cacert "$SECURE_TLS/ca.pem")
  REDISCLI_AUTH="$(secure_password "$user")" timeout 5 redis-cli -h 127.0.0.1 -p "$EGRESS_REDIS_PORT" "${tls[@]}" --user "$user" "$@"
}

secure_redis_healthy() {
  command -v redis-cli >/dev/null 2>&1 || secure_die "redis-cli is needed for the secured Redis (apt-get install redis-tools)"
  [[ "$(secure_redis_cli admin ping 2>/dev/null)" == PONG ]]
}

# java with the Kafka jars and schemas' classes: AccessPolicy (stack/acls -> Kafka ACLs, Redis users).
secure_access_policy() {
  local classes="$LIB_ROOT/schemas/target/classes"
  if [[ ! -f "$classes/io/egressctl/schemas/security/AccessPolicy.class" ]]; then
    secure_log "compiling schemas (AccessPolicy applies stack/acls)"
    (cd "$LIB_ROOT" && mvn -q -B -Dstyle.color=never -pl schemas -am compile) >&2 || secure_die "could not compile schemas"
  fi
  "$(secure_java)" -Xmx128m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$LIB_HOME/kafka/tools-log4j2.properties" \
    -cp "$classes:$LIB_HOME/lib/kafka/*" io.egressctl.schemas.security.AccessPolicy "$@"
}

# After Kafka is up: SCRAM users for every principal of kafka.acl (passwords made once), then the ACLs.
secure_apply_acls() {
  local t0 p
  t0="$(lib_now)"
  for p in $(secure_kafka_principals); do secure_password "$p" >/dev/null; done
  if ! (
    while IFS= read -r line; do export "${line?}"; done < <(secure_client_env admin)
    secure_access_policy kafka-apply "$SECURE_KAFKA_ACLS" "127.0.0.1:$EGRESS_KAFKA_PORT" "$SECURE_PASSWORDS"
  ) >"$LIB_HOME/logs/kafka-acls.log" 2>&1; then
    tail -n 25 "$LIB_HOME/logs/kafka-acls.log" >&2
    secure_die "could not apply $SECURE_KAFKA_ACLS; see $LIB_HOME/logs/kafka-acls.log"
  fi
  secure_log "kafka: $(tail -n 1 "$LIB_HOME/logs/kafka-acls.log") in $(lib_since "$t0") s"
  secure_log "secured: Kafka SASL_SSL on 127.0.0.1:$EGRESS_KAFKA_PORT, Redis $(secure_redis_tls && echo 'TLS and ACL users' || echo 'ACL users (no TLS)') on $EGRESS_REDIS_PORT, registry https on $EGRESS_REGISTRY_PORT; CA $SECURE_TLS/ca.pem; eval \"\$(./egressctl env)\" exports the operator's (admin) credentials"
}

# secure_client_env PRINCIPAL [REDIS_USER]: KEY=VALUE lines for a client acting as PRINCIPAL (Kafka) and
# REDIS_USER (Redis; default the same).
secure_client_env() {
  local kuser="$1" ruser="${2:-$1}" scheme=redis
  secure_redis_tls && scheme=rediss
  printf '%s\n' KAFKA_SECURITY_PROTOCOL=SASL_SSL KAFKA_SASL_MECHANISM=SCRAM-SHA-512 "KAFKA_SASL_USERNAME=$kuser" \
    "KAFKA_SASL_PASSWORD=$(secure_password "$kuser")" "KAFKA_SSL_TRUSTSTORE_LOCATION=$SECURE_TLS/ca.pem" KAFKA_SSL_TRUSTSTORE_TYPE=PEM \
    "REDIS_URL=$scheme://$ruser:$(secure_password "$ruser")@127.0.0.1:$EGRESS_REDIS_PORT" \
    "SCHEMA_REGISTRY_URL=https://127.0.0.1:$EGRESS_REGISTRY_PORT/apis/ccompat/v7"
}

# What `stack env` adds: the operator's (admin's) settings, and the JVM options that trust the stack's CA.
secure_env() {
  local line
  while IFS= read -r line; do printf 'export %s=%q\n' "${line%%=*}" "${line#*=}"; done < <(secure_client_env admin)
  printf 'export EGRESS_SECURE=1\n'
  printf 'export EGRESS_TLS_JAVA_OPTS=%q\n' "$(secure_java_opts | paste -sd' ' -)"
}

# The registry serves HTTPS only, on its usual port, with the stack's certificate (Quarkus' TLS). It does
# not authenticate (Apicurio needs an OIDC server for that; see the top of this file).
secure_registry_args() {
  printf '%s\n' -Dquarkus.http.insecure-requests=disabled "-Dquarkus.http.ssl-port=$EGRESS_REGISTRY_PORT" \
    "-Dquarkus.http.ssl.certificate.files=$SECURE_TLS/server.pem" "-Dquarkus.http.ssl.certificate.key-files=$SECURE_TLS/server.key"
}

secure_registry_healthy() {
  local code
  code="$(curl -s -o /dev/null -m 5 -w '%{http_code}' --cacert "$SECURE_TLS/ca.pem" \
    "https://127.0.0.1:$EGRESS_REGISTRY_PORT/apis/ccompat/v7/subjects" 2>/dev/null)" || return 1
  [[ "$code" == 200 ]]
}

# What `stack env` adds for a plain stack: a shell that evaluated a secured stack's env before must not
# hand its credentials, or SASL_SSL, to this stack's clients.
secure_env_unset() {
  printf 'unset EGRESS_SECURE EGRESS_TLS_JAVA_OPTS KAFKA_SECURITY_PROTOCOL KAFKA_SASL_MECHANISM KAFKA_SASL_USERNAME KAFKA_SASL_PASSWORD KAFKA_SASL_JAAS_CONFIG KAFKA_SSL_TRUSTSTORE_LOCATION KAFKA_SSL_TRUSTSTORE_PASSWORD KAFKA_SSL_TRUSTSTORE_TYPE KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM\n'
}

# ---------------------------------------------------------------- hooks of scripts/services.sh

# JVM options of every Java client of the stack: trust the stack's CA (Redis TLS, and the registry's
# https where it has one; Kafka takes KAFKA_SSL_TRUSTSTORE_LOCATION).
secure_java_opts() {
  secure_on || return 0
  printf '%s\n' "-Djavax.net.ssl.trustStore=$SECURE_TLS/truststore.p12" -Djavax.net.ssl.trustStoreType=PKCS12 \
    "-Djavax.net.ssl.trustStorePassword=$(secure_password truststore)"
}

# secure_service_env NAME: the credentials of a service or agent process (nothing when not secure).
secure_service_env() {
  secure_on || return 0
  local ports="$LIB_HOME/ports.env"
  EGRESS_KAFKA_PORT="${EGRESS_KAFKA_PORT:-$(lib_env_get "$ports" EGRESS_KAFKA_PORT)}"
  EGRESS_REDIS_PORT="${EGRESS_REDIS_PORT:-$(lib_env_get "$ports" EGRESS_REDIS_PORT)}"
  EGRESS_REGISTRY_PORT="${EGRESS_REGISTRY_PORT:-$(lib_env_get "$ports" EGRESS_REGISTRY_PORT)}"
  case "$1" in
    compiler-service | rule-service) secure_client_env "$1" ;;
    agent-*)
      secure_redis_user_for_host "${1#agent-}"
      secure_client_env agent "$1" ;;
    *) secure_client_env admin ;;
  esac
}

# A host that is not in the stack's Redis ACL file yet (./egressctl agent --host NEW): add its user and
# load the file again.
secure_redis_user_for_host() {
  local host="$1"
  if [[ -f "$SECURE_HOME/redis-users.acl" ]] && ! grep -q "^user agent-$host " "$SECURE_HOME/redis-users.acl"; then
    echo "$host" >>"$SECURE_HOME/hosts"
    secure_redis_acl_file
    secure_redis_cli admin acl load >/dev/null || secure_die "could not load the Redis ACL file with agent-$host"
    secure_log "redis: user agent-$host added"
  fi
}

# ---------------------------------------------------------------- the refusal tests' stack

# Kafka and Redis of a secured stack, without the registry and the services: what e2e LeastPrivilegeIT
# starts in a state dir and on ports of its own (EGRESS_HOME, EGRESS_*_PORT; EGRESS_SECURE=1), with the
# same broker settings, certificates, users and ACLs as `up --secure`. Needs scripts/stack.sh sourced:
#   bash -c 'source scripts/stack.sh && secure_kafka_redis_up'     (and cmd_down to stop them)
secure_kafka_redis_up() {
  take_lock
  mkdir -p "$LIB_DIR" "$LOGS_DIR" "$PIDS_DIR" "$EGRESS_HOME"/{kafka,redis}
  load_ports
  write_ports_env
  secure_prepare
  choose_registry
  choose_redis
  ensure_artifacts
  local -A t0=()
  t0[kafka]="$(lib_now)"; start_kafka
  t0[redis]="$(lib_now)"; start_redis
  wait_healthy redis "${t0[redis]}"
  wait_healthy kafka "${t0[kafka]}"
  secure_apply_acls
}
