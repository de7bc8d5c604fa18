# msk-consumer. `make run` and `make test` work on a fresh clone with Go
# installed: everything else they need is fetched by the Go toolchain.

GO          ?= go
BIN         := bin/consumer
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS     := -s -w -X github.com/msk-consumer/msk-consumer/service.version=$(VERSION) -X github.com/msk-consumer/msk-consumer/service.commit=$(COMMIT)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: run test test-kafka test-kafka-cluster test-stores lint build image test-image bench bench-quick bench-memory bench-micro fuzz clean kafka-up kafka-down chaos
.PHONY: test-kafka-848 test-kafka-share chaos-cluster test-lambda test-browser bench-lambda bench-speed bench-share

## run: the whole pipeline on an embedded broker (consumer demo); Ctrl-C stops it
run: build
	./$(BIN) demo

## build: the static binary in bin/consumer
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/consumer

## image: the container image, with Docker or Podman, whichever runs here
## (ENGINE=docker|podman to choose; IMAGE to name it; PLATFORM=linux/arm64
## for Graviton; GO_IMAGE and BASE_IMAGE for other base images)
IMAGE ?= msk-consumer:$(VERSION)
ENGINE ?= $(shell if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then echo docker; elif command -v podman >/dev/null 2>&1; then echo podman; fi)
# Podman: a Docker-format image (OCI's has no HEALTHCHECK), and the build
# platform spelled out (Podman 4 takes --platform for it too, and the build
# stage would then want a Go image of the target's architecture).
PODMAN = $(filter podman%,$(notdir $(firstword $(ENGINE))))
IMAGE_ARGS = $(if $(PODMAN),--format docker $(if $(PLATFORM),--build-arg BUILDPLATFORM=linux/$$($(ENGINE) info --format '{{.Host.Arch}}'))) \
  $(if $(PLATFORM),--platform $(PLATFORM)) $(if $(GO_IMAGE),--build-arg GO_IMAGE=$(GO_IMAGE)) $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE))
image:
	@[ -n "$(ENGINE)" ] || { echo "make image needs a running Docker engine or Podman"; exit 1; }
	$(ENGINE) build $(IMAGE_ARGS) --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) \
	  --build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) -t $(IMAGE) .

## test-image: the image built with Podman (installed if missing) from
## stand-ins for its base images, then run as the deploy files run it against
## a broker on the host: consumes, healthcheck, SIGTERM exits 0 (scripts/image)
test-image:
	./scripts/image/test.sh

## test: every test, with the race detector, and the example of a binary
## built in its own module against the public API (examples/own-binary)
test:
	$(GO) test -race -count=1 ./...
	cd examples/own-binary && $(GO) build -o /dev/null . && $(GO) test -race -count=1 ./...

## test-kafka: the pipeline tests again on a real Apache Kafka broker
## (started and stopped here), once per release in KAFKA_VERSIONS: the
## newest 3.x and 4.x (KAFKA_VERSION=x.y.z for one); with the operator
## commands' tests and OAUTHBEARER against Kafka's own SASL
KAFKA_VERSIONS ?= $(or $(KAFKA_VERSION),3.9.2 4.4.0)
KAFKA_TEST_PKGS := ./internal/consume/ ./internal/ops/ ./internal/preflight/
test-kafka:
	@for v in $(KAFKA_VERSIONS); do \
	  echo "== Apache Kafka $$v, one node"; \
	  KAFKA_VERSION=$$v ./scripts/kafka/up.sh || exit 1; \
	  . ./scripts/kafka/env.sh; \
	  KAFKA_TEST_BROKERS=$$KAFKA_BROKERS KAFKA_TEST_SASL_BROKERS=$$KAFKA_SASL_BROKERS \
	    $(GO) test -race -count=1 $(KAFKA_TEST_PKGS); rc=$$?; \
	  ./scripts/kafka/down.sh; [ $$rc = 0 ] || exit $$rc; \
	done

## The tiers below select tests by name (scripts/gotest-named.sh): a name
## that matches no test fails the tier, and the KIP-848 tier fails where the
## broker does not serve KIP-848.
## test-kafka-cluster: the rebalance, crash, dead-letter, commit and
## OAUTHBEARER tests on three brokers (a dedicated KRaft controller,
## replication factor 3, min.insync.replicas 2, as MSK sets them), on
## KAFKA_VERSION (default 4.4.0)
KAFKA_CLUSTER_TESTS ?= TestMembersJoinAndLeaveWhileRecordsFlow|TestStaticMembership|TestSignalDuringRevokeKeepsTheBudget|TestCrashAndRestartLosesNothing|TestPoisonRecordsDeadLettered|TestHandlerFailuresRetriedThenDeadLettered|TestDLQUnwritable|TestDLQCopyTooLargeForTheTopicOmitsValue|TestShutdownCommitsEverythingHandled|TestShutdownWithinBudgetCommitsFinishedPartitions|TestKeyOrderAcrossRebalancesAndCrashes|TestDeadLetterOutageStopsLaterWork|TestOAuthBearerRealKafka
test-kafka-cluster:
	KAFKA_NODES=3 ./scripts/kafka/up.sh
	. ./scripts/kafka/env.sh; \
	KAFKA_TEST_BROKERS=$$KAFKA_BROKERS KAFKA_TEST_SASL_BROKERS=$$KAFKA_SASL_BROKERS \
	  ./scripts/gotest-named.sh ./internal/consume/ '$(KAFKA_CLUSTER_TESTS)'; rc=$$?; ./scripts/kafka/down.sh; exit $$rc

## test-kafka-848: the rebalance, crash and shutdown tests with
## KAFKA_GROUP_PROTOCOL=consumer (KIP-848) on one Kafka 4.x node
## (KAFKA_VERSION, default 4.4.0; KIP-848 needs 4.0+), and the operator
## commands' view of such a group's members
KAFKA_848_TESTS ?= TestGroupProtocolConsumer|TestMembersJoinAndLeaveWhileRecordsFlow|TestStaticMembership|TestSignalDuringRevokeKeepsTheBudget|TestCrashAndRestartLosesNothing|TestShutdownCommitsEverythingHandled|TestShutdownWithinBudgetCommitsFinishedPartitions
KAFKA_848_OPS_TESTS ?= TestOffsetsMember|TestResetRefusedWithMembersAppliedWithout|TestGroupThatNeverExisted
test-kafka-848:
	./scripts/kafka/up.sh
	. ./scripts/kafka/env.sh; \
	KAFKA_TEST_BROKERS=$$KAFKA_BROKERS KAFKA_TEST_GROUP_PROTOCOL=consumer \
	  ./scripts/gotest-named.sh ./internal/consume/ '$(KAFKA_848_TESTS)' && \
	KAFKA_TEST_BROKERS=$$KAFKA_BROKERS KAFKA_TEST_GROUP_PROTOCOL=consumer \
	  ./scripts/gotest-named.sh ./internal/ops/ '$(KAFKA_848_OPS_TESTS)'; rc=$$?; ./scripts/kafka/down.sh; exit $$rc

## test-kafka-share: the share group tests (KAFKA_GROUP_TYPE=share,
## KIP-932) on Kafka 4.4.0 (KAFKA_VERSION; share groups need 4.2+), on one
## node and then on three brokers: crashes and rolling restarts, an outage
## longer than the acquisition lock x the delivery limit, a record that
## crashes its member every time, members joining and leaving, SIGTERM's
## release, the idempotency store; consumer check and offsets/reset of a
## share group. KAFKA_TEST_SHARE=1 makes them fail where the broker does not
## serve share groups (elsewhere, e.g. make test-kafka's 3.9.2, they skip).
KAFKA_SHARE_TESTS ?= TestShareGroupHandlesEverything|TestShareCrashedMemberLosesNothing|TestShareOutageLongerThanLockTimesLimit|TestShareDeliveryLimitPoison|TestShareMembersJoinAndLeave|TestShareRollingRestartAndCrashes|TestShareShutdownReleasesUnstarted|TestShareIdempotencyStore
KAFKA_SHARE_OPS_TESTS ?= TestShareOffsetsAndReset
KAFKA_SHARE_CHECK_TESTS ?= TestCheckShareGroup
test-kafka-share:
	@for nodes in 1 3; do \
	  echo "== Apache Kafka $(or $(KAFKA_VERSION),4.4.0), $$nodes node(s): share groups"; \
	  KAFKA_VERSION=$(or $(KAFKA_VERSION),4.4.0) KAFKA_NODES=$$nodes ./scripts/kafka/up.sh || exit 1; \
	  . ./scripts/kafka/env.sh; \
	  export KAFKA_TEST_BROKERS=$$KAFKA_BROKERS KAFKA_TEST_SHARE=1; \
	  ./scripts/gotest-named.sh ./internal/consume/ '$(KAFKA_SHARE_TESTS)' && \
	  ./scripts/gotest-named.sh ./internal/ops/ '$(KAFKA_SHARE_OPS_TESTS)' && \
	  ./scripts/gotest-named.sh ./internal/preflight/ '$(KAFKA_SHARE_CHECK_TESTS)'; rc=$$?; \
	  ./scripts/kafka/down.sh; [ $$rc = 0 ] || exit $$rc; \
	done

## test-lambda: the lambda handler against real functions: the service on
## kfake invokes a Python function using Powertools' kafka_consumer (Avro
## with EVENT_RECORD_FORMAT=source, JSON with json, and Avro framed for a
## Confluent registry with both) and a Go function built
## with aws-lambda-go's events.KafkaEvent in AWS's Lambda runtime
## interface emulator, built from its Go module, behind a proxy that
## throttles when every emulator is busy (scripts/lambda/setup.sh builds
## what it needs into bin/).
LAMBDA_TESTS = TestLambdaPowertoolsAvro|TestLambdaPowertoolsJSON|TestLambdaPowertoolsRegistryJSON|TestLambdaPowertoolsRegistrySource|TestLambdaGoFunction
test-lambda:
	./scripts/lambda/setup.sh
	LAMBDA_TEST_RIE=$(CURDIR)/bin/aws-lambda-rie LAMBDA_TEST_PYTHON=$(CURDIR)/bin/lambda-venv/bin/python LAMBDA_TEST_GOFN=$(CURDIR)/bin/lambda-gofn \
	  GOFLAGS=-tags=lambdatest ./scripts/gotest-named.sh ./service/ '$(LAMBDA_TESTS)'

## test-browser: the status page in a real browser: the service on kfake
## under load, one partition stuck on its HTTP handler and a few dead
## letters, loaded by Debian's chromium in headless mode (installed with
## apt-get if missing: scripts/browser/setup.sh); the DOM is checked for the
## stuck lane, its reason and the dead letters, also behind a path prefix,
## and the screenshot written to docs/status.png
BROWSER_TESTS = TestStatusPageInBrowser
test-browser:
	./scripts/browser/setup.sh
	BROWSER_TEST_SCREENSHOT=$(CURDIR)/docs/status.png GOFLAGS=-tags=browsertest ./scripts/gotest-named.sh ./service/ '$(BROWSER_TESTS)'

## test-stores: the idempotency stores' tests on Redis (Debian's
## redis-server) and on moto's DynamoDB emulator, both started and stopped here
test-stores:
	./scripts/redis/up.sh
	./scripts/moto/up.sh
	REDIS_TEST_URL=redis://127.0.0.1:16379/0 DYNAMODB_TEST_ENDPOINT=http://127.0.0.1:18000 \
	  $(GO) test -race -count=1 ./internal/idempotency/ ./internal/process/; rc=$$?; ./scripts/redis/down.sh; ./scripts/moto/down.sh; exit $$rc

## lint: formatting, go vet, staticcheck, a tidy go.mod, and the deployment
## files (hadolint, kustomize + kubeconform, promtool, JSON)
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff
	cd examples/own-binary && $(GO) vet ./... && $(GO) mod tidy -diff
	bash scripts/lint-deploy.sh

## docs: the configuration reference in README.md, generated from the table
## of variables in config/vars.go (a docs/ directory exists, hence .PHONY)
.PHONY: docs
docs:
	$(GO) run ./config/internal/gendoc -readme README.md

## bench: the end-to-end benchmark: the service against the raw client,
## Python and Powertools, in turns on one broker, and the Lambda section
## where scripts/lambda/setup.sh can build the emulator (results in
## docs/BENCHMARKS.md; BENCH_FLAGS=--kafka for the real broker)
BENCH_FLAGS ?=
bench: build
	./scripts/bench.sh $(BENCH_FLAGS)

## bench-lambda: only make bench's Lambda section: HANDLER=lambda on a pool
## of Lambda runtime interface emulators running a Go function that takes
## 20 ms, partition and key order, and what throttling costs
## (LAMBDA_BENCH_FLAGS adds harness flags, e.g. -lambda-records 48000)
LAMBDA_BENCH_FLAGS ?=
bench-lambda: build
	./scripts/bench.sh $(BENCH_FLAGS) -- -only lambda $(LAMBDA_BENCH_FLAGS)

## bench-speed: only make bench's throughput cases (1-5 and 3k, no other
## contender), five rounds in turns: each case's median, the spread of its
## runs and the throughput goals (docs/BENCHMARKS.md)
SPEED_FLAGS ?= -rounds 5
bench-speed: build
	./scripts/bench.sh $(BENCH_FLAGS) -- -only speed $(SPEED_FLAGS)

## bench-share: only make bench's share-group section: bin/consumer as 1,
## 3, 6 and 12 members of a share group against the same in a consumer
## group, 3 partitions, an HTTP sink taking 20 ms per batch
## (SHARE_BENCH_FLAGS adds harness flags, e.g. -share-records 96000)
SHARE_BENCH_FLAGS ?=
bench-share: build
	./scripts/bench.sh $(BENCH_FLAGS) -- -only share $(SHARE_BENCH_FLAGS)

## bench-quick: cases 1-4 of make bench (and case 3 in key order) at both sizes, one round, the
## current tree against a previous build (BENCH_OLD, a git ref: default the
## last tag, else 0c98486) in turns on one kfake; prints new/old per case and
## fails below 0.8 (BENCH_QUICK_MIN). Run it before a change of
## internal/consume, internal/process or internal/builtin
BENCH_OLD ?=
bench-quick:
	BENCH_OLD=$(BENCH_OLD) ./scripts/bench-quick.sh

## bench-memory: only make bench's memory table (peak RSS against
## 3 × MAX_BUFFERED_BYTES + 48 MiB)
bench-memory: build
	./scripts/bench.sh $(BENCH_FLAGS) -- -only memory

## bench-micro: the hot-path micro-benchmarks
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./internal/codec/ ./internal/builtin/ ./internal/jsonx/

## fuzz: each fuzzer for FUZZTIME (default 60s)
FUZZTIME ?= 60s
fuzz:
	@for pkg in ./framing ./internal/codec ./internal/jsonx ./internal/kafkaclient; do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## kafka-up / kafka-down: a real single-node Apache Kafka (KRaft) on 127.0.0.1,
## fetched from Maven Central on first use (scripts/kafka)
kafka-up:
	./scripts/kafka/up.sh

kafka-down:
	./scripts/kafka/down.sh

## chaos: the built binary under SIGKILLs, a broker restart, two instances and
## an unwritable dead-letter topic, on the real broker; checked record by record
CHAOS_FLAGS ?=
chaos: build
	./scripts/kafka/up.sh
	$(GO) run ./test/chaos -report bin/chaos.json $(CHAOS_FLAGS); rc=$$?; ./scripts/kafka/down.sh; exit $$rc

## chaos-cluster: the built binary on three brokers (RF 3, min.insync.replicas
## 2) under SIGKILLs of partition and dead-letter leaders, a rolling restart
## and a SIGSTOPped broker; the longest stall of each partition per fault
## (docs/RELIABILITY.md). CHAOS_CLUSTER_FLAGS adds flags, e.g. -seed N or
## -group-protocol consumer
CHAOS_CLUSTER_FLAGS ?=
chaos-cluster: build
	KAFKA_NODES=3 ./scripts/kafka/up.sh
	. ./scripts/kafka/env.sh; \
	$(GO) run ./test/chaos -nodes 3 -brokers $$KAFKA_BROKERS -rate 1000 -report bin/chaos-cluster.json $(CHAOS_CLUSTER_FLAGS); rc=$$?; ./scripts/kafka/down.sh; exit $$rc

clean:
	rm -rf bin
