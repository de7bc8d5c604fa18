package consume

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/handler"
)

// BenchmarkShareMembers is the handler-bound case of issue 25: three
// partitions, a handler that takes 20 ms per batch, one batch in flight per
// member (MAX_IN_FLIGHT_BATCHES=1), and 1, 3, 6 and 12 members, as a share
// group and as a consumer group (which gives a member beyond the third no
// partition). It reports records/s from the first record handled to the
// last. Results: docs/BENCHMARKS.md, "Share groups".
//
//	go test -run '^$' -bench BenchmarkShareMembers -benchtime 1x ./internal/consume/
func BenchmarkShareMembers(b *testing.B) {
	const records = 24000
	for _, groupType := range []string{"share", "consumer"} {
		for _, members := range []int{1, 3, 6, 12} {
			b.Run(groupType+"/members="+strconv.Itoa(members), func(b *testing.B) {
				for range b.N {
					b.ReportMetric(runMembers(b, groupType, members, records), "records/s")
				}
			})
		}
	}
}

func runMembers(b *testing.B, groupType string, members, records int) float64 {
	c := startShareCluster(b, 3, 5)
	cl := newClient(b, c, kgo.DefaultProduceTopic(c.topic), kgo.ProducerLinger(5*time.Millisecond))
	var rs []*kgo.Record
	for i := range records {
		rs = append(rs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(`{"n":` + strconv.Itoa(i) + `}`)})
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	set := map[string]string{"KAFKA_GROUP_TYPE": groupType, "MAX_IN_FLIGHT_BATCHES": "1", "BATCH_MAX_RECORDS": "50", "KAFKA_START_OFFSET": "earliest"}
	if groupType == "share" {
		set["PARTITION_CONCURRENCY"] = "1"
	}
	cfg := baseConfig(b, c.addrs, c.topic, c.group, set)
	var done atomic.Int64
	var first, last atomic.Int64
	all := make(chan struct{})
	var once sync.Once
	h := handlerFunc(func(ctx context.Context, bt handler.Batch) error {
		first.CompareAndSwap(0, time.Now().UnixNano())
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		if done.Add(int64(len(bt.Records))) >= int64(records) {
			last.Store(time.Now().UnixNano())
			once.Do(func() { close(all) })
		}
		return nil
	})
	var ms []*member
	for range members {
		ms = append(ms, start(b, cfg, h))
	}
	select {
	case <-all:
	case <-time.After(2 * time.Minute):
		b.Fatalf("%d of %d records handled in 2 minutes", done.Load(), records)
	}
	for _, m := range ms {
		_ = m.stop(b)
	}
	secs := time.Duration(last.Load() - first.Load()).Seconds()
	return float64(done.Load()) / secs
}
