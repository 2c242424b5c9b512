#!/usr/bin/env bash
# A Docker engine for the tests and the compose stack, started by hand (no systemd here):
#
#   scripts/engine.sh start | stop | status | docker ARGS...
#
# start   when an engine already answers on the socket, uses it and records nothing (stop will
#         leave it alone); else starts Debian's dockerd in the background with
#         --iptables=false --ip-masq=false (the root namespace's firewall stays as it was; published
#         ports still work through docker-proxy; containers cannot reach outside, which nothing here
#         needs) and waits until it answers (EGRESS_ENGINE_TIMEOUT s, 60).
# stop    stops the dockerd this script started (pid file), and only that one: first every container
#         still running on it, then dockerd with SIGTERM (its containerd goes with it), then the bridge
#         docker0 when dockerd made it.
# status  exit 0 when an engine answers, 3 otherwise.
# docker  runs the docker CLI that talks to this engine (see engine_docker below).
#
# State: $EGRESS_ENGINE_DIR (default <repo>/target/engine): dockerd.pid, dockerd.log.
# Needs root and `apt-get install -y --no-install-recommends docker.io docker-compose debootstrap`.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ENGINE_DIR="$(realpath -m "${EGRESS_ENGINE_DIR:-$LIB_ROOT/target/engine}")"
ENGINE_PID="$ENGINE_DIR/dockerd.pid"
ENGINE_LOG="$ENGINE_DIR/dockerd.log"
ENGINE_TIMEOUT="${EGRESS_ENGINE_TIMEOUT:-60}"

elog() { lib_log engine "$@"; }
edie() { lib_die engine "$@"; }

# The docker CLI to use: Debian's /usr/bin/docker (20.10, the engine's own version) when present,
# since a newer CLI earlier on the PATH (/usr/local/bin/docker) is not guaranteed to talk to it;
# EGRESS_DOCKER overrides.
engine_docker() {
  if [[ -n "${EGRESS_DOCKER:-}" ]]; then echo "$EGRESS_DOCKER"
  elif [[ -x /usr/bin/docker ]]; then echo /usr/bin/docker
  else command -v docker || true
  fi
}

engine_answers() {
  local d
  d="$(engine_docker)"
  [[ -n "$d" ]] && timeout 10 "$d" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# The pid of the dockerd this script started, when it still runs.
engine_our_pid() {
  local pid
  pid="$(lib_read_pid "$ENGINE_PID")"
  [[ -n "$pid" ]] && lib_pid_alive "$pid" && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]] && echo "$pid"
  return 0
}

engine_start() {
  if engine_answers; then
    if [[ -n "$(engine_our_pid)" ]]; then elog "dockerd already running (pid $(engine_our_pid), started by this script)"
    else elog "a Docker engine already answers ($("$(engine_docker)" version --format '{{.Server.Version}}')): used as it is, not stopped by 'stop'"; fi
    return 0
  fi
  [[ "$(id -u)" == 0 ]] || edie "starting dockerd needs root"
  command -v dockerd >/dev/null 2>&1 || [[ -x /usr/sbin/dockerd ]] \
    || edie "no dockerd: apt-get install -y --no-install-recommends docker.io docker-compose debootstrap"
  mkdir -p "$ENGINE_DIR"
  local t0 dockerd
  t0="$(lib_now)"
  dockerd="$(command -v dockerd || echo /usr/sbin/dockerd)"
  [[ -f "$ENGINE_LOG" ]] && mv -f "$ENGINE_LOG" "$ENGINE_LOG.1"
  # dockerd makes the bridge docker0 in the machine's namespace and leaves it when it stops: stop
  # removes it again when it was not there before.
  if ip link show docker0 >/dev/null 2>&1; then rm -f "$ENGINE_DIR/docker0.ours"; else touch "$ENGINE_DIR/docker0.ours"; fi
  setsid nohup "$dockerd" --iptables=false --ip-masq=false >"$ENGINE_LOG" 2>&1 </dev/null &
  echo $! >"$ENGINE_PID"
  local deadline=$((SECONDS + ENGINE_TIMEOUT))
  until engine_answers; do
    if [[ -z "$(engine_our_pid)" ]]; then
      tail -n 20 "$ENGINE_LOG" >&2 || true
      edie "dockerd exited during start-up; log: $ENGINE_LOG"
    fi
    ((SECONDS < deadline)) || edie "dockerd not answering after $ENGINE_TIMEOUT s; log: $ENGINE_LOG"
    sleep 0.3
  done
  elog "dockerd $("$(engine_docker)" version --format '{{.Server.Version}}') up (pid $(engine_our_pid)) in $(lib_since "$t0") s; log: $ENGINE_LOG"
}

engine_stop() {
  local pid t0
  pid="$(engine_our_pid)"
  if [[ -z "$pid" ]]; then
    rm -f "$ENGINE_PID"
    elog "no dockerd started by this script runs; nothing stopped"
    return 0
  fi
  t0="$(lib_now)"
  local -a running=()
  mapfile -t running < <("$(engine_docker)" ps -q 2>/dev/null || true)
  if ((${#running[@]})); then
    elog "stopping ${#running[@]} container(s) still running: $("$(engine_docker)" ps --format '{{.Names}}' | paste -sd' ')"
    "$(engine_docker)" stop -t 10 "${running[@]}" >/dev/null 2>&1 || true
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 300; i++)); do lib_pid_alive "$pid" || break; sleep 0.1; done
  if lib_pid_alive "$pid"; then
    elog "dockerd (pid $pid) still alive after 30 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$ENGINE_PID"
  if [[ -f "$ENGINE_DIR/docker0.ours" ]]; then
    ip link delete docker0 2>/dev/null || true
    rm -f "$ENGINE_DIR/docker0.ours"
  fi
  elog "dockerd stopped (pid $pid) in $(lib_since "$t0") s"
}

main() {
  local cmd="${1:-status}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    start) engine_start ;;
    stop) engine_stop ;;
    status)
      if engine_answers; then
        echo "engine: up ($("$(engine_docker)" version --format '{{.Server.Version}}')${ENGINE_PID:+, }$([[ -n "$(engine_our_pid)" ]] && echo "started by scripts/engine.sh, pid $(engine_our_pid)" || echo "not started by scripts/engine.sh"))"
        return 0
      fi
      echo "engine: down"
      return 3 ;;
    docker) exec "$(engine_docker)" "$@" ;;
    -h | --help | help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
    *) edie "unknown command '$cmd' (start | stop | status | docker ARGS...)" ;;
  esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
