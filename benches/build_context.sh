#!/usr/bin/env bash
# Build-context benchmark: cutover vs `docker build` (classic builder) on the same daemon,
# same generated context, same trivial Dockerfile. Prints wall time and the client's peak
# RSS for each, their ratios, and the time to the digest of a re-run when the image exists.
#
#   scripts/services.sh start && eval "$(scripts/services.sh env)"
#   cargo build --release
#   benches/build_context.sh [SIZE_MIB (1024)] [FILES (20000)]
#
# CUTOVER_BENCH_BUILDER=buildkit runs cutover's side with BuildKit (`[image] builder`); the
# CLI side stays classic (the docker CLI needs buildx for BuildKit). Default: classic.
#
# Needs /usr/bin/time (Debian package `time`). The context is generated once per size under
# ${CUTOVER_BENCH_DIR:-/tmp/cutover-bench}; data is random so nothing compresses away.
set -euo pipefail

SIZE_MIB="${1:-1024}"
FILES="${2:-20000}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${CUTOVER_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/cutover}"
WORK="${CUTOVER_BENCH_DIR:-/tmp/cutover-bench}"
CTX="$WORK/ctx-${SIZE_MIB}m-${FILES}"
BUILDER="${CUTOVER_BENCH_BUILDER:-classic}"
case "$BUILDER" in classic|buildkit) ;; *) echo "CUTOVER_BENCH_BUILDER: classic or buildkit" >&2; exit 2 ;; esac

for v in CUTOVER_TEST_DOCKER_HOST CUTOVER_TEST_REGISTRY CUTOVER_TEST_MOTO_ENDPOINT; do
  [ -n "${!v:-}" ] || { echo "$v not set: run scripts/services.sh start and eval its env" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "no release binary at $BIN (cargo build --release)" >&2; exit 2; }

if [ ! -f "$CTX/.complete" ]; then
  echo "generating $SIZE_MIB MiB in $FILES files at $CTX" >&2
  rm -rf "$CTX"
  python3 - "$CTX/app" "$SIZE_MIB" "$FILES" <<'EOF'
import os, sys
root, size_mib, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per_file = size_mib * 1024 * 1024 // files
block = os.urandom(per_file + 4096)
for i in range(files):
    d = os.path.join(root, "data", f"{i // 500:03d}")
    os.makedirs(d, exist_ok=True)
    # Shift the window so files differ without paying for fresh randomness each time.
    off = i % 4096
    with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
        f.write(block[off:off + per_file])
with open(os.path.join(root, "Dockerfile"), "w") as f:
    f.write("FROM scratch\nCOPY Dockerfile /Dockerfile\n")
EOF
  mkdir -p "$CTX/deploy/environments/bench" "$CTX/deploy/services/web"
  touch "$CTX/.complete"
fi
cat >"$CTX/deploy/environments/bench/environment.toml" <<EOF
region = "us-east-1"
registry = "$CUTOVER_TEST_REGISTRY"
EOF
REPO="bench-$(date +%s)"
sed "s/^\[image\]\$/[image]\nbuilder = \"$BUILDER\"/" \
  "$ROOT/examples/build-sandbox/deploy/services/web/service.toml" >"$CTX/deploy/services/web/service.toml"
grep -q "^builder = \"$BUILDER\"" "$CTX/deploy/services/web/service.toml"
printf '{"repository": "%s", "dockerfile": "Dockerfile"}\n' "$REPO" >"$CTX/deploy/services/web/variables.json"
# A file unique to this run: BuildKit keys its copy of an uploaded context by the tar's
# checksum, so without it a second run would be timed against a cached copy.
echo "$REPO" >"$CTX/app/nonce"

# Runs a command under /usr/bin/time; sets WALL (s), CPU (client user+sys, s), RSS (KiB).
measure() {
  local report="$WORK/time.txt"
  /usr/bin/time -v -o "$report" "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" \
    || { cat "$WORK/err.txt" >&2; exit 1; }
  WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$report")
  RSS=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$report")
  CPU=$(awk -F': ' '/(User|System) time \(seconds\)/ {s+=$2} END {print s}' "$report")
}

# The daemon deletes a build's extracted context after answering; let that finish so the
# next measurement does not share the disk with it.
settle() { sync; sleep "${CUTOVER_BENCH_SETTLE:-15}"; }

export DOCKER_HOST="$CUTOVER_TEST_DOCKER_HOST" AWS_ENDPOINT_URL="$CUTOVER_TEST_MOTO_ENDPOINT"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench DOCKER_BUILDKIT=0
export DOCKER_CONFIG="$WORK/docker-config"
mkdir -p "$DOCKER_CONFIG"
cd "$CTX"

# Warm the page cache so neither side pays for the first read of the files.
tar -cf - app >/dev/null

# cutover adds three OCI labels, which the classic builder runs as three LABEL steps (and
# the daemon then spends seconds on cleanup before it answers); the CLI gets the same three
# so that both pay the same daemon-side cost.
SHA=0123456789abcdef0123456789abcdef01234567
measure docker -H "$CUTOVER_TEST_DOCKER_HOST" build -q -t "bench-cli:$REPO" \
  --label "org.opencontainers.image.created=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --label "org.opencontainers.image.revision=$SHA" \
  --label "org.opencontainers.image.version=v1.0.0" app
docker_wall=$WALL docker_rss=$RSS docker_cpu=$CPU
settle
measure "$BIN" --config-dir deploy build -e bench -s web -t v1.0.0 --git-sha "$SHA"
cutover_wall=$WALL cutover_rss=$RSS cutover_cpu=$CPU
measure "$BIN" --config-dir deploy build -e bench -s web -t v1.0.0 --git-sha "$SHA"
rerun_wall=$WALL rerun_rss=$RSS rerun_cpu=$CPU

docker -H "$CUTOVER_TEST_DOCKER_HOST" rmi -f "bench-cli:$REPO" >/dev/null 2>&1 || true
# BuildKit kept a copy of the 1 GiB context in its cache (the nonce makes it unique).
if [ "$BUILDER" = buildkit ]; then
  docker -H "$CUTOVER_TEST_DOCKER_HOST" builder prune --all --force >/dev/null 2>&1 || true
fi

awk -v dw="$docker_wall" -v dr="$docker_rss" -v cw="$cutover_wall" -v cr="$cutover_rss" \
    -v rw="$rerun_wall" -v rr="$rerun_rss" -v size="$SIZE_MIB" -v files="$FILES" \
    -v dc="$docker_cpu" -v cc="$cutover_cpu" -v rc="$rerun_cpu" -v builder="$BUILDER" 'BEGIN {
  printf "context: %d MiB in %d files, same daemon; docker CLI: classic, cutover: %s\n", size, files, builder
  printf "%-34s %10s %16s %14s\n", "", "wall (s)", "client CPU (s)", "peak RSS (MiB)"
  printf "%-34s %10.2f %16.2f %14.1f\n", "docker build (CLI)", dw, dc, dr/1024
  printf "%-34s %10.2f %16.2f %14.1f\n", "cutover build (incl. ECR + push)", cw, cc, cr/1024
  printf "%-34s %10.2f %16.2f %14.1f\n", "cutover re-run (image exists)", rw, rc, rr/1024
  printf "throughput cutover/docker: %.2fx   client CPU cutover/docker: %.2fx   peak RSS cutover/docker: %.2fx\n", dw/cw, cc/dc, cr/dr
  printf "cutover throughput: %.0f MiB/s   docker: %.0f MiB/s\n", size/cw, size/dw
}'
