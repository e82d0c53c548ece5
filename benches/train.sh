#!/usr/bin/env bash
# Release trains in real time against moto (issue 17's benchmark): `deploy --service
# s1,…,sN` of 1, 5 and 20 services, each its own stack in moto (what terraform creates),
# the real binary and adapters. Prints the wall time and the AWS calls (moto's request
# log) of each train's deploy, and both as ratios to one service measured in the same run.
#
#   scripts/services.sh start && eval "$(scripts/services.sh env)"
#   cargo build
#   benches/train.sh [SIZES ("1 5 20")]
#   CUTOVER_BIN=<target>/release/cutover benches/train.sh
#                                   the release build (what the action runs); default debug
#   CLUSTERS=own benches/train.sh   each service in its own cluster (default: the services
#                                   of a size share one cluster, as one app's usually do)
#
# Each size gets fresh stacks and first deploys v1.0.0 (untimed); the timed run deploys
# v1.1.0, whose images `build --service …` pushed beforehand, so the figures are the
# train's (stage together, all-at-once shift in lockstep, 1 s bake, no rollback
# rehearsal), not docker's. One service runs the single-service path: the baseline.
# moto runs no tasks and routes no traffic: one target per slot is registered up front
# (benches/moto_app.sh) and each service's probe hits its own python http.server.
# Run it on a moto no test shares: calls are counted in moto's request log.
set -euo pipefail

SIZES="${1:-1 5 20}"
CLUSTERS="${CLUSTERS:-shared}"
case "$CLUSTERS" in shared|own) ;; *) echo "CLUSTERS: shared or own, not '$CLUSTERS'" >&2; exit 2 ;; esac
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=benches/moto_app.sh
source "$ROOT/benches/moto_app.sh"
moto_bench_env
SHA=0123456789abcdef0123456789abcdef01234567

BASE="$(mktemp -d)"
# The probes' http.servers, started inside `project`'s subshell: their pids go to a file.
cleanup() {
  local pid
  if [ -f "$BASE/pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$BASE/pids"
  fi
  rm -rf "$BASE"
}
trap cleanup EXIT
export AWS_ENDPOINT_URL="$CUTOVER_TEST_MOTO_ENDPOINT" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export DOCKER_HOST="$CUTOVER_TEST_DOCKER_HOST" CUTOVER_ENV=test CUTOVER_LOG=error

moto_calls() { grep -c 'HTTP/1.1"' "$MOTO_LOG"; }

# One deploy/ folder holding N services, each its own moto stack; prints the services.
project() { # N
  local n=$1 dir="$BASE/n$1" services=() i
  mkdir -p "$dir/app"
  printf 'FROM scratch\nCOPY version.txt /version.txt\n' >"$dir/app/Dockerfile"
  for i in $(seq "$n"); do
    NAME="t$$n${n}s$i" WORK="$dir/stack-$i"
    mkdir -p "$WORK"
    if [ "$CLUSTERS" = shared ]; then export MOTO_STACK_CLUSTER="t$$n${n}"; fi
    moto_app
    echo "$WEB_PID" >>"$BASE/pids"
    (cd "$WORK" && "$BIN" init --env test --service "$NAME" --from-terraform tf.json >/dev/null)
    mkdir -p "$dir/deploy/services"
    cp -r "$WORK/deploy/services/$NAME" "$dir/deploy/services/"
    [ -d "$dir/deploy/environments" ] || cp -r "$WORK/deploy/environments" "$dir/deploy/"
    moto_service_config "$dir/deploy/services/$NAME/service.toml" all-at-once
    # No rollback rehearsal: the figures are the train's stage and shift.
    sed -i 's/^\[validation\]$/[validation]\nrehearse_rollback = false/' "$dir/deploy/services/$NAME/service.toml"
    services+=("$NAME")
  done
  sed -i "s#^ssm_prefix = #registry = \"$CUTOVER_TEST_REGISTRY\"\nssm_prefix = #; s#required = true#required = false#" \
    "$dir/deploy/environments/test/environment.toml"
  (IFS=,; echo "${services[*]}")
}

results=()
for n in $SIZES; do
  services=$(project "$n")
  dir="$BASE/n$n"
  cd "$dir"
  echo 1.0.0 >app/version.txt
  "$BIN" deploy --service "$services" --tag v1.0.0 --git-sha "$SHA" >/dev/null 2>"$dir/first.err"
  echo 1.1.0 >app/version.txt
  "$BIN" build --service "$services" --tag v1.1.0 --git-sha "$SHA" >/dev/null 2>"$dir/build.err"
  before=$(moto_calls)
  start=$(date +%s%N)
  "$BIN" deploy --service "$services" --tag v1.1.0 --git-sha "$SHA" >"$dir/deploy.out" 2>"$dir/deploy.err"
  wall_ms=$((($(date +%s%N) - start) / 1000000))
  calls=$(($(moto_calls) - before))
  # One service is the single-service path, the baseline; several end with the train's table.
  grep -Eq "^train Promoted|promoted: 100% of production" "$dir/deploy.out" || { cat "$dir/deploy.out" >&2; exit 1; }
  results+=("$n $wall_ms $calls")
  cd "$ROOT"
done

echo "clusters: $CLUSTERS"
echo "| services | wall | AWS calls | wall vs one | calls vs one |"
echo "| --- | --- | --- | --- | --- |"
one_wall= one_calls=
for r in "${results[@]}"; do
  read -r n wall calls <<<"$r"
  : "${one_wall:=$wall}" "${one_calls:=$calls}"
  awk -v n="$n" -v w="$wall" -v c="$calls" -v w1="$one_wall" -v c1="$one_calls" \
    'BEGIN { printf "| %d | %.1f s | %d | x%.2f | x%.2f |\n", n, w / 1000, c, w / w1, c / c1 }'
done
