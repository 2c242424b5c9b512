#!/usr/bin/env bash
# The project's container images, built on the local engine without any image registry:
#
#   scripts/images.sh build [IMAGE...] | list | env
#
#   egressctl/debian:bookworm          debootstrap --variant=minbase from apt's own Debian mirror, docker import
#   egressctl/jre:17                   Debian's openjdk-17-jre-headless and curl on it   (docker/jre)
#   egressctl/maven:3.8-jdk17          Debian's JDK 17 and Maven: the services' build stage (docker/maven)
#   egressctl/kafka:4.1.2              Kafka KRaft from the Maven Central jars of stack/pom.xml (docker/kafka)
#   egressctl/apicurio-registry:2.6.13.Final
#                                      Apicurio Registry 2.6 from Maven Central, on Java 17 (docker/registry)
#   egressctl/redis:7.0                Debian's redis-server                            (docker/redis)
#   egressctl/compiler-service:0.1.0-SNAPSHOT, egressctl/rule-service:..., egressctl/host-agent:...
#                                      built from the repository by docker/services/Dockerfile, a target
#                                      each (Maven in the shared first stage; the agent with nftables,
#                                      iproute2, conntrack)
#
# IMAGE names one of kafka, registry, redis, services (the three), base, jre, maven, or "infra"
# (kafka registry redis: what the tests' Testcontainers need); none: all. What an image needs is
# built first. Cache: an infrastructure image whose tag exists is not built again
# (EGRESS_IMAGES_REBUILD=jre,maven,... or =all builds those anyway); the services are always built,
# which costs seconds when nothing changed (the engine's layer cache) and rebuilds them when a source did.
#
# EGRESS_IMAGES=local (default) | official: official uses the upstream images instead where they can
# be pulled (apache/kafka, apicurio/apicurio-registry-mem, redis, and eclipse-temurin / maven as the
# services' bases): `build` pulls them and builds only the services. `env` prints the image of each
# role (EGRESS_IMAGE_KAFKA, ..._REGISTRY, ..._REDIS, ..._COMPILER, ..._RULE_SERVICE, ..._AGENT) for
# docker-compose.yml and the Testcontainers tests; a variable already set wins.
#
# Needs a running engine (scripts/engine.sh start) and, for the base, root and debootstrap.
# Work files: $EGRESS_IMAGES_DIR (default <repo>/target/images).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/engine.sh
source "$LIB_ROOT/scripts/engine.sh"
IMG_DIR="$(realpath -m "${EGRESS_IMAGES_DIR:-$LIB_ROOT/target/images}")"
IMG_MODE="${EGRESS_IMAGES:-local}"
IMG_VERSION=0.1.0-SNAPSHOT
KAFKA_VERSION=4.1.2
APICURIO_VERSION=2.6.13.Final
DOCKER="$(engine_docker)"

ilog() { lib_log images "$@"; }
idie() { lib_die images "$@"; }

# The image of each role, local or official (an EGRESS_IMAGE_* variable already set wins).
img_names() {
  local kafka registry redis
  case "$IMG_MODE" in
    local)
      kafka="egressctl/kafka:$KAFKA_VERSION"
      registry="egressctl/apicurio-registry:$APICURIO_VERSION"
      redis="egressctl/redis:7.0" ;;
    official)
      kafka="apache/kafka:$KAFKA_VERSION"
      registry="apicurio/apicurio-registry-mem:$APICURIO_VERSION"
      redis="redis:7.0.15" ;;
    *) idie "EGRESS_IMAGES is local or official, not '$IMG_MODE'" ;;
  esac
  IMG_KAFKA="${EGRESS_IMAGE_KAFKA:-$kafka}"
  IMG_REGISTRY="${EGRESS_IMAGE_REGISTRY:-$registry}"
  IMG_REDIS="${EGRESS_IMAGE_REDIS:-$redis}"
  IMG_COMPILER="${EGRESS_IMAGE_COMPILER:-egressctl/compiler-service:$IMG_VERSION}"
  IMG_RULE_SERVICE="${EGRESS_IMAGE_RULE_SERVICE:-egressctl/rule-service:$IMG_VERSION}"
  IMG_AGENT="${EGRESS_IMAGE_AGENT:-egressctl/host-agent:$IMG_VERSION}"
  if [[ "$IMG_MODE" == official ]]; then
    IMG_JRE=eclipse-temurin:17-jre
    IMG_MAVEN=maven:3.9-eclipse-temurin-17
  else
    IMG_JRE=egressctl/jre:17
    IMG_MAVEN=egressctl/maven:3.8-jdk17
  fi
  IMG_BASE=egressctl/debian:bookworm
}

img_exists() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# img_cached TAG ROLE: true (and says so) when TAG exists and no rebuild of ROLE was asked for
# (EGRESS_IMAGES_REBUILD: a comma-separated list of roles, e.g. jre,maven, or "all").
img_cached() {
  local again=",${EGRESS_IMAGES_REBUILD:-},"
  if [[ "$again" != *",$2,"* && "$again" != *",all,"* ]] && img_exists "$1"; then
    ilog "$1: present (cached)"
    return 0
  fi
  return 1
}

# img_build TAG CONTEXT [DOCKER BUILD ARGS...]: docker build with the host's network (apt and Maven
# reach their registries; containers themselves have no way out with --iptables=false), timed.
img_build() {
  local tag="$1" ctx="$2" t0 log
  shift 2
  t0="$(lib_now)"
  log="$IMG_DIR/logs/$(tr '/:' '__' <<<"$tag").log"
  mkdir -p "$IMG_DIR/logs"
  if ! "$DOCKER" build --network host -t "$tag" "$@" "$ctx" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    idie "building $tag failed; log: $log"
  fi
  ilog "$tag built in $(lib_since "$t0") s"
}

# The Debian mirror apt uses here (deb822 sources first, then sources.list), for debootstrap.
img_mirror() {
  local m=""
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    m="$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' /etc/apt/sources.list.d/*.sources)"
  fi
  if [[ -z "$m" && -f /etc/apt/sources.list ]]; then
    m="$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)"
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

build_base() {
  img_cached "$IMG_BASE" base && return 0
  [[ "$(id -u)" == 0 ]] || idie "the Debian base is made with debootstrap, which needs root"
  command -v debootstrap >/dev/null 2>&1 || idie "no debootstrap: apt-get install -y --no-install-recommends debootstrap"
  local rootfs="$IMG_DIR/rootfs" mirror t0
  mirror="$(img_mirror)"
  t0="$(lib_now)"
  rm -rf "$rootfs"
  mkdir -p "$IMG_DIR/logs"
  ilog "debootstrap --variant=minbase bookworm from $mirror (about 1-2.5 min)"
  if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$IMG_DIR/logs/debootstrap.log" 2>&1; then
    tail -n 20 "$IMG_DIR/logs/debootstrap.log" >&2
    idie "debootstrap failed; log: $IMG_DIR/logs/debootstrap.log"
  fi
  # apt in the images may keep what it fetched out of the layers: no package cache in the base.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | "$DOCKER" import -c 'CMD ["/bin/bash"]' - "$IMG_BASE" >/dev/null
  rm -rf "$rootfs"
  ilog "$IMG_BASE made in $(lib_since "$t0") s"
}

build_jre() {
  [[ "$IMG_MODE" == official ]] && { img_pull "$IMG_JRE" jre; return 0; }
  img_cached "$IMG_JRE" jre && return 0
  build_base
  img_build "$IMG_JRE" "$LIB_ROOT/docker/jre" --build-arg "BASE_IMAGE=$IMG_BASE"
}

build_maven() {
  [[ "$IMG_MODE" == official ]] && { img_pull "$IMG_MAVEN" maven; return 0; }
  img_cached "$IMG_MAVEN" maven && return 0
  build_base
  local ctx
  ctx="$(img_context maven)"
  mkdir -p "$ctx/ca"
  # The machine's own trusted authorities (Debian's place for local ones), for Maven's HTTPS in the build.
  find /usr/local/share/ca-certificates -maxdepth 2 -name '*.crt' -type f -exec cp {} "$ctx/ca/" \; 2>/dev/null || true
  img_build "$IMG_MAVEN" "$ctx" --build-arg "BASE_IMAGE=$IMG_BASE"
}

img_pull() {
  img_cached "$1" "$2" && return 0
  local t0
  t0="$(lib_now)"
  "$DOCKER" pull -q "$1" >/dev/null || idie "cannot pull $1 (EGRESS_IMAGES=official needs an image registry; the default, EGRESS_IMAGES=local, builds every image here)"
  ilog "$1 pulled in $(lib_since "$t0") s"
}

# Kafka's and Apicurio's jars, resolved by stack/pom.xml (as the local stack does) into $IMG_DIR/stack.
stack_artifacts() {
  local lib="$IMG_DIR/stack/lib"
  if [[ -f "$lib/kafka/kafka_2.13-$KAFKA_VERSION.jar" && -f "$lib/registry/$APICURIO_VERSION/apicurio-registry-app-$APICURIO_VERSION-runner.jar" ]]; then
    return 0
  fi
  local t0
  t0="$(lib_now)"
  mkdir -p "$IMG_DIR/logs"
  ilog "resolving Kafka $KAFKA_VERSION and Apicurio $APICURIO_VERSION from Maven Central (stack/pom.xml)"
  if ! mvn -B -q -Dstyle.color=never -f "$LIB_ROOT/stack/pom.xml" "-Dstack.dir=$IMG_DIR/stack" -Dregistry.line=2 \
      ${EGRESS_MAVEN_REPO:+"-Dmaven.repo.local=$EGRESS_MAVEN_REPO"} package >"$IMG_DIR/logs/stack-mvn.log" 2>&1; then
    tail -n 20 "$IMG_DIR/logs/stack-mvn.log" >&2
    idie "Maven could not resolve the stack's artifacts; log: $IMG_DIR/logs/stack-mvn.log"
  fi
  ilog "artifacts ready in $(lib_since "$t0") s"
}

# img_context NAME: a build context of docker/NAME with the artifacts it needs (hard links).
img_context() {
  local ctx="$IMG_DIR/ctx/$1"
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cp -a "$LIB_ROOT/docker/$1/." "$ctx/"
  echo "$ctx"
}

build_kafka() {
  [[ "$IMG_MODE" == official ]] && { img_pull "$IMG_KAFKA" kafka; return 0; }
  img_cached "$IMG_KAFKA" kafka && return 0
  build_jre
  stack_artifacts
  local ctx
  ctx="$(img_context kafka)"
  cp -al "$IMG_DIR/stack/lib/kafka" "$ctx/libs"
  img_build "$IMG_KAFKA" "$ctx" --build-arg "JRE_IMAGE=$IMG_JRE"
}

build_registry() {
  [[ "$IMG_MODE" == official ]] && { img_pull "$IMG_REGISTRY" registry; return 0; }
  img_cached "$IMG_REGISTRY" registry && return 0
  build_jre
  stack_artifacts
  local ctx
  ctx="$(img_context registry)"
  cp -al "$IMG_DIR/stack/lib/registry/$APICURIO_VERSION" "$ctx/app"
  img_build "$IMG_REGISTRY" "$ctx" --build-arg "JRE_IMAGE=$IMG_JRE"
}

build_redis() {
  [[ "$IMG_MODE" == official ]] && { img_pull "$IMG_REDIS" redis; return 0; }
  img_cached "$IMG_REDIS" redis && return 0
  build_base
  img_build "$IMG_REDIS" "$LIB_ROOT/docker/redis" --build-arg "BASE_IMAGE=$IMG_BASE"
}

# The three services from the repository (context: its root; .dockerignore leaves build output out), one
# target each of docker/services/Dockerfile: the first build runs its Maven stage, the other two reuse it.
# Their bases (jre, maven) come from the wave before (cmd_build).
build_services() {
  local m
  for m in compiler-service rule-service host-agent; do
    img_build "$(img_service "$m")" "$LIB_ROOT" -f "$LIB_ROOT/docker/services/Dockerfile" --target "$m" \
      --build-arg "BUILD_IMAGE=$IMG_MAVEN" --build-arg "RUNTIME_IMAGE=$IMG_JRE"
  done
}

# img_service MODULE: the image of one of the three services.
img_service() {
  case "$1" in
    compiler-service) echo "$IMG_COMPILER" ;;
    rule-service) echo "$IMG_RULE_SERVICE" ;;
    host-agent) echo "$IMG_AGENT" ;;
  esac
}

# The stack's jars from Maven Central, as a step of its own in the waves below.
build_stack() { stack_artifacts; }

# run_parallel FUNCTION...: the functions at once, each in a subshell of its own (apt and Maven wait on
# the network more than on the CPU); fails when any failed, after all ended.
run_parallel() {
  local -a pids=()
  local f i rc=0
  for f in "$@"; do
    ("$f") &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { ilog "${*:i+1:1} failed"; rc=1; }
  done
  return "$rc"
}

cmd_build() {
  engine_answers || idie "no Docker engine answers: scripts/engine.sh start"
  local -a what=("$@")
  ((${#what[@]})) || what=(kafka registry redis services)
  local t0 w
  local -A want=()
  for w in "${what[@]}"; do
    case "$w" in
      infra) want[kafka]=1; want[registry]=1; want[redis]=1 ;;
      base | jre | maven | kafka | registry | redis | services) want[$w]=1 ;;
      *) idie "unknown image '$w' (kafka, registry, redis, services, infra, base, jre, maven)" ;;
    esac
  done
  # What each image needs built before it: the services their two bases; official images are pulled and
  # need nothing else, the project's own Kafka and registry need the JRE image and the stack's jars, and
  # every image of the project's own stands on the Debian base.
  [[ -n "${want[services]:-}" ]] && { want[jre]=1; want[maven]=1; }
  if [[ "$IMG_MODE" != official ]]; then
    [[ -n "${want[kafka]:-}${want[registry]:-}" ]] && { want[jre]=1; want[stack]=1; }
    [[ -n "${want[jre]:-}${want[maven]:-}${want[redis]:-}" ]] && want[base]=1
  fi
  t0="$(lib_now)"
  # One loop over the waves: the images of a wave need only those of the waves before, and are built at
  # once (apt and Maven wait on the network more than on the CPU).
  local wave f
  local -a fs
  for wave in "base" "jre maven redis stack" "kafka registry" "services"; do
    fs=()
    for f in $wave; do [[ -n "${want[$f]:-}" ]] && fs+=("build_$f"); done
    ((${#fs[@]} == 0)) || run_parallel "${fs[@]}" || idie "images could not be built (logs: $IMG_DIR/logs)"
  done
  ilog "images ready in $(lib_since "$t0") s (EGRESS_IMAGES=$IMG_MODE)"
}

cmd_list() {
  local t
  for t in "$IMG_KAFKA" "$IMG_REGISTRY" "$IMG_REDIS" "$IMG_COMPILER" "$IMG_RULE_SERVICE" "$IMG_AGENT"; do
    if img_exists "$t"; then
      printf '%-50s %s\n' "$t" "$("$DOCKER" image inspect -f '{{.Created}} {{.Size}}' "$t" | awk '{ printf "%s %.0f MB", substr($1, 1, 19), $NF / 1e6 }')"
    else
      printf '%-50s %s\n' "$t" "missing"
    fi
  done
}

cmd_env() {
  printf 'export EGRESS_IMAGE_KAFKA=%q\n' "$IMG_KAFKA"
  printf 'export EGRESS_IMAGE_REGISTRY=%q\n' "$IMG_REGISTRY"
  printf 'export EGRESS_IMAGE_REDIS=%q\n' "$IMG_REDIS"
  printf 'export EGRESS_IMAGE_COMPILER=%q\n' "$IMG_COMPILER"
  printf 'export EGRESS_IMAGE_RULE_SERVICE=%q\n' "$IMG_RULE_SERVICE"
  printf 'export EGRESS_IMAGE_AGENT=%q\n' "$IMG_AGENT"
  printf 'export EGRESS_IMAGE_JRE=%q\n' "$IMG_JRE"
  printf 'export EGRESS_IMAGE_MAVEN=%q\n' "$IMG_MAVEN"
}

img_main() {
  local cmd="${1:-help}"
  [[ $# -gt 0 ]] && shift
  img_names
  case "$cmd" in
    build) cmd_build "$@" ;;
    list) cmd_list ;;
    env) cmd_env ;;
    -h | --help | help) sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
    *) idie "unknown command '$cmd' (build [IMAGE...] | list | env)" ;;
  esac
}

# One compound command, read whole before it runs: an edit of this file while it runs cannot shift what
# bash reads next.
{ img_main "$@"; exit; }
