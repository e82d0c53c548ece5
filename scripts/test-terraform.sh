#!/usr/bin/env bash
# Static checks of terraform/ (no terraform binary or AWS account needed): checkov must
# report 0 failed checks, then the pytest suite in tests/terraform/ (HCL parses, documented
# variables/outputs, least-privilege stage and promote roles, outputs shaped like
# service.toml, the example workflows' jobs against the roles and action.yml).
# Exits non-zero on any failure. Needs the venv from scripts/install.sh.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${CUTOVER_VENV:-$HOME/.cache/cutover/venv}"
for tool in checkov pytest; do
  if [ ! -x "$VENV/bin/$tool" ]; then
    echo "test-terraform: $VENV/bin/$tool missing; run scripts/install.sh first" >&2
    exit 2
  fi
done

# No network calls: don't fetch Bridgecrew's check metadata or look for a newer checkov.
export BC_SKIP_MAPPING=TRUE CHECKOV_SKIP_VERSION_CHECK=TRUE PYTHONDONTWRITEBYTECODE=1

echo "== checkov (terraform/)"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
status=0
"$VENV/bin/checkov" -d terraform --framework terraform --quiet --compact >"$report" 2>&1 || status=$?
cat "$report"
summary="$(grep -E '^Passed checks: [0-9]+, Failed checks: [0-9]+, Skipped checks: [0-9]+' "$report" || true)"
if [ -z "$summary" ]; then
  echo "test-terraform: checkov printed no summary (exit $status)" >&2
  exit 1
fi
if [ "$status" -ne 0 ] || ! grep -q 'Failed checks: 0,' <<<"$summary"; then
  echo "test-terraform: checkov failed: $summary" >&2
  exit 1
fi

echo "== pytest (tests/terraform/)"
"$VENV/bin/pytest" -q -p no:cacheprovider tests/terraform
