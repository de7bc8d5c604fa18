# syntax=docker/dockerfile:1
#
# msk-consumer: a static binary on distroless, running as nonroot (65532).
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#                --build-arg COMMIT=$(git rev-parse --short HEAD) \
#                --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t msk-consumer .
#
# Multi-arch (Graviton): docker buildx build --platform linux/amd64,linux/arm64 ...
# The build stage runs on the builder's platform and cross-compiles.
#
# The image writes nothing to its filesystem: run it with a read-only root
# filesystem (ECS readonlyRootFilesystem, Kubernetes readOnlyRootFilesystem).
# Pin the base images by digest in your registry mirror for reproducible builds.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath \
      -ldflags "-s -w -X github.com/msk-consumer/msk-consumer/service.version=${VERSION} -X github.com/msk-consumer/msk-consumer/service.commit=${COMMIT}" \
      -o /out/consumer ./cmd/consumer

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="msk-consumer" \
      org.opencontainers.image.description="Kafka consumer service for Amazon MSK: batches, decodes, hands records to a handler, dead-letters what cannot be handled" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"
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
