# syntax=docker/dockerfile:1
# The cutover action image. Two ways to the same runtime:
#   docker build .                                   compile inside (release workflow)
#   docker build --target runtime-prebuilt DIR       DIR holds a `cutover` binary built
#                                                    outside (offline tests, cross builds)
# The prebuilt stage comes first so the classic builder, which builds every stage up to
# the target, never needs the Rust image for it.
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12

FROM ${RUNTIME_IMAGE} AS runtime-prebuilt
COPY cutover /usr/local/bin/cutover
ENTRYPOINT ["/usr/local/bin/cutover"]

FROM ${RUST_IMAGE} AS compile
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin cutover && cp target/release/cutover /cutover

# distroless/cc carries glibc, libgcc and CA certificates (the AWS SDK and octocrab need
# CA roots). It runs as root because GitHub runs Docker actions as the image's default
# user and the runner's file-command files (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY) need it.
FROM ${RUNTIME_IMAGE} AS runtime
COPY --from=compile /cutover /usr/local/bin/cutover
ENTRYPOINT ["/usr/local/bin/cutover"]
