#!/usr/bin/env bash
# A data center in a box: three bridged hypervisor hosts, VMs and routers as network namespaces,
# with addresses of our own choosing, so the agents can enforce with real nft on real traffic.
#
#   scripts/datacenter.sh available          exit 0 when this machine can build it (root, ip, nft, socat, ...), else says why
#   scripts/datacenter.sh create             (re)build it, start the routers' servers
#   scripts/datacenter.sh destroy            stop the servers, delete its namespaces (<prefix>-h*, -r-*, -vm-*)
#   scripts/datacenter.sh check              exit 0 when it is built and every server runs
#   scripts/datacenter.sh status             namespaces, links, servers
#   scripts/datacenter.sh vms                the VM table: name network host-index ipv4 mac tap namespace
#   scripts/datacenter.sh netns HOST_ID      the namespace of a host id (host-1 -> ecdc-h1)
#   scripts/datacenter.sh ruleset HOST_ID    the egressctl tables in that host's kernel (nft list)
#   scripts/datacenter.sh probe VM tcp DEST PORT | udp DEST PORT | ping DEST | spoof SOURCE DEST
#                                            prints pass | blocked | error: ...; exit 0 | 1 | 2
#
# Topology (defaults; the prefix is EGRESS_DC_PREFIX, default "ecdc"):
#   hosts    ecdc-h1 ecdc-h2 ecdc-h3 (host ids: EGRESS_DEMO_HOSTS, default host-1 host-2 host-3, in order)
#   per guest network N with short name S, on each host running a VM of N: bridge br-S, and the
#            uplink veth up-S (a port of br-S) whose other end h<i> is a port of the router's br-lan
#   routers  ecdc-r-N: br-lan holds the gateway (x.y.z.1/24); lo holds the destinations
#            198.51.100.10/32 and 192.0.2.53/32 where socat listens: tcp 80, 443, 8080 (answering
#            "ok-<port>"), udp 53 (echo) and udp 9999 (logs what arrives, for the spoofing probe)
#   VMs      ecdc-vm-<name>: eth0 (own MAC, address, default route via the gateway); the other veth
#            end tap-<name> is in the host, a port of the network's bridge
# Hosts bridge: no addresses, no forwarding; br_netfilter stays as the kernel gives it
# (net.bridge.bridge-nf-call-iptables=1 in a new namespace), so bridged IPv4 passes the inet hooks.
#
# State: $EGRESS_HOME/datacenter/ (pids/, logs/, state.env). Sourced by scripts/services.sh, which
# uses the dc_* functions; run as a command, it dispatches to them.

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DC_EHOME="$LIB_HOME"
DC_HOME="$DC_EHOME/datacenter"
DC_PREFIX="${EGRESS_DC_PREFIX:-ecdc}"

DC_DEST=198.51.100.10      # TEST-NET-2: every router's destination (tcp 80/443/8080, udp 53 echo, udp 9999)
DC_DNS=192.0.2.53          # TEST-NET-1: the seed's udp/53 example blocks this destination only
DC_TCP_PORTS=(80 443 8080) # 8080: inside the seed's 8000-8100 range
DC_UDP_PORT=53
DC_SPOOF_PORT=9999

# network  short  /24 prefix (gateway .1)
DC_NETS=(
  "demo-net     demo 10.1.0"
  "tenant-a-net ta   10.1.1"
  "tenant-b-net tb   10.1.1"
)
# VM name (tap-<name>, ecdc-vm-<name>)  network  host index (1..3)  ipv4  mac
# demo-net is the walkthrough's seed network (Walkthrough.VMS); tenant-a-net and tenant-b-net share
# 10.1.1.0/24 with a VM at 10.1.1.10 on host 1 each: overlapping tenants.
DC_VMS=(
  "vm1 demo-net     1 10.1.0.11 52:54:00:ec:00:11"
  "vm2 demo-net     2 10.1.0.12 52:54:00:ec:00:12"
  "vm3 demo-net     3 10.1.0.13 52:54:00:ec:00:13"
  "vm4 demo-net     3 10.1.0.14 52:54:00:ec:00:14"
  "a1  tenant-a-net 1 10.1.1.10 52:54:00:ec:0a:10"
  "b1  tenant-b-net 1 10.1.1.10 52:54:00:ec:0b:10"
)

dc_log() { lib_log datacenter "$@"; }
dc_fail() { lib_log datacenter "ERROR: $*"; return 1; }  # like lib_die, but returns: a sourced dc_* must not end the caller

dc_host_ns() { echo "$DC_PREFIX-h$1"; }     # host index -> namespace
dc_router_ns() { echo "$DC_PREFIX-r-$1"; }  # network -> namespace
dc_vm_ns() { echo "$DC_PREFIX-vm-$1"; }     # VM name -> namespace

# The host ids of the control plane, in order: index 1 is the first.
dc_host_ids() {
  local ids="${EGRESS_DEMO_HOSTS:-host-1 host-2 host-3}"
  ids="${ids//\"/}"
  # shellcheck disable=SC2086
  printf '%s\n' $ids | head -n 3
}

dc_net_field() {  # dc_net_field NETWORK FIELD(1=name 2=short 3=prefix)
  local line
  for line in "${DC_NETS[@]}"; do
    read -r -a f <<<"$line"
    [[ "${f[0]}" == "$1" ]] && { echo "${f[$(($2 - 1))]}"; return 0; }
  done
  return 1
}

dc_vm_field() {  # dc_vm_field VM FIELD(1=name 2=network 3=host 4=ipv4 5=mac)
  local line
  for line in "${DC_VMS[@]}"; do
    read -r -a f <<<"$line"
    [[ "${f[0]}" == "$1" ]] && { echo "${f[$(($2 - 1))]}"; return 0; }
  done
  return 1
}

# Why this machine cannot build the data center, or nothing (exit 0) when it can.
dc_unavailable() {
  [[ "${EGRESS_DATACENTER:-auto}" == off ]] && { echo "EGRESS_DATACENTER=off"; return 0; }
  [[ "$(id -u)" == 0 ]] || { echo "it needs root (ip netns, nft); running as uid $(id -u)"; return 0; }
  local t
  for t in ip nft socat ping timeout; do
    command -v "$t" >/dev/null 2>&1 || { echo "it needs '$t' on PATH (Debian: iproute2 nftables conntrack socat iputils-ping coreutils)"; return 0; }
  done
  nft list tables >/dev/null 2>&1 || { echo "nft does not work here: $(nft list tables 2>&1 | head -n 1)"; return 0; }
  return 1
}

dc_available() {
  local why
  why="$(dc_unavailable)" && { echo "$why"; return 1; }
  return 0
}

dc_run() {  # run a command, stop on failure with the command in the message
  "$@" || { dc_fail "failed: $*"; return 1; }
}

# dc_serve NS NAME ARGS...: socat ARGS in namespace NS, in the background, pid file $DC_HOME/pids/NAME.pid
# (written by the server itself: dc_await_servers waits for them).
dc_serve() {
  local ns="$1" name="$2"
  shift 2
  local pf="$DC_HOME/pids/$name.pid"
  rm -f "$pf"
  DC_SERVERS+=("$name")
  setsid nohup ip netns exec "$ns" bash -c 'echo $$ >"$0.tmp" && mv -f "$0.tmp" "$0" && exec socat "$@"' "$pf" "$@" \
    </dev/null >>"$DC_HOME/logs/$name.log" 2>&1 9>&- &
}

dc_await_servers() {  # every server named in DC_SERVERS has written its pid file
  local name i
  for name in "${DC_SERVERS[@]}"; do
    for ((i = 0; i < 100; i++)); do
      [[ -s "$DC_HOME/pids/$name.pid" ]] && continue 2
      sleep 0.05
    done
    dc_fail "server $name did not start; see $DC_HOME/logs/$name.log"
    return 1
  done
}

dc_create() {
  local why
  if why="$(dc_unavailable)"; then
    dc_fail "cannot build the data center: $why"
    return 1
  fi
  # Namespaces of this prefix that this EGRESS_HOME did not build belong to another stack on this
  # machine (another clone or EGRESS_HOME): destroying them would cut its agents off. Refuse instead.
  if [[ ! -f "$DC_HOME/state.env" && -n "$(dc_namespaces)" ]]; then
    dc_fail "namespaces $DC_PREFIX-* exist but were not built from $DC_EHOME (another stack's data center?): left alone. Give this stack a prefix of its own (EGRESS_DC_PREFIX=...), or remove them with scripts/datacenter.sh destroy when they are stale"
    return 1
  fi
  dc_destroy_quiet
  mkdir -p "$DC_HOME/pids" "$DC_HOME/logs"
  # Written first: `./egressctl down` removes a data center this EGRESS_HOME began to build.
  {
    echo "DC_PREFIX=$DC_PREFIX"
    echo "DC_HOST_IDS=\"$(dc_host_ids | tr '\n' ' ' | sed 's/ $//')\""
  } >"$DC_HOME/state.env"
  local t0=$SECONDS line i net short prefix ns r h name vnet hidx ip mac tap
  local -a f

  # Hosts: bare namespaces; bridges appear as their networks' VMs do.
  for i in 1 2 3; do
    ns="$(dc_host_ns "$i")"
    dc_run ip netns add "$ns" || return 1
    dc_run ip -n "$ns" link set lo up || return 1
  done

  # Routers: the gateway on br-lan, the destinations on lo.
  for line in "${DC_NETS[@]}"; do
    read -r net short prefix <<<"$line"
    r="$(dc_router_ns "$net")"
    dc_run ip netns add "$r" || return 1
    ip -n "$r" link set lo up
    dc_run ip -n "$r" link add br-lan type bridge stp_state 0 || return 1
    dc_run ip -n "$r" addr add "$prefix.1/24" dev br-lan || return 1
    ip -n "$r" link set br-lan up
    # The destinations on lo (this kernel has no dummy links).
    dc_run ip -n "$r" addr add "$DC_DEST/32" dev lo || return 1
    dc_run ip -n "$r" addr add "$DC_DNS/32" dev lo || return 1
  done

  # VMs: eth0 in the VM, tap-<name> in the host on the network's bridge; the bridge and its uplink
  # to the router are made with the network's first VM on that host.
  for line in "${DC_VMS[@]}"; do
    read -r name vnet hidx ip mac <<<"$line"
    short="$(dc_net_field "$vnet" 2)"
    prefix="$(dc_net_field "$vnet" 3)"
    h="$(dc_host_ns "$hidx")"
    r="$(dc_router_ns "$vnet")"
    if ! ip -n "$h" link show "br-$short" >/dev/null 2>&1; then
      dc_run ip -n "$h" link add "br-$short" type bridge stp_state 0 || return 1
      dc_run ip -n "$h" link add "up-$short" type veth peer name "h$hidx" netns "$r" || return 1
      dc_run ip -n "$h" link set "up-$short" master "br-$short" || return 1
      dc_run ip -n "$r" link set "h$hidx" master br-lan || return 1
      ip -n "$h" link set "up-$short" up
      ip -n "$r" link set "h$hidx" up
      ip -n "$h" link set "br-$short" up
    fi
    ns="$(dc_vm_ns "$name")"
    tap="tap-$name"
    dc_run ip netns add "$ns" || return 1
    ip -n "$ns" link set lo up
    dc_run ip -n "$h" link add "$tap" type veth peer name eth0 netns "$ns" || return 1
    dc_run ip -n "$ns" link set eth0 address "$mac" || return 1
    # Answer ARP only for eth0's own address and announce it alone: the spoofing probe puts foreign
    # source addresses on lo, which must not poison the router's neighbour table.
    ip netns exec "$ns" sh -c 'for k in all eth0; do echo 1 >/proc/sys/net/ipv4/conf/$k/arp_ignore; echo 2 >/proc/sys/net/ipv4/conf/$k/arp_announce; done'
    dc_run ip -n "$ns" addr add "$ip/24" dev eth0 || return 1
    ip -n "$ns" link set eth0 up
    dc_run ip -n "$h" link set "$tap" master "br-$short" || return 1
    ip -n "$h" link set "$tap" up
    dc_run ip -n "$ns" route add default via "$prefix.1" || return 1
  done

  # Servers on every router's destinations.
  local port
  DC_SERVERS=()
  for line in "${DC_NETS[@]}"; do
    read -r net short prefix <<<"$line"
    r="$(dc_router_ns "$net")"
    for port in "${DC_TCP_PORTS[@]}"; do
      dc_serve "$r" "$r-tcp$port" -T5 "TCP4-LISTEN:$port,fork,reuseaddr,backlog=128" "SYSTEM:echo ok-$port"
    done
    # One echo per destination address: bound to it, so the answer comes from the address asked
    # (a wildcard socket would answer from the gateway address, which the client's socket ignores).
    dc_serve "$r" "$r-udp$DC_UDP_PORT" -T2 "UDP4-RECVFROM:$DC_UDP_PORT,bind=$DC_DEST,fork" PIPE
    dc_serve "$r" "$r-dns$DC_UDP_PORT" -T2 "UDP4-RECVFROM:$DC_UDP_PORT,bind=$DC_DNS,fork" PIPE
    : >"$DC_HOME/logs/$r-spoof.received"
    dc_serve "$r" "$r-udp$DC_SPOOF_PORT" -u "UDP4-RECV:$DC_SPOOF_PORT" "OPEN:$DC_HOME/logs/$r-spoof.received,wronly,append"
  done

  dc_await_servers || return 1

  # Ready when every VM reaches its router's servers (the servers may need a moment).
  local deadline=$((SECONDS + 20)) missing
  while :; do
    missing=""
    for line in "${DC_VMS[@]}"; do
      read -r name _ <<<"$line"
      dc_probe_tcp_once "$(dc_vm_ns "$name")" "$DC_DEST" 80 >/dev/null || missing+=" $name:tcp/80"
      dc_probe_udp_once "$(dc_vm_ns "$name")" "$DC_DEST" "$DC_UDP_PORT" >/dev/null || missing+=" $name:udp/53"
    done
    [[ -z "$missing" ]] && break
    if ((SECONDS > deadline)); then
      dc_fail "data center built but not ready, unreachable:$missing"
      return 1
    fi
    sleep 0.2
  done
  dc_log "built in $((SECONDS - t0)) s: hosts $(dc_host_ns 1)..$(dc_host_ns 3) (bridged), ${#DC_VMS[@]} VMs, ${#DC_NETS[@]} routers"
}

dc_ns_exists() { [[ -e "/run/netns/$1" || -e "/var/run/netns/$1" ]]; }

# The data center's namespaces: <prefix>-h<i>, <prefix>-r-<network>, <prefix>-vm-<name> (those of a
# data center with a longer prefix, e.g. a test's ecdc-t1a2-*, are not ours).
dc_namespaces() {
  ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E "^${DC_PREFIX}-(h[0-9]+|r-.+|vm-.+)$" || true
}

dc_destroy_quiet() { dc_destroy >/dev/null 2>&1 || true; }

# Stops the servers (by their pid files, each checked to be a socat in one of our namespaces),
# then whatever else still runs inside our namespaces (forked server children, probes in flight),
# then deletes the namespaces (their links go with them).
dc_destroy() {
  local f pid ns n=0 k=0
  shopt -s nullglob
  for f in "$DC_HOME"/pids/*.pid; do
    pid="$(lib_read_pid "$f")"
    if dc_is_socat "$pid"; then
      ns="$(ip netns identify "$pid" 2>/dev/null || true)"
      if [[ "$ns" == "$DC_PREFIX-"* ]]; then
        kill -TERM "$pid" 2>/dev/null && n=$((n + 1))
      fi
    fi
    rm -f "$f"
  done
  shopt -u nullglob
  local -a nss
  mapfile -t nss < <(dc_namespaces)
  for ns in "${nss[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      kill -TERM "$pid" 2>/dev/null && k=$((k + 1))
    done
  done
  ((k)) && sleep 0.3
  for ns in "${nss[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null || true
    done
    ip netns del "$ns" 2>/dev/null || dc_log "could not delete namespace $ns"
  done
  rm -f "$DC_HOME/state.env"
  dc_log "destroyed: $n servers stopped, $k other processes in our namespaces ended, ${#nss[@]} namespaces deleted"
}

# Built and serving: every namespace, tap and server is there.
dc_check() {
  local line name vnet hidx net r port
  [[ -f "$DC_HOME/state.env" ]] || return 1
  for line in "${DC_VMS[@]}"; do
    read -r name vnet hidx _ <<<"$line"
    ip -n "$(dc_host_ns "$hidx")" link show "tap-$name" >/dev/null 2>&1 || return 1
    ip -n "$(dc_vm_ns "$name")" link show eth0 >/dev/null 2>&1 || return 1
  done
  for line in "${DC_NETS[@]}"; do
    read -r net _ <<<"$line"
    r="$(dc_router_ns "$net")"
    for port in "${DC_TCP_PORTS[@]/#/tcp}" "udp$DC_UDP_PORT" "dns$DC_UDP_PORT" "udp$DC_SPOOF_PORT"; do
      dc_server_alive "$r-$port" || return 1
    done
  done
}

# The data center's servers are ours when they are socat processes (they run in our namespaces,
# outside $EGRESS_HOME: dc_destroy also checks the namespace of each).
dc_is_socat() { lib_pid_alive "$1" && [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == socat ]]; }

dc_server_alive() { dc_is_socat "$(lib_read_pid "$DC_HOME/pids/$1.pid")"; }

dc_status() {
  local ns line name vnet hidx ip mac
  if dc_check; then echo "data center: built (state: $DC_HOME)"; else echo "data center: not built or incomplete (state: $DC_HOME)"; fi
  echo "namespaces: $(dc_namespaces | tr '\n' ' ')"
  printf '%-5s %-13s %-9s %-10s %-18s %-8s %s\n' VM NETWORK HOST IPV4 MAC TAP NAMESPACE
  for line in "${DC_VMS[@]}"; do
    read -r name vnet hidx ip mac <<<"$line"
    printf '%-5s %-13s %-9s %-10s %-18s %-8s %s\n' "$name" "$vnet" "$(dc_host_ns "$hidx")" "$ip" "$mac" "tap-$name" "$(dc_vm_ns "$name")"
  done
}

dc_vms() {
  local line name vnet hidx ip mac
  for line in "${DC_VMS[@]}"; do
    read -r name vnet hidx ip mac <<<"$line"
    echo "$name $vnet $hidx $ip $mac tap-$name $(dc_vm_ns "$name")"
  done
}

# host id (host-1) or index (1) -> namespace (ecdc-h1)
dc_netns_of() {
  local id="$1" i=1 h ids
  if [[ -f "$DC_HOME/state.env" ]]; then
    ids="$(sed -n 's/^DC_HOST_IDS="\(.*\)"$/\1/p' "$DC_HOME/state.env")"
  else
    ids="$(dc_host_ids | tr '\n' ' ')"
  fi
  [[ "$id" =~ ^[1-3]$ ]] && { dc_host_ns "$id"; return 0; }
  for h in $ids; do
    [[ "$h" == "$id" ]] && { dc_host_ns "$i"; return 0; }
    i=$((i + 1))
  done
  dc_fail "no host '$id' in the data center (hosts: $ids)"
}

# Exit 1, saying why, when there is nothing to list: no data center (dry-run agents write files instead),
# or no egressctl table in the host's kernel yet.
dc_ruleset() {
  local ns inet bridge
  [[ $# -eq 1 ]] || { dc_fail "usage: ruleset HOST_ID (host-1, or an index 1..3)"; return 2; }
  ns="$(dc_netns_of "$1")" || return 1
  if [[ ! -f "$DC_HOME/state.env" ]] || ! dc_ns_exists "$ns"; then
    dc_fail "no data center built from $DC_EHOME (no namespace $ns of it). Dry-run agents write their ruleset to" \
      "$DC_EHOME/agents/$1.nft instead; the data center needs root, nft, ip and socat (./egressctl up builds it)"
    return 1
  fi
  inet="$(ip netns exec "$ns" nft list table inet egressctl 2>/dev/null)" || inet=""
  bridge="$(ip netns exec "$ns" nft list table bridge egressctl 2>/dev/null)" || bridge=""
  if [[ -z "$inet$bridge" ]]; then
    dc_fail "no egressctl table in $ns's kernel: no agent enforces there yet (./egressctl status)"
    return 1
  fi
  [[ -z "$inet" ]] || printf '%s\n' "$inet"
  [[ -z "$bridge" ]] || printf '%s\n' "$bridge"
}

# ---------------------------------------------------------------- probes
# One attempt each; exit 0 when the answer came back. dc_probe retries a failed attempt (three tries,
# 0.2 s apart), so a loaded machine does not turn a slow answer into "blocked".

dc_probe_tcp_once() {  # NS DEST PORT: connect (1 s), read the server's "ok-<port>"
  local out
  out="$(ip netns exec "$1" timeout 3 socat -T2 -u "TCP4:$2:$3,connect-timeout=1" STDOUT 2>&1)"
  if [[ "$out" == *"ok-$3"* ]]; then return 0; fi
  [[ "$out" == *"Connection refused"* ]] && { echo refused; return 2; }
  return 1
}

dc_probe_udp_once() {  # NS DEST PORT: a datagram and its echo
  local token="udp-$1-$RANDOM$RANDOM" out
  # bash's /dev/udp is a connected socket: the read returns as soon as the echo is there.
  out="$(ip netns exec "$1" timeout 3 bash -c 'exec 3<>"/dev/udp/$0/$1" && printf "%s\n" "$2" >&3 && timeout 1 head -n 1 <&3' \
    "$2" "$3" "$token" 2>/dev/null)"
  [[ "$out" == *"$token"* ]]
}

dc_probe_ping_once() {  # NS DEST
  ip netns exec "$1" ping -n -q -c1 -W1 "$2" >/dev/null 2>&1
}

# NS ROUTER SOURCE DEST: a datagram from SOURCE (not the VM's address: put on the VM's lo for the
# time of the probe) to DEST:9999; it reached the destination when the router's listener logged it.
dc_probe_spoof_once() {
  local ns="$1" r="$2" src="$3" dest="$4" token="spoof-$1-$RANDOM$RANDOM" log i
  log="$DC_HOME/logs/$r-spoof.received"
  printf '%s\n' "$token" | ip netns exec "$ns" timeout 3 socat -u STDIN "UDP4-SENDTO:$dest:$DC_SPOOF_PORT,bind=$src" 2>/dev/null || return 2
  for ((i = 0; i < 20; i++)); do
    grep -q -- "$token" "$log" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# dc_probe VM KIND ARGS: prints pass | blocked | error: ...; exit 0 | 1 | 2.
dc_probe() {
  local vm="$1" kind="$2"
  shift 2 || { echo "error: usage: probe VM tcp DEST PORT | udp DEST PORT | ping DEST | spoof SOURCE DEST"; return 2; }
  local ns net r added=0 rc attempt
  ns="$(dc_vm_ns "$vm")"
  net="$(dc_vm_field "$vm" 2)" || { echo "error: no VM '$vm' (VMs: $(dc_vms | awk '{print $1}' | tr '\n' ' '))"; return 2; }
  dc_ns_exists "$ns" || { echo "error: namespace $ns does not exist (scripts/datacenter.sh create)"; return 2; }
  r="$(dc_router_ns "$net")"
  case "$kind" in
    tcp | udp) [[ $# -eq 2 ]] || { echo "error: $kind needs DEST PORT"; return 2; } ;;
    ping) [[ $# -eq 1 ]] || { echo "error: ping needs DEST"; return 2; } ;;
    spoof)
      [[ $# -eq 2 ]] || { echo "error: spoof needs SOURCE DEST"; return 2; }
      if ! ip -n "$ns" -4 addr show dev lo | grep -q "inet $1/32"; then
        ip -n "$ns" addr add "$1/32" dev lo || { echo "error: cannot add $1 to $ns"; return 2; }
        added=1
      fi ;;
    *) echo "error: unknown probe '$kind' (tcp, udp, ping, spoof)"; return 2 ;;
  esac
  # Up to three tries, 0.2 s apart: one lost answer on a loaded machine is not a block, and a flow
  # that should be blocked is seen to fail every time.
  for attempt in 1 2 3; do
    ((attempt > 1)) && sleep 0.2
    case "$kind" in
      tcp) dc_probe_tcp_once "$ns" "$1" "$2" >/dev/null ;;
      udp) dc_probe_udp_once "$ns" "$1" "$2" ;;
      ping) dc_probe_ping_once "$ns" "$1" ;;
      spoof) dc_probe_spoof_once "$ns" "$r" "$1" "$2" ;;
    esac
    rc=$?
    [[ $rc -eq 1 ]] || break
  done
  ((added)) && ip -n "$ns" addr del "$1/32" dev lo 2>/dev/null
  case "$rc" in
    0) echo pass ;;
    1) echo blocked ;;
    *) if [[ "$kind" == tcp ]]; then echo "error: connection refused (is the server on $r running?)"; else echo "error: probe failed"; fi
       rc=2 ;;
  esac
  return "$rc"
}

dc_usage() {
  sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

dc_main() {
  local cmd="${1:-help}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    available) dc_available ;;
    create) dc_create ;;
    destroy) dc_destroy ;;
    check) dc_check ;;
    status) dc_status ;;
    vms) dc_vms ;;
    netns) dc_netns_of "$@" ;;
    ruleset) dc_ruleset "$@" ;;
    probe) dc_probe "$@" ;;
    help | -h | --help) dc_usage ;;
    *) dc_usage >&2; return 2 ;;
  esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -uo pipefail
  dc_main "$@"
fi
