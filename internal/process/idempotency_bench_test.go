package process

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/backoff"
	"github.com/msk-consumer/msk-consumer/internal/codec"
	"github.com/msk-consumer/msk-consumer/internal/idempotency"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

// BenchmarkProcessIdempotency is the throughput cost of each idempotency
// store: batches of 500 new records (keys never seen) through decode, the
// discard handler and, with a store, one claim and one completion per
// batch. Redis with REDIS_TEST_URL, DynamoDB (moto) with
// DYNAMODB_TEST_ENDPOINT and DYNAMODB_TEST_TABLE:
//
//	scripts/redis/up.sh; scripts/moto/up.sh
//	REDIS_TEST_URL=redis://127.0.0.1:16379/0 DYNAMODB_TEST_ENDPOINT=http://127.0.0.1:18000 \
//	  go test -run '^$' -bench ProcessIdempotency -benchtime 200x ./internal/process/
func BenchmarkProcessIdempotency(b *testing.B) {
	stores := map[string]func(b *testing.B) idempotency.Store{
		"none":   nil,
		"memory": func(*testing.B) idempotency.Store { return idempotency.NewMemory(nil) },
	}
	if url := os.Getenv("REDIS_TEST_URL"); url != "" {
		stores["redis"] = func(b *testing.B) idempotency.Store { return redisStore(b, url) }
	}
	if ep := os.Getenv("DYNAMODB_TEST_ENDPOINT"); ep != "" {
		stores["dynamodb"] = func(b *testing.B) idempotency.Store { return benchDynamo(b, ep) }
	}
	for _, name := range []string{"none", "memory", "redis", "dynamodb"} {
		mk, ok := stores[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			key, _ := codec.New(config.Codec{Format: config.FormatString})
			value, _ := codec.New(config.Codec{Format: config.FormatJSON})
			d := Deps{Key: key, Value: value, Handler: handler.Discard{}, DLQ: &fakeDLQ{}}
			if mk != nil {
				d.Idempotency = idempotency.New(name, mk(b), idempotency.Config{
					Prefix: fmt.Sprintf("bench-%d", time.Now().UnixNano()), TTL: time.Hour, InProgressTTL: time.Minute,
				}, idempotency.Metrics{})
			}
			p := New(Config{MaxAttempts: 3, Backoff: backoff.Policy{First: 10 * time.Millisecond, Max: 100 * time.Millisecond}}, d)
			m := metrics.New(prometheus.NewRegistry()).ForTopic("t")
			const n = 500
			recs := make([]*kgo.Record, n)
			for i := range recs {
				recs[i] = &kgo.Record{Topic: "t", Partition: 0, Key: fmt.Appendf(nil, "SKU-%06d", i),
					Value: fmt.Appendf(nil, `{"id":%d,"sku":"SKU-%06d","price":12.5,"tags":["a","b"]}`, i, i)}
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				for i, r := range recs {
					r.Offset = int64(it*n + i) // new keys every batch
				}
				if got, err := p.Process(ctx, recs, m); got != n || err != nil {
					b.Fatalf("Process: %d %v", got, err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
