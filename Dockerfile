# syntax=docker/dockerfile:1
#
# msk-consumer: a static binary on distroless, running as nonroot (65532).
# Builds with Docker (BuildKit) and with Podman/Buildah alike (make image
# uses whichever is installed):
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#                --build-arg COMMIT=$(git rev-parse --short HEAD) \
#                --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t msk-consumer .
#
# Graviton (arm64): --platform linux/arm64 (docker buildx build --platform
# linux/amd64,linux/arm64 for both in one manifest). The build stage runs on
# the builder's own platform and cross-compiles, so no emulation is needed.
#
# The base images are build arguments, for a registry mirror or a pinned
# digest (GO_IMAGE=mirror.example.com/golang@sha256:...): GO_IMAGE must
# provide the Go toolchain, a shell and a module proxy it can reach (its
# GOPROXY); BASE_IMAGE what distroless/static has: the CA bundle, tzdata and
# the user 65532. scripts/image/test.sh builds with stand-ins it assembles
# from the host when registries are out of reach.
#
# The image writes nothing to its filesystem: run it with a read-only root
# filesystem (ECS readonlyRootFilesystem, Kubernetes readOnlyRootFilesystem).

ARG GO_IMAGE=golang:1.26-bookworm
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Set by the engine from --platform (the host's platform without it).
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath \
      -ldflags "-s -w -X github.com/msk-consumer/msk-consumer/service.version=${VERSION} -X github.com/msk-consumer/msk-consumer/service.commit=${COMMIT}" \
      -o /out/consumer ./cmd/consumer

# --platform=$TARGETPLATFORM is what an engine does anyway; spelled out for
# Podman 4, which would otherwise keep the build stage's platform.
# hadolint ignore=DL3065
FROM --platform=$TARGETPLATFORM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG VERSION=dev
ARG COMMIT=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="msk-consumer" \
      org.opencontainers.image.description="Kafka consumer service for Amazon MSK: batches, decodes, hands records to a handler, dead-letters what cannot be handled" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
COPY --from=build --chown=0:0 --chmod=0555 /out/consumer /consumer
# nonroot in distroless is 65532:65532; numeric, so that Kubernetes'
# runAsNonRoot can verify it.
USER 65532:65532
# METRICS_ADDR (default :9090): /metrics, /healthz, /readyz.
EXPOSE 9090
# `consumer healthcheck` asks this host's /healthz (it reads METRICS_ADDR);
# the image has no shell and no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/consumer", "healthcheck"]
# On SIGTERM the service stops fetching, finishes in-flight batches, commits
# and leaves the group within SHUTDOWN_TIMEOUT (default 30s): give it longer
# than that before SIGKILL (docker stop -t 40, ECS stopTimeout, Kubernetes
# terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/consumer"]
CMD ["run"]
