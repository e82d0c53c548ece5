#!/usr/bin/env bash
# Installs everything the test suite and the local stack need on a fresh Debian machine
# (as root): Debian packages, a Python venv with pinned tools, and the Rust toolchain's
# components. Idempotent and quiet when everything is already there.
#
#   scripts/install.sh          everything (scripts/test.sh)
#   scripts/install.sh stack    only what the local stack runs on: packages and the venv
#                               (scripts/sandbox.sh), not the Rust test tools
set -euo pipefail

VENV="${CUTOVER_VENV:-$HOME/.cache/cutover/venv}"
APT_PACKAGES=(docker.io docker-registry apache2-utils busybox-static ca-certificates curl openssl python3-venv)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "install: python venv at $VENV" >&2
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
fi
req="$(dirname "$0")/requirements.txt"
stamp="$VENV/.requirements.sha"
if [ ! -f "$stamp" ] || [ "$(sha256sum < "$req")" != "$(cat "$stamp")" ]; then
  echo "install: pip install -r $req" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
  sha256sum < "$req" > "$stamp"
fi

[ "${1:-}" = stack ] && exit 0

if command -v rustup >/dev/null; then
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt >&2
fi
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest >&2
# Mutation testing of the engine (scripts/mutants.sh): pinned, since the list of equivalent
# mutants names them as this version does. A few minutes of compiling, once per machine.
cargo mutants --version 2>/dev/null | grep -q ' 27.1.0$' || cargo install --locked cargo-mutants@27.1.0 >&2
