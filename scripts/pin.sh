#!/usr/bin/env bash
# Build the action image from prebuilt binaries, push it, pin action.yml (and the
# examples) to what was pushed, and check the pin: the part of a release that needs no
# GitHub. .github/workflows/release.yml runs it; tests/all/action_image.rs runs it against
# the local registry and then runs the pinned image the way the runner does.
#
#   scripts/pin.sh build REPOSITORY TAG BIN_DIR   image from BIN_DIR/<arch>/cutover (amd64,
#                                                 arm64: whichever exist), pushed as
#                                                 REPOSITORY:TAG; prints REPOSITORY@sha256:…
#   scripts/pin.sh action REPOSITORY@sha256:…     action.yml's runs.image becomes that image
#   scripts/pin.sh examples OWNER/NAME SHA VERSION
#                                                 the examples' `uses:` of the action become
#                                                 OWNER/NAME@SHA # VERSION
#   scripts/pin.sh check                          action.yml pins a real digest, and that
#                                                 image pulls and runs
#   scripts/pin.sh all REPOSITORY TAG BIN_DIR     build, action, check; prints the reference
#
# Environment: CUTOVER_PIN_ROOT (the checkout to rewrite; default this one), CA_BUNDLE
# (default /etc/ssl/certs/ca-certificates.crt), CUTOVER_PIN_EXTRA_ROOTFS (a folder merged
# into every arch's root filesystem; tests only, e.g. the shared libraries of a dynamically
# linked test binary). Docker is reached the usual way (DOCKER_HOST, DOCKER_CONFIG with a
# login to the registry). Several binaries need `docker buildx` (multi-platform push); one
# amd64 binary builds with plain `docker build` and `docker push`.
set -euo pipefail

HERE="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="${CUTOVER_PIN_ROOT:-$HERE}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

die() { echo "pin: $*" >&2; exit 2; }

# A digest reference is REPOSITORY@sha256:<64 hex>, and never the all-zero placeholder.
check_ref() {
  local ref="$1"
  [[ "$ref" =~ ^[a-z0-9._:/-]+@sha256:[0-9a-f]{64}$ ]] \
    || die "\`$ref\` is not REPOSITORY@sha256:<64 hex digits>"
  [[ "$ref" != *@sha256:0000000000000000000000000000000000000000000000000000000000000000 ]] \
    || die "\`$ref\` is the all-zero placeholder, not a published image"
}

cmd_build() {
  local repository="$1" tag="$2" bins="$3"
  [ -f "$CA_BUNDLE" ] || die "no CA bundle at $CA_BUNDLE (install ca-certificates or set CA_BUNDLE)"
  local ctx
  ctx="$(mktemp -d)"
  CTX="$ctx"
  trap 'rm -rf "$CTX"' EXIT
  cp "$HERE/Dockerfile" "$ctx/Dockerfile"
  local arches=()
  for arch in amd64 arm64; do
    [ -f "$bins/$arch/cutover" ] || continue
    arches+=("$arch")
    local root="$ctx/$arch"
    mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs"
    install -m 0755 "$bins/$arch/cutover" "$root/usr/local/bin/cutover"
    install -m 0644 "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
    if [ -n "${CUTOVER_PIN_EXTRA_ROOTFS:-}" ]; then
      cp -a "$CUTOVER_PIN_EXTRA_ROOTFS/." "$root/"
    fi
  done
  [ "${#arches[@]}" -gt 0 ] || die "no binary at $bins/amd64/cutover or $bins/arm64/cutover"

  if [ "${#arches[@]}" -gt 1 ] || [ "${arches[0]}" != amd64 ]; then
    docker buildx version >/dev/null 2>&1 \
      || die "building for ${arches[*]} needs docker buildx (one amd64 binary does not)"
    local platforms meta
    platforms="$(printf 'linux/%s,' "${arches[@]}")"
    meta="$ctx/metadata.json"
    docker buildx build --quiet --platform "${platforms%,}" --target runtime-prebuilt \
      --tag "$repository:$tag" --push --metadata-file "$meta" "$ctx" >&2
    local digest
    digest="$(jq -r '."containerimage.digest"' "$meta")"
    echo "$repository@$digest"
  else
    docker build --quiet --build-arg TARGETARCH=amd64 --target runtime-prebuilt \
      --tag "$repository:$tag" "$ctx" >&2
    docker push --quiet "$repository:$tag" >&2
    # The digest the registry stored for this push, as `docker pull` will ask for it.
    local ref
    ref="$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$repository:$tag" \
      | grep -F "$repository@" | head -n1)"
    [ -n "$ref" ] || die "the registry gave no digest for $repository:$tag"
    echo "$ref"
  fi
}

cmd_action() {
  local ref="$1"
  check_ref "$ref"
  local file="$ROOT/action.yml"
  grep -qE '^  image: ' "$file" || die "$file has no runs.image line to pin"
  sed -i -E "s|^  image: .*$|  image: docker://$ref|" "$file"
}

cmd_examples() {
  local action="$1" sha="$2" version="$3"
  [[ "$sha" =~ ^[0-9a-f]{40}$ ]] || die "\`$sha\` is not a 40-hex-digit commit SHA"
  [[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]*)?$ ]] \
    || die "\`$version\` is not a version like v1.2.3"
  local n=0
  for file in "$ROOT"/examples/github-workflows/*.yml; do
    # Every `uses:` of the action, whatever it pinned before (main's @main, an older SHA).
    n=$((n + $(grep -cE 'uses: [A-Za-z0-9_.-]+/cutover@' "$file" || true)))
    sed -i -E "s|uses: [A-Za-z0-9_.-]+/cutover@[^ ]*( #.*)?$|uses: $action@$sha # $version|" "$file"
  done
  [ "$n" -gt 0 ] || die "no \`uses: …/cutover@…\` in $ROOT/examples/github-workflows/"
}

cmd_check() {
  local file="$ROOT/action.yml" line ref
  line="$(grep -E '^  image: ' "$file")" || die "$file has no runs.image line"
  ref="${line#  image: }"
  [[ "$ref" == docker://* ]] || die "$file runs.image is \`$ref\`, not a pinned docker:// image"
  ref="${ref#docker://}"
  check_ref "$ref"
  docker pull --quiet "$ref" >/dev/null || die "cannot pull $ref: was it pushed?"
  local out
  out="$(docker run --rm "$ref" --version)" || die "$ref does not run: $out"
  [[ "$out" == cutover* ]] || die "$ref --version printed \`$out\`, not cutover's version"
  echo "pin: action.yml runs $ref ($out)" >&2
}

case "${1:-}" in
  build) [ $# -eq 4 ] || die "usage: pin.sh build REPOSITORY TAG BIN_DIR"; cmd_build "$2" "$3" "$4" ;;
  action) [ $# -eq 2 ] || die "usage: pin.sh action REPOSITORY@sha256:DIGEST"; cmd_action "$2" ;;
  examples) [ $# -eq 4 ] || die "usage: pin.sh examples OWNER/NAME SHA VERSION"; cmd_examples "$2" "$3" "$4" ;;
  check) cmd_check ;;
  all)
    [ $# -eq 4 ] || die "usage: pin.sh all REPOSITORY TAG BIN_DIR"
    ref="$(cmd_build "$2" "$3" "$4")"
    cmd_action "$ref"
    cmd_check
    echo "$ref"
    ;;
  *) die "usage: pin.sh build|action|examples|check|all … (see the top of scripts/pin.sh)" ;;
esac
