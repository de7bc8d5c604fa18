package process

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/msk-consumer/msk-consumer/handler"
)

// TestMetricsOnEveryExit: records the handler succeeded on are counted as
// processed however the batch ends, canceled included: the metrics are
// recorded on the one exit path of Process.
func TestMetricsOnEveryExit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		h := handlerFunc(func(_ context.Context, b handler.Batch) error {
			cancel() // during the backoff that follows
			return &handler.ItemFailures{Offsets: []int64{102}}
		})
		p, m := newProc(t, h, &fakeDLQ{}, nil, nil)
		if _, err := p.Process(ctx, records(5, nil), m); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if got := testutil.ToFloat64(m.Processed); got != 4 {
			t.Errorf("processed: got %v, want 4 (all but offset 102)", got)
		}
		if got := testutil.ToFloat64(m.DeadLettered); got != 0 {
			t.Errorf("dead-lettered: got %v, want 0", got)
		}
		if got := testutil.ToFloat64(m.BatchOK) + testutil.ToFloat64(m.BatchPartial) + testutil.ToFloat64(m.BatchF); got != 0 {
			t.Errorf("batches counted: got %v, want 0 for a batch that did not finish", got)
		}
	})
}
