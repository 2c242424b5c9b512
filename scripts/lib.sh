#!/usr/bin/env bash
# Helpers shared by the scripts of egressctl (scripts/stack.sh, scripts/services.sh,
# scripts/datacenter.sh, scripts/faults.sh), sourced by each of them; it defines functions and
# a few variables only, and runs nothing. What it holds:
#
#   lib_log PREFIX MSG... / lib_die PREFIX MSG...   "[PREFIX] MSG" on stderr / "[PREFIX] ERROR: MSG", exit 1
#   lib_now / lib_since T0                          a timestamp in seconds / seconds elapsed since T0 (0.1)
#   lib_pidfile NAME / lib_read_pid FILE            $EGRESS_HOME/pids/NAME.pid / the pid a pid file holds
#   lib_running_pid NAME                            the pid of NAME when it is alive and ours, else nothing
#   lib_pid_alive PID / lib_pid_is_ours PID         exists and is not a zombie / ... and was started from
#                                                   this EGRESS_HOME (see lib_pid_is_ours)
#   lib_signal_pid SIG PID                          the signal to the process group when PID leads one
#   lib_stop_pid PID [PREFIX NAME]                  SIGTERM, wait EGRESS_STOP_TIMEOUT s, then SIGKILL
#   lib_kill_pid PID                                SIGKILL and wait until it is gone (a crash)
#   lib_port_listening PORT / lib_port_owner PORT   any TCP listener on PORT / "name pid=N" of it
#   lib_env_get FILE KEY / lib_env_put FILE KEY VAL KEY=VALUE files such as $EGRESS_HOME/ports.env
#
# LIB_ROOT is the repository, LIB_HOME the state directory: $EGRESS_HOME, or <repo>/target/egressctl.

LIB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIB_HOME="$(realpath -m "${EGRESS_HOME:-$LIB_ROOT/target/egressctl}")"
LIB_STOP_TIMEOUT="${EGRESS_STOP_TIMEOUT:-10}"

# ---------------------------------------------------------------- logging

lib_log() { local prefix="$1"; shift; printf '[%s] %s\n' "$prefix" "$*" >&2; }
lib_die() { local prefix="$1"; shift; printf '[%s] ERROR: %s\n' "$prefix" "$*" >&2; exit 1; }

lib_now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
lib_since() { awk -v a="$1" -v b="$(lib_now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- pids

lib_pidfile() { echo "$LIB_HOME/pids/$1.pid"; }

lib_read_pid() { [[ -f "$1" ]] && tr -dc '0-9' <"$1" 2>/dev/null || true; }

lib_pid_alive() {  # exists and is not a zombie
  local state
  [[ "$1" =~ ^[0-9]+$ && -r "/proc/$1/stat" ]] || return 1
  state="$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# A pid counts as ours only if it is alive (not a zombie) and either one of its arguments
# names $LIB_HOME (e.g. -Degress.home=$EGRESS_HOME) or a path inside it, or its working
# directory is inside $LIB_HOME (redis-server rewrites its own command line, but runs
# with --dir in $EGRESS_HOME/redis). /tmp/eh does not match /tmp/eh2.
lib_pid_is_ours() {
  local pid="$1" arg cwd
  lib_pid_alive "$pid" || return 1
  local -a args=()
  mapfile -d '' -t args <"/proc/$pid/cmdline" 2>/dev/null || args=()
  for arg in "${args[@]}"; do
    [[ "$arg" == *"$LIB_HOME/"* || "$arg" == *"$LIB_HOME" ]] && return 0
  done
  cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null)" || cwd=""
  [[ -n "$cwd" && ( "$cwd" == "$LIB_HOME" || "$cwd" == "$LIB_HOME/"* ) ]]
}

lib_running_pid() {  # prints the pid if NAME runs and is ours
  local pid
  pid="$(lib_read_pid "$(lib_pidfile "$1")")"
  [[ -n "$pid" ]] && lib_pid_is_ours "$pid" && echo "$pid"
  return 0
}

# ---------------------------------------------------------------- stopping

# SIG to the process group when PID leads one (a process started with setsid and its children),
# else to PID alone.
lib_signal_pid() {
  local sig="$1" pid="$2" pgid
  pgid="$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" || pgid=""
  if [[ "$pgid" == "$pid" ]]; then
    kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null || true
  else
    kill "-$sig" "$pid" 2>/dev/null || true
  fi
}

# lib_stop_pid PID [PREFIX NAME]: SIGTERM, up to $EGRESS_STOP_TIMEOUT s (10) for the process to end,
# then SIGKILL and up to 5 s more. Ended means no longer alive and ours (a zombie has ended). With
# PREFIX and NAME it logs what happened. Returns 1 when it is still alive after SIGKILL.
lib_stop_pid() {
  local pid="$1" prefix="${2:-}" name="${3:-}" t0 deadline
  t0="$(lib_now)"
  deadline=$(( $(date +%s) + LIB_STOP_TIMEOUT ))
  lib_signal_pid TERM "$pid"
  while lib_pid_is_ours "$pid"; do
    if (( $(date +%s) >= deadline )); then
      [[ -n "$prefix" ]] && lib_log "$prefix" "$name (pid $pid) ignored SIGTERM for ${LIB_STOP_TIMEOUT} s: SIGKILL"
      lib_signal_pid KILL "$pid"
      for _ in {1..50}; do lib_pid_is_ours "$pid" || break; sleep 0.1; done
      if lib_pid_is_ours "$pid"; then
        [[ -n "$prefix" ]] && lib_log "$prefix" "$name (pid $pid) still alive after SIGKILL"
        return 1
      fi
      [[ -n "$prefix" ]] && lib_log "$prefix" "$name killed (pid $pid)"
      return 0
    fi
    sleep 0.1
  done
  [[ -n "$prefix" ]] && lib_log "$prefix" "$name stopped (pid $pid) in $(lib_since "$t0") s"
  return 0
}

# lib_kill_pid PID: SIGKILL (a crash: no graceful shutdown) and up to 5 s for it to end.
# Returns 1 when it is still alive.
lib_kill_pid() {
  lib_signal_pid KILL "$1"
  for _ in {1..100}; do lib_pid_is_ours "$1" || return 0; sleep 0.05; done
  ! lib_pid_is_ours "$1"
}

# ---------------------------------------------------------------- ports

lib_port_listening() {  # any listener on this TCP port, on any address
  local port="$1"
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Hltn "( sport = :$port )" 2>/dev/null)" ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

lib_port_owner() {  # best effort: "name pid=N" of the listener
  local port="$1"
  command -v ss >/dev/null 2>&1 || return 0
  ss -Hltnp "( sport = :$port )" 2>/dev/null | sed -n -E 's/.*users:\(\("([^"]*)",pid=([0-9]+).*/\1 pid=\2/p' | head -n 1
}

# ---------------------------------------------------------------- KEY=VALUE files

lib_env_get() {  # lib_env_get FILE KEY -> the value of its last KEY= line (export, quotes dropped), or nothing
  [[ -f "$1" ]] || return 0
  sed -n -E "s/^(export[[:space:]]+)?$2=[\"']?([^\"']*)[\"']?[[:space:]]*$/\\2/p" "$1" | tail -n 1
}

lib_env_put() {  # lib_env_put FILE KEY VALUE: KEY=VALUE replaces every older line of KEY
  touch "$1"
  sed -i "/^$2=/d;/^export $2=/d" "$1"
  echo "$2=$3" >>"$1"
}
