# shellcheck shell=bash
# Sourced by scripts/stack.sh after its own helpers: the local stack as a cluster that survives the
# loss of any one node. With EGRESS_BROKERS=3 (./egressctl up --brokers 3; remembered in ports.env):
#
#   kafka, kafka2, kafka3    three KRaft nodes, each broker and controller (a quorum of three):
#                            default.replication.factor 3, min.insync.replicas 2, no unclean leader
#                            election; the services create their topics that way
#                            (EGRESS_TOPIC_REPLICATION_FACTOR=3, EGRESS_TOPIC_MIN_INSYNC_REPLICAS=2)
#   redis, redis2, redis3    a Redis primary and two replicas (redis2 and redis3 start as replicas of redis)
#   sentinel1..3             three Sentinels watching them as master "egress" (quorum 2): one that is down
#                            for 3 s is replaced by the replica that holds the most
#
# and `env` hands every client the cluster: KAFKA_BOOTSTRAP_SERVERS names the three brokers, REDIS_URL is
# redis-sentinel://<the three Sentinels>?master=egress (the compiler's writes then wait for one replica).
# Why Sentinel and not Redis Cluster: docs/operations.md, "Clusters".
#
# Ports (env var > ports.env > default, from the single-node ones): broker n listens on
# EGRESS_KAFKA_PORT + 2(n-1) and its controller on EGRESS_KAFKA_CONTROLLER_PORT + 2(n-1)
# (19092/19093, 19094/19095, 19096/19097); replicas on EGRESS_REDIS_PORT + 1 and + 2, Sentinels on
# EGRESS_REDIS_PORT + 3 .. + 5 (16380, 16381; 16382..16384). Each can be set: EGRESS_KAFKA_PORT_2,
# EGRESS_KAFKA_CONTROLLER_PORT_2, EGRESS_KAFKA_PORT_3, EGRESS_KAFKA_CONTROLLER_PORT_3,
# EGRESS_REDIS_PORT_2, EGRESS_REDIS_PORT_3, EGRESS_SENTINEL_PORT_1..3.
#
# EGRESS_CLUSTER_REGISTRY_URL=URL: use that running schema registry instead of starting one.
#
# Data: kafka/ (node 1, as for one broker), kafka-2/, kafka-3/; redis/, redis-2/, redis-3/ each with a
# redis.conf written once (Redis and the Sentinels rewrite their files on a fail-over, so a restart keeps
# the roles they were given), sentinel-1..3/sentinel.conf likewise. A data directory formatted for one
# broker does not join a quorum of three (and the other way round): `up` refuses, as for a changed port.

CLUSTER_BROKERS="${EGRESS_BROKERS:-$(lib_env_get "$PORTS_ENV" EGRESS_BROKERS)}"
CLUSTER_BROKERS="${CLUSTER_BROKERS:-1}"
case "$CLUSTER_BROKERS" in
  1 | 3) ;;
  *) lib_die stack "EGRESS_BROKERS (--brokers) is 1 or 3, not '$CLUSTER_BROKERS'" ;;
esac

# cluster_copy_fn NAME: keeps stack.sh's NAME as stack_NAME, for the overrides below to fall back on.
cluster_copy_fn() { eval "stack_$(declare -f "$1")"; }

if ((CLUSTER_BROKERS == 3)); then
  STACK_COMPONENTS=(kafka kafka2 kafka3 registry redis redis2 redis3 sentinel1 sentinel2 sentinel3)
  CLUSTER_EXTRA=(kafka2 kafka3 redis2 redis3 sentinel1 sentinel2 sentinel3)
  PORT_KEYS+=(EGRESS_KAFKA_PORT_2 EGRESS_KAFKA_CONTROLLER_PORT_2 EGRESS_KAFKA_PORT_3 EGRESS_KAFKA_CONTROLLER_PORT_3
    EGRESS_REDIS_PORT_2 EGRESS_REDIS_PORT_3 EGRESS_SENTINEL_PORT_1 EGRESS_SENTINEL_PORT_2 EGRESS_SENTINEL_PORT_3)
  CLUSTER_MASTER=egress
  # EGRESS_CLUSTER_REGISTRY_URL: a schema registry that already runs (a test's cluster shares the
  # stack's); no registry of its own is started then, and `env` names that one.
  if [[ -n "${EGRESS_CLUSTER_REGISTRY_URL:-}" ]]; then
    STACK_COMPONENTS=(kafka kafka2 kafka3 redis redis2 redis3 sentinel1 sentinel2 sentinel3)
  fi

  # The extra ports default to offsets from the single-node ones (known once those are loaded).
  cluster_copy_fn load_ports
  load_ports() {
    local k kp="${EGRESS_KAFKA_PORT:-$(lib_env_get "$PORTS_ENV" EGRESS_KAFKA_PORT)}"
    local kc="${EGRESS_KAFKA_CONTROLLER_PORT:-$(lib_env_get "$PORTS_ENV" EGRESS_KAFKA_CONTROLLER_PORT)}"
    local rp="${EGRESS_REDIS_PORT:-$(lib_env_get "$PORTS_ENV" EGRESS_REDIS_PORT)}"
    kp="${kp:-${PORT_DEFAULTS[EGRESS_KAFKA_PORT]}}"; kc="${kc:-${PORT_DEFAULTS[EGRESS_KAFKA_CONTROLLER_PORT]}}"
    rp="${rp:-${PORT_DEFAULTS[EGRESS_REDIS_PORT]}}"
    for k in kp kc rp; do [[ "${!k}" =~ ^[0-9]+$ ]] || lib_die stack "a single-node port is not a number: ${!k}"; done
    PORT_DEFAULTS[EGRESS_KAFKA_PORT_2]=$((kp + 2)); PORT_DEFAULTS[EGRESS_KAFKA_CONTROLLER_PORT_2]=$((kc + 2))
    PORT_DEFAULTS[EGRESS_KAFKA_PORT_3]=$((kp + 4)); PORT_DEFAULTS[EGRESS_KAFKA_CONTROLLER_PORT_3]=$((kc + 4))
    PORT_DEFAULTS[EGRESS_REDIS_PORT_2]=$((rp + 1)); PORT_DEFAULTS[EGRESS_REDIS_PORT_3]=$((rp + 2))
    PORT_DEFAULTS[EGRESS_SENTINEL_PORT_1]=$((rp + 3)); PORT_DEFAULTS[EGRESS_SENTINEL_PORT_2]=$((rp + 4))
    PORT_DEFAULTS[EGRESS_SENTINEL_PORT_3]=$((rp + 5))
    stack_load_ports
  }

  cluster_copy_fn write_ports_env
  write_ports_env() {
    stack_write_ports_env
    grep -v -E '^(export[[:space:]]+)?EGRESS_BROKERS=' "$PORTS_ENV" >"$PORTS_ENV.tmp" || true
    echo "EGRESS_BROKERS=3" >>"$PORTS_ENV.tmp"
    mv -f "$PORTS_ENV.tmp" "$PORTS_ENV"
  }

  cluster_kafka_port() { case "$1" in 1) echo "$EGRESS_KAFKA_PORT" ;; 2) echo "$EGRESS_KAFKA_PORT_2" ;; 3) echo "$EGRESS_KAFKA_PORT_3" ;; esac; }
  cluster_controller_port() { case "$1" in 1) echo "$EGRESS_KAFKA_CONTROLLER_PORT" ;; 2) echo "$EGRESS_KAFKA_CONTROLLER_PORT_2" ;; 3) echo "$EGRESS_KAFKA_CONTROLLER_PORT_3" ;; esac; }
  cluster_redis_port() { case "$1" in 1) echo "$EGRESS_REDIS_PORT" ;; 2) echo "$EGRESS_REDIS_PORT_2" ;; 3) echo "$EGRESS_REDIS_PORT_3" ;; esac; }
  cluster_sentinel_port() { local v="EGRESS_SENTINEL_PORT_$1"; echo "${!v}"; }
  cluster_kafka_dir() { if [[ "$1" == 1 ]]; then echo "$EGRESS_HOME/kafka"; else echo "$EGRESS_HOME/kafka-$1"; fi; }
  cluster_redis_dir() { if [[ "$1" == 1 ]]; then echo "$EGRESS_HOME/redis"; else echo "$EGRESS_HOME/redis-$1"; fi; }
  cluster_voters() {
    echo "1@127.0.0.1:$EGRESS_KAFKA_CONTROLLER_PORT,2@127.0.0.1:$EGRESS_KAFKA_CONTROLLER_PORT_2,3@127.0.0.1:$EGRESS_KAFKA_CONTROLLER_PORT_3"
  }
  cluster_bootstrap() { echo "127.0.0.1:$EGRESS_KAFKA_PORT,127.0.0.1:$EGRESS_KAFKA_PORT_2,127.0.0.1:$EGRESS_KAFKA_PORT_3"; }
  cluster_redis_url() {
    echo "redis-sentinel://127.0.0.1:$EGRESS_SENTINEL_PORT_1,127.0.0.1:$EGRESS_SENTINEL_PORT_2,127.0.0.1:$EGRESS_SENTINEL_PORT_3?master=$CLUSTER_MASTER"
  }

  cluster_copy_fn component_port
  component_port() {
    case "$1" in
      kafka2) echo "$EGRESS_KAFKA_PORT_2" ;; kafka3) echo "$EGRESS_KAFKA_PORT_3" ;;
      redis2) echo "$EGRESS_REDIS_PORT_2" ;; redis3) echo "$EGRESS_REDIS_PORT_3" ;;
      sentinel[123]) cluster_sentinel_port "${1#sentinel}" ;;
      *) stack_component_port "$1" ;;
    esac
  }
  cluster_copy_fn component_ports
  component_ports() {
    case "$1" in
      kafka2) echo "$EGRESS_KAFKA_PORT_2 $EGRESS_KAFKA_CONTROLLER_PORT_2" ;;
      kafka3) echo "$EGRESS_KAFKA_PORT_3 $EGRESS_KAFKA_CONTROLLER_PORT_3" ;;
      redis2 | redis3 | sentinel[123]) component_port "$1" ;;
      *) stack_component_ports "$1" ;;
    esac
  }
  cluster_copy_fn port_var
  port_var() {
    local key
    for key in "${PORT_KEYS[@]}"; do
      [[ "${!key}" == "$1" ]] && { echo "$key"; return 0; }
    done
    stack_port_var "$1"
  }

  # ---- Kafka: three combined nodes, a static quorum

  cluster_kafka_heap() {
    # shellcheck disable=SC2206
    local -a heap=(${EGRESS_KAFKA_HEAP_OPTS:--Xms128m -Xmx512m})
    printf '%s\n' "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
      -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
  }

  cluster_write_kafka_config() {  # cluster_write_kafka_config N
    local n="$1" dir
    dir="$(cluster_kafka_dir "$n")"
    mkdir -p "$dir/data"
    cat >"$dir/server.properties" <<EOF
# Written by scripts/cluster.sh on every 'up' (EGRESS_BROKERS=3); edits are overwritten.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(cluster_voters)
listeners=PLAINTEXT://127.0.0.1:$(cluster_kafka_port "$n"),CONTROLLER://127.0.0.1:$(cluster_controller_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(cluster_kafka_port "$n")
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=6
# Every partition on all three, an acks=all write on two of them before it is confirmed, and no
# replica that missed writes ever made leader: one node may be lost without losing or refusing a write.
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
auto.create.topics.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
share.coordinator.state.topic.num.partitions=3
group.initial.rebalance.delay.ms=0
# A node that stops heartbeating is fenced (its leaderships move, it leaves the ISRs) after 6 s
# rather than 9: the pause a broker's loss costs writers.
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
num.network.threads=2
num.io.threads=2
log.retention.hours=24
EOF
    cp -f "$EGRESS_HOME/kafka/log4j2.properties" "$dir/log4j2.properties" 2>/dev/null || true
  }

  # The data directories are the audit log: formatted once with one cluster id, never wiped.
  cluster_format_kafka() {  # cluster_format_kafka N
    local n="$1" dir fmt want have="" id
    dir="$(cluster_kafka_dir "$n")"
    fmt="$dir/format.env"
    want="voters=$(cluster_voters)"
    [[ -f "$fmt" ]] && have="$(cat "$fmt")"
    if [[ -f "$dir/data/meta.properties" && "$have" == "$want" ]]; then
      return 0
    fi
    if [[ -f "$dir/data/meta.properties" ]]; then
      die "kafka node $n: $dir/data was formatted for ${have:-another quorum} but the quorum is now $want (EGRESS_BROKERS or a controller port changed). Its topics are the log of every accepted change, so it is not wiped: go back to the settings it was made with, or, to start over with an empty log, stop the stack and delete $EGRESS_HOME/kafka*/data, $EGRESS_HOME/registry/data-v* and $EGRESS_HOME/redis* yourself"
    fi
    local idf="$EGRESS_HOME/kafka/cluster-id"
    if [[ ! -s "$idf" ]]; then
      id="-"
      while [[ "$id" == -* ]]; do id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"; done
      echo "$id" >"$idf"
    fi
    id="$(cat "$idf")"
    rm -rf "$dir/data"
    mkdir -p "$dir/data"
    if ! kafka_tool kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" >"$LOGS_DIR/kafka$n-format.log" 2>&1; then
      log_tail "$LOGS_DIR/kafka$n-format.log"
      die "kafka node $n: storage format failed; see $LOGS_DIR/kafka$n-format.log"
    fi
    echo "$want" >"$fmt"
    log "kafka node $n: formatted KRaft storage (cluster id $id, quorum of three)"
  }

  cluster_start_kafka() {  # cluster_start_kafka N
    local n="$1" name dir java
    name=kafka; ((n > 1)) && name="kafka$n"
    dir="$(cluster_kafka_dir "$n")"
    # Node 1's directory and the log4j2 files are stack.sh's; its server.properties is replaced at once
    # (the others never touch it: a node that has not read it yet would read the wrong one).
    ((n == 1)) && write_kafka_config
    cluster_write_kafka_config "$n"
    cluster_format_kafka "$n"
    java="$(default_java)"
    local -a opts
    mapfile -t opts < <(cluster_kafka_heap)
    start_bg "$name" "$dir" "$java" "${opts[@]}" "-Dlog4j2.configurationFile=$EGRESS_HOME/kafka/log4j2.properties" \
      "-Dkafka.logs.dir=$LOGS_DIR" -cp "$LIB_DIR/kafka/*" kafka.Kafka "$dir/server.properties"
  }
  start_kafka() { cluster_start_kafka 1; }
  start_kafka2() { cluster_start_kafka 2; }
  start_kafka3() { cluster_start_kafka 3; }
  kafka2_healthy() { lib_port_listening "$EGRESS_KAFKA_PORT_2" && kafka_metadata_ok "$EGRESS_KAFKA_PORT_2"; }
  kafka3_healthy() { lib_port_listening "$EGRESS_KAFKA_PORT_3" && kafka_metadata_ok "$EGRESS_KAFKA_PORT_3"; }

  # ---- Redis: a primary, two replicas, three Sentinels

  # Written once: on a fail-over the Sentinels rewrite the servers' files (replicaof) and their own
  # (the current primary, the epoch), and a restart must start from what they wrote.
  cluster_redis_conf() {  # cluster_redis_conf N
    local n="$1" dir conf
    dir="$(cluster_redis_dir "$n")"
    conf="$dir/redis.conf"
    mkdir -p "$dir"
    [[ -f "$conf" ]] && { echo "$conf"; return 0; }
    {
      echo "# Written once by scripts/cluster.sh; Redis Sentinel rewrites it on a fail-over."
      echo "bind 127.0.0.1"
      echo "port $(cluster_redis_port "$n")"
      echo "dir $dir"
      echo "save \"\""
      echo "appendonly yes"
      echo "appendfsync everysec"
      echo "daemonize no"
      echo "logfile \"\""
      ((n > 1)) && echo "replicaof 127.0.0.1 $EGRESS_REDIS_PORT"
    } >"$conf"
    echo "$conf"
  }
  cluster_start_redis() {  # cluster_start_redis N
    local n="$1" name=redis conf
    ((n > 1)) && name="redis$n"
    conf="$(cluster_redis_conf "$n")"
    start_bg "$name" "$(cluster_redis_dir "$n")" "$REDIS_BIN" "$conf"
  }
  start_redis() { cluster_start_redis 1; }
  start_redis2() { cluster_start_redis 2; }
  start_redis3() { cluster_start_redis 3; }
  redis2_healthy() { redis_ping "$EGRESS_REDIS_PORT_2"; }
  redis3_healthy() { redis_ping "$EGRESS_REDIS_PORT_3"; }

  cluster_start_sentinel() {  # cluster_start_sentinel N
    local n="$1" dir conf
    dir="$EGRESS_HOME/sentinel-$n"
    conf="$dir/sentinel.conf"
    mkdir -p "$dir"
    if [[ ! -f "$conf" ]]; then
      # quorum 2 of 3; a primary silent for 3 s is replaced (the pause its loss costs writers).
      cat >"$conf" <<EOF
# Written once by scripts/cluster.sh; the Sentinel rewrites it (current primary, replicas, epoch).
bind 127.0.0.1
port $(cluster_sentinel_port "$n")
dir $dir
daemonize no
logfile ""
sentinel resolve-hostnames no
sentinel monitor $CLUSTER_MASTER 127.0.0.1 $EGRESS_REDIS_PORT 2
sentinel down-after-milliseconds $CLUSTER_MASTER 3000
sentinel failover-timeout $CLUSTER_MASTER 10000
sentinel parallel-syncs $CLUSTER_MASTER 1
EOF
    fi
    start_bg "sentinel$n" "$dir" "$REDIS_BIN" "$conf" --sentinel
  }
  start_sentinel1() { cluster_start_sentinel 1; }
  start_sentinel2() { cluster_start_sentinel 2; }
  start_sentinel3() { cluster_start_sentinel 3; }
  # A Sentinel is ready when it names the primary (it knows the master it monitors).
  cluster_sentinel_ok() {
    local port="$1" out
    if command -v redis-cli >/dev/null 2>&1; then
      out="$(timeout 5 redis-cli -h 127.0.0.1 -p "$port" sentinel get-master-addr-by-name "$CLUSTER_MASTER" 2>/dev/null | head -n 1)"
      [[ "$out" == 127.0.0.1 ]]
    else
      redis_ping "$port"
    fi
  }
  sentinel1_healthy() { cluster_sentinel_ok "$EGRESS_SENTINEL_PORT_1"; }
  sentinel2_healthy() { cluster_sentinel_ok "$EGRESS_SENTINEL_PORT_2"; }
  sentinel3_healthy() { cluster_sentinel_ok "$EGRESS_SENTINEL_PORT_3"; }

  # ---- commands: stack.sh's, then the extra nodes

  cluster_copy_fn cmd_up
  cmd_up() {
    stack_cmd_up "$@"
    local name
    for name in "${CLUSTER_EXTRA[@]}"; do wait_healthy "$name" "$(lib_now)"; done
    log "cluster: KAFKA_BOOTSTRAP_SERVERS=$(cluster_bootstrap) (replication factor 3, min.insync.replicas 2) REDIS_URL=$(cluster_redis_url)"
  }
  cluster_copy_fn cmd_wait
  cmd_wait() {
    stack_cmd_wait "$@"
    local name
    for name in "${CLUSTER_EXTRA[@]}"; do
      [[ -n "$(lib_running_pid "$name")" ]] || die "$name is not running (./egressctl stack up starts it)"
      wait_healthy "$name" "$(lib_now)"
    done
  }
  cluster_copy_fn cmd_env
  cmd_env() {
    stack_cmd_env "$@"
    # After stack.sh's lines, so that these win in an eval.
    printf 'export KAFKA_BOOTSTRAP_SERVERS=%s\n' "$(cluster_bootstrap)"
    printf 'export REDIS_URL=%q\n' "$(cluster_redis_url)"
    printf 'export EGRESS_TOPIC_REPLICATION_FACTOR=3\n'
    printf 'export EGRESS_TOPIC_MIN_INSYNC_REPLICAS=2\n'
    printf 'export EGRESS_BROKERS=3\n'
    [[ -z "${EGRESS_CLUSTER_REGISTRY_URL:-}" ]] || printf 'export SCHEMA_REGISTRY_URL=%q\n' "$EGRESS_CLUSTER_REGISTRY_URL"
  }
fi
