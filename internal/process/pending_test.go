package process

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/msk-consumer/msk-consumer/handler"
)

// TestHandleLeavesDeadLettersPending: Handle returns with the handled
// records finished and the failed ones not, until Write is acknowledged; a
// write that ends with ctx leaves them unfinished.
func TestHandleLeavesDeadLettersPending(t *testing.T) {
	h := handlerFunc(func(context.Context, handler.Batch) error { return nil })
	bad := func(i int) []byte {
		if i == 2 {
			return []byte("{bad")
		}
		return nil
	}
	t.Run("acknowledged", func(t *testing.T) {
		d := &fakeDLQ{}
		p, m := newProc(t, h, d, nil, nil)
		b, err := p.Handle(context.Background(), "t/2", nil, records(4, bad), m)
		if err != nil {
			t.Fatal(err)
		}
		if n, size := b.Letters(); n != 1 || size != int64(len("k2")+len("{bad")) {
			t.Fatalf("Letters: got %d %d, want 1 %d", n, size, len("k2")+len("{bad"))
		}
		for i, want := range []bool{true, true, false, true} {
			if got := b.Done(i); got != want {
				t.Fatalf("Done(%d) before the write: got %v, want %v", i, got, want)
			}
		}
		if len(d.written) != 0 {
			t.Fatalf("written before Write: got %d", len(d.written))
		}
		if err := b.Write(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		if !b.Done(2) || len(d.written) != 1 {
			t.Fatalf("after Write: Done(2) %v, written %d; want true 1", b.Done(2), len(d.written))
		}
		b.Close()
		if v := testutil.ToFloat64(m.DeadLettered); v != 1 {
			t.Fatalf("dead-lettered: got %v, want 1", v)
		}
	})
	t.Run("abandoned", func(t *testing.T) {
		p, m := newProc(t, h, &fakeDLQ{fail: true}, nil, nil)
		b, err := p.Handle(context.Background(), "t/2", nil, records(4, bad), m)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := b.Write(ctx, nil); err == nil {
			t.Fatal("Write: got nil, want ctx's error")
		}
		if b.Done(2) || !b.Done(3) {
			t.Fatalf("after a failed write: Done(2) %v Done(3) %v, want false true", b.Done(2), b.Done(3))
		}
		b.Close()
		if v := testutil.ToFloat64(m.BatchOK) + testutil.ToFloat64(m.BatchPartial); v != 0 {
			t.Fatalf("an abandoned batch counted as finished: %v", v)
		}
	})
}
