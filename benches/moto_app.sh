# Sourced by the benches that drive the real binary against moto (benches/rollback.sh,
# scripts/bench-recovery.sh). moto runs no tasks and routes no traffic, so the app is
# played here: a service stack in moto (tf.json in $WORK), the test listener's data plane
# (a python http.server answering /health on $PORT, pid $WEB_PID) and one target in each
# slot's target group, as ECS would register for a desired count of 1.
# Needs ROOT; moto_app also WORK and NAME.

# BIN, VENV, PY and MOTO_LOG for a bench, refused (exit 2) without the services or the binary.
moto_bench_env() {
  BIN="${CUTOVER_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/cutover}"
  VENV="${CUTOVER_VENV:-$HOME/.cache/cutover/venv}"
  PY="$VENV/bin/python"
  for v in CUTOVER_TEST_DOCKER_HOST CUTOVER_TEST_REGISTRY CUTOVER_TEST_MOTO_ENDPOINT; do
    [ -n "${!v:-}" ] || { echo "$v not set: run scripts/services.sh start and eval its env" >&2; exit 2; }
  done
  [ -x "$BIN" ] || { echo "no binary at $BIN (cargo build)" >&2; exit 2; }
  # moto's request log: the benches count AWS calls in it.
  MOTO_LOG="${CUTOVER_STATE_DIR:-/tmp/cutover-services}/moto/moto.log"
}

moto_app() {
  "$PY" "$ROOT/tests/fixtures/moto_stack.py" "$CUTOVER_TEST_MOTO_ENDPOINT" us-east-1 "$NAME" > "$WORK/tf.json"
  mkdir -p "$WORK/www" && echo ok > "$WORK/www/health"
  PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  "$PY" -m http.server "$PORT" --bind 127.0.0.1 --directory "$WORK/www" >/dev/null 2>&1 &
  WEB_PID=$!
  "$PY" - "$CUTOVER_TEST_MOTO_ENDPOINT" "$WORK/tf.json" <<'PY'
import json, sys, boto3
endpoint, outputs = sys.argv[1], json.load(open(sys.argv[2]))
elb = boto3.client("elbv2", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
for i, slot in enumerate(("blue", "green")):
    tg = outputs["cutover_service"]["value"]["slots"][slot]["target_group_arn"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": f"10.0.{i}.10", "Port": 8080}])
PY
}

# moto_service_config SERVICE_TOML KIND: the scaffolded service.toml made quick for a bench:
# context app/, the test URL on $PORT, KIND (all-at-once or a 10-minute canary step) with a
# 1 s bake, one quick /health probe (the http.server cannot answer the scaffold's /version
# probe with each release's version) and a 2-minute lease.
moto_service_config() {
  "$PY" - "$1" "$2" "$PORT" <<'PY'
import re, sys
path, kind, port = sys.argv[1:]
s = open(path).read()
s = s.replace('context = "."', 'context = "app"')
s = re.sub(r'test_url = ".*"', f'test_url = "http://127.0.0.1:{port}"', s)
strategy = {
    "all-at-once": '[strategy]\nkind = "all-at-once"\nbake = "1s"\n',
    "canary": '[strategy]\nkind = "canary"\npercent = 10\nwait = "10m"\nbake = "1s"\n',
}[kind]
s = re.sub(r"\[strategy\]\n(?:[^\[\n].*\n|\n)*", strategy + "\n", s)
# One probe, quick: /health answers 200 (the http.server has no /version).
s = re.sub(r"\[\[validation\.probes\]\]\n(?:[^\[\n].*\n|\n)*", "", s)
s = re.sub(r'lock_ttl = ".*"\n', "", s)
s = s.replace("[deadlines]\n", '[[validation.probes]]\npath = "/health"\nexpect_status = 200\ninterval = "200ms"\nconsecutive_successes = 1\n\n[deadlines]\nlock_ttl = "2m"\n', 1)
open(path, "w").write(s)
PY
}
