#!/usr/bin/env bash
# The main job on a local embedded default, until the local sandbox lands: scaffold a
# deploy/ folder in a temp dir, compile it for a release, and show the trail.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
command -v cargo >/dev/null || { echo "demo: cargo not found; install the Rust toolchain (rustup) first" >&2; exit 2; }
cargo build --quiet --manifest-path "$repo/Cargo.toml" --locked
bin="${CARGO_TARGET_DIR:-$repo/target}/debug/cutover"
work="$(mktemp -d)"
cd "$work"
echo "== cutover init   (in $work)"
"$bin" init --env production --service web
echo "== cutover render --env production --service web --tag v0.1.0"
"$bin" render --env production --service web --tag v0.1.0 \
  --image 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:0000000000000000000000000000000000000000000000000000000000000000 \
  --git-sha "$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "== build/production/web/taskdef.json"
cat build/production/web/taskdef.json
