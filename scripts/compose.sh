#!/usr/bin/env bash
# docker-compose.yml on the local engine, with the seed walkthrough against it:
#
#   scripts/compose.sh walkthrough    (root) a data center in network namespaces (scripts/datacenter.sh),
#                                     the compose stack with three agents enforcing inside its hosts'
#                                     namespaces (docker-compose.netns.yml), the walkthrough with probes of
#                                     real traffic, a check of what each host's kernel holds, then down
#   scripts/compose.sh up             the same stack, left running (the walkthrough is not run)
#   scripts/compose.sh down           compose down -v (containers, network, volumes), then the data center
#
# The agents never enforce in the machine's own namespace here: that table is checked to be as it
# was. Images: scripts/images.sh (built first when missing; `docker-compose up` never builds here).
# State: $EGRESS_COMPOSE_HOME (default <repo>/target/egressctl-compose; never the local stack's
# EGRESS_HOME, whose data center it would otherwise replace): credentials, the data center's state.
# Project name EGRESS_COMPOSE_PROJECT (egressctl-walk), data center prefix EGRESS_DC_PREFIX (eccw),
# host ports as in docker-compose.yml (EGRESS_KAFKA_PORT ... EGRESS_AGENT_PORT, _2, _3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export EGRESS_HOME="${EGRESS_COMPOSE_HOME:-$ROOT/target/egressctl-compose}"
export EGRESS_DC_PREFIX="${EGRESS_DC_PREFIX:-eccw}"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
# shellcheck source=scripts/engine.sh
source "$ROOT/scripts/engine.sh"
PROJECT="${EGRESS_COMPOSE_PROJECT:-egressctl-walk}"
COMPOSE=(docker-compose -p "$PROJECT" -f "$ROOT/docker-compose.yml" -f "$ROOT/docker-compose.netns.yml")
API_PORT="${EGRESS_API_PORT:-18080}"
CLI_JAR="$ROOT/cli/target/cli-0.1.0-SNAPSHOT-exec.jar"

clog() { lib_log compose "$@"; }
cdie() { lib_die compose "$@"; }

# step NAME CMD...: runs CMD and logs how long it took (the figures docs/operations.md quotes).
step() {
  local name="$1" t0
  shift
  t0="$(lib_now)"
  "$@"
  clog "$name: $(lib_since "$t0") s"
}

# Keys of this stack: two tenants, an operator, the host-update signing key (kept in $EGRESS_HOME).
credentials() {
  local f="$EGRESS_HOME/compose-credentials.env"
  mkdir -p "$EGRESS_HOME"
  if [[ ! -s "$f" ]]; then
    (
      umask 077
      rnd() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
      {
        echo "EGRESS_API_KEY=tk-$(rnd 18)"
        echo "EGRESS_API_KEY_B=tk-$(rnd 18)"
        echo "EGRESS_OPERATOR_KEY=ok-$(rnd 18)"
        echo "EGRESS_UPDATE_KEYS=compose-1:$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
      } >"$f"
    )
  fi
  # shellcheck source=/dev/null
  source "$f"
  export EGRESS_API_KEY EGRESS_API_KEY_B EGRESS_OPERATOR_KEY EGRESS_UPDATE_KEYS
  export EGRESS_API_KEYS="$EGRESS_API_KEY=demo:tenant:demo-user,$EGRESS_API_KEY_B=tenant-b:tenant:user-b,$EGRESS_OPERATOR_KEY=ops:operator:compute"
}

# Until rule-service is ready and every agent healthy (compose itself waits only for the dependencies).
# One `docker ps` a second over the project's containers (docker-compose, Python, costs far more a call).
wait_healthy() {
  local deadline=$((SECONDS + ${EGRESS_COMPOSE_TIMEOUT:-300})) s states unhealthy
  while :; do
    states="$("$(engine_docker)" ps -a --filter "label=com.docker.compose.project=$PROJECT" \
      --format '{{.Label "com.docker.compose.service"}} {{.Status}}' 2>/dev/null || true)"
    unhealthy=""
    for s in kafka registry redis compiler-service rule-service agent agent-host-2 agent-host-3; do
      grep -q "^$s .*(healthy)" <<<"$states" || unhealthy+=" $s($(sed -n "s/^$s //p" <<<"$states" | head -n 1))"
    done
    [[ -z "$unhealthy" ]] && return 0
    if ((SECONDS > deadline)); then
      "${COMPOSE[@]}" ps >&2 || true
      "${COMPOSE[@]}" logs --tail 30 >&2 || true
      cdie "not healthy after ${EGRESS_COMPOSE_TIMEOUT:-300} s:$unhealthy"
    fi
    sleep 1
  done
}

root_table() { nft list table inet egressctl >/dev/null 2>&1 && echo present || echo absent; }

cmd_up() {
  [[ "$(id -u)" == 0 ]] || cdie "the agents enforce with nft in network namespaces: run as root"
  engine_answers || cdie "no Docker engine answers: scripts/engine.sh start"
  command -v docker-compose >/dev/null 2>&1 || cdie "no docker-compose: apt-get install -y --no-install-recommends docker-compose"
  step "images" bash "$ROOT/scripts/images.sh" build kafka registry redis services
  eval "$(bash "$ROOT/scripts/images.sh" env)"
  credentials
  step "data center ($EGRESS_DC_PREFIX-*)" bash "$ROOT/scripts/datacenter.sh" create
  step "compose up (to every service healthy)" compose_up
}

compose_up() {
  "${COMPOSE[@]}" up -d --no-build >"$EGRESS_HOME/compose-up.log" 2>&1 || { cat "$EGRESS_HOME/compose-up.log" >&2; cdie "compose up failed"; }
  wait_healthy
}

# The walkthrough of ./egressctl up, against the compose stack: the seed's examples through the REST
# API, probes of real traffic in the data center before and after each change.
walkthrough() {
  if [[ ! -f "$CLI_JAR" ]]; then
    # Maven's output to a log (3.8 prints colour resets even with -q), shown when it fails.
    (cd "$ROOT" && mvn -q -B -Dstyle.color=never -DskipTests install -pl .,core,schemas,cli) >"$EGRESS_HOME/cli-build.log" 2>&1 \
      || { tail -n 40 "$EGRESS_HOME/cli-build.log" >&2; cdie "cannot build $CLI_JAR; log: $EGRESS_HOME/cli-build.log"; }
  fi
  EGRESS_API_URL="http://127.0.0.1:$API_PORT" KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:${EGRESS_KAFKA_PORT:-19092}" \
    SCHEMA_REGISTRY_URL="http://127.0.0.1:${EGRESS_REGISTRY_PORT:-18081}/apis/ccompat/v7" REDIS_URL="redis://127.0.0.1:${EGRESS_REDIS_PORT:-16379}" \
    EGRESS_DEMO_HOSTS="host-1 host-2 host-3" EGRESS_DATACENTER_SCRIPT="$ROOT/scripts/datacenter.sh" EGRESS_AGENT_FILES="$EGRESS_HOME/agents" \
    java -jar "$CLI_JAR" walkthrough
}

# What each host's kernel holds: the agent's table in every host namespace, none added to the machine's.
kernel_check() {
  local i ns elements
  for i in 1 2 3; do
    ns="$EGRESS_DC_PREFIX-h$i"
    elements="$(ip netns exec "$ns" nft list table inet egressctl 2>/dev/null | grep -c 'comment "r=' || true)"
    ((elements > 0)) || cdie "no rule elements in table inet egressctl of $ns: the agent of host-$i did not enforce"
    clog "host-$i ($ns): table inet egressctl with $elements rule element(s)"
  done
  [[ "$(root_table)" == "$ROOT_TABLE_BEFORE" ]] || cdie "the machine's own namespace: table inet egressctl was $ROOT_TABLE_BEFORE, now $(root_table)"
  clog "the machine's own namespace: table inet egressctl $ROOT_TABLE_BEFORE before and after (untouched)"
}

compose_down() { "${COMPOSE[@]}" down -v --remove-orphans --timeout 10 >/dev/null 2>&1 || true; }

cmd_down() {
  if engine_answers && command -v docker-compose >/dev/null 2>&1; then
    step "compose down -v" compose_down
  fi
  if [[ "$(id -u)" == 0 && -f "$EGRESS_HOME/datacenter/state.env" ]]; then
    bash "$ROOT/scripts/datacenter.sh" destroy >/dev/null 2>&1 || clog "the data center was not removed: scripts/datacenter.sh destroy"
  fi
}

cmd_walkthrough() {
  ROOT_TABLE_BEFORE="$(root_table)"
  local t0 rc=0
  t0="$(lib_now)"
  trap 'cmd_down' EXIT
  cmd_up
  step "walkthrough" walkthrough || rc=$?
  ((rc == 0)) || { "${COMPOSE[@]}" logs --tail 40 agent >&2 || true; cdie "the walkthrough failed (exit $rc)"; }
  kernel_check
  trap - EXIT
  cmd_down
  clog "compose walkthrough passed in $(lib_since "$t0") s"
}

case "${1:-help}" in
  up) cmd_up ;;
  down) cmd_down ;;
  walkthrough) cmd_walkthrough ;;
  -h | --help | help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
  *) cdie "unknown command '$1' (walkthrough | up | down)" ;;
esac
