#!/usr/bin/env bash
# Warm rollback vs a full stage, against moto on loopback. For the rollback: wall time
# from process start to the log line that confirms the read-back of 100% on the previous
# slot, and the AWS calls made by then; also for the whole command. For the stage: the
# whole command. Calls are counted in moto's request log; medians over ROUNDS. Then one
# more rollback and stage run through a recording proxy list each call by operation.
# Both run the real binary and adapters.
#
#   scripts/services.sh start && eval "$(scripts/services.sh env)"
#   cargo build
#   benches/rollback.sh [ROUNDS (5)]
#
# moto routes no traffic and runs no tasks: targets are registered up front (both slots),
# and probes hit a python http.server that serves /health. The image lookup's registry
# request goes to the local registry, not moto, so it is not counted (its token fetch,
# ecr:GetAuthorizationToken, is).
set -euo pipefail

ROUNDS="${1:-5}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=benches/moto_app.sh
source "$ROOT/benches/moto_app.sh"
moto_bench_env

WORK="$(mktemp -d)"
WEB_PID=""
cleanup() { [ -n "$WEB_PID" ] && kill "$WEB_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
NAME="rb$$"
moto_app

cd "$WORK"
"$BIN" init --env test --service "$NAME" --from-terraform tf.json >/dev/null
SVC="deploy/services/$NAME/service.toml"
moto_service_config "$SVC" all-at-once
sed -i "s#^ssm_prefix = #registry = \"$CUTOVER_TEST_REGISTRY\"\nssm_prefix = #; s#required = true#required = false#" deploy/environments/test/environment.toml
mkdir -p app && printf 'FROM scratch\nCOPY version.txt /version.txt\n' > app/Dockerfile

# run.py MODE BIN ARGS...: runs the binary; MODE "time" prints "wall_ms calls mark_ms
# mark_calls" (mark: the first stderr line with the read-back marker; calls: moto request
# log lines, which moto writes before it answers, so every call made before the marker is
# in the log when it is seen); MODE "list" runs it against a recording proxy in front of
# moto and prints each call's operation, marking where the read-back was confirmed.
cat > "$WORK/run.py" <<'PY'
import http.client, http.server, json, os, subprocess, sys, threading, time, urllib.parse

MARK = "production weights read back"
mode, argv = sys.argv[1], sys.argv[2:]
moto_log = os.environ["MOTO_LOG"]

def moto_calls():
    with open(moto_log, "rb") as f:
        return f.read().count(b'HTTP/1.1"')

def run(env, on_mark):
    start = time.monotonic()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    mark = None
    for line in p.stderr:
        if mark is None and MARK.encode() in line:
            mark = on_mark(time.monotonic() - start)
    if p.wait() != 0:
        sys.exit(f"{argv} failed with {p.returncode}")
    return time.monotonic() - start, mark

if mode == "time":
    before = moto_calls()
    wall, mark = run(dict(os.environ), lambda t: (t, moto_calls() - before))
    total = moto_calls() - before
    mark_ms, mark_calls = (round(mark[0] * 1000), mark[1]) if mark else ("-", "-")
    print(round(wall * 1000), total, mark_ms, mark_calls)
    sys.exit()

calls, lock = [], threading.Lock()
upstream = urllib.parse.urlparse(os.environ["AWS_ENDPOINT_URL"])

class Proxy(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        target = self.headers.get("X-Amz-Target")
        if target:  # JSON protocol: ECS, SSM, ECR
            op = target.split(".")[-1]
        else:  # query protocol: ELBv2, STS, CloudWatch
            op = urllib.parse.parse_qs(body.decode()).get("Action", ["?"])[0]
        scope = self.headers.get("Authorization", "").split("/")
        service = scope[3] if len(scope) > 3 else "?"
        with lock:
            calls.append(f"{service}:{op}")
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        headers["Host"] = upstream.netloc
        conn.request("POST", self.path, body, headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
threading.Thread(target=server.serve_forever, daemon=True).start()
env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{server.server_port}")
_, mark = run(env, lambda t: len(calls))
for i, c in enumerate(calls, 1):
    print(f"  {i:>2} {c}")
    if i == mark:
        print("     -- read-back confirmed")
PY

export AWS_ENDPOINT_URL="$CUTOVER_TEST_MOTO_ENDPOINT" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export DOCKER_HOST="$CUTOVER_TEST_DOCKER_HOST" CUTOVER_ENV=test CUTOVER_SERVICE="$NAME" MOTO_LOG
# Errors only, plus the engine's line confirming a read-back.
export CUTOVER_LOG="error,cutover::engine::shift=info"
SHA=0123456789abcdef0123456789abcdef01234567

echo 1.0.0 > app/version.txt
"$BIN" deploy --tag v1.0.0 --git-sha "$SHA" >/dev/null 2>&1

# A new release each round: a full stage registers a task definition, rolls it onto the
# idle slot, waits healthy and validates; the rollback after its promote is a warm flip.
release() { # ROUND [time|list|quiet]: build, stage (timed, listed or plain) and promote v3.0.ROUND
  local v="v3.0.$1" how="${2:-time}" image
  echo "3.0.$1" > app/version.txt
  image="$("$BIN" build --tag "$v" --git-sha "$SHA" 2>/dev/null | tail -1)"
  case "$how" in
    time) echo "stage $("$PY" "$WORK/run.py" time "$BIN" stage --tag "$v" --image "$image")" >> "$WORK/results" ;;
    list) "$PY" "$WORK/run.py" list "$BIN" stage --tag "$v" --image "$image" ;;
    *) "$BIN" stage --tag "$v" --image "$image" >/dev/null 2>&1 ;;
  esac
  "$BIN" promote --tag "$v" >/dev/null 2>&1
}
for round in $(seq "$ROUNDS"); do
  release "$round"
  echo "rollback $("$PY" "$WORK/run.py" time "$BIN" rollback)" >> "$WORK/results"
done

"$PY" - "$WORK/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, *values = line.split()
    rows.setdefault(label, []).append(values)
def med(label, i):
    values = [float(r[i]) for r in rows[label] if r[i] != "-"]
    return statistics.median(values) if values else float("nan")
n = len(rows["rollback"])
print(f"medians of {n} runs     wall (s)  AWS calls")
print(f"rollback to read-back  {med('rollback', 2) / 1000:8.2f}  {med('rollback', 3):9.0f}")
print(f"rollback, whole        {med('rollback', 0) / 1000:8.2f}  {med('rollback', 1):9.0f}")
print(f"stage, whole           {med('stage', 0) / 1000:8.2f}  {med('stage', 1):9.0f}")
print(f"ratio rollback to read-back / stage: wall {med('rollback', 2) / med('stage', 0):.2f}, "
      f"calls {med('rollback', 3) / med('stage', 1):.2f}")
print("each run (wall ms, calls, to read-back ms, calls):")
for label, values in rows.items():
    for v in values:
        print(f"  {label:<9}", *v)
PY

echo "calls of one warm rollback, in order:"
release $((ROUNDS + 1)) quiet
"$PY" "$WORK/run.py" list "$BIN" rollback
echo "calls of one stage, in order:"
release $((ROUNDS + 2)) list
