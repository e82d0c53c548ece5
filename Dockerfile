# syntax=docker/dockerfile:1
# The cutover action image: a static `cutover` and a CA bundle on an empty base, nothing
# else (no shell, no libc to patch, no base image to trust). Two ways to the same image:
#
#   docker build .                  compile inside (action.yml on main runs this: the
#                                   runner builds it from the checked-out action)
#   docker build --target runtime-prebuilt DIR
#                                   DIR/<arch>/ is the image's root filesystem, as
#                                   scripts/pin.sh lays it out: usr/local/bin/cutover and
#                                   etc/ssl/certs/ca-certificates.crt (what releases ship)
#
# The prebuilt stage comes first and copies from the context only, so the classic builder,
# which builds every stage up to the target, never needs the Rust image for it; building
# the default target on the repository instead copies a few source files into a stage
# nothing uses.
#
# The Rust image is pinned by the digest of its multi-arch index (so one pin serves amd64
# and arm64); bump both together.
ARG RUST_IMAGE=rust:1.95-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082

FROM scratch AS runtime-prebuilt
# BuildKit sets TARGETARCH per platform (amd64, arm64); the classic builder needs
# --build-arg TARGETARCH=amd64 (scripts/pin.sh passes it).
ARG TARGETARCH
COPY ${TARGETARCH}/ /
ENTRYPOINT ["/usr/local/bin/cutover"]

FROM ${RUST_IMAGE} AS compile
WORKDIR /src
COPY . .
# glibc linked statically (+crt-static) runs on `scratch`. DNS still works there: glibc
# 2.34+ carries its files and dns lookups inside libc, and Docker mounts /etc/hosts and
# /etc/resolv.conf into every container (scripts/bench-image.sh checks a lookup by name).
RUN target="$(uname -m)-unknown-linux-gnu" \
 && RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --bin cutover --target "$target" \
 && cp "target/$target/release/cutover" /cutover

# rustls reads the CA roots from /etc/ssl/certs/ca-certificates.crt (or SSL_CERT_FILE):
# the AWS SDK, octocrab and the registry client need them. It runs as root because GitHub
# runs Docker actions as the image's default user and the runner's file-command files
# (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY) need it.
FROM scratch AS runtime
COPY --from=compile /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=compile /cutover /usr/local/bin/cutover
ENTRYPOINT ["/usr/local/bin/cutover"]
