#!/usr/bin/env bash
# Service commands of ./egressctl, sourced by it: up, test, walkthrough, bench, audit, rebuild, agent, chaos.
# Starts the three services and the simulated host agents as background processes on 127.0.0.1,
# with pid files in $EGRESS_HOME/pids so `./egressctl down` stops them with the stack.

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SVC_ROOT="$LIB_ROOT"
SVC_HOME="$LIB_HOME"
SVC_VERSION=0.1.0-SNAPSHOT
SVC_HOSTS=(${EGRESS_DEMO_HOSTS:-host-1 host-2 host-3})

# shellcheck source=scripts/datacenter.sh
source "$SVC_ROOT/scripts/datacenter.sh"
# shellcheck source=scripts/secure.sh
source "$SVC_ROOT/scripts/secure.sh"  # up --secure: each process's credentials (secure_service_env)

svc_log() { lib_log egressctl "$@"; }
svc_die() { lib_die egressctl "$@"; }

svc_jar() { echo "$SVC_ROOT/$1/target/$1-$SVC_VERSION.jar"; }
cli_jar() { echo "$SVC_ROOT/cli/target/cli-$SVC_VERSION-exec.jar"; }

producer_jar() { echo "$SVC_ROOT/examples/producer/target/producer-example-$SVC_VERSION-exec.jar"; }

# svc_mvn WHAT MAVEN_ARGS...: Maven in the repository, quiet; its output goes to $SVC_HOME/logs/build.log
# (Maven 3.8 prints colour resets even with -q), shown only when it fails, with what failed.
svc_mvn() {
  local what="$1" log="$SVC_HOME/logs/build.log"
  shift
  mkdir -p "$SVC_HOME/logs"
  if ! (cd "$SVC_ROOT" && mvn -q -B -Dstyle.color=never "$@") >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    svc_die "$what failed (mvn $*); log: $log"
  fi
}

# Builds when a jar is missing or any source is newer than it: the services, the CLI and the producer
# example of docs/producers.md (java -jar examples/producer/target/...).
svc_build() {
  local stale=0 m jar
  for jar in "$(svc_jar rule-service)" "$(svc_jar compiler-service)" "$(svc_jar host-agent)" "$(cli_jar)" "$(producer_jar)"; do
    [[ -f "$jar" ]] || { stale=1; break; }
  done
  if [[ $stale -eq 0 ]]; then
    local newest
    newest="$(find "$SVC_ROOT"/{core,schemas,rule-service,compiler-service,host-agent,cli,examples/producer}/src/main "$SVC_ROOT"/*/pom.xml \
      "$SVC_ROOT/examples/producer/pom.xml" "$SVC_ROOT/pom.xml" -newer "$(cli_jar)" -type f 2>/dev/null | head -n 1)"
    [[ -z "$newest" ]] || stale=1
  fi
  if [[ $stale -eq 1 ]]; then
    svc_log "building (mvn -DskipTests install; log: $SVC_HOME/logs/build.log) ..."
    # The parent pom (.) is installed too: `bench compiler|agent` run Maven on one module, which reads
    # its siblings (core, schemas) from the local repository, and their poms name that parent. test-infra
    # is the services' test-scope dependency (their test sources compile even with -DskipTests).
    svc_mvn "the build" -DskipTests install -pl .,core,schemas,test-infra,examples/producer,rule-service,compiler-service,host-agent,cli
  fi
}

svc_credentials() {
  local f="$SVC_HOME/credentials.env"
  if [[ ! -f "$f" ]]; then
    mkdir -p "$SVC_HOME"
    umask 077
    {
      echo "EGRESS_API_KEY=tk-$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
      echo "EGRESS_OPERATOR_KEY=ok-$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    } >"$f"
  fi
  if ! grep -q '^EGRESS_API_KEY_B=' "$f"; then
    echo "EGRESS_API_KEY_B=tk-$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')" >>"$f"
  fi
  if ! grep -q '^CLOUDSTACK_KEY=' "$f"; then
    {
      echo "CLOUDSTACK_KEY=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')"
      echo "CLOUDSTACK_SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n')"
    } >>"$f"
  fi
  # shellcheck source=/dev/null
  source "$f"
  export EGRESS_API_KEY EGRESS_API_KEY_B EGRESS_OPERATOR_KEY CLOUDSTACK_KEY CLOUDSTACK_SECRET
  # Two tenants: "demo" (tenant A: the seed's network and tenant-a-net) and "tenant-b".
  export EGRESS_API_KEYS="$EGRESS_API_KEY=demo:tenant:demo-user,$EGRESS_API_KEY_B=tenant-b:tenant:user-b,$EGRESS_OPERATOR_KEY=ops:operator:compute"
  export EGRESS_CLOUDSTACK_KEYS="$CLOUDSTACK_KEY:$CLOUDSTACK_SECRET=demo:tenant:demo-user"
}

# Adds KEY=VALUE to ports.env (replacing an older line of that key).
svc_env_put() { lib_env_put "$SVC_HOME/ports.env" "$1" "$2"; }

# svc_pid_alive NAME: the process of pid file NAME runs and was started from this EGRESS_HOME.
svc_pid_alive() { [[ -n "$(lib_running_pid "$1")" ]]; }

# svc_start NAME JAR PORT [ENV=VALUE ...]: start a Spring Boot jar unless it already runs.
svc_start() {
  local name="$1" jar="$2" port="$3"
  shift 3
  if svc_pid_alive "$name"; then
    svc_log "$name already running"
    return 0
  fi
  mkdir -p "$SVC_HOME/pids" "$SVC_HOME/logs" "$SVC_HOME/jars"
  [[ -f "$SVC_HOME/logs/$name.log" ]] && mv -f "$SVC_HOME/logs/$name.log" "$SVC_HOME/logs/$name.log.1"
  # Run a copy: a rebuild of target/ must not pull classes from under a running service.
  cp -f "$jar" "$SVC_HOME/jars/$name.jar"
  # rule-service holds each ?wait= caller's connection while it waits, about 80 KB of heap each (Tomcat's
  # buffers): its limit of waiters follows the heap (about 13,000 in 1536 MB; docs/operations.md).
  local heap=384m
  [[ "$name" == rule-service ]] && heap="${EGRESS_RULE_SERVICE_HEAP:-1536m}"
  # JIT and GC flags (EGRESS_SERVICE_JAVA_OPTS; docs/operations.md, "JVM settings").
  local -a jvm=(${EGRESS_SERVICE_JAVA_OPTS:--XX:+UseSerialGC}) secured=()
  local own
  # Secured stack: this process's own Kafka principal and Redis user, and the stack's CA (scripts/secure.sh).
  # Fail closed: without them it would run with the operator's credentials given in "$@".
  own="$(secure_service_env "$name")" || svc_die "$name: no credentials of its own on the secured stack"
  [[ -z "$own" ]] || mapfile -t secured <<<"$own"
  mapfile -t -O "${#jvm[@]}" jvm < <(secure_java_opts)
  env "$@" "${secured[@]}" setsid nohup java -Xms64m "-Xmx$heap" "${jvm[@]}" \
    "-Degress.home=$SVC_HOME" -jar "$SVC_HOME/jars/$name.jar" >"$SVC_HOME/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$(lib_pidfile "$name")"
  # Its HTTP port, beside the pid file: `status` asks it for /actuator/health there.
  echo "$port" >"$SVC_HOME/pids/$name.port"
}

# svc_wait_health NAME PORT: until /actuator/health answers UP.
svc_wait_health() {
  local name="$1" port="$2" deadline=$((SECONDS + ${EGRESS_SERVICE_TIMEOUT:-120}))
  until curl -fsS "http://127.0.0.1:$port/actuator/health" 2>/dev/null | grep -q '"status":"UP"'; do
    if ! svc_pid_alive "$name"; then
      tail -n 30 "$SVC_HOME/logs/$name.log" >&2 || true
      svc_die "$name exited; log: $SVC_HOME/logs/$name.log"
    fi
    if (( SECONDS > deadline )); then
      tail -n 30 "$SVC_HOME/logs/$name.log" >&2 || true
      svc_die "$name not healthy on port $port; log: $SVC_HOME/logs/$name.log"
    fi
    sleep 0.3
  done
}

# svc_wait_ready NAME PORT: waits until the service's readiness is UP. rule-service is not ready while
# the compiler rebuilds the read model from the log (a start on an empty Redis replays the history);
# the API answers 503 REBUILDING meanwhile, so the walkthrough waits here rather than being refused.
svc_wait_ready() {
  local name="$1" port="$2" deadline=$((SECONDS + ${EGRESS_REBUILD_TIMEOUT:-600})) body said=""
  while :; do
    body="$(curl -sS "http://127.0.0.1:$port/actuator/health/readiness" 2>/dev/null || true)"
    # Spring writes the overall status last ({"components":{...},"status":"UP"} with details shown).
    [[ "$body" == '{"status":"UP"'* || "$body" == *'"status":"UP"}' ]] && return 0
    if [[ -z "$said" && "$body" == *REBUILDING*  || -z "$said" && "$body" == *rebuild* ]]; then
      svc_log "$name: waiting while the compiler rebuilds the read model from the log"
      said=1
    fi
    svc_pid_alive "$name" || svc_die "$name exited; log: $SVC_HOME/logs/$name.log"
    if (( SECONDS > deadline )); then
      svc_die "$name not ready after ${EGRESS_REBUILD_TIMEOUT:-600} s: $body"
    fi
    sleep 0.5
  done
}

svc_stack_env() {
  bash "$SVC_ROOT/scripts/stack.sh" up
  eval "$(bash "$SVC_ROOT/scripts/stack.sh" env)"
}

# Starts rule-service, compiler-service and one agent per simulated host.
svc_start_all() {
  svc_build
  svc_stack_env
  svc_credentials
  local api_port="${EGRESS_API_PORT:-18080}" compiler_port="${EGRESS_COMPILER_PORT:-18090}" agent_base="${EGRESS_AGENT_BASE_PORT:-18100}"
  local common=("KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS" "SCHEMA_REGISTRY_URL=$SCHEMA_REGISTRY_URL" "REDIS_URL=$REDIS_URL")
  local t0=$SECONDS
  svc_start compiler-service "$(svc_jar compiler-service)" "$compiler_port" "${common[@]}" "EGRESS_COMPILER_PORT=$compiler_port"
  svc_start rule-service "$(svc_jar rule-service)" "$api_port" "${common[@]}" "EGRESS_API_PORT=$api_port" "EGRESS_API_KEYS=$EGRESS_API_KEYS" \
    "EGRESS_CLOUDSTACK_KEYS=$EGRESS_CLOUDSTACK_KEYS"
  local i=1 h
  mkdir -p "$SVC_HOME/agents"
  svc_datacenter_up
  for h in "${SVC_HOSTS[@]}"; do
    local -a how
    if [[ -n "$SVC_DATACENTER" ]] && ((i <= 3)); then
      how=("EGRESS_ENFORCER=nftables" "EGRESS_NETNS=$(dc_host_ns "$i")" "EGRESS_AGENT_MODE=bridged")
    else
      how=("EGRESS_ENFORCER=dry-run" "EGRESS_DRY_RUN_FILE=$SVC_HOME/agents/$h.nft")
    fi
    svc_agent_start "$h" $((agent_base + i)) "${how[@]}"
    i=$((i + 1))
  done
  svc_wait_health compiler-service "$compiler_port"
  # Health is OUT_OF_SERVICE while the read model is rebuilt, which can take longer than a start.
  svc_wait_ready rule-service "$api_port"
  i=1
  for h in "${SVC_HOSTS[@]}"; do
    svc_wait_health "agent-$h" $((agent_base + i))
    i=$((i + 1))
  done
  svc_log "services healthy in $((SECONDS - t0)) s"
  export EGRESS_API_URL="http://127.0.0.1:$api_port"
  svc_env_put EGRESS_API_URL "$EGRESS_API_URL"
  svc_env_put EGRESS_API_KEY "$EGRESS_API_KEY"
  svc_env_put EGRESS_API_KEY_B "$EGRESS_API_KEY_B"
  svc_env_put EGRESS_OPERATOR_KEY "$EGRESS_OPERATOR_KEY"
  svc_env_put CLOUDSTACK_ENDPOINT "$EGRESS_API_URL/client/api"
  svc_env_put CLOUDSTACK_KEY "$CLOUDSTACK_KEY"
  svc_env_put CLOUDSTACK_SECRET "$CLOUDSTACK_SECRET"
  svc_env_put EGRESS_AGENT_FILES "$SVC_HOME/agents"
  svc_env_put EGRESS_DEMO_HOSTS "\"${SVC_HOSTS[*]}\""
}

# svc_agent_start HOST PORT ENV=VALUE...: one agent; an agent already running with another
# enforcer, namespace or mode (its settings are kept in agents/<host>.settings) is restarted.
svc_agent_start() {
  local h="$1" port="$2"
  shift 2
  local settings="$SVC_HOME/agents/$h.settings" want
  want="$(printf '%s\n' "$@" | sort | tr '\n' ' ')"
  if svc_pid_alive "agent-$h" && [[ "$(cat "$settings" 2>/dev/null)" != "$want" ]]; then
    svc_log "agent-$h runs with other settings ($(cat "$settings" 2>/dev/null || echo unknown)): restarting it"
    svc_stop "agent-$h"
  fi
  local common=("KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS" "SCHEMA_REGISTRY_URL=$SCHEMA_REGISTRY_URL" "REDIS_URL=$REDIS_URL")
  svc_start "agent-$h" "$(svc_jar host-agent)" "$port" "${common[@]}" "EGRESS_AGENT_PORT=$port" "EGRESS_HOST_ID=$h" "$@"
  echo "$want" >"$settings"
}

# Decides the mode of `up`: SVC_DATACENTER=1 when the data center in namespaces can run here (root,
# nft, ip, socat), built or kept; empty (dry-run agents) otherwise, saying why. EGRESS_DATACENTER=off
# forces dry-run.
SVC_DATACENTER=""
svc_datacenter_up() {
  local why
  if why="$(dc_unavailable)"; then
    SVC_DATACENTER=""
    svc_log "no data center: $why. Agents render to dry-run files ($SVC_HOME/agents/<host>.nft) and the walkthrough cannot probe real traffic (that needs root, nft, ip and socat)."
    return 0
  fi
  if ((${#SVC_HOSTS[@]} < 3)); then
    svc_log "no data center: it needs three hosts (EGRESS_DEMO_HOSTS names ${SVC_HOSTS[*]}); dry-run agents"
    return 0
  fi
  if dc_check; then
    svc_log "data center already built ($(dc_host_ns 1)..$(dc_host_ns 3), VMs and routers): kept"
  else
    # Agents enforcing in the old namespaces must not outlive them: stop them first.
    local h
    for h in "${SVC_HOSTS[@]:0:3}"; do svc_stop "agent-$h"; done
    svc_log "building the data center in network namespaces ($DC_PREFIX-*)"
    EGRESS_DEMO_HOSTS="${SVC_HOSTS[*]}" dc_create || svc_die "the data center could not be built (scripts/datacenter.sh status; ./egressctl down cleans up)"
  fi
  SVC_DATACENTER=1
}

# The walkthrough probes real traffic when the data center is built and the agents enforce in it.
svc_walkthrough_env() {
  export EGRESS_AGENT_FILES="$SVC_HOME/agents" EGRESS_DEMO_HOSTS="${SVC_HOSTS[*]}"
  unset EGRESS_DATACENTER_SCRIPT
  if dc_check 2>/dev/null && grep -qs "EGRESS_ENFORCER=nftables" "$SVC_HOME/agents/${SVC_HOSTS[0]}.settings"; then
    export EGRESS_DATACENTER_SCRIPT="$SVC_ROOT/scripts/datacenter.sh"
  fi
}

svc_cli() {
  local -a jvm=()
  mapfile -t jvm < <(secure_java_opts)
  java "${jvm[@]}" -jar "$(cli_jar)" "$@"
}

cmd_up() {
  local walk=1
  while (($#)); do
    case "$1" in
      --no-walkthrough) walk=0 ;;
      # Three KRaft brokers and Redis with replicas and Sentinels (scripts/cluster.sh); remembered.
      --brokers) [[ $# -ge 2 ]] || svc_die "up: --brokers needs 1 or 3"; export EGRESS_BROKERS="$2"; shift ;;
      --brokers=*) export EGRESS_BROKERS="${1#--brokers=}" ;;
      --secure) export EGRESS_SECURE=1 ;;  # scripts/secure.sh
      *) svc_die "up: unknown argument '$1' (up [--no-walkthrough] [--brokers 1|3] [--secure])" ;;
    esac
    shift
  done
  [[ -z "${EGRESS_BROKERS:-}" || "$EGRESS_BROKERS" == 1 || "$EGRESS_BROKERS" == 3 ]] \
    || svc_die "up: --brokers is 1 or 3, not '$EGRESS_BROKERS'"
  # The secured stack is one broker and one Redis: its listener, SCRAM users and Redis ACL users are set up
  # for those (scripts/secure.sh); a secured cluster is not built yet.
  if [[ -n "${EGRESS_SECURE:-}" && "${EGRESS_BROKERS:-1}" == 3 ]]; then
    svc_die "up: --secure runs one broker; --secure with --brokers 3 is not supported yet"
  fi
  svc_start_all
  svc_walkthrough_env
  if ((walk)); then
    svc_cli walkthrough
  fi
  local where="three dry-run agents render to $SVC_HOME/agents/<host>.nft"
  [[ -n "$SVC_DATACENTER" ]] && where="three agents enforce with nft in the data center's hosts $(dc_host_ns 1)..$(dc_host_ns 3) (bridged; scripts/datacenter.sh status)"
  cat <<MSG

The control plane runs on 127.0.0.1 (state and logs: $SVC_HOME); $where.
  eval "\$(./egressctl env)"      point tools at it (API, Kafka, registry, Redis, demo keys)
  ./egressctl status              what runs
  ./egressctl down                stop everything
MSG
}

cmd_walkthrough() {
  local c
  for c in rule-service compiler-service; do
    svc_pid_alive "$c" || svc_die "the walkthrough needs the running control plane ($c is not running from $SVC_HOME): ./egressctl up first"
  done
  eval "$(bash "$SVC_ROOT/scripts/stack.sh" env)"
  svc_walkthrough_env
  svc_cli walkthrough "$@"
}

# ./egressctl agent --host ID --netns NS [--mode bridged|routed] [--port P]: one more agent against
# the running stack, enforcing with nft in an existing namespace; `./egressctl down` stops it.
cmd_agent() {
  local host="" netns="" mode=bridged port=""
  while (($#)); do
    case "$1" in
      --host) host="${2:-}"; shift 2 ;;
      --netns) netns="${2:-}"; shift 2 ;;
      --mode) mode="${2:-}"; shift 2 ;;
      --port) port="${2:-}"; shift 2 ;;
      -h | --help)
        echo "usage: ./egressctl agent --host ID --netns NS [--mode bridged|routed] [--port P]"; return 0 ;;
      *) svc_die "agent: unknown argument '$1' (usage: ./egressctl agent --host ID --netns NS [--mode bridged|routed] [--port P])" ;;
    esac
  done
  [[ -n "$host" && -n "$netns" ]] || svc_die "agent needs --host ID and --netns NS"
  [[ "$host" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || svc_die "agent: '$host' is not a host id ([A-Za-z0-9._-], up to 64)"
  [[ "$mode" == bridged || "$mode" == routed ]] || svc_die "agent: --mode is bridged or routed, not '$mode'"
  [[ "$(id -u)" == 0 ]] || svc_die "agent enforces with nft in a namespace: it needs root"
  command -v nft >/dev/null 2>&1 || svc_die "agent: nft is not installed (apt-get install nftables)"
  dc_ns_exists "$netns" || svc_die "agent: no network namespace '$netns' (ip netns list)"
  svc_pid_alive rule-service || svc_die "the control plane is not running (./egressctl up first)"
  svc_build
  eval "$(bash "$SVC_ROOT/scripts/stack.sh" env)"
  if [[ -z "$port" ]]; then
    port=$(( ${EGRESS_AGENT_BASE_PORT:-18100} + 10 ))
    while lib_port_listening "$port"; do port=$((port + 1)); done
  fi
  svc_agent_start "$host" "$port" "EGRESS_ENFORCER=nftables" "EGRESS_NETNS=$netns" "EGRESS_AGENT_MODE=$mode"
  svc_wait_health "agent-$host" "$port"
  svc_log "agent-$host enforces in namespace $netns ($mode) on port $port; pid file $SVC_HOME/pids/agent-$host.pid, log $SVC_HOME/logs/agent-$host.log"
}

# Called by ./egressctl down after the stack (agents included) has stopped.
cmd_down_datacenter() {
  if [[ -f "$DC_HOME/state.env" ]]; then
    if [[ "$(id -u)" == 0 ]]; then dc_destroy; else svc_log "the data center needs root to be removed (scripts/datacenter.sh destroy)"; fi
  elif [[ -n "$(dc_namespaces)" ]]; then
    svc_log "namespaces $DC_PREFIX-* exist but were not built from $SVC_HOME: left alone (scripts/datacenter.sh destroy removes them)"
  fi
}

# The output of a bench run by Maven: Maven's [INFO] and [WARNING] lines, its colour codes and log
# lines are dropped, its [ERROR] lines kept (they say why a bench could not run). A bench that says it
# cannot run here ("bench agent: cannot run: ..." without root or nft) prints figures of -1: the
# command then exits 3.
svc_bench_filter() {
  awk '/^(\033\[[0-9;]*m)+$/ { next }
       { gsub(/\033\[[0-9;]*m/, "") }
       /^\[(INFO|WARNING)\]|^[0-9:.]+ \[|SLF4J/ { next }
       { print; fflush() }
       /^bench [a-z]+: cannot run:/ { cannot = 1 }
       END { exit cannot ? 3 : 0 }'
}

cmd_bench() {
  # compiler, audit, api and waiters run on the local stack (api and waiters on the whole control
  # plane): say so at once rather than after a build and a minute of timeouts. agent needs it only
  # for its cold-start line, which says why.
  case "${1:-}" in
    compiler | audit | api | waiters | propagation)
      local why
      why="$(bash "$SVC_ROOT/scripts/stack.sh" wait 15 2>&1)" \
        || svc_die "bench $1 runs on the local stack of $SVC_HOME, which is not running (${why##*ERROR: }): ./egressctl up first" ;;
  esac
  if [[ "${1:-}" == api || "${1:-}" == waiters || "${1:-}" == propagation ]]; then
    local c
    for c in rule-service compiler-service; do
      svc_pid_alive "$c" || svc_die "bench $1 needs the running control plane ($c is not running): ./egressctl up first"
    done
  fi
  svc_build
  eval "$(bash "$SVC_ROOT/scripts/stack.sh" env)"
  case "${1:-}" in
    compiler)
      # A program in compiler-service's test sources: the real pipeline on bench topics of its own.
      # Its classpath has no logging configuration of its own: scripts/bench-logback.xml keeps it to warnings.
      (cd "$SVC_ROOT" && mvn -q -B -pl compiler-service test-compile exec:java \
        "-Dlogback.configurationFile=$SVC_ROOT/scripts/bench-logback.xml" \
        -Dexec.mainClass=io.egressctl.compiler.bench.CompilerBench -Dexec.classpathScope=test "${@:2}") 2>&1 \
        | svc_bench_filter ;;
    agent)
      # Real nft in a network namespace of its own (needs root and nft).
      # In a JVM of its own with the agent's flags (docker/services/Dockerfile); -D options go to that JVM.
      (cd "$SVC_ROOT" && mvn -q -B -pl host-agent test-compile exec:exec -Dexec.executable=java -Dexec.classpathScope=test \
        "-Dexec.args=-XX:+UseSerialGC -Xmx384m ${*:2} -classpath %classpath io.egressctl.agent.kernel.AgentApplyBench") 2>&1 \
        | svc_bench_filter ;;
    propagation)
      # The fleet runs the host agent's own sync loop (host-agent's classes and test classes, where the
      # fleet program is) in JVMs the bench starts; the bench itself is the CLI's, with the stack's keys.
      local cp="$SVC_HOME/bench/fleet.classpath"
      mkdir -p "$SVC_HOME/bench"
      svc_mvn "the fleet's classpath (host-agent test-compile)" -pl host-agent test-compile dependency:build-classpath \
        -Dmdep.includeScope=test "-Dmdep.outputFile=$cp"
      set -a
      # shellcheck source=/dev/null
      source "$SVC_HOME/ports.env"
      set +a
      EGRESS_FLEET_CLASSPATH="$SVC_ROOT/host-agent/target/test-classes:$SVC_ROOT/host-agent/target/classes:$(cat "$cp")" \
        EGRESS_FLEET_LOGBACK="$SVC_ROOT/scripts/bench-logback.xml" svc_cli bench "$@" ;;
    *) svc_cli bench "$@" ;;
  esac
}

cmd_audit() {
  svc_build
  if [[ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
    # The local stack's, unless the command names a broker: say at once when it does not run, rather than
    # after the Kafka client's timeout.
    if [[ " $* " != *" --bootstrap-server"* && " $* " != *" -h "* && " $* " != *" --help "* && " $* " != *" help "* && $# -gt 0 ]] \
        && ! bash "$SVC_ROOT/scripts/stack.sh" wait 5 >/dev/null 2>&1; then
      # exit 4, audit's "could not finish" (1 means differences found)
      svc_log "ERROR: audit reads the local stack of $SVC_HOME, which is not running: ./egressctl up first (or give" \
        "--bootstrap-server, --schema-registry and --redis, or KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL and REDIS_URL, of another)"
      exit 4
    fi
    eval "$(bash "$SVC_ROOT/scripts/stack.sh" env)"
  fi
  # Secured stack: the audit principal, which reads and writes nothing (stack/acls).
  if secure_on && [[ "${1:-}" != migrate-0.1 ]]; then
    local line
    while IFS= read -r line; do export "${line?}"; done < <(secure_client_env audit)
  fi
  svc_cli audit "$@"
}


# The test command of README: unit tests, then integration and end-to-end tests against a real
# stack of their own (separate state dir and ports, stopped afterwards whatever happens).
# The engine path (docs/operations.md, "Containers"), when a Docker engine answers (EGRESS_TEST_ENGINE:
# auto, the default; on: an engine is required; off: never): the images are built first (scripts/images.sh),
# EGRESS_TEST_CONTAINERS=true turns on the testcontainers profiles of compiler-service, rule-service (all their
# ITs) and e2e (four ITs), which run with their Kafka, registry and Redis from Testcontainers instead of the
# stack (test-infra's Infrastructure), and after Maven, as root, the compose walkthrough (scripts/compose.sh).
cmd_test() {
  export EGRESS_HOME="$SVC_ROOT/target/egressctl-test"
  # The test stack is one broker (NodeLossIT starts a cluster of its own): settings a shell took from a
  # cluster's `./egressctl env` must not reach it or the services the tests start.
  unset EGRESS_BROKERS EGRESS_TOPIC_REPLICATION_FACTOR EGRESS_TOPIC_MIN_INSYNC_REPLICAS EGRESS_CLUSTER_REGISTRY_URL
  unset EGRESS_SECURE  # the test stack is plain; LeastPrivilegeIT starts a secured one of its own
  export EGRESS_KAFKA_PORT="${EGRESS_TEST_KAFKA_PORT:-29092}" EGRESS_KAFKA_CONTROLLER_PORT="${EGRESS_TEST_KAFKA_CONTROLLER_PORT:-29093}"
  export EGRESS_REGISTRY_PORT="${EGRESS_TEST_REGISTRY_PORT:-28081}" EGRESS_REGISTRY_MGMT_PORT="${EGRESS_TEST_REGISTRY_MGMT_PORT:-28082}"
  export EGRESS_REDIS_PORT="${EGRESS_TEST_REDIS_PORT:-26379}"
  local engine="" mode="${EGRESS_TEST_ENGINE:-auto}" t0
  case "$mode" in
    auto | on | off) ;;
    *) svc_die "EGRESS_TEST_ENGINE is auto, on or off, not '$mode'" ;;
  esac
  if [[ "$mode" != off ]] && bash "$SVC_ROOT/scripts/engine.sh" status >/dev/null 2>&1; then
    engine=1
  elif [[ "$mode" == on ]]; then
    svc_die "EGRESS_TEST_ENGINE=on, but no Docker engine answers (scripts/engine.sh start, as root)"
  elif [[ "$mode" == auto ]]; then
    svc_log "no Docker engine answers: the ITs on Testcontainers and the compose walkthrough are left out (scripts/engine.sh start, as root, then ./egressctl test runs them too)"
  fi
  bash "$SVC_ROOT/scripts/stack.sh" up
  trap 'EGRESS_HOME="$SVC_ROOT/target/egressctl-test" bash "$SVC_ROOT/scripts/stack.sh" down >/dev/null 2>&1 || true' EXIT
  eval "$(bash "$SVC_ROOT/scripts/stack.sh" env)"
  if [[ -n "$engine" ]]; then
    t0=$SECONDS
    # The services' build stage too: it needs only the base, so it is built in the same parallel wave.
    bash "$SVC_ROOT/scripts/images.sh" build infra maven || svc_die "the images for Testcontainers could not be built"
    svc_log "engine path: images for Testcontainers (and the services' build stage) ready in $((SECONDS - t0)) s"
    export EGRESS_TEST_CONTAINERS=true
  fi
  local rc=0
  (cd "$SVC_ROOT" && mvn -B verify "$@") || rc=$?
  if ((rc != 0)); then
    # What the stack's own logs say helps tell a product failure from a stalled broker on a loaded machine.
    local f
    for f in kafka redis registry; do
      [[ -f "$EGRESS_HOME/logs/$f.log" ]] || continue
      echo "---- tests failed: the last warnings and errors of the test stack's $f ($EGRESS_HOME/logs/$f.log) ----" >&2
      grep -a -E 'WARN|ERROR|FATAL|# WARNING|pause' "$EGRESS_HOME/logs/$f.log" | tail -n 25 >&2 || true
    done
    return "$rc"
  fi
  [[ -n "$engine" ]] || return 0
  EGRESS_HOME="$SVC_ROOT/target/egressctl-test" bash "$SVC_ROOT/scripts/stack.sh" down >/dev/null 2>&1 || true
  if [[ "$(id -u)" != 0 ]]; then
    svc_log "the compose walkthrough is left out: its agents enforce in network namespaces, which needs root"
    return 0
  fi
  t0=$SECONDS
  bash "$SVC_ROOT/scripts/compose.sh" walkthrough
  svc_log "engine path: compose walkthrough (service images, stack up, walkthrough, down) in $((SECONDS - t0)) s"
}

# svc_stop NAME: stop one of our processes (by its pid file: SIGTERM, SIGKILL after
# EGRESS_STOP_TIMEOUT s) and wait for it.
svc_stop() {
  local pid
  pid="$(lib_running_pid "$1")"
  [[ -n "$pid" ]] || return 0
  lib_stop_pid "$pid" || true
  rm -f "$(lib_pidfile "$1")" "$SVC_HOME/pids/$1.port"
}

# Rebuild from the log what Redis holds of it: record (for information), stop the compiler, drop the
# keys the log determines (keeping idempotency claims, CloudStack records, applied state, markers),
# restart, and compare Redis with the log.
cmd_rebuild() {
  svc_build
  eval "$(bash "$SVC_ROOT/scripts/stack.sh" env)"
  svc_pid_alive compiler-service || svc_die "compiler-service is not running (./egressctl up first)"
  local before="$SVC_HOME/rebuild-before.txt" port="${EGRESS_COMPILER_PORT:-18090}"
  svc_cli rebuild snapshot "$before"
  svc_log "stopping compiler-service"
  svc_stop compiler-service
  svc_cli rebuild drop || svc_die "drop failed"
  svc_log "starting compiler-service: it replays the log from the beginning (the API answers 503 REBUILDING until it caught up)"
  svc_start compiler-service "$(svc_jar compiler-service)" "$port" "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS" \
    "SCHEMA_REGISTRY_URL=$SCHEMA_REGISTRY_URL" "REDIS_URL=$REDIS_URL" "EGRESS_COMPILER_PORT=$port"
  svc_wait_health compiler-service "$port"
  svc_cli rebuild wait "$before"
}

# ./egressctl chaos [options]: the fault suite (cli: io.egressctl.cli.chaos) against the local control
# plane, started here when it does not run (without the walkthrough); the faults are scripts/faults.sh.
cmd_chaos() {
  case "${1:-}" in -h | --help) svc_build; svc_cli chaos --help; return 0 ;; esac
  svc_start_all
  # Services this shell started are its jobs; the suite kills them on purpose: no "Killed" notices.
  disown -a 2>/dev/null || true
  eval "$(bash "$SVC_ROOT/scripts/stack.sh" env)"
  export EGRESS_FAULT_SCRIPT="$SVC_ROOT/scripts/faults.sh"
  svc_cli chaos "$@"
}
