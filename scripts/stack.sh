#!/usr/bin/env bash
# Local stack without Docker: Kafka 4.1.2 (KRaft, combined mode), Apicurio Registry
# (Confluent-compatible API) and Redis, each a background process of its own.
#
#   scripts/stack.sh up | down | status | env | wait [SECONDS] | restart [--kill] COMPONENT...
#                    | kafka-tool MAIN_CLASS [ARGS...]
#
# State lives in ${EGRESS_HOME:-<repo>/target/egressctl}, and every component keeps its data
# across down/up and restarts (the log is the source of truth; the registry holds the schema ids
# the log was written with; Redis holds checkpoints and views):
#   lib/       jars and binaries (filled by `mvn -f stack/pom.xml package` when missing)
#   kafka/     server.properties, log4j2 config, data/ (KRaft log dirs: the topics, i.e. the audit log)
#   registry/  working directory of the registry; data-v3/ or data-v2/: its H2 database file
#              (one per Apicurio line: their databases differ, so a stack stays on the line that
#              holds its schemas)
#   redis/     working directory of redis: its append-only file (appendonlydir/)
#   logs/      <component>.log (the previous run's log is kept as <component>.log.1)
#   pids/      <component>.pid, also written by other scripts (services, agents);
#              `down` stops every pid found here that is verifiably ours
#   ports.env  KEY=VALUE lines: the ports chosen by `up`, plus lines other scripts add
#
# Ports (env var > ports.env > default): EGRESS_KAFKA_PORT=19092,
# EGRESS_KAFKA_CONTROLLER_PORT=19093, EGRESS_REGISTRY_PORT=18081,
# EGRESS_REGISTRY_MGMT_PORT=18082, EGRESS_REDIS_PORT=16379.
# Other knobs: EGRESS_REGISTRY_LINE=auto|3|2 (3 = Apicurio 3.3.3 on a JDK 21+,
# 2 = Apicurio 2.6.13.Final on Java 17; auto keeps the line whose database holds this stack's
# schemas, and for a new stack takes 3 when a JDK 21+ is found), EGRESS_REDIS_SERVER=/path/to/redis-server or
# "embedded" (the binary from the embedded-redis jar; the default when no redis-server is installed),
# EGRESS_STACK_TIMEOUT (seconds per component, default 180),
# EGRESS_STOP_TIMEOUT (seconds before SIGKILL, default 10; read by scripts/lib.sh),
# EGRESS_KAFKA_HEAP_OPTS (default "-Xms256m -Xmx1g"), EGRESS_REGISTRY_HEAP_OPTS (default "-Xmx384m").
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"
# shellcheck source=scripts/secure.sh
source "$SCRIPT_DIR/secure.sh"  # up --secure: SASL_SSL, Redis ACL users and TLS, ACLs (hooks below: secure_*)
REPO_ROOT="$LIB_ROOT"
EGRESS_HOME="$LIB_HOME"
export EGRESS_HOME

KAFKA_VERSION=4.1.2
APICURIO3_VERSION=3.3.3
APICURIO2_VERSION=2.6.13.Final
EMBEDDED_REDIS_JAR=embedded-redis-1.4.4.jar
EMBEDDED_REDIS_ENTRY=redis-server-6.2.6-v5-linux-amd64

STACK_COMPONENTS=(kafka registry redis)
PORT_KEYS=(EGRESS_KAFKA_PORT EGRESS_KAFKA_CONTROLLER_PORT EGRESS_REGISTRY_PORT EGRESS_REGISTRY_MGMT_PORT EGRESS_REDIS_PORT)
declare -A PORT_DEFAULTS=(
  [EGRESS_KAFKA_PORT]=19092
  [EGRESS_KAFKA_CONTROLLER_PORT]=19093
  [EGRESS_REGISTRY_PORT]=18081
  [EGRESS_REGISTRY_MGMT_PORT]=18082
  [EGRESS_REDIS_PORT]=16379
)
STACK_TIMEOUT="${EGRESS_STACK_TIMEOUT:-180}"

PIDS_DIR="$EGRESS_HOME/pids"
LOGS_DIR="$EGRESS_HOME/logs"
LIB_DIR="$EGRESS_HOME/lib"
PORTS_ENV="$EGRESS_HOME/ports.env"

# ---------------------------------------------------------------- helpers

log() { lib_log stack "$@"; }
die() { lib_die stack "$@"; }

log_tail() {  # log_tail FILE: show the end of a log to explain a failure
  local f="$1"
  [[ -f "$f" ]] || return 0
  printf '[stack] ---- last lines of %s ----\n' "$f" >&2
  tail -n 25 "$f" >&2 || true
  printf '[stack] ----\n' >&2
}

# Ports: an explicit env var wins, then ports.env (the ports of the last `up`), then the default.
load_ports() {
  local key val
  for key in "${PORT_KEYS[@]}"; do
    val="${!key:-}"
    [[ -n "$val" ]] || val="$(lib_env_get "$PORTS_ENV" "$key")"
    [[ -n "$val" ]] || val="${PORT_DEFAULTS[$key]}"
    [[ "$val" =~ ^[0-9]+$ ]] && (( val > 0 && val < 65536 )) || die "$key='$val' is not a TCP port"
    printf -v "$key" '%s' "$val"
  done
  local seen=" "
  for key in "${PORT_KEYS[@]}"; do
    [[ "$seen" != *" ${!key} "* ]] || die "port ${!key} is used twice; give each EGRESS_*_PORT its own value"
    seen+="${!key} "
  done
}

write_ports_env() {  # rewrite our keys, keep every line other components wrote
  local tmp key
  mkdir -p "$EGRESS_HOME"
  tmp="$(mktemp "$EGRESS_HOME/.ports.env.XXXXXX")"
  {
    for key in "${PORT_KEYS[@]}"; do printf '%s=%s\n' "$key" "${!key}"; done
    if [[ -f "$PORTS_ENV" ]]; then
      grep -v -E "^(export[[:space:]]+)?($(IFS='|'; echo "${PORT_KEYS[*]}"))=" "$PORTS_ENV" || true
    fi
  } >"$tmp"
  mv -f "$tmp" "$PORTS_ENV"
}

component_port() {
  case "$1" in
    kafka) echo "$EGRESS_KAFKA_PORT" ;;
    registry) echo "$EGRESS_REGISTRY_PORT" ;;
    redis) echo "$EGRESS_REDIS_PORT" ;;
    *) service_port "$1" || echo "-" ;;
  esac
}

# The HTTP port of a service or agent that scripts/services.sh started (it notes it beside the pid file).
service_port() {
  local port
  port="$(tr -dc '0-9' <"$PIDS_DIR/$1.port" 2>/dev/null)" || return 1
  [[ -n "$port" ]] && echo "$port"
}

# A service is up when its /actuator/health says UP, not merely when its process runs: `status --wait`
# then waits until it can serve. Prints the status it reported (DOWN, OUT_OF_SERVICE, or "no answer").
service_health() {
  local body
  body="$(curl -sS -m 2 "http://127.0.0.1:$1/actuator/health" 2>/dev/null)" || { echo "no answer"; return 1; }
  [[ "$body" == *'"status":"UP"'* ]] && return 0
  [[ "$body" =~ \"status\":\"([A-Z_]+)\" ]] && echo "${BASH_REMATCH[1]}" || echo "no answer"
  return 1
}

component_ports() {  # every port a component listens on
  case "$1" in
    kafka) echo "$EGRESS_KAFKA_PORT $EGRESS_KAFKA_CONTROLLER_PORT" ;;
    registry) echo "$EGRESS_REGISTRY_PORT $EGRESS_REGISTRY_MGMT_PORT" ;;
    redis) echo "$EGRESS_REDIS_PORT" ;;
  esac
}

port_var() {
  case "$1" in
    "$EGRESS_KAFKA_PORT") echo EGRESS_KAFKA_PORT ;;
    "$EGRESS_KAFKA_CONTROLLER_PORT") echo EGRESS_KAFKA_CONTROLLER_PORT ;;
    "$EGRESS_REGISTRY_PORT") echo EGRESS_REGISTRY_PORT ;;
    "$EGRESS_REGISTRY_MGMT_PORT") echo EGRESS_REGISTRY_MGMT_PORT ;;
    "$EGRESS_REDIS_PORT") echo EGRESS_REDIS_PORT ;;
  esac
}

# ---------------------------------------------------------------- processes

# start_bg NAME WORKDIR CMD... : start CMD in its own session, outliving this script.
# The pid is written by the child itself before exec, so it is right whether or not
# setsid had to fork. fd 9 (our lock) is closed for the child.
start_bg() {
  local name="$1" workdir="$2"; shift 2
  local log="$LOGS_DIR/$name.log" pf
  pf="$(lib_pidfile "$name")"
  mkdir -p "$LOGS_DIR" "$PIDS_DIR" "$workdir"
  [[ -f "$log" ]] && mv -f "$log" "$log.1"
  rm -f "$pf"
  printf '=== %s started %s by %s\n=== %s\n' "$name" "$(date -Is)" "$0" "$*" >"$log"
  (
    cd "$workdir"
    setsid nohup bash -c 'echo $$ >"$0.tmp" && mv -f "$0.tmp" "$0" && exec "$@"' "$pf" "$@" \
      </dev/null >>"$log" 2>&1 9>&- &
  )
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s "$pf" ]] && return 0
    sleep 0.05
  done
  die "$name did not start (no pid file after 5 s); see $log"
}

# stop_group NAME... : stop these components (by their pid files) in parallel, each with
# SIGTERM, then SIGKILL after EGRESS_STOP_TIMEOUT s; a pid that is not ours is left alone.
stop_group() {
  local name pid
  for name in "$@"; do
    pid="$(lib_read_pid "$(lib_pidfile "$name")")"
    if [[ -z "$pid" ]]; then
      rm -f "$(lib_pidfile "$name")"; continue
    fi
    if ! lib_pid_is_ours "$pid"; then
      if lib_pid_alive "$pid"; then
        log "$name: pid $pid is alive but not ours (cmdline/cwd outside $EGRESS_HOME); left alone, pid file removed"
      else
        log "$name: not running (stale pid file removed)"
      fi
      rm -f "$(lib_pidfile "$name")"
      continue
    fi
    { lib_stop_pid "$pid" stack "$name" || true; rm -f "$(lib_pidfile "$name")"; } &
  done
  wait
  # A service's port note (scripts/services.sh) goes with its pid file.
  for name in "$@"; do rm -f "$PIDS_DIR/$name.port"; done
}

take_lock() {
  mkdir -p "$EGRESS_HOME"
  exec 9>"$EGRESS_HOME/.stack.lock"
  flock -w 600 9 || die "another stack.sh holds $EGRESS_HOME/.stack.lock"
}

# ---------------------------------------------------------------- java / artifacts

java_major() {  # java_major /path/to/java -> 17, 21, 25 ... or nothing
  local out
  out="$("$1" -version 2>&1 | head -n 1)" || return 0
  sed -n -E 's/.*version "1\.([0-9]+).*/\1/p; t; s/.*version "([0-9]+).*/\1/p' <<<"$out"
}

default_java() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then echo "$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then command -v java
  else die "no java found (set JAVA_HOME or put java on PATH; Java 17+ is needed)"
  fi
}

find_java21() {  # prints a java binary of version >= 21, preferring JAVA_HOME, PATH, then /usr/lib/jvm
  local c m
  local -a cands=()
  [[ -n "${EGRESS_REGISTRY_JAVA:-}" ]] && cands+=("$EGRESS_REGISTRY_JAVA")
  [[ -n "${JAVA_HOME:-}" ]] && cands+=("$JAVA_HOME/bin/java")
  command -v java >/dev/null 2>&1 && cands+=("$(command -v java)")
  for c in /usr/lib/jvm/*/bin/java; do [[ -x "$c" ]] && cands+=("$c"); done
  for c in "${cands[@]}"; do
    [[ -x "$c" ]] || continue
    m="$(java_major "$c")"
    [[ -n "$m" ]] && (( m >= 21 )) && { echo "$c"; return 0; }
  done
  return 0
}

# The registry keeps its schemas in an H2 database file, one per Apicurio line (2.x and 3.x
# databases differ). registry_data_dir LINE -> the directory; registry_has_data LINE -> true when
# that line's database exists.
registry_data_dir() { echo "$EGRESS_HOME/registry/data-v$1"; }
registry_has_data() { [[ -f "$(registry_data_dir "$1")/registry.mv.db" ]]; }

# Sets REGISTRY_LINE, REGISTRY_VERSION, REGISTRY_JAVA, REGISTRY_JAR, REGISTRY_WHY, REGISTRY_DB_URL.
# A stack stays on the line whose database holds its schemas: the log was written with those ids,
# and the other line would hand out new ones (every record of the history would be undecodable).
choose_registry() {
  local want="${EGRESS_REGISTRY_LINE:-auto}" j21 kept="" other
  j21="$(find_java21)"
  if registry_has_data 3 && registry_has_data 2; then
    kept="$(cat "$EGRESS_HOME/registry/line" 2>/dev/null || true)"
    [[ "$kept" == 2 || "$kept" == 3 ]] || kept=3
  elif registry_has_data 3; then kept=3
  elif registry_has_data 2; then kept=2
  fi
  case "$want" in
    auto)
      if [[ -n "$kept" ]]; then
        REGISTRY_LINE="$kept"
        if [[ "$kept" == 3 && -z "$j21" ]]; then
          die "this stack's schemas are kept by Apicurio 3 in $(registry_data_dir 3), which needs a JDK 21+ (none in EGRESS_REGISTRY_JAVA, JAVA_HOME, PATH or /usr/lib/jvm). Point EGRESS_REGISTRY_JAVA at a Java 21+ binary; Apicurio 2 cannot read that database, and a new one would give the schemas other ids than the log was written with"
        fi
      elif [[ -n "$j21" ]]; then REGISTRY_LINE=3
      else REGISTRY_LINE=2
      fi ;;
    3 | 2)
      REGISTRY_LINE="$want"
      other=$(( want == 3 ? 2 : 3 ))
      if ! registry_has_data "$want" && registry_has_data "$other"; then
        die "EGRESS_REGISTRY_LINE=$want, but this stack's schemas are kept by Apicurio $other in $(registry_data_dir "$other"); Apicurio $want would start with an empty database and give the schemas other ids than the log was written with. Unset EGRESS_REGISTRY_LINE (or set it to $other), or move that directory away to start over with an empty registry"
      fi
      if [[ "$want" == 3 && -z "$j21" ]]; then
        die "EGRESS_REGISTRY_LINE=3 needs a JDK 21+ (none in EGRESS_REGISTRY_JAVA, JAVA_HOME, PATH or /usr/lib/jvm)"
      fi ;;
    *) die "EGRESS_REGISTRY_LINE must be auto, 3 or 2 (got '$want')" ;;
  esac
  # WRITE_DELAY=0: H2 writes every commit before it answers; its default (500 ms) lost a schema
  # registered just before a SIGKILL in a trial here, while records carrying its id were in the log.
  REGISTRY_DB_URL="jdbc:h2:file:$(registry_data_dir "$REGISTRY_LINE")/registry;WRITE_DELAY=0"
  if [[ "$REGISTRY_LINE" == 3 ]]; then
    REGISTRY_VERSION="$APICURIO3_VERSION"
    REGISTRY_JAVA="$j21"
    REGISTRY_JAR="$LIB_DIR/registry/$APICURIO3_VERSION/quarkus-run.jar"
    REGISTRY_WHY="Java $(java_major "$j21") found at $j21"
  else
    REGISTRY_VERSION="$APICURIO2_VERSION"
    REGISTRY_JAVA="$(default_java)"
    REGISTRY_JAR="$LIB_DIR/registry/$APICURIO2_VERSION/apicurio-registry-app-$APICURIO2_VERSION-runner.jar"
    if [[ "$want" == 2 ]]; then REGISTRY_WHY="EGRESS_REGISTRY_LINE=2"
    elif [[ "$kept" == 2 ]]; then REGISTRY_WHY="its database holds this stack's schemas; runs on Java $(java_major "$REGISTRY_JAVA")"
    else REGISTRY_WHY="no JDK 21+ found; runs on Java $(java_major "$REGISTRY_JAVA")"; fi
  fi
  REGISTRY_WHY+="; schemas kept in $(registry_data_dir "$REGISTRY_LINE")"
}

# Sets REDIS_BIN (and REDIS_EMBEDDED=1 when it comes from the embedded-redis jar).
choose_redis() {
  REDIS_EMBEDDED=0
  if [[ "${EGRESS_REDIS_SERVER:-}" == embedded ]]; then
    [[ "$(uname -m)" == x86_64 ]] || die "the embedded redis-server is linux-amd64 only"
    REDIS_BIN="$LIB_DIR/redis/redis-server"
    REDIS_EMBEDDED=1
  elif [[ -n "${EGRESS_REDIS_SERVER:-}" ]]; then
    [[ -x "$EGRESS_REDIS_SERVER" ]] || die "EGRESS_REDIS_SERVER=$EGRESS_REDIS_SERVER is not executable"
    REDIS_BIN="$EGRESS_REDIS_SERVER"
  elif command -v redis-server >/dev/null 2>&1; then
    REDIS_BIN="$(command -v redis-server)"
  else
    [[ "$(uname -m)" == x86_64 ]] || die "no redis-server on this machine and the embedded one is linux-amd64 only; install redis-server"
    REDIS_BIN="$LIB_DIR/redis/redis-server"
    REDIS_EMBEDDED=1
  fi
}

kafka_jar() { echo "$LIB_DIR/kafka/kafka_2.13-$KAFKA_VERSION.jar"; }

ensure_artifacts() {
  local -a missing=() args=()
  [[ -f "$(kafka_jar)" && -f "$LIB_DIR/kafka/kafka-tools-$KAFKA_VERSION.jar" ]] || missing+=("kafka")
  [[ -f "$REGISTRY_JAR" ]] || missing+=("registry $REGISTRY_VERSION")
  if ((REDIS_EMBEDDED)) && [[ ! -x "$REDIS_BIN" ]]; then
    [[ -f "$LIB_DIR/redis/$EMBEDDED_REDIS_JAR" ]] || missing+=("embedded redis")
  fi
  if ((${#missing[@]})); then
    command -v mvn >/dev/null 2>&1 || die "mvn is needed to fetch: ${missing[*]}"
    local t0 mlog="$LOGS_DIR/stack-mvn.log"
    t0="$(lib_now)"
    mkdir -p "$LOGS_DIR"
    log "resolving artifacts (${missing[*]}) with Maven into $LIB_DIR; a cold ~/.m2 downloads ~230 MB"
    args=(-B -q -Dstyle.color=never -f "$REPO_ROOT/stack/pom.xml" "-Dstack.dir=$EGRESS_HOME" "-Dregistry.line=$REGISTRY_LINE")
    ((REDIS_EMBEDDED)) && args+=(-Dredis.embedded=true)
    if ! mvn "${args[@]}" package >"$mlog" 2>&1; then
      log_tail "$mlog"
      die "Maven could not resolve the stack artifacts; full log: $mlog"
    fi
    log "artifacts ready in $(lib_since "$t0") s"
  fi
  [[ -f "$(kafka_jar)" ]] || die "$(kafka_jar) missing after Maven ran"
  [[ -f "$REGISTRY_JAR" ]] || die "$REGISTRY_JAR missing after Maven ran"
  if ((REDIS_EMBEDDED)) && [[ ! -x "$REDIS_BIN" ]]; then
    local jar="$LIB_DIR/redis/$EMBEDDED_REDIS_JAR" tmpd
    tmpd="$(mktemp -d "$LIB_DIR/redis/.x.XXXXXX")"
    if command -v unzip >/dev/null 2>&1; then
      unzip -q -o "$jar" "$EMBEDDED_REDIS_ENTRY" -d "$tmpd"
    else
      (cd "$tmpd" && "$(dirname "$(default_java)")/jar" xf "$jar" "$EMBEDDED_REDIS_ENTRY")
    fi
    [[ -f "$tmpd/$EMBEDDED_REDIS_ENTRY" ]] || die "$EMBEDDED_REDIS_ENTRY not found in $jar"
    chmod 0755 "$tmpd/$EMBEDDED_REDIS_ENTRY"
    mv -f "$tmpd/$EMBEDDED_REDIS_ENTRY" "$REDIS_BIN"
    rmdir "$tmpd"
    log "redis: extracted $EMBEDDED_REDIS_ENTRY from $EMBEDDED_REDIS_JAR"
  fi
}

# ---------------------------------------------------------------- kafka

kafka_java_opts() {
  # shellcheck disable=SC2206
  local -a heap=(${EGRESS_KAFKA_HEAP_OPTS:--Xms256m -Xmx1g})
  printf '%s\n' "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
}

write_kafka_config() {
  local dir="$EGRESS_HOME/kafka"
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<EOF
# Written by scripts/stack.sh on every 'up'; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$EGRESS_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$EGRESS_KAFKA_PORT,CONTROLLER://127.0.0.1:$EGRESS_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$EGRESS_KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=6
default.replication.factor=1
min.insync.replicas=1
unclean.leader.election.enable=false
# Topics are created by the services, with their partition counts, replication and retention
# (kept forever for the event logs); a client naming a topic that does not exist gets an error
# instead of a topic with the broker's defaults.
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=24
EOF
  if secure_on; then secure_kafka_config "$dir/server.properties"; fi
  cat >"$dir/log4j2.properties" <<'EOF'
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafkarequest.name = kafka.request.logger
logger.kafkarequest.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
EOF
  cat >"$dir/tools-log4j2.properties" <<'EOF'
status = error
appender.console.type = Console
appender.console.name = STDERR
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
EOF
}

kafka_tool() {  # kafka_tool MAIN_CLASS ARGS... (quiet logging, stack classpath; KAFKA_TOOL_TIMEOUT=secs)
  local java
  local -a pre=()
  java="$(default_java)"
  [[ -n "${KAFKA_TOOL_TIMEOUT:-}" ]] && pre=(timeout "$KAFKA_TOOL_TIMEOUT")
  "${pre[@]}" "$java" -Xms32m -Xmx256m -XX:TieredStopAtLevel=1 \
    "-Dlog4j2.configurationFile=$EGRESS_HOME/kafka/tools-log4j2.properties" \
    -cp "$LIB_DIR/kafka/*" "$@"
}

format_kafka_storage() {
  local dir="$EGRESS_HOME/kafka" fmt="$EGRESS_HOME/kafka/format.env" want have=""
  want="controller=127.0.0.1:$EGRESS_KAFKA_CONTROLLER_PORT"
  [[ -f "$fmt" ]] && have="$(cat "$fmt")"
  if [[ -f "$dir/data/meta.properties" && "$have" == "$want" ]]; then
    return 0
  fi
  if [[ -f "$dir/data/meta.properties" ]]; then
    # The data is the audit log (topics kept forever): never wipe it behind the operator's back.
    die "kafka: $dir/data was formatted for ${have:-another controller address} but the controller is now $want (EGRESS_KAFKA_CONTROLLER_PORT changed). Its topics are the log of every accepted change, so it is not wiped: set EGRESS_KAFKA_CONTROLLER_PORT back to ${have##*:}, or, to start over with an empty log, stop the stack and delete $dir/data, $EGRESS_HOME/registry/data-v* and $EGRESS_HOME/redis yourself"
  fi
  rm -rf "$dir/data"
  mkdir -p "$dir/data"
  local id
  # base64url of 16 random bytes; one starting with '-' would be read as an option
  id="-"
  while [[ "$id" == -* ]]; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  done
  local -a scram=()
  local args
  if secure_on; then
    args="$(secure_format_args)" || die "kafka: no admin credential for the secured stack"
    mapfile -t scram <<<"$args"
  fi
  if ! kafka_tool kafka.tools.StorageTool format --standalone -t "$id" -c "$dir/server.properties" "${scram[@]}" \
      >"$LOGS_DIR/kafka-format.log" 2>&1; then
    log_tail "$LOGS_DIR/kafka-format.log"
    die "kafka storage format failed; see $LOGS_DIR/kafka-format.log"
  fi
  echo "$want" >"$fmt"
  log "kafka: formatted KRaft storage (cluster id $id)"
}

start_kafka() {
  write_kafka_config
  format_kafka_storage
  local java
  java="$(default_java)"
  local -a opts
  mapfile -t opts < <(kafka_java_opts)
  start_bg kafka "$EGRESS_HOME/kafka" "$java" "${opts[@]}" \
    "-Dlog4j2.configurationFile=$EGRESS_HOME/kafka/log4j2.properties" \
    "-Dkafka.logs.dir=$LOGS_DIR" \
    -cp "$LIB_DIR/kafka/*" kafka.Kafka "$EGRESS_HOME/kafka/server.properties"
}

# A real Kafka Metadata request (v4, no topics) over bash's /dev/tcp: the broker must
# answer with our correlation id and at least one live broker. Costs milliseconds,
# where a JVM-based tool (TopicCommand --list) costs seconds on two cores.
kafka_metadata_ok() {  # kafka_metadata_ok PORT
  local port="$1" hex
  hex="$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
    # size=19 | api_key=3 (Metadata) | version=4 | correlation_id=0x4567 | client_id="egsk" | topics=[] | allow_auto_create=false
    printf "\x00\x00\x00\x13\x00\x03\x00\x04\x00\x00\x45\x67\x00\x04egsk\x00\x00\x00\x00\x00" >&3
    head -c 16 <&3 | od -An -v -tx1 | tr -d " \n"' "$port" 2>/dev/null)" || return 1
  # bytes 4-7 correlation id, 8-11 throttle_time_ms, 12-15 number of brokers
  [[ ${#hex} -eq 32 && "${hex:8:8}" == 00004567 && "${hex:24:8}" != 00000000 ]]
}

kafka_healthy() {  # port open and a metadata call answers
  if secure_on; then secure_kafka_healthy; return; fi
  lib_port_listening "$EGRESS_KAFKA_PORT" && kafka_metadata_ok "$EGRESS_KAFKA_PORT"
}

# ---------------------------------------------------------------- registry

# Schemas live in an H2 database file under registry/data-v<line> (Apicurio's SQL storage; no other
# process): Apicurio 3 reads apicurio.datasource.url, Apicurio 2.6 (whose "in-memory" storage is the
# same SQL storage on H2 jdbc:h2:mem) reads REGISTRY_DATASOURCE_URL. Both ship H2 with file support.
start_registry() {
  # shellcheck disable=SC2206
  local -a heap=(${EGRESS_REGISTRY_HEAP_OPTS:--Xmx384m}) secured=()
  if secure_on; then mapfile -t secured < <(secure_registry_args); fi
  mkdir -p "$(registry_data_dir "$REGISTRY_LINE")"
  echo "$REGISTRY_LINE" >"$EGRESS_HOME/registry/line"
  start_bg registry "$EGRESS_HOME/registry" env "REGISTRY_DATASOURCE_URL=$REGISTRY_DB_URL" \
    "$REGISTRY_JAVA" "${heap[@]}" "-Dapicurio.datasource.url=$REGISTRY_DB_URL" \
    -Dquarkus.http.host=127.0.0.1 "-Dquarkus.http.port=$EGRESS_REGISTRY_PORT" \
    -Dquarkus.management.host=127.0.0.1 "-Dquarkus.management.port=$EGRESS_REGISTRY_MGMT_PORT" "${secured[@]}" \
    -jar "$REGISTRY_JAR"
}

registry_healthy() {
  if secure_on; then secure_registry_healthy; return; fi
  local code
  code="$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$EGRESS_REGISTRY_PORT/apis/ccompat/v7/subjects" 2>/dev/null)" || return 1
  [[ "$code" == 200 ]]
}

# ---------------------------------------------------------------- redis

# Redis keeps its data in an append-only file in redis/ (appendonlydir/ on Redis 7): every write is
# in the file before the reply (the OS holds it if redis-server is killed), fsync'ed every second.
start_redis() {
  local -a secured=()
  local args
  if secure_on; then
    # Fail closed: a Redis without its ACL file would let anyone write every host's snapshot.
    args="$(secure_redis_args)" || die "redis: no ACL file for the secured stack; not started"
    mapfile -t secured <<<"$args"
  fi
  start_bg redis "$EGRESS_HOME/redis" "$REDIS_BIN" --bind 127.0.0.1 --port "$EGRESS_REDIS_PORT" \
    --save '' --appendonly yes --appendfsync everysec --dir "$EGRESS_HOME/redis" --daemonize no --logfile '' "${secured[@]}"
}

redis_ping() {  # redis_ping PORT
  local port="$1" line
  if command -v redis-cli >/dev/null 2>&1; then
    [[ "$(timeout 5 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]]
  else
    (
      exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
      printf 'PING\r\n' >&3
      IFS= read -r -t 3 line <&3 || exit 1
      [[ "$line" == +PONG* ]]
    ) 2>/dev/null
  fi
}

redis_healthy() { if secure_on; then secure_redis_healthy; else redis_ping "$EGRESS_REDIS_PORT"; fi; }

# ---------------------------------------------------------------- commands

wait_healthy() {  # wait_healthy NAME START_TIME
  local name="$1" t0="$2" pid deadline
  deadline=$(( $(date +%s) + STACK_TIMEOUT ))
  while :; do
    pid="$(lib_running_pid "$name")"
    if [[ -z "$pid" ]]; then
      log_tail "$LOGS_DIR/$name.log"
      die "$name exited during start-up; see $LOGS_DIR/$name.log"
    fi
    if "${name}_healthy"; then
      log "$name ready (pid $pid, port $(component_port "$name")) in $(lib_since "$t0") s"
      return 0
    fi
    if (( $(date +%s) >= deadline )); then
      log_tail "$LOGS_DIR/$name.log"
      die "$name (pid $pid) not healthy after ${STACK_TIMEOUT} s (EGRESS_STACK_TIMEOUT); see $LOGS_DIR/$name.log. It is left running: './egressctl down' stops it"
    fi
    sleep 0.3
  done
}

# The key the compiler signs host updates with and agents check them against (EGRESS_UPDATE_KEYS,
# docs/operations.md "Authenticated host updates"): made once per EGRESS_HOME, kept with the data.
UPDATE_KEYS_FILE="$EGRESS_HOME/keys/update-keys"
ensure_update_key() {
  [[ -s "$UPDATE_KEYS_FILE" ]] && return 0
  mkdir -p "$(dirname "$UPDATE_KEYS_FILE")"
  (umask 077 && printf 'local-1:%s\n' "$(head -c 32 /dev/urandom | base64 | tr -d '\n')" >"$UPDATE_KEYS_FILE")
  log "made the host-update signing key local-1 in $UPDATE_KEYS_FILE"
}

cmd_up() {
  take_lock
  mkdir -p "$LIB_DIR" "$LOGS_DIR" "$PIDS_DIR" "$EGRESS_HOME"/{kafka,registry,redis}
  load_ports
  ensure_update_key
  if secure_on; then secure_prepare; fi

  # Preflight: decide what to start, and fail before starting anything if a port is foreign.
  local name pid port owner recorded
  local -a to_start=()
  for name in "${STACK_COMPONENTS[@]}"; do
    pid="$(lib_running_pid "$name")"
    if [[ -n "$pid" ]]; then
      recorded="$(lib_env_get "$PORTS_ENV" "$(port_var "$(component_port "$name")")")"
      port="$(component_port "$name")"
      if [[ -n "$recorded" && "$recorded" != "$port" ]]; then
        die "$name already runs (pid $pid) on port $recorded, not $port; run './egressctl down' before changing its port"
      fi
      continue
    fi
    if [[ -f "$(lib_pidfile "$name")" ]]; then
      log "$name: removing stale pid file (pid $(lib_read_pid "$(lib_pidfile "$name")") is gone or not ours)"
      rm -f "$(lib_pidfile "$name")"
    fi
    for port in $(component_ports "$name"); do
      if lib_port_listening "$port"; then
        owner="$(lib_port_owner "$port")"
        die "port $port (for $name) is already in use${owner:+ by $owner}, a process not started from this EGRESS_HOME ($EGRESS_HOME); set $(port_var "$port") to a free port (e.g. $(port_var "$port")=$((port + 100)) ./egressctl stack up), or stop that process"
      fi
    done
    to_start+=("$name")
  done

  write_ports_env

  if ((${#to_start[@]} == 0)); then
    for name in "${STACK_COMPONENTS[@]}"; do
      log "$name already running (pid $(lib_running_pid "$name"), port $(component_port "$name"))"
    done
    if secure_on; then secure_apply_acls; fi
    return 0
  fi

  choose_registry
  choose_redis
  [[ " ${to_start[*]} " == *" registry "* ]] && log "registry: Apicurio $REGISTRY_VERSION ($REGISTRY_WHY)"
  ensure_artifacts

  local -A t0=()
  for name in "${STACK_COMPONENTS[@]}"; do
    if [[ " ${to_start[*]} " == *" $name "* ]]; then
      t0[$name]="$(lib_now)"
      "start_$name"
      log "$name starting (pid $(lib_read_pid "$(lib_pidfile "$name")")), log: $LOGS_DIR/$name.log"
    else
      log "$name already running (pid $(lib_running_pid "$name"), port $(component_port "$name"))"
    fi
  done
  # Redis and the registry answer sooner; Kafka's check starts a JVM, so do it last.
  for name in redis registry kafka; do
    [[ -n "${t0[$name]:-}" ]] && wait_healthy "$name" "${t0[$name]}"
  done
  if secure_on; then secure_apply_acls; fi
  log "stack up: KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$EGRESS_KAFKA_PORT SCHEMA_REGISTRY_URL=http://127.0.0.1:$EGRESS_REGISTRY_PORT/apis/ccompat/v7 REDIS_URL=redis://127.0.0.1:$EGRESS_REDIS_PORT"
  log "eval \"\$(./egressctl env)\" exports them"
}

# restart [--kill] NAME...: stop these stack components (SIGTERM, or SIGKILL with --kill: a crash)
# and start them again with their data, waiting until each is healthy. Services and agents are left
# running: they reconnect.
cmd_restart() {
  local hard=0 name pid port owner
  [[ "${1:-}" == --kill ]] && { hard=1; shift; }
  (($#)) || die "restart needs one or more of: ${STACK_COMPONENTS[*]}"
  for name in "$@"; do
    [[ " ${STACK_COMPONENTS[*]} " == *" $name "* ]] || die "restart: unknown component '$name' (one of: ${STACK_COMPONENTS[*]})"
  done
  take_lock
  load_ports
  choose_registry
  choose_redis
  ensure_artifacts
  for name in "$@"; do
    pid="$(lib_running_pid "$name")"
    if [[ -z "$pid" ]]; then
      log "$name was not running"
      rm -f "$(lib_pidfile "$name")"
    elif ((hard)); then
      log "$name: SIGKILL (pid $pid)"
      lib_kill_pid "$pid" || die "$name (pid $pid) still alive after SIGKILL"
      rm -f "$(lib_pidfile "$name")"
    else
      stop_group "$name"
    fi
    for port in $(component_ports "$name"); do
      for _ in {1..100}; do lib_port_listening "$port" || break; sleep 0.1; done
      if lib_port_listening "$port"; then
        owner="$(lib_port_owner "$port")"
        die "port $port (for $name) is still in use${owner:+ by $owner}"
      fi
    done
  done
  local -A t0=()
  for name in "$@"; do
    t0[$name]="$(lib_now)"
    "start_$name"
    log "$name starting (pid $(lib_read_pid "$(lib_pidfile "$name")")), log: $LOGS_DIR/$name.log"
  done
  for name in "$@"; do
    wait_healthy "$name" "${t0[$name]}"
  done
}

cmd_wait() {
  local secs="${1:-$STACK_TIMEOUT}" name
  [[ "$secs" =~ ^[0-9]+$ ]] || die "wait takes a number of seconds"
  STACK_TIMEOUT="$secs"
  load_ports
  for name in redis registry kafka; do
    [[ -n "$(lib_running_pid "$name")" ]] || die "$name is not running (./egressctl stack up starts it)"
    wait_healthy "$name" "$(lib_now)"
  done
}

cmd_down() {
  take_lock
  load_ports
  [[ -d "$PIDS_DIR" ]] || { log "nothing to stop ($PIDS_DIR does not exist)"; return 0; }
  local f name
  local -a others=() stack=()
  shopt -s nullglob
  for f in "$PIDS_DIR"/*.pid; do
    name="$(basename "$f" .pid)"
    case " ${STACK_COMPONENTS[*]} " in
      *" $name "*) stack+=("$name") ;;
      *) others+=("$name") ;;
    esac
  done
  shopt -u nullglob
  if ((${#others[@]} + ${#stack[@]} == 0)); then
    log "nothing to stop (no pid files in $PIDS_DIR)"
    return 0
  fi
  # Services and agents first (they are Kafka/Redis clients), then the stack itself.
  ((${#others[@]})) && stop_group "${others[@]}"
  ((${#stack[@]})) && stop_group "${stack[@]}"
  return 0
}

# Exit status: 0 when every component listed is up, 3 when none is (nothing of this EGRESS_HOME
# runs), 1 otherwise (some down, starting, or their port taken by another process).
cmd_status() {
  load_ports
  local name pid port state detail owner cmdline health up=0 total=0
  local -a names=("${STACK_COMPONENTS[@]}")
  if [[ -d "$PIDS_DIR" ]]; then
    local f n
    shopt -s nullglob
    for f in "$PIDS_DIR"/*.pid; do
      n="$(basename "$f" .pid)"
      [[ " ${names[*]} " == *" $n "* ]] || names+=("$n")
    done
    shopt -u nullglob
  fi
  printf '%-16s %-8s %-6s %-10s %s\n' COMPONENT PID PORT STATE DETAIL
  for name in "${names[@]}"; do
    port="$(component_port "$name")"
    pid="$(lib_read_pid "$(lib_pidfile "$name")")"
    detail=""
    if [[ -n "$pid" ]] && lib_pid_is_ours "$pid"; then
      if [[ " ${STACK_COMPONENTS[*]} " != *" $name "* && "$port" != "-" ]]; then
        # a service or agent: up when healthy
        if health="$(service_health "$port")"; then state=up
        elif [[ "$health" == "no answer" ]]; then state=starting; detail="health: no answer yet"
        else state=unhealthy; detail="health: $health"; fi
      elif [[ "$port" == "-" ]] || lib_port_listening "$port"; then state=up; else state=starting; fi
      if [[ "$name" == registry ]]; then
        cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
        case "$cmdline" in
          *"/registry/$APICURIO3_VERSION/"*) detail="apicurio $APICURIO3_VERSION" ;;
          *"/registry/$APICURIO2_VERSION/"*) detail="apicurio $APICURIO2_VERSION" ;;
        esac
      fi
    else
      if [[ -n "$pid" ]] && lib_pid_alive "$pid"; then detail="pid file names pid $pid, which is not ours"
      elif [[ -n "$pid" ]]; then detail="stale pid file ($pid)"; fi
      pid="-"
      state=down
      if [[ "$port" != "-" ]] && lib_port_listening "$port"; then
        owner="$(lib_port_owner "$port")"
        state=foreign
        detail="port taken by ${owner:-another process}"
        [[ -z "$(port_var "$port")" ]] || detail+="; set $(port_var "$port")"
      fi
    fi
    printf '%-16s %-8s %-6s %-10s %s\n' "$name" "$pid" "$port" "$state" "$detail"
    total=$((total + 1))
    [[ "$state" == up ]] && up=$((up + 1))
  done
  printf 'EGRESS_HOME=%s\n' "$EGRESS_HOME"
  if ((up == total)); then return 0; elif ((up == 0)); then return 3; else return 1; fi
}

cmd_env() {
  load_ports
  printf 'export KAFKA_BOOTSTRAP_SERVERS=%s\n' "127.0.0.1:$EGRESS_KAFKA_PORT"
  printf 'export SCHEMA_REGISTRY_URL=%s\n' "http://127.0.0.1:$EGRESS_REGISTRY_PORT/apis/ccompat/v7"
  printf 'export REDIS_URL=%s\n' "redis://127.0.0.1:$EGRESS_REDIS_PORT"
  printf 'export EGRESS_HOME=%q\n' "$EGRESS_HOME"
  # The stack's host-update key, unless the operator gave keys of their own.
  if [[ -z "${EGRESS_UPDATE_KEYS:-}" && -s "$UPDATE_KEYS_FILE" ]]; then
    printf 'export EGRESS_UPDATE_KEYS=%q\n' "$(head -n 1 "$UPDATE_KEYS_FILE")"
  fi
  if secure_on; then secure_env; else secure_env_unset; fi
  # Lines other components added to ports.env (our own port keys are not repeated).
  [[ -f "$PORTS_ENV" ]] || return 0
  local line key val ours
  ours=" ${PORT_KEYS[*]} KAFKA_BOOTSTRAP_SERVERS SCHEMA_REGISTRY_URL REDIS_URL EGRESS_HOME "
  while IFS= read -r line || [[ -n "$line" ]]; do
    line="${line#export }"
    [[ "$line" =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key="${BASH_REMATCH[1]}"; val="${BASH_REMATCH[2]}"
    [[ "$ours" == *" $key "* ]] && continue
    val="${val%\"}"; val="${val#\"}"; val="${val%\'}"; val="${val#\'}"
    printf 'export %s=%q\n' "$key" "$val"
  done <"$PORTS_ENV"
}

# Three brokers and a Redis with replicas and Sentinels when EGRESS_BROKERS=3 (scripts/cluster.sh).
# shellcheck source=scripts/cluster.sh
source "$SCRIPT_DIR/cluster.sh"

usage() {
  cat <<EOF
usage: scripts/stack.sh COMMAND
  up          fetch missing artifacts, start Kafka, the schema registry and Redis (idempotent)
  down        stop every process with a pid file in \$EGRESS_HOME/pids (stack, services, agents)
  status      table of component, pid, port, state
  env         print export lines for KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL, REDIS_URL, EGRESS_HOME
  wait [S]    wait up to S seconds (default $STACK_TIMEOUT) until every stack component is healthy
  restart [--kill] COMPONENT...
              stop kafka, registry and/or redis (SIGTERM; --kill: SIGKILL, a crash) and start them
              again on their kept data; services and agents keep running and reconnect
  kafka-tool MAIN_CLASS [ARGS...]
              run a Kafka tool on the stack's classpath, e.g.
              kafka-tool org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:19092 --list
EGRESS_HOME=$EGRESS_HOME
EOF
}

main() {
  local cmd="${1:-help}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env "$@" ;;
    wait) cmd_wait "$@" ;;
    restart) cmd_restart "$@" ;;
    kafka-tool)
      [[ $# -ge 1 ]] || die "kafka-tool needs a main class"
      [[ -f "$(kafka_jar)" ]] || die "Kafka jars are missing; run './egressctl stack up' first"
      [[ -f "$EGRESS_HOME/kafka/tools-log4j2.properties" ]] || { load_ports; write_kafka_config; }
      kafka_tool "$@" ;;
    help | -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

# Run as a command; when sourced only define the helpers (start_bg, load_ports, redis_ping,
# kafka_tool ...; the pid, port and stop helpers are in scripts/lib.sh).
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
