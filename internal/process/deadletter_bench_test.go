package process

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/backoff"
	"github.com/msk-consumer/msk-consumer/internal/codec"
	"github.com/msk-consumer/msk-consumer/internal/dlq"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

// discardDLQ acknowledges every copy at once and keeps nothing.
type discardDLQ struct{}

func (discardDLQ) Write(context.Context, []dlq.Failure, dlq.OnError) error { return nil }

// BenchmarkHandleDeadLettering is what batches with records to dead-letter
// cost the processor when their writes overlap the next batches (as a lane
// does, internal/consume): batches of 500 JSON records of about 1 KB, with
// every hundredth record undecodable (clean: none), and four batches'
// writes in flight. Memory per batch is the figure to watch: a batch that
// waits for its copies must not leave the next one to grow its decoding
// buffers again.
//
//	go test -run '^$' -bench HandleDeadLettering -benchmem ./internal/process/
func BenchmarkHandleDeadLettering(b *testing.B) {
	for _, bad := range []int{0, 100} {
		name := "clean"
		if bad > 0 {
			name = "1pct"
		}
		b.Run(name, func(b *testing.B) {
			key, _ := codec.New(config.Codec{Format: config.FormatString})
			value, _ := codec.New(config.Codec{Format: config.FormatJSON})
			p := New(Config{MaxAttempts: 3, Backoff: backoff.Policy{First: 10 * time.Millisecond, Max: 100 * time.Millisecond}},
				Deps{Key: key, Value: value, Handler: handler.Discard{}, DLQ: discardDLQ{}})
			m := metrics.New(prometheus.NewRegistry()).ForTopic("t")
			const n, inFlight = 500, 4
			pad := strings.Repeat("x", 950)
			batches := make([][]*kgo.Record, inFlight+1)
			for j := range batches {
				batches[j] = make([]*kgo.Record, n)
				for i := range batches[j] {
					v := fmt.Appendf(nil, `{"id":%d,"sku":"SKU-%06d","description":"%s"}`, i, i, pad)
					if bad > 0 && i%bad == bad-1 {
						v = []byte("not json")
					}
					batches[j][i] = &kgo.Record{Topic: "t", Key: fmt.Appendf(nil, "SKU-%06d", i), Value: v, Offset: int64(i)}
				}
			}
			ctx := context.Background()
			var pending []*Pending
			b.ReportAllocs()
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				pb, err := p.Handle(ctx, "t/0", nil, batches[it%len(batches)], m)
				if err != nil {
					b.Fatal(err)
				}
				pending = append(pending, pb)
				if len(pending) > inFlight {
					if err := pending[0].Write(ctx, nil); err != nil {
						b.Fatal(err)
					}
					pending[0].Close()
					pending = pending[1:]
				}
			}
			b.StopTimer()
			for _, pb := range pending {
				pb.Close()
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
