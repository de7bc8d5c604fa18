#!/usr/bin/env bash
# make test-image: the container image, built from the repository's
# Dockerfile by `make image` with Podman (no Docker daemon needed), then run
# the way deploy/ecs and deploy/k8s run it: uid 65532, read-only root
# filesystem with no tmpfs, every capability dropped, no-new-privileges,
# explicit nofile/nproc limits. Checked:
#
#   - the image's configuration (user, HEALTHCHECK, STOPSIGNAL, entrypoint,
#     architecture, version label) and `consumer version` in it;
#   - the container consumes what kafkaprobe produced to a kfake broker on
#     the host (every offset committed, one log line per record), is ready
#     (/readyz), runs as 65532 with no capabilities, no new privileges, a
#     read-only root and the limits asked for;
#   - `podman healthcheck run` (the image's HEALTHCHECK, `consumer
#     healthcheck`) passes, and the same command fails with no service behind
#     METRICS_ADDR;
#   - `podman stop` (the image's STOPSIGNAL, SIGTERM) ends it with exit code 0
#     within SHUTDOWN_TIMEOUT, and the member has left the group;
#   - the arm64 image (Graviton): built by cross-compiling, its binary is
#     linux/arm64; it runs only where arm64 binaries can (an arm64 host, or
#     qemu-user's binfmt handler), otherwise that is said and skipped.
#
# Registries are not needed: the Dockerfile takes its base images as build
# arguments, and this script assembles stand-ins from the machine itself:
#
#   BASE_IMAGE  FROM scratch: the CA bundle, /etc/passwd and /etc/group with
#               nonroot 65532, /home/nonroot, /tmp and tzdata, as
#               distroless/static:nonroot has (one per architecture)
#   GO_IMAGE    FROM scratch: the host's Go toolchain (`go env GOROOT`), a
#               shell, and a file:// module proxy holding exactly the modules
#               `go mod download` fetches (from the host's module cache, or
#               the host's GOPROXY for what it lacks); kept between runs
#               under a tag naming the Go version and go.sum
#
# Installs podman, runc (and curl) with apt-get when missing (as root). Podman runs
# with runc (crun fails on these machines' cgroups) and with ulimits below
# the host's hard limits (a container cannot be given more), through a
# containers.conf of its own (CONTAINERS_CONF).
#
#   IMAGE_TEST_PORT    kfake's port (39492); the container's metrics on +1
#   IMAGE_TEST_ARCHES  the images to build ("amd64 arm64"); the first one
#                      that can run here is run
#   IMAGE_TEST_KEEP=1  keep the built images (localhost/msk-consumer-test/consumer:<arch>)
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT=${IMAGE_TEST_PORT:-39492}
METRICS_PORT=$((PORT + 1))
ARCHES=${IMAGE_TEST_ARCHES:-amd64 arm64}
KEEP=${IMAGE_TEST_KEEP:-0}
REPO=localhost/msk-consumer-test
RECORDS=300
SHUTDOWN_TIMEOUT=10 # seconds
TOPIC=image-test
GROUP=image-test

start=$(date +%s)
phase=$start
step() {
  local now
  now=$(date +%s)
  printf '\n== %s  (+%ds)\n' "$*" $((now - phase))
  phase=$now
}
failures=()
check() { # check DESCRIPTION COMMAND...: runs it, records a failure
  local what=$1
  shift
  if "$@"; then echo "ok    $what"; else echo "FAIL  $what" >&2; failures+=("$what"); fi
}
die() { echo "test-image: $*" >&2; exit 1; }
# Podman 4 without systemd complains on every start and stop that it cannot
# schedule the periodic healthcheck (podman healthcheck run still works).
quiet_podman() { podman "$@" 2> >(grep -v 'unable to get systemd connection' >&2); }

# --- podman ----------------------------------------------------------------------

missing=()
for p in podman runc curl; do command -v "$p" >/dev/null || missing+=("$p"); done
if ((${#missing[@]})); then
  [ "$(id -u)" = 0 ] || die "needs ${missing[*]}: apt-get install -y ${missing[*]} (as root)"
  step "installing ${missing[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/msk-consumer-image.XXXXXX")
kfake_pid=
containers=()
cleanup() {
  local c
  for c in "${containers[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
  [ -z "$kfake_pid" ] || kill "$kfake_pid" 2>/dev/null || true
  if [ "$KEEP" != 1 ]; then
    for a in $ARCHES; do podman rmi -f "$REPO/consumer:$a" >/dev/null 2>&1 || true; done
  fi
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The limits: the deploy files' (ECS nofile 65536), or the host's hard limit
# where that is lower.
limit() { # limit HOSTLIMIT WANT
  if [ "$1" = unlimited ] || [ "$1" -ge "$2" ]; then echo "$2"; else echo "$1"; fi
}
NOFILE=$(limit "$(ulimit -Hn)" 65536)
NPROC=$(limit "$(ulimit -Hu)" 4096)
cat > "$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF=$work/containers.conf
podman --version

# --- stand-ins for the base images --------------------------------------------------

host_arch=$(go env GOARCH)
goroot=$(go env GOROOT)
gover=$(go env GOVERSION)

step "stand-in BASE_IMAGE (scratch + CA bundle, nonroot 65532, tzdata) for: $ARCHES"
[ -f /etc/ssl/certs/ca-certificates.crt ] || die "no CA bundle at /etc/ssl/certs/ca-certificates.crt (apt-get install ca-certificates)"
[ -d /usr/share/zoneinfo ] || die "no /usr/share/zoneinfo (apt-get install tzdata)"
b=$work/base
mkdir -p "$b/etc/ssl/certs" "$b/usr/share" "$b/tmp" "$b/home/nonroot"
cp /etc/ssl/certs/ca-certificates.crt "$b/etc/ssl/certs/"
cp -a /usr/share/zoneinfo "$b/usr/share/"
chmod 1777 "$b/tmp"
cat > "$b/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat > "$b/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
cat > "$b/Containerfile" <<'EOF'
FROM scratch
COPY --chown=0:0 etc /etc
COPY --chown=0:0 usr /usr
COPY --chown=0:0 tmp /tmp
COPY --chown=65532:65532 home /home
EOF
for a in $ARCHES; do
  # --no-cache: Podman 4's layer cache does not tell platforms apart.
  podman build -q --no-cache --platform "linux/$a" -t "$REPO/base:$a" "$b" >/dev/null
done

# The builder is kept between runs: a tag per Go version, go.sum and recipe.
key=$( { echo "$gover"; cat go.sum; sed -n '/^# --- stand-ins/,/^# --- the image/p' "$0"; } | sha256sum | cut -c1-12)
GO_IMAGE=$REPO/go:${gover#go}-$key
if podman image exists "$GO_IMAGE"; then
  step "stand-in GO_IMAGE $GO_IMAGE (kept from an earlier run)"
else
  step "stand-in GO_IMAGE $GO_IMAGE ($goroot, a shell, the modules of go.sum)"
  g=$work/go
  mkdir -p "$g/rootfs/usr/local/go" "$g/rootfs/bin" "$g/rootfs/etc" "$g/rootfs/tmp" "$g/rootfs/root" "$g/rootfs/go"
  # The toolchain without its tests, docs and own sources (src/cmd), which a
  # build of another module never reads.
  tar -C "$goroot" --exclude=./test --exclude=./api --exclude=./doc --exclude=./misc \
    --exclude=./src/cmd --exclude=testdata -cf - . | tar -C "$g/rootfs/usr/local/go" -xf -
  cp /bin/sh "$g/rootfs/bin/sh"
  for lib in $(ldd /bin/sh 2>/dev/null | grep -o '/[^ ]*'); do
    mkdir -p "$g/rootfs$(dirname "$lib")"
    cp -L "$lib" "$g/rootfs$lib"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$g/rootfs/etc/passwd"
  echo 'root:x:0:' > "$g/rootfs/etc/group"
  chmod 1777 "$g/rootfs/tmp"
  # Exactly what the Dockerfile's `go mod download` asks for, in the layout
  # of a module proxy (a module cache's cache/download is one).
  GOMODCACHE=$g/mod GOFLAGS=-mod=mod \
    GOPROXY="file://$(go env GOMODCACHE)/cache/download,$(go env GOPROXY)" go mod download
  mv "$g/mod/cache/download" "$g/rootfs/goproxy"
  cat > "$g/Containerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/go/bin:/go/bin:/bin HOME=/root GOPATH=/go GOTOOLCHAIN=local \
    GOPROXY=file:///goproxy GOSUMDB=off
WORKDIR /go
EOF
  podman build -q --platform "linux/$host_arch" -t "$GO_IMAGE" "$g" >/dev/null
  chmod -R u+w "$g" && rm -rf "$g"
  for old in $(podman images --format '{{.Repository}}:{{.Tag}}' "$REPO/go"); do
    [ "$old" = "$GO_IMAGE" ] || podman rmi "$old" >/dev/null 2>&1 || true
  done
fi

# --- the image -----------------------------------------------------------------------

version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
for a in $ARCHES; do
  step "make image ENGINE=podman PLATFORM=linux/$a"
  make --no-print-directory image ENGINE=podman IMAGE="$REPO/consumer:$a" PLATFORM="linux/$a" \
    GO_IMAGE="$GO_IMAGE" BASE_IMAGE="$REPO/base:$a" VERSION="$version" > "$work/build-$a.log" 2>&1 ||
    { tail -n 40 "$work/build-$a.log"; die "make image for linux/$a failed"; }
  img=$REPO/consumer:$a
  inspect() { podman image inspect --format "$1" "$img"; }
  check "$a: architecture linux/$a" test "$(inspect '{{.Os}}/{{.Architecture}}')" = "linux/$a"
  check "$a: user 65532:65532" test "$(inspect '{{.Config.User}}')" = 65532:65532
  check "$a: entrypoint /consumer, command run" test "$(inspect '{{json .Config.Entrypoint}} {{json .Config.Cmd}}')" = '["/consumer"] ["run"]'
  check "$a: STOPSIGNAL SIGTERM" test "$(inspect '{{.Config.StopSignal}}')" = SIGTERM
  check "$a: HEALTHCHECK /consumer healthcheck" test "$(inspect '{{json .Config.Healthcheck.Test}}')" = '["CMD","/consumer","healthcheck"]'
  check "$a: version label $version" test "$(inspect '{{index .Labels "org.opencontainers.image.version"}}')" = "$version"
  echo "      size $(podman image inspect --format '{{.Size}}' "$img" | awk '{printf "%.1f MiB", $1/1048576}')"
  c=$(podman create --no-healthcheck --platform "linux/$a" "$img")
  podman cp "$c:/consumer" "$work/consumer-$a"
  podman rm "$c" >/dev/null
  check "$a: the binary is GOOS=linux GOARCH=$a, static" \
    bash -c "go version -m '$work/consumer-$a' | grep -qx \$'\tbuild\tGOARCH=$a' && go version -m '$work/consumer-$a' | grep -qx \$'\tbuild\tCGO_ENABLED=0'"
  if command -v file >/dev/null; then echo "      $(file -b "$work/consumer-$a" | cut -d, -f1-2,5)"; fi
done

# --- running it -------------------------------------------------------------------

run_arch=
for a in $ARCHES; do
  if [ "$a" = "$host_arch" ] || [ -e "/proc/sys/fs/binfmt_misc/qemu-$( [ "$a" = arm64 ] && echo aarch64 || echo x86_64)" ]; then
    run_arch=$a
    break
  fi
done
for a in $ARCHES; do
  [ "$a" = "$run_arch" ] || echo "not run: linux/$a (this machine is linux/$host_arch with no binfmt emulation for it); built and inspected only"
done
[ -n "$run_arch" ] || die "none of $ARCHES can run here"
img=$REPO/consumer:$run_arch

step "linux/$run_arch: consumer version"
out=$(podman run --rm --no-healthcheck --network none "$img" version)
echo "      $out"
check "consumer version names $version" grep -q "consumer $version " <<<"$out"

step "kfake on 127.0.0.1:$PORT, $RECORDS records to $TOPIC"
mkdir -p bin
go build -o bin/kfake ./test/bench/kfake
go build -o bin/kafkaprobe ./test/kafkaprobe
bin/kfake -port "$PORT" > "$work/kfake.log" 2>&1 &
kfake_pid=$!
for _ in $(seq 1 40); do grep -q '^ready' "$work/kfake.log" && break; sleep 0.25; done
grep -q '^ready' "$work/kfake.log" || { cat "$work/kfake.log"; die "kfake did not start"; }
bin/kafkaprobe topic -brokers "127.0.0.1:$PORT" -topic "$TOPIC" -partitions 3
bin/kafkaprobe produce -brokers "127.0.0.1:$PORT" -topic "$TOPIC" -n "$RECORDS"

step "linux/$run_arch: the container, as the deploy files run it"
ctr=msk-consumer-test-$$
containers+=("$ctr")
# --health-interval disable: Podman schedules the periodic check with
# systemd timers, and there is no systemd here; the image's HEALTHCHECK is
# kept and run below by `podman healthcheck run`.
quiet_podman run -d --name "$ctr" --health-interval disable \
  --user 65532:65532 --read-only --read-only-tmpfs=false --cap-drop ALL \
  --security-opt no-new-privileges --memory 256m \
  --ulimit "nofile=$NOFILE:$NOFILE" --ulimit "nproc=$NPROC:$NPROC" --network host \
  -e KAFKA_BROKERS="127.0.0.1:$PORT" -e KAFKA_AUTH=none -e KAFKA_TOPICS="$TOPIC" \
  -e KAFKA_GROUP_ID="$GROUP" -e HANDLER=log -e METRICS_ADDR="127.0.0.1:$METRICS_PORT" \
  -e SHUTDOWN_TIMEOUT="${SHUTDOWN_TIMEOUT}s" -e LOG_FORMAT=json \
  "$img" > /dev/null
ready=0
for _ in $(seq 1 120); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$METRICS_PORT/readyz" 2>/dev/null; then ready=1; break; fi
  [ "$(podman inspect --format '{{.State.Running}}' "$ctr")" = true ] || break
  sleep 0.5
done
check "ready: /readyz answers 200" test "$ready" = 1
check "every record consumed and committed" \
  bin/kafkaprobe committed -brokers "127.0.0.1:$PORT" -group "$GROUP" -topic "$TOPIC" -want "$RECORDS" -timeout 60s
lines=$(podman logs "$ctr" 2>&1 | grep -c '"msg":"record"' || true)
check "one log line per record ($lines of $RECORDS)" test "$lines" = "$RECORDS"

pid=$(podman inspect --format '{{.State.Pid}}' "$ctr")
status=/proc/$pid/status
check "runs as uid/gid 65532" bash -c "grep -Eq '^Uid:\s+65532\s+65532\s+65532\s+65532$' $status && grep -Eq '^Gid:\s+65532\s' $status"
check "no capabilities (CapEff, CapBnd 0)" bash -c "grep -Eq '^CapEff:\s+0+$' $status && grep -Eq '^CapBnd:\s+0+$' $status"
check "no new privileges" grep -Eq '^NoNewPrivs:\s+1$' "$status"
check "read-only root filesystem" bash -c "awk '\$5 == \"/\" { print \$6 }' /proc/$pid/mountinfo | grep -q '^ro'"
check "no tmpfs in it (/tmp is the image's, read-only)" bash -c "! awk '\$5 ~ \"^/(tmp|run|var/tmp)\$\"' /proc/$pid/mountinfo | grep -q ."
# 256 MiB, the sizing rule's minimum for the default MAX_BUFFERED_BYTES
# (64 MiB): the service finds the container's limit and sets Go's to
# 2.5 × 64 MiB + 24 MiB, below 90% of it.
check "Go memory limit 184 MiB in a 256 MiB container" \
  bash -c "podman logs '$ctr' 2>&1 | grep '\"msg\":\"memory limit set' | grep '\"limit_bytes\":192937984' | grep -q '\"container_memory_bytes\":268435456'"
check "nofile $NOFILE, nproc $NPROC" bash -c "grep -Eq '^Max open files\s+$NOFILE\s+$NOFILE' /proc/$pid/limits && grep -Eq '^Max processes\s+$NPROC\s+$NPROC' /proc/$pid/limits"

step "healthcheck"
check "podman healthcheck run (the image's HEALTHCHECK) passes" podman healthcheck run "$ctr"
check "podman records the container healthy" test "$(podman inspect --format '{{.State.Health.Status}}' "$ctr")" = healthy
check "consumer healthcheck fails with nothing behind METRICS_ADDR" \
  bash -c "! podman run --rm --no-healthcheck --network host -e METRICS_ADDR=127.0.0.1:$((PORT + 2)) '$img' healthcheck 2>/dev/null"

step "podman stop (STOPSIGNAL SIGTERM), within SHUTDOWN_TIMEOUT=${SHUTDOWN_TIMEOUT}s"
t0=$(date +%s%N)
quiet_podman stop -t $((SHUTDOWN_TIMEOUT * 4)) "$ctr" > /dev/null
took_ms=$((($(date +%s%N) - t0) / 1000000))
code=$(podman inspect --format '{{.State.ExitCode}}' "$ctr")
echo "      exit code $code after ${took_ms} ms"
check "exit code 0" test "$code" = 0
check "stopped within SHUTDOWN_TIMEOUT (${took_ms} ms)" test "$took_ms" -lt $((SHUTDOWN_TIMEOUT * 1000))
check "logged a clean stop" bash -c "podman logs '$ctr' 2>&1 | grep -q '\"msg\":\"stopped cleanly\"'"
check "the member left the group" bash -c "bin/kafkaprobe members -brokers 127.0.0.1:$PORT -group $GROUP | grep -qx 'Empty 0'"

echo
if ((${#failures[@]})); then
  echo "logs of the container:"
  podman logs "$ctr" 2>&1 | grep -v '"msg":"record"' | tail -n 40 || true
  echo "test-image: ${#failures[@]} check(s) failed:" >&2
  printf '  - %s\n' "${failures[@]}" >&2
  exit 1
fi
echo "test-image: all checks passed in $(($(date +%s) - start))s"
