#!/usr/bin/env bash
# The action image's size and start time, measured on the local stack (not a timed test):
#
#   scripts/bench-image.sh [STATIC_BINARY] [RUNS]
#
# STATIC_BINARY defaults to what release.yml builds for amd64:
#   RUSTFLAGS="-C target-feature=+crt-static" \
#     cargo build --release --locked --bin cutover --target x86_64-unknown-linux-gnu
# The image is built and pushed with scripts/pin.sh (the release's own path) to the test
# registry, then:
#   - compressed size: the pushed manifest's layers and config, as a pull downloads them;
#   - start: `docker run` to the first line the binary prints, on a warm daemon (the image
#     already pulled), median and best of RUNS (default 11), beside the same run of a
#     do-nothing static binary (busybox-static `echo`) in a FROM-scratch image: the
#     difference is cutover's own share of the start;
#   - lookups by host name from inside the image (static glibc loads no NSS modules):
#     `cutover status` against moto at http://localhost:<port> (/etc/hosts) and at a name
#     only DNS knows (scripts/dns_stub.py on 127.0.0.77:53; binding port 53 needs root).
# Needs `scripts/services.sh start` and its env (CUTOVER_TEST_*), python3, curl, jq.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${1:-${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/cutover}"
RUNS="${2:-11}"
: "${CUTOVER_TEST_DOCKER_HOST:?run: eval \"\$(bash scripts/services.sh env)\" first}"
: "${CUTOVER_TEST_REGISTRY:?run: eval \"\$(bash scripts/services.sh env)\" first}"
: "${CUTOVER_TEST_MOTO_ENDPOINT:?run: eval \"\$(bash scripts/services.sh env)\" first}"
[ -x "$BIN" ] || { echo "bench-image: no binary at $BIN (see the top of this script)" >&2; exit 2; }
if ldd "$BIN" 2>&1 | grep -q '=>'; then
  echo "bench-image: $BIN is dynamically linked; the image runs a static binary (see the top of this script)" >&2
  exit 2
fi

export DOCKER_HOST="$CUTOVER_TEST_DOCKER_HOST" DOCKER_BUILDKIT=0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export DOCKER_CONFIG="$work/docker"
mkdir -p "$DOCKER_CONFIG" "$work/bin/amd64"
# services.sh's registry accepts moto's ECR password for user AWS.
password="123456789012-auth-token"
auth="$(printf 'AWS:%s' "$password" | base64 -w0)"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$CUTOVER_TEST_REGISTRY" "$auth" >"$DOCKER_CONFIG/config.json"
cp "$BIN" "$work/bin/amd64/cutover"

repository="$CUTOVER_TEST_REGISTRY/cutover-bench"
ref="$(bash scripts/pin.sh build "$repository" bench "$work/bin")"
digest="${ref#*@}"

# Size: what a pull downloads (compressed layers + config), and the unpacked image.
manifest="$(curl -sf -u "AWS:$password" \
  -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$CUTOVER_TEST_REGISTRY/v2/cutover-bench/manifests/$digest")"
compressed="$(jq '[.layers[].size] + [.config.size] | add' <<<"$manifest")"
unpacked="$(docker image inspect --format '{{.Size}}' "$ref")"
binary="$(stat -c %s "$BIN")"

# A do-nothing peer: busybox-static's echo in a FROM-scratch image.
mkdir -p "$work/peer"
cp /bin/busybox "$work/peer/busybox"
printf 'FROM scratch\nCOPY busybox /busybox\nENTRYPOINT ["/busybox", "echo", "up"]\n' >"$work/peer/Dockerfile"
docker build --quiet --tag cutover-bench-peer:1 "$work/peer" >/dev/null

# Time from starting `docker run` to the first line on stdout, per run, in ms.
first_line_ms() {
  python3 - "$RUNS" "$@" <<'EOF'
import statistics, subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2:]
subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)  # warm: image and caches
samples = []
for _ in range(runs):
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    p.stdout.readline()
    samples.append((time.perf_counter() - start) * 1000)
    p.wait()
print(f"{statistics.median(samples):.0f} {min(samples):.0f}")
EOF
}
read -r cut_med cut_min < <(first_line_ms docker run --rm --network host "$ref" --version)
read -r peer_med peer_min < <(first_line_ms docker run --rm --network host cutover-bench-peer:1)
read -r bare_med bare_min < <(first_line_ms "$BIN" --version)

# Name resolution inside the image (static glibc loads no NSS modules): moto by
# `localhost` (/etc/hosts), then by a name only DNS knows, through scripts/dns_stub.py on
# 127.0.0.77:53 (the container gets a resolv.conf naming it).
port="${CUTOVER_TEST_MOTO_ENDPOINT##*:}"
port="${port%%/*}"
python3 scripts/dns_stub.py 127.0.0.77 &
dns_pid=$!
trap 'kill "$dns_pid" 2>/dev/null; rm -rf "$work"' EXIT
echo "nameserver 127.0.0.77" >"$work/resolv.conf"
lookup() { # HOST [docker run flags...]
  local host="$1" out
  shift
  set +e
  out="$(docker run --rm --network host "$@" -v "$PWD/tests/cmd/fixtures/web:/github/workspace:ro" \
    --workdir /github/workspace -e AWS_ENDPOINT_URL="http://$host:$port" \
    -e AWS_ACCESS_KEY_ID=testing -e AWS_SECRET_ACCESS_KEY=testing -e AWS_EC2_METADATA_DISABLED=true \
    -e NO_COLOR=1 "$ref" status --env production --service web 2>&1)"
  set -e
  # moto answers that the fixture's listener does not exist: the name resolved.
  if grep -q 'ListenerNotFound' <<<"$out"; then echo "ok"; else echo "FAILED: $(tail -n1 <<<"$out")"; fi
}
sleep 0.5
lookup_hosts="$(lookup localhost)"
lookup_dns="$(lookup moto.cutover.test -v "$work/resolv.conf:/etc/resolv.conf:ro")"

mb() { python3 -c "print(f'{$1/1e6:.1f} MB')"; }
cat <<EOF
image            $ref
compressed       $(mb "$compressed")   (pushed manifest: layers + config; target <= 30 MB)
unpacked         $(mb "$unpacked")   (binary $(mb "$binary"))
start, docker run to first line (warm daemon, $RUNS runs; target < 100 ms)
  cutover image    median $cut_med ms, best $cut_min ms
  do-nothing peer  median $peer_med ms, best $peer_min ms   (docker run itself)
  cutover's share  median $((cut_med - peer_med)) ms
  binary, no container  median $bare_med ms, best $bare_min ms
lookup by name   localhost (/etc/hosts) $lookup_hosts; moto.cutover.test (DNS) $lookup_dns
EOF
