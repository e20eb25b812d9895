# syntax=docker/dockerfile:1
#
# flux-status-exporter container image: a static binary on distroless, running as non-root.
#
#   docker build --build-arg FLUX_STATUS_EXPORTER_COMMIT=$(git rev-parse --short=12 HEAD) \
#     -t ghcr.io/OWNER/flux-status-exporter:0.1.0 .
#
# The deploy/ manifests run it with a read-only root filesystem as uid/gid 65532, the
# distroless "nonroot" user.

# Build: musl on Alpine links a fully static binary (ring's C and assembly included).
FROM rust:1.88-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
# The image has no .git: the build commit comes from this argument (see build.rs).
ARG FLUX_STATUS_EXPORTER_COMMIT=unknown
ENV FLUX_STATUS_EXPORTER_COMMIT=${FLUX_STATUS_EXPORTER_COMMIT}
# The whole tree (less what .dockerignore leaves out): Cargo checks that every target the
# manifest declares, benches included, exists.
COPY . .
RUN cargo build --release --locked --bin flux-status-exporter \
    && cp target/release/flux-status-exporter /flux-status-exporter

# Run: no shell, no package manager; CA certificates for the forges' HTTPS, tzdata, and the
# binary only.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /flux-status-exporter /usr/local/bin/flux-status-exporter
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/flux-status-exporter"]
CMD ["run"]
