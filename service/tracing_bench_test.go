package service_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/demo"
	"github.com/msk-consumer/msk-consumer/internal/tracing"
	"github.com/msk-consumer/msk-consumer/service"
)

// TestTracingThroughput is `make bench` case 3 (Avro product events,
// decoded and discarded) in miniature, with tracing off and on (every
// batch sampled, exported over OTLP/HTTP to an in-process receiver that
// discards them, each record carrying a traceparent): records per second
// from the first record handled to the last, rounds alternated. It runs
// only with TRACING_BENCH set (e.g. TRACING_BENCH=300000):
//
//	TRACING_BENCH=300000 go test -run TestTracingThroughput -count=1 -v ./service/
func TestTracingThroughput(t *testing.T) {
	n := 0
	if _, err := fmt.Sscan(os.Getenv("TRACING_BENCH"), &n); err != nil || n <= 0 {
		t.Skip("set TRACING_BENCH to the number of records")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(8, "products"), kfake.SeedTopics(1, "products.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	schema := filepath.Join(t.TempDir(), "product.avsc")
	if err := os.WriteFile(schema, []byte(demo.Schema), 0o600); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	gen, err := demo.NewGenerator(1)
	if err != nil {
		t.Fatal(err)
	}
	var size int
	for i := range n {
		r, _, err := gen.Next("products")
		if err != nil {
			t.Fatal(err)
		}
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: "traceparent", Value: tracing.AppendTraceparent(nil, producerSpan(byte(i)))})
		size += len(r.Value)
		cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A receiver that reads and discards, as a collector that keeps up.
	var exports atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		exports.Add(1)
	}))
	defer rcv.Close()

	results := map[string][]float64{}
	for round := range 3 {
		for _, mode := range []string{"off", "on"} {
			results[mode] = append(results[mode], runCase3(t, cluster, schema, n, fmt.Sprintf("bench-%s-%d", mode, round), mode == "on", rcv.URL))
		}
	}
	t.Logf("%d records, %d B values on average, 8 partitions, kfake, GOMAXPROCS=%s", n, size/n, os.Getenv("GOMAXPROCS"))
	for _, mode := range []string{"off", "on"} {
		rs := slices.Clone(results[mode])
		slices.Sort(rs)
		t.Logf("tracing %-3s records/s: median %.0f (rounds %.0f)", mode, rs[len(rs)/2], results[mode])
	}
	t.Logf("export requests received: %d", exports.Load())
}

// runCase3 consumes the n records from the start as a new group and
// returns records per second.
func runCase3(t *testing.T, cluster *kfake.Cluster, schema string, n int, group string, traced bool, endpoint string) float64 {
	env := map[string]string{
		"KAFKA_BROKERS": strings.Join(cluster.ListenAddrs(), ","), "KAFKA_TOPICS": "products",
		"KAFKA_GROUP_ID": group, "KAFKA_AUTH": "none", "VALUE_FORMAT": "avro", "VALUE_SCHEMA_FILE": schema,
		"HANDLER": "count", "METRICS_ADDR": "127.0.0.1:0", "LOG_LEVEL": "error", "BATCH_MAX_WAIT": "100ms",
	}
	if traced {
		env["OTEL_TRACES_EXPORTER"] = "otlp"
		env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
		env["OTEL_TRACES_SAMPLER"] = "always_on"
	}
	var seen atomic.Int64
	var first, last atomic.Int64
	count := func(handler.Deps) (handler.Handler, error) {
		return handlerFunc(func(_ context.Context, b handler.Batch) error {
			now := time.Now().UnixNano()
			first.CompareAndSwap(0, now)
			if seen.Add(int64(len(b.Records))) >= int64(n) {
				last.CompareAndSwap(0, now)
			}
			return nil
		}), nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	go func() {
		exit <- service.Run(ctx, service.Env{Args: []string{"run"}, Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
			Stdout: io.Discard, Stderr: io.Discard}, service.Handlers{"count": count})
	}()
	deadline := time.Now().Add(5 * time.Minute)
	for last.Load() == 0 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("%s: handled %d of %d records in 5m", group, seen.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-exit
	return float64(n) / time.Duration(last.Load()-first.Load()).Seconds()
}

type handlerFunc func(context.Context, handler.Batch) error

func (f handlerFunc) Handle(ctx context.Context, b handler.Batch) error { return f(ctx, b) }
