#!/usr/bin/env bash
# Recovery from a runner killed mid-canary, with real processes against moto: a real
# `cutover promote` (canary, 10% held for 10 minutes) is killed with kill -9 a few seconds
# into its canary step, leaving production split and its lock behind; then `cutover
# rollback` runs as the rollback workflow would, re-run every RETRY seconds until it
# succeeds (it exits 5 while the lock still looks live, then waits out the stale lock).
# Prints, per run and as p50/max, the wall time from the kill to the rollback's read-back
# of 100% on the last good release, and to the rollback's exit. The lease is the shortest
# the config allows (lock_ttl = 2m) so a run takes a few minutes; the default 5 minutes
# adds its difference, the old 1 h TTL made it up to an hour.
#
#   export CUTOVER_STATE_DIR=/tmp/cutover-services-x
#   bash scripts/services.sh start && eval "$(bash scripts/services.sh env)"
#   cargo build
#   bash scripts/bench-recovery.sh [RUNS (3)] [RETRY seconds (15)]
#
# moto runs no tasks and routes no traffic: targets are registered up front in both target
# groups and the probes hit a python http.server serving /health (as benches/rollback.sh).
set -euo pipefail

RUNS="${1:-3}"
RETRY="${2:-15}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=benches/moto_app.sh
source "$ROOT/benches/moto_app.sh"
moto_bench_env

WORK="$(mktemp -d)"
WEB_PID=""
PROMOTE_PID=""
cleanup() {
  [ -n "$PROMOTE_PID" ] && kill -9 "$PROMOTE_PID" 2>/dev/null
  [ -n "$WEB_PID" ] && kill "$WEB_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
NAME="rec$$"
moto_app

cd "$WORK"
"$BIN" init --env test --service "$NAME" --from-terraform tf.json >/dev/null 2>&1
SVC="deploy/services/$NAME/service.toml"
sed -i "s#^ssm_prefix = #registry = \"$CUTOVER_TEST_REGISTRY\"\nssm_prefix = #; s#required = true#required = false#" deploy/environments/test/environment.toml
mkdir -p app && printf 'FROM scratch\nCOPY version.txt /version.txt\n' > app/Dockerfile

# all-at-once for the releases that set the scene, canary for the one killed.
strategy() { moto_service_config "$SVC" "$1"; }
strategy all-at-once

export AWS_ENDPOINT_URL="$CUTOVER_TEST_MOTO_ENDPOINT" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export DOCKER_HOST="$CUTOVER_TEST_DOCKER_HOST" CUTOVER_ENV=test CUTOVER_SERVICE="$NAME"
# Errors, notices, and the engine's line confirming a read-back.
export CUTOVER_LOG="warn,cutover::engine::shift=info"
SHA=0123456789abcdef0123456789abcdef01234567
now() { "$PY" -c 'import time; print(f"{time.time():.3f}")'; }

build() { # VERSION: build and push, print the image reference
  echo "${1#v}" > app/version.txt
  "$BIN" build --tag "$1" --git-sha "$SHA" 2>/dev/null | tail -1
}

# The last good release: deployed all at once.
echo 1.0.0 > app/version.txt
"$BIN" deploy --tag v1.0.0 --git-sha "$SHA" >/dev/null 2>"$WORK/deploy.err" || { cat "$WORK/deploy.err" >&2; exit 1; }
good=v1.0.0
: > "$WORK/results"
for run in $(seq "$RUNS"); do
  v="v2.0.$run"
  image="$(build "$v")"
  "$BIN" stage --tag "$v" --image "$image" >/dev/null 2>"$WORK/stage.err" || { cat "$WORK/stage.err" >&2; exit 1; }
  strategy canary
  "$BIN" promote --tag "$v" >/dev/null 2>"$WORK/promote.err" &
  PROMOTE_PID=$!
  # Mid-canary: a few seconds after the first weight change read back (10% on the new slot).
  for _ in $(seq 600); do
    grep -qs "production weights read back" "$WORK/promote.err" && break
    kill -0 "$PROMOTE_PID" 2>/dev/null || { cat "$WORK/promote.err" >&2; exit 1; }
    sleep 0.2
  done
  sleep 5
  kill -9 "$PROMOTE_PID"
  killed="$(now)"
  wait "$PROMOTE_PID" 2>/dev/null || true
  PROMOTE_PID=""
  strategy all-at-once
  attempts=0
  while :; do
    attempts=$((attempts + 1))
    started="$(now)"
    # Timestamp each stderr line as it comes: the read-back is the moment production is back.
    if "$BIN" rollback 2>&1 >/dev/null | "$PY" -u -c '
import sys, time
for line in sys.stdin:
    print(f"{time.time():.3f} {line}", end="")' > "$WORK/rollback.$attempts.err"; then
      break
    fi
    [ "$attempts" -lt 40 ] || { echo "rollback kept failing:" >&2; cat "$WORK/rollback.$attempts.err" >&2; exit 1; }
    sleep "$((RETRY - ($(date +%s) - ${started%.*}) > 0 ? RETRY - ($(date +%s) - ${started%.*}) : 0))"
  done
  done_at="$(now)"
  back="$(grep -m1 "production weights read back" "$WORK/rollback.$attempts.err" | cut -d' ' -f1)"
  status="$("$BIN" status 2>/dev/null || true)"
  grep -q "${good#v}" <<<"$status" || { echo "status after the rollback does not show $good:" >&2; echo "$status" >&2; exit 1; }
  echo "$run $killed ${back:-$done_at} $done_at $attempts" >> "$WORK/results"
  echo "run $run: killed $v mid-canary; rollback attempts: $attempts" >&2
done

"$PY" - "$WORK/results" "$RETRY" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
back = sorted(float(r[2]) - float(r[1]) for r in rows)
done = sorted(float(r[3]) - float(r[1]) for r in rows)
print(f"kill -9 mid-canary -> rollback workflow (re-run every {sys.argv[2]} s), lock_ttl 2m, {len(rows)} runs:")
print(f"  to 100% on the last good release (read back): p50 {statistics.median(back):6.1f} s  max {back[-1]:6.1f} s")
print(f"  to the rollback's exit:                       p50 {statistics.median(done):6.1f} s  max {done[-1]:6.1f} s")
for r in rows:
    print(f"  run {r[0]}: read back {float(r[2]) - float(r[1]):6.1f} s, exit {float(r[3]) - float(r[1]):6.1f} s, rollback runs {r[4]}")
PY
