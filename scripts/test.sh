#!/usr/bin/env bash
# The whole test suite, as README.md's Set-up section names it: installs what it needs,
# then format check, clippy, every Rust test (unit, simulation, CLI, and the real-component
# tests against the services started below), the local sandbox's story, and the terraform
# checks.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "test: cargo not found; install the Rust toolchain (rustup) first" >&2; exit 2; }
bash scripts/install.sh

VENV="${CUTOVER_VENV:-$HOME/.cache/cutover/venv}"
echo "== workflow lint: actionlint, zizmor (pedantic)" >&2
workflows=(.github/workflows/*.yml examples/github-workflows/*.yml)
"$VENV/bin/actionlint" "${workflows[@]}"
"$VENV/bin/zizmor" --offline --persona pedantic --quiet "${workflows[@]}" action.yml

echo "== module map (README.md): no cycle, no import its row does not allow" >&2
python3 scripts/modgraph.py >/dev/null

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --all-targets --locked -- -D warnings

# Real components (moto, dockerd, registry) for the adapter and build tests, stopped by pid
# whatever happens.
if [ -f scripts/services.sh ]; then
  trap 'bash scripts/services.sh stop' EXIT
  bash scripts/services.sh start
  eval "$(bash scripts/services.sh env)"
fi

echo "== cargo nextest" >&2
cargo nextest run --locked --profile ci

# Mutation testing of the engine lines this change touches (since main's merge base; none
# on main itself), bounded in time: a missed mutant fails the run (README, "How we test").
echo "== mutants of the changed engine lines" >&2
bash scripts/mutants.sh --ci

# README's first command, the whole story with the real binary, in its own folder, stack
# and ports, so it never meets the services above; it stops what it started either way.
echo "== local sandbox story" >&2
CUTOVER_SANDBOX_DIR="${CUTOVER_SANDBOX_DIR:-/tmp/cutover-sandbox-test}" bash scripts/sandbox.sh run

if [ -f scripts/test-terraform.sh ]; then
  echo "== terraform checks" >&2
  bash scripts/test-terraform.sh
fi
