#!/usr/bin/env bash
# Mutation testing of the engine (issue 19): cargo-mutants breaks src/engine/ and
# src/history.rs one change at a time and runs the simulation and the focused engine tests
# against each broken build (.cargo/mutants.toml says which tests). A mutant that no test
# notices is a gap in the tests, unless scripts/mutants-equivalent.txt names it with the
# reason it cannot change behaviour. Exits non-zero on any other missed mutant.
#
#   scripts/mutants.sh [FILE...] [CARGO-MUTANTS OPTION...]
#                                  every mutant of the engine (or of FILEs), on demand
#   scripts/mutants.sh --ci        only mutants on engine lines changed since the merge base
#                                  with main (what scripts/test.sh runs); nothing changed,
#                                  nothing to do
#
# CUTOVER_SIM_SEEDS         simulation seeds per sweep (default 100; the normal suite: 2,000)
# CUTOVER_MUTANTS_BUDGET    --ci: stop starting mutants after this many seconds (default 900)
# CUTOVER_MUTANTS_TIMEOUT   test timeout per mutant in seconds (--ci; the full run derives it
#                           from the unmutated baseline)
# CUTOVER_MUTANTS_BASE      --ci: the branch to diff against (default main)
# Results land in mutants.out/ (caught.txt, missed.txt, timeout.txt, unviable.txt,
# outcomes.json, one log per mutant under logs/).
set -euo pipefail
cd "$(dirname "$0")/.."

EQUIVALENTS=scripts/mutants-equivalent.txt
WANT_VERSION=27.1.0

if ! command -v cargo-mutants >/dev/null; then
  echo "mutants: cargo-mutants is not installed; scripts/install.sh installs it (cargo install --locked cargo-mutants@$WANT_VERSION)" >&2
  exit 2
fi
# The equivalents file names mutants as this version spells them.
if ! cargo mutants --version | grep -q " $WANT_VERSION\$"; then
  echo "mutants: warning: $(cargo mutants --version), the equivalents list was written with $WANT_VERSION" >&2
fi

export CUTOVER_SIM_SEEDS="${CUTOVER_SIM_SEEDS:-100}"
# Its own target dir per checkout: cargo-mutants builds a copy of the tree, and two trees
# sharing one target dir can run each other's code. Debug info off for the workspace crate
# (dependencies already build without it): a mutant costs an incremental rebuild and a
# link, and nobody reads a backtrace of a mutant.
export CARGO_TARGET_DIR="${CUTOVER_MUTANTS_TARGET:-$HOME/.cache/cutover/target-mutants-$(pwd | sha256sum | cut -c1-8)}"
export CARGO_PROFILE_DEV_DEBUG=false CARGO_PROFILE_TEST_DEBUG=false CARGO_INCREMENTAL=1

args=(--jobs 1)
budget=0
if [ "${1:-}" = --ci ]; then
  base_ref="${CUTOVER_MUTANTS_BASE:-main}"
  base=$(git merge-base HEAD "$base_ref" 2>/dev/null || true)
  if [ -z "$base" ]; then
    echo "mutants --ci: no merge base with '$base_ref' (set CUTOVER_MUTANTS_BASE to the branch this change goes into)" >&2
    exit 2
  fi
  diff=$(mktemp)
  trap 'rm -f "$diff"' EXIT
  # Working tree against the merge base: committed and uncommitted engine changes alike.
  git diff "$base" -- src/engine src/history.rs > "$diff"
  if [ ! -s "$diff" ]; then
    echo "mutants --ci: no engine line changed since ${base:0:12} ($base_ref): nothing to mutate" >&2
    exit 0
  fi
  # The test command has just run the same tests unmutated: no baseline again.
  args+=(--in-diff "$diff" --baseline skip --timeout "${CUTOVER_MUTANTS_TIMEOUT:-240}")
  budget="${CUTOVER_MUTANTS_BUDGET:-900}"
  todo=$(cargo mutants --list --in-diff "$diff" 2>/dev/null | grep -c . || true)
  echo "mutants --ci: $todo mutants on the engine lines changed since ${base:0:12}, within ${budget}s" >&2
  if [ "$todo" = 0 ]; then
    exit 0
  fi
else
  # A name filter, not --file: cargo-mutants adds --file globs to the config's
  # examine_globs instead of narrowing them.
  # Options (starting with -) go to cargo mutants as they are, e.g. --shuffle or
  # --re='REGEX' to re-test chosen mutants (one word each: FILE arguments follow no option).
  for f in "$@"; do
    case $f in
      -*) args+=("$f") ;;
      *) args+=(--re "^${f//./\\.}:") ;;
    esac
  done
  if [ -n "${CUTOVER_MUTANTS_TIMEOUT:-}" ]; then
    args+=(--timeout "$CUTOVER_MUTANTS_TIMEOUT")
  fi
fi

start=$(date +%s)
set +e
if [ "$budget" -gt 0 ]; then
  # SIGINT: cargo-mutants stops the mutant in flight and keeps what it has judged.
  timeout --signal=INT "$budget" cargo mutants "${args[@]}"
else
  cargo mutants "${args[@]}"
fi
rc=$?
set -e
elapsed=$(( $(date +%s) - start ))

case $rc in
  0 | 2 | 3 | 124 | 130) ;; # judged below: all caught, missed, timed out, out of budget
  4) echo "mutants: the tests fail without any mutation; fix them first (mutants.out/log/baseline.log)" >&2; exit 1 ;;
  *) echo "mutants: cargo mutants failed (exit $rc)" >&2; exit 1 ;;
esac

python3 - "$EQUIVALENTS" "$elapsed" "$rc" "${todo:-}" <<'PY'
"""Count outcomes per module and judge the missed mutants against the equivalents list."""
import collections, re, sys
from pathlib import Path

equivalents_file, elapsed, rc, todo = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
out = Path("mutants.out")

def key(name):
    # Line and column move whenever the file is edited; the file, the mutation and the
    # function it is in do not.
    return re.sub(r"^([^:]+):\d+(:\d+)?: ", r"\1: ", name.strip())

def read(kind):
    path = out / f"{kind}.txt"
    return [l.strip() for l in path.read_text().splitlines() if l.strip()] if path.exists() else []

outcomes = {k: read(k) for k in ("caught", "missed", "timeout", "unviable")}
equivalent = collections.Counter()
for line in Path(equivalents_file).read_text().splitlines():
    name, _, reason = line.partition(" # ")
    if name.strip() and not name.lstrip().startswith("#"):
        if not reason.strip():
            sys.exit(f"mutants: {equivalents_file}: no reason given for: {name.strip()}")
        equivalent[key(name)] += 1

left = equivalent.copy()
unexplained, explained = [], []
for m in outcomes["missed"]:
    if left[key(m)] > 0:
        left[key(m)] -= 1
        explained.append(m)
    else:
        unexplained.append(m)

per = collections.defaultdict(collections.Counter)
for kind, names in outcomes.items():
    for n in names:
        per[n.split(":")[0]][kind] += 1
for n in explained:
    per[n.split(":")[0]]["equivalent"] += 1

def score(c):
    # Timed out counts as caught: the mutant hung the engine, which a test noticed.
    real = c["caught"] + c["timeout"] + c["missed"] - c["equivalent"]
    return f"{100 * (c['caught'] + c['timeout']) / real:5.1f}%" if real else "    -"

print(f"{'module':28} {'caught':>6} {'missed':>6} {'equiv':>6} {'timeout':>7} {'unviable':>8} {'score':>6}")
total = collections.Counter()
for module in sorted(per):
    c = per[module]
    total.update(c)
    print(f"{module:28} {c['caught']:6} {c['missed']:6} {c['equivalent']:6} {c['timeout']:7} {c['unviable']:8} {score(c)}")
print(f"{'all':28} {total['caught']:6} {total['missed']:6} {total['equivalent']:6} {total['timeout']:7} {total['unviable']:8} {score(total)}")
tested = sum(len(v) for v in outcomes.values())
if tested:
    print(f"{tested} mutants in {elapsed}s: {elapsed / tested:.0f}s per mutant")
if rc in (124, 130):
    print(f"mutants: stopped at the time budget after {tested} of {todo or '?'} mutants; "
          "the rest were not run: scripts/mutants.sh FILE runs a whole file")
for m in unexplained:
    print(f"MISSED  {m}")
if unexplained:
    print(f"mutants: {len(unexplained)} missed mutants: kill each with a test of the behaviour it "
          f"breaks, or list it in {equivalents_file} with the reason it changes nothing")
    sys.exit(1)
PY
