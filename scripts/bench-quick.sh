#!/usr/bin/env bash
# make bench-quick: a guard against a slowdown of the pipeline, in a few
# minutes. Builds the service from the current tree and from a previous ref
# (BENCH_OLD: default the last tag, else 0c98486, the main of 2026-12-06),
# starts kfake in its own process, preloads 500,000 records of ~200 B and
# ~1 KB, and runs cases 1 to 4 of make bench and 3k (ceiling; bytes+discard;
# avro+discard; avro+HTTP sink; avro+discard in key order) one round each, new and old in turns on the
# same broker. Prints new/old per case and exits non-zero when one is below
# BENCH_QUICK_MIN (0.8). The machine's speed drifts: read the ratios, not the
# records/s.
#
#   scripts/bench-quick.sh                       # against the default ref
#   BENCH_OLD=013dd39 scripts/bench-quick.sh     # against another ref
#   scripts/bench-quick.sh -- -rounds 3          # harness flags after --
set -euo pipefail
cd "$(dirname "$0")/.."
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; break ;;
    *) echo "usage: $0 [-- harness flags]" >&2; exit 2 ;;
  esac
done
GO=${GO:-go}
old_ref=${BENCH_OLD:-$(git describe --tags --abbrev=0 2>/dev/null || echo 0c98486)}
old_sha=$(git rev-parse --short "$old_ref^{commit}")
port=${BENCH_PORT:-39092}
min=${BENCH_QUICK_MIN:-0.8}
mkdir -p bin/bench
echo "== build (current tree; old: $old_ref = $old_sha)" >&2
CGO_ENABLED=0 $GO build -trimpath -o bin/consumer ./cmd/consumer
$GO build -o bin/bench/kfake ./test/bench/kfake
$GO build -o bin/bench/ceiling ./test/bench/ceiling
$GO build -o bin/bench/harness ./test/bench/harness
old_bin="bin/bench/consumer-$old_sha"
if [ ! -x "$old_bin" ]; then
  src=$(mktemp -d)
  git archive "$old_sha" | tar -x -C "$src"
  (cd "$src" && CGO_ENABLED=0 $GO build -trimpath -o "$OLDPWD/$old_bin" ./cmd/consumer)
  rm -rf "$src"
fi

pid=
cleanup() { if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; }
trap cleanup EXIT
bin/bench/kfake -port "$port" > bin/bench/kfake-quick.log 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q ready bin/bench/kfake-quick.log 2>/dev/null && break; sleep 0.1; done
grep -q ready bin/bench/kfake-quick.log || { cat bin/bench/kfake-quick.log >&2; exit 1; }

echo "== run (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
bin/bench/harness -only quick -brokers "127.0.0.1:$port" -broker-name "kfake (franz-go, own process)" \
  -command "make bench-quick BENCH_OLD=$old_ref" -consumer bin/consumer -consumer-old "$old_bin" \
  -ceiling bin/bench/ceiling -records 500000 -rounds 1 -quick-min "$min" \
  -out bin/bench/quick.json -md bin/bench/quick.md -work bin/bench/work "$@"
