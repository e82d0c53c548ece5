#!/usr/bin/env bash
# Starts the real components the integration tests run against (DESIGN.md, "Real
# components"): a private dockerd, an htpasswd-protected docker-registry that accepts the
# credentials moto's ECR token decodes to, and a moto server for the AWS APIs.
#
#   scripts/services.sh start   start whatever is not running yet, wait until it answers
#   scripts/services.sh env     print `export VAR=…` lines for the test run
#   scripts/services.sh stop    stop what `start` started, by recorded pid
#
# Everything lives under ${CUTOVER_STATE_DIR:-/tmp/cutover-services}; nothing touches a
# system dockerd or its socket. Needs root (dockerd) and `bash scripts/install.sh`.
set -euo pipefail

STATE="${CUTOVER_STATE_DIR:-/tmp/cutover-services}"
VENV="${CUTOVER_VENV:-$HOME/.cache/cutover/venv}"
# moto's GetAuthorizationToken returns base64("AWS:<account>-auth-token") for its default
# account (moto/ecr/responses.py), so the registry must accept exactly that password.
MOTO_ACCOUNT=123456789012
REGISTRY_PASSWORD="${MOTO_ACCOUNT}-auth-token"

LOG_TAG=services
# shellcheck source=scripts/procs.sh
source "$(dirname "$0")/procs.sh"

start_dockerd() {
  local d="$STATE/docker"
  if alive "$d/dockerd.pid"; then return; fi
  mkdir -p "$d/data" "$d/exec"
  # Own data/exec roots, pidfile and socket so it never meets a system daemon; no bridge
  # and no iptables: tests run containers with host networking only.
  setsid dockerd \
    --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/dockerd.pid" \
    -H "unix://$d/docker.sock" --bridge=none --iptables=false --ip6tables=false \
    >"$d/dockerd.log" 2>&1 </dev/null &
  wait_for "$d/dockerd.log" 60 docker -H "unix://$d/docker.sock" version
  log "dockerd on unix://$d/docker.sock"
}

start_registry() {
  local d="$STATE/registry"
  if alive "$d/registry.pid"; then return; fi
  mkdir -p "$d/data"
  local port
  port=$(free_port)
  htpasswd -Bbc "$d/htpasswd" AWS "$REGISTRY_PASSWORD" 2>/dev/null
  cat >"$d/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $d/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
auth:
  htpasswd:
    realm: cutover-test
    path: $d/htpasswd
EOF
  launch "$d" registry docker-registry serve "$d/config.yml"
  echo "$port" >"$d/port"
  # 401 without credentials means it is up and enforcing auth.
  wait_for "$d/registry.log" 30 sh -c "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$port/v2/ | grep -q 401"
  log "registry on 127.0.0.1:$port (user AWS)"
}

start_moto() {
  local d="$STATE/moto"
  if alive "$d/moto.pid"; then return; fi
  mkdir -p "$d"
  local port
  port=$(free_port)
  launch "$d" moto "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port"
  echo "$port" >"$d/port"
  wait_for "$d/moto.log" 30 curl -sf "http://127.0.0.1:$port/moto-api/"
  log "moto on http://127.0.0.1:$port"
}

# A stopped dockerd leaves its default network namespace mounted (exec/netns/default),
# which keeps the state folder from being removed.
unmount_leftovers() { # dir
  alive "$1/dockerd.pid" && return 0
  local mnt
  awk -v dir="$1/" 'index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r | while read -r mnt; do
    umount "$mnt" 2>/dev/null || umount -l "$mnt"
  done
}

print_env() {
  [ -S "$STATE/docker/docker.sock" ] && echo "export CUTOVER_TEST_DOCKER_HOST=unix://$STATE/docker/docker.sock"
  [ -f "$STATE/registry/port" ] && echo "export CUTOVER_TEST_REGISTRY=127.0.0.1:$(cat "$STATE/registry/port")"
  [ -f "$STATE/moto/port" ] && echo "export CUTOVER_TEST_MOTO_ENDPOINT=http://127.0.0.1:$(cat "$STATE/moto/port")"
  return 0
}

case "${1:-}" in
  start)
    mkdir -p "$STATE"
    start_dockerd
    start_registry
    start_moto
    ;;
  stop)
    stop_pidfile moto "$STATE/moto/moto.pid"
    stop_pidfile registry "$STATE/registry/registry.pid"
    # dockerd stops the containerd it started itself on SIGTERM.
    stop_pidfile dockerd "$STATE/docker/dockerd.pid"
    unmount_leftovers "$STATE/docker"
    rm -f "$STATE/registry/port" "$STATE/moto/port"
    ;;
  env)
    print_env
    ;;
  *)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
