#!/usr/bin/env bash
# Faults for `./egressctl chaos` (cli: io.egressctl.cli.chaos), against the local stack of $EGRESS_HOME:
#
#   scripts/faults.sh inject FAULT   do the fault and bring the component back; returns once it is healthy
#   scripts/faults.sh after FAULT    undo what the fault left behind (the second compiler of compiler-pause)
#   scripts/faults.sh list           the faults, one a line
#
# Faults (each a crash: SIGKILL, no graceful shutdown):
#   compiler        compiler-service killed, started again with the same environment
#   agent           the agent of the second demo host killed, started again with the same environment
#   rule-service    rule-service killed, started again
#   kafka           the broker killed, started again on its data (scripts/stack.sh restart --kill kafka)
#   registry        the schema registry killed, started again on its database
#   redis           redis-server killed and started again EMPTY (its append-only files deleted first)
#   compiler-pause  a second compiler-service joins the group; the first is stopped with SIGSTOP past its
#                   session timeout (EGRESS_SESSION_TIMEOUT_MS, 10 s) plus 5 s, then continued (SIGCONT);
#                   `after` stops the second instance
# A service is started again with the environment it ran with (read from /proc/PID/environ before the
# kill), so its ports, keys and settings are the same. Only processes of this EGRESS_HOME are touched.
set -euo pipefail

FAULTS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/services.sh
source "$FAULTS_ROOT/scripts/services.sh"
eval "$(bash "$FAULTS_ROOT/scripts/stack.sh" env)"

fault_log() { lib_log fault "$@"; }

fault_pid() {  # fault_pid NAME -> the pid of our running process NAME, or fail
  local pid
  pid="$(lib_running_pid "$1")"
  [[ -n "$pid" ]] || svc_die "$1 is not running (./egressctl up starts the control plane)"
  echo "$pid"
}

# The service's own settings from its environment: the stack's URLs and every EGRESS_* variable.
fault_env_of() {  # fault_env_of PID -> KEY=VALUE lines
  tr '\0' '\n' <"/proc/$1/environ" | grep -E '^(KAFKA_BOOTSTRAP_SERVERS|SCHEMA_REGISTRY_URL|REDIS_URL|EGRESS_[A-Z0-9_]+)=' || true
}

fault_sigkill() {  # fault_sigkill NAME PID: SIGKILL and wait until it is gone
  lib_kill_pid "$2" || svc_die "$1 (pid $2) still alive after SIGKILL"
  rm -f "$(lib_pidfile "$1")"
  fault_log "$1: SIGKILL (pid $2)"
}

# fault_restart NAME MODULE PORT_VAR: SIGKILL the service and start it again with the same environment.
fault_restart() {
  local name="$1" module="$2" port_var="$3" pid port
  local -a env=()
  pid="$(fault_pid "$name")"
  mapfile -t env < <(fault_env_of "$pid")
  port="$(printf '%s\n' "${env[@]}" | sed -n "s/^$port_var=//p" | tail -n 1)"
  [[ -n "$port" ]] || svc_die "$name: no $port_var in its environment"
  fault_sigkill "$name" "$pid"
  svc_start "$name" "$(svc_jar "$module")" "$port" "${env[@]}"
  svc_wait_health "$name" "$port"
  fault_log "$name: started again (pid $(lib_read_pid "$(lib_pidfile "$name")")) and healthy on port $port"
}

fault_redis_empty() {
  local pid dir="$SVC_HOME/redis"
  pid="$(lib_running_pid redis)"
  [[ -n "$pid" ]] || svc_die "redis is not running"
  fault_sigkill redis "$pid"
  # Empty: the append-only files (and a dump, if any) go, as if the machine's disk had been lost.
  rm -rf "$dir/appendonlydir" "$dir/dump.rdb" "$dir"/appendonly.aof*
  fault_log "redis: append-only files deleted"
  bash "$FAULTS_ROOT/scripts/stack.sh" restart redis
}

fault_second_compiler_port() {
  local port=$(( ${EGRESS_COMPILER_PORT:-18090} + 7 ))
  while lib_port_listening "$port"; do port=$((port + 1)); done
  echo "$port"
}

fault_compiler_pause() {
  local pid port timeout_ms line
  local -a env=()
  pid="$(fault_pid compiler-service)"
  mapfile -t env < <(fault_env_of "$pid" | grep -v '^EGRESS_COMPILER_PORT=')
  port="$(fault_second_compiler_port)"
  svc_start compiler-service-2 "$(svc_jar compiler-service)" "$port" "${env[@]}" "EGRESS_COMPILER_PORT=$port"
  svc_wait_health compiler-service-2 "$port"
  # Both own partitions before the pause: the second one's log names what it was assigned.
  local deadline=$((SECONDS + 60))
  until grep -q 'assigned \[egress.network-events-' "$SVC_HOME/logs/compiler-service-2.log" 2>/dev/null; do
    (( SECONDS < deadline )) || svc_die "compiler-service-2 got no partition of egress.network-events within 60 s"
    sleep 0.5
  done
  line="$(grep -o 'assigned \[egress.network-events-[^]]*\]' "$SVC_HOME/logs/compiler-service-2.log" | tail -n 1)"
  fault_log "compiler-service-2 (port $port) joined the group: $line"
  timeout_ms="$(printf '%s\n' "${env[@]}" | sed -n 's/^EGRESS_SESSION_TIMEOUT_MS=//p' | tail -n 1)"
  timeout_ms="${timeout_ms:-10000}"
  local pause=$(( timeout_ms / 1000 + 5 ))
  kill -STOP "$pid"
  fault_log "compiler-service: SIGSTOP (pid $pid) for $pause s (session timeout ${timeout_ms} ms)"
  sleep "$pause"
  kill -CONT "$pid"
  fault_log "compiler-service: SIGCONT (pid $pid)"
}

fault_inject() {
  case "$1" in
    compiler) fault_restart compiler-service compiler-service EGRESS_COMPILER_PORT ;;
    rule-service) fault_restart rule-service rule-service EGRESS_API_PORT ;;
    agent)
      local host="${SVC_HOSTS[1]:-${SVC_HOSTS[0]}}"
      fault_restart "agent-$host" host-agent EGRESS_AGENT_PORT ;;
    kafka | registry) bash "$FAULTS_ROOT/scripts/stack.sh" restart --kill "$1" ;;
    redis) fault_redis_empty ;;
    compiler-pause) fault_compiler_pause ;;
    *) svc_die "unknown fault '$1' (scripts/faults.sh list)" ;;
  esac
}

fault_after() {
  case "$1" in
    compiler-pause) svc_stop compiler-service-2; fault_log "compiler-service-2 stopped" ;;
    *) ;;
  esac
}

case "${1:-}" in
  inject) [[ -n "${2:-}" ]] || svc_die "inject needs a fault"; fault_inject "$2" ;;
  after) [[ -n "${2:-}" ]] || svc_die "after needs a fault"; fault_after "$2" ;;
  list) printf '%s\n' compiler agent rule-service kafka registry compiler-pause redis ;;
  *) echo "usage: scripts/faults.sh inject FAULT | after FAULT | list" >&2; exit 2 ;;
esac
