#!/usr/bin/env bash
# The end-to-end benchmark (docs/BENCHMARKS.md, "End to end"): builds
# bin/consumer and the harness, starts the broker, preloads the same records
# for every contender, runs them in turns, writes bin/bench/results.json and
# prints the markdown table (also in bin/bench/results.md).
#
#   scripts/bench.sh              # kfake in its own process on 127.0.0.1:39092 (BENCH_PORT to change it)
#   scripts/bench.sh --kafka      # the real broker (scripts/kafka/up.sh, 127.0.0.1:19092)
#   scripts/bench.sh -- -records 200000 -rounds 1   # harness flags after --
#   scripts/bench.sh -- -only memory    # only the memory table (peak RSS against
#                                       # 3 × MAX_BUFFERED_BYTES + 48 MiB), a few minutes
#   scripts/bench.sh -- -only dlq       # only what 1% dead-lettered records cost, partition and key/32 order
#   scripts/bench.sh -- -only tracing   # only tracing's cost: case 3 with OTEL_TRACES_EXPORTER none and otlp
#   scripts/bench.sh -- -only stores    # only the idempotency stores' cost (none, redis, dynamodb on moto)
#   scripts/bench.sh -- -only handler   # only the handler-bound section: records/s per
#                                       # PROCESSING_ORDER with a 20 ms HTTP sink and a
#                                       # 2 ms-per-record Go handler, and the 1% DLQ case
#   scripts/bench.sh -- -only speed     # only the throughput cases 1-5 (and 3k), each -rounds times (default 5
#                                       # with make bench-speed), with each case's spread and issue 21's goals
#   scripts/bench.sh -- -only lambda    # only the Lambda section (make bench-lambda): HANDLER=lambda
#                                       # on a pool of Lambda runtime interface emulators running a
#                                       # 20 ms Go function, partition and key order, and throttling
#   scripts/bench.sh -- -only share     # only the share-group section (make bench-share): bin/consumer as
#                                       # 1, 3, 6 and 12 members of a share group against a consumer
#                                       # group, 3 partitions, a 20 ms HTTP sink
#
# The Lambda section runs in the whole benchmark too, where
# scripts/lambda/setup.sh (its emulator and Go function only) can build
# what it needs into bin/; where it cannot, the table says the section did
# not run.
#
# Python (aiokafka, fastavro) and Node (@aws-lambda-powertools/kafka,
# avro-js, and underscore, which avro-js 1.12 requires without declaring it)
# are installed on first use into bin/benchcache and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
broker=kfake
while [ $# -gt 0 ]; do
  case "$1" in
    --kafka) broker=kafka; shift ;;
    --) shift; break ;;
    *) echo "usage: $0 [--kafka] [-- harness flags]" >&2; exit 2 ;;
  esac
done

GO=${GO:-go}
mkdir -p bin/bench bin/benchcache
echo "== build" >&2
CGO_ENABLED=0 $GO build -trimpath -o bin/consumer ./cmd/consumer
$GO build -o bin/bench/kfake ./test/bench/kfake
$GO build -o bin/bench/ceiling ./test/bench/ceiling
$GO build -o bin/bench/harness ./test/bench/harness

memory_only=
case " $* " in *" -only memory "*|*" -only=memory "*|*" --only memory "*|*" --only=memory "*) memory_only=1 ;; esac
# The handler-bound section runs only the consumer (in the harness's
# process): no Python, no Node either.
case " $* " in *" -only handler "*|*" -only=handler "*|*" --only handler "*|*" --only=handler "*) memory_only=1 ;; esac
# The idempotency stores' section: the service with IDEMPOTENCY_STORE none,
# redis and dynamodb (Redis and moto from scripts/, started and stopped here).
case " $* " in *" -only tracing "*|*" -only=tracing "*|*" --only tracing "*|*" --only=tracing "*) memory_only=1 ;; esac
case " $* " in *" -only dlq "*|*" -only=dlq "*|*" --only dlq "*|*" --only=dlq "*) memory_only=1 ;; esac
# The throughput cases alone (-only speed, make bench-speed): the service
# and the ceiling, nothing else.
case " $* " in *" -only speed "*|*" -only=speed "*|*" --only speed "*|*" --only=speed "*) memory_only=1 ;; esac
# The share-group section: only bin/consumer processes.
case " $* " in *" -only share "*|*" -only=share "*|*" --only share "*|*" --only=share "*) memory_only=1 ;; esac
stores=
case " $* " in *" -only stores "*|*" -only=stores "*|*" --only stores "*|*" --only=stores "*) memory_only=1; stores=1 ;; esac
# The Lambda section needs the emulator and the Go function
# (scripts/lambda/setup.sh go), in the whole run and with -only lambda.
lambda=1
[ -n "$memory_only" ] && lambda=
case " $* " in *" -only lambda "*|*" -only=lambda "*|*" --only lambda "*|*" --only=lambda "*) memory_only=1; lambda=only ;; esac
lambda_flags=()
if [ -n "$lambda" ]; then
  echo "== lambda emulator and function (scripts/lambda/setup.sh go)" >&2
  if ./scripts/lambda/setup.sh go >&2; then
    lambda_flags=(-lambda-rie "$root/bin/aws-lambda-rie" -lambda-fn "$root/bin/lambda-gofn")
  elif [ "$lambda" = only ]; then
    echo "scripts/lambda/setup.sh failed: no Lambda section" >&2; exit 1
  else
    echo "scripts/lambda/setup.sh failed: the benchmark runs without its Lambda section" >&2
  fi
fi

cache=bin/benchcache
py="$cache/venv/bin/python"
nodedir="$cache/node"
if [ -n "$memory_only" ]; then
  : # the memory table runs only the service: no Python, no Node
elif [ ! -x "$py" ] || ! "$py" -c 'import aiokafka, fastavro' 2>/dev/null; then
  echo "== python venv (aiokafka, fastavro)" >&2
  python3 -m venv "$cache/venv"
  "$cache/venv/bin/pip" install -q 'aiokafka==0.12.*' 'fastavro==1.*'
fi
if [ -n "$memory_only" ]; then
  :
elif [ ! -d "$nodedir/node_modules/@aws-lambda-powertools/kafka" ] || [ ! -d "$nodedir/node_modules/underscore" ]; then
  echo "== node_modules (@aws-lambda-powertools/kafka, avro-js)" >&2
  mkdir -p "$nodedir"
  echo '{"name":"bench","private":true,"type":"module"}' > "$nodedir/package.json"
  (cd "$nodedir" && npm install --no-audit --no-fund --silent @aws-lambda-powertools/kafka@2.35.0 avro-js@1 underscore@1)
fi

pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ "$broker" = kafka ]; then ./scripts/kafka/down.sh >/dev/null 2>&1 || true; fi
  if [ -n "$stores" ]; then ./scripts/redis/down.sh >/dev/null 2>&1 || true; ./scripts/moto/down.sh >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
if [ -n "$stores" ]; then
  ./scripts/redis/up.sh >&2
  ./scripts/moto/up.sh >&2
fi
if [ "$broker" = kafka ]; then
  ./scripts/kafka/up.sh >&2
  brokers=127.0.0.1:19092
  name="Apache Kafka (scripts/kafka, KRaft, one node)"
else
  port=${BENCH_PORT:-39092}
  bin/bench/kfake -port "$port" > bin/bench/kfake.log 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do grep -q ready bin/bench/kfake.log 2>/dev/null && break; sleep 0.1; done
  brokers=127.0.0.1:$port
  name="kfake (franz-go, own process)"
fi

cmdline="scripts/bench.sh${broker/kfake/}"
[ "$broker" = kafka ] && cmdline="scripts/bench.sh --kafka"
[ $# -gt 0 ] && cmdline="$cmdline -- $*"
echo "== run (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
bin/bench/harness -brokers "$brokers" -broker-name "$name" -command "$cmdline" \
  -consumer bin/consumer -ceiling bin/bench/ceiling \
  -python "$root/$py" -node-dir "$root/$nodedir" -bench-dir "$root/test/bench" \
  -out bin/bench/results.json -md bin/bench/results.md -work bin/bench/work ${lambda_flags[@]+"${lambda_flags[@]}"} "$@"
