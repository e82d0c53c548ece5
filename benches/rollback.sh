#!/usr/bin/env bash
# Warm rollback vs a full stage, against moto on loopback: wall time from process start to
# the end of the command (after the weights were read back), and the number of AWS calls
# each made (counted in moto's request log). Both run the real binary and adapters.
#
#   scripts/services.sh start && eval "$(scripts/services.sh env)"
#   cargo build
#   benches/rollback.sh [ROUNDS (3)]
#
# moto routes no traffic and runs no tasks: targets are registered up front (both slots),
# and probes hit a python http.server that serves /health.
set -euo pipefail

ROUNDS="${1:-3}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${CUTOVER_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/cutover}"
VENV="${CUTOVER_VENV:-$HOME/.cache/cutover/venv}"
STATE="${CUTOVER_STATE_DIR:-/tmp/cutover-services}"
MOTO_LOG="$STATE/moto/moto.log"
for v in CUTOVER_TEST_DOCKER_HOST CUTOVER_TEST_REGISTRY CUTOVER_TEST_MOTO_ENDPOINT; do
  [ -n "${!v:-}" ] || { echo "$v not set: run scripts/services.sh start and eval its env" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "no binary at $BIN (cargo build)" >&2; exit 2; }

WORK="$(mktemp -d)"
WEB_PID=""
cleanup() { [ -n "$WEB_PID" ] && kill "$WEB_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
NAME="rb$$"
"$VENV/bin/python" "$ROOT/tests/fixtures/moto_stack.py" "$CUTOVER_TEST_MOTO_ENDPOINT" us-east-1 "$NAME" > "$WORK/tf.json"

# The test listener's data plane: /health answers 200.
mkdir -p "$WORK/www" && echo ok > "$WORK/www/health"
PORT="$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$VENV/bin/python" -m http.server "$PORT" --bind 127.0.0.1 --directory "$WORK/www" >/dev/null 2>&1 &
WEB_PID=$!

cd "$WORK"
"$BIN" init --env test --service "$NAME" --from-terraform tf.json >/dev/null
SVC="deploy/services/$NAME/service.toml"
sed -i "s#context = \".\"#context = \"app\"#; s#test_url = \".*\"#test_url = \"http://127.0.0.1:$PORT\"#; s#kind = \"canary\"#kind = \"all-at-once\"#; s#^percent = 10##; s#^wait = \"5m\"##; s#bake = \"10m\"#bake = \"1s\"#; s#expect_status = 200#expect_status = 200\ninterval = \"200ms\"\nconsecutive_successes = 1#" "$SVC"
sed -i "s#^ssm_prefix = #registry = \"$CUTOVER_TEST_REGISTRY\"\nssm_prefix = #; s#required = true#required = false#" deploy/environments/test/environment.toml
mkdir -p app && printf 'FROM scratch\nCOPY version.txt /version.txt\n' > app/Dockerfile

"$VENV/bin/python" - "$CUTOVER_TEST_MOTO_ENDPOINT" "$WORK/tf.json" <<'PY'
# One target in each slot's target group, as ECS would register for the desired count (1: nothing was live).
import json, sys, boto3
endpoint, outputs = sys.argv[1], json.load(open(sys.argv[2]))
elb = boto3.client("elbv2", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
for i, slot in enumerate(("blue", "green")):
    tg = outputs["cutover_service"]["value"]["slots"][slot]["target_group_arn"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": f"10.0.{i}.{n}", "Port": 8080} for n in (10,)])
PY

export AWS_ENDPOINT_URL="$CUTOVER_TEST_MOTO_ENDPOINT" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export DOCKER_HOST="$CUTOVER_TEST_DOCKER_HOST" CUTOVER_ENV=test CUTOVER_SERVICE="$NAME" CUTOVER_LOG=error
SHA=0123456789abcdef0123456789abcdef01234567

calls() { grep -c 'HTTP/1.1"' "$MOTO_LOG" || true; }
# measure LABEL ARGS...: prints "LABEL seconds calls"
measure() {
  local label=$1; shift
  local before after start end
  before=$(calls); start=$(date +%s%N)
  "$BIN" "$@" >/dev/null
  end=$(date +%s%N); after=$(calls)
  echo "$label $(( (end - start) / 1000000 )) $((after - before))"
}

echo 1.0.0 > app/version.txt
"$BIN" deploy --tag v1.0.0 --git-sha "$SHA" >/dev/null

results="$WORK/results"
for round in $(seq "$ROUNDS"); do
  # A new release each round: a full stage registers a task definition, rolls it onto the
  # idle slot, waits healthy and validates; the rollback after its promote is a warm flip.
  echo "3.0.$round" > app/version.txt
  image="$("$BIN" build --tag "v3.0.$round" --git-sha "$SHA" | tail -1)"
  measure stage stage --tag "v3.0.$round" --image "$image" >> "$results"
  "$BIN" promote --tag "v3.0.$round" >/dev/null
  measure rollback rollback >> "$results"
done

awk '
  { t[$1] += $2 / 1000; c[$1] += $3; n[$1]++ }
  END {
    printf "%-10s %10s %10s\n", "", "wall (s)", "AWS calls"
    for (k in t) printf "%-10s %10.2f %10.1f\n", k, t[k]/n[k], c[k]/n[k]
    printf "ratio rollback/stage: wall %.2f, calls %.2f\n", (t["rollback"]/n["rollback"])/(t["stage"]/n["stage"]), (c["rollback"]/n["rollback"])/(c["stage"]/n["stage"])
  }' "$results"
