package process

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/idempotency"
)

// withID sets the message-id header of each record.
func withID(recs []*kgo.Record, id string) []*kgo.Record {
	for _, r := range recs {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: "message-id", Value: []byte(id)})
	}
	return recs
}

// TestIdempotencyRedrivenRecordHandled: with a header key, a record that
// was dead-lettered was not handled, so its copy sent back by `consumer
// redrive` (the same header, a new offset) is handled; a redelivery of the
// dead-lettered record itself is neither handled nor dead-lettered again.
func TestIdempotencyRedrivenRecordHandled(t *testing.T) {
	h := &countingHandler{fail: func(o int64) bool { return o == 100 }}
	d := &fakeDLQ{}
	p, m, _ := newIdemProc(t, h, d, nil, idempotency.NewMemory(nil), "message-id")
	ctx := context.Background()
	orig := withID(records(1, nil), "m-1")
	if n, err := p.Process(ctx, orig, m); n != 1 || err != nil {
		t.Fatalf("first delivery: got %d %v, want 1 nil", n, err)
	}
	if len(d.written) != 1 {
		t.Fatalf("got %d dead letters, want 1", len(d.written))
	}
	// A crash before the commit: the same record again.
	if n, err := p.Process(ctx, withID(records(1, nil), "m-1"), m); n != 1 || err != nil {
		t.Fatalf("redelivery: got %d %v, want 1 nil", n, err)
	}
	if len(d.written) != 1 {
		t.Errorf("redelivery: got %d dead letters, want still 1", len(d.written))
	}
	// The redriven copy, at a new offset, once the handler is fixed.
	copyOf := withID(records(1, nil), "m-1")
	copyOf[0].Offset = 200
	copyOf[0].Headers = append(copyOf[0].Headers, kgo.RecordHeader{Key: "dlq.redrive.count", Value: []byte("1")})
	if n, err := p.Process(ctx, copyOf, m); n != 1 || err != nil {
		t.Fatalf("redriven copy: got %d %v, want 1 nil", n, err)
	}
	h.mu.Lock()
	got := h.seen[200]
	h.mu.Unlock()
	if got != 1 {
		t.Fatalf("redriven copy: handled %d times, want once: a dead-lettered record was never handled", got)
	}
	// Now the message is handled: any other copy is a duplicate.
	again := withID(records(1, nil), "m-1")
	again[0].Offset = 300
	if n, err := p.Process(ctx, again, m); n != 1 || err != nil {
		t.Fatalf("a later copy: got %d %v, want 1 nil", n, err)
	}
	if got := h.total(); got != 1 {
		t.Errorf("got %d handled in all, want 1", got)
	}
	if v := testutil.ToFloat64(m.Duplicates); v != 2 {
		t.Errorf("duplicates: got %v, want 2 (the redelivery, the later copy)", v)
	}
}

// TestIdempotencyClaimRenewedWhileInFlight: a batch that outlives
// IDEMPOTENCY_IN_PROGRESS_TTL (here an unavailable handler, retried for six
// times the TTL) keeps its records claimed, so another member that gets
// them meanwhile waits instead of handling them at the same time, then
// skips them as duplicates.
func TestIdempotencyClaimRenewedWhileInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := idempotency.NewMemory(nil)
		var inside, most, calls atomic.Int32
		var down atomic.Bool
		down.Store(true)
		h := handlerFunc(func(ctx context.Context, b handler.Batch) error {
			n := inside.Add(1)
			defer inside.Add(-1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(time.Second) // the call takes a while
			if down.Load() {
				return handler.Unavailable(errors.New("503"))
			}
			calls.Add(1)
			return nil
		})
		a, ma, _ := newIdemProc(t, h, &fakeDLQ{}, nil, mem, "") // InProgressTTL 10s
		b, mb, _ := newIdemProc(t, h, &fakeDLQ{}, nil, mem, "")
		ctx := context.Background()
		doneA, doneB := make(chan int, 1), make(chan int, 1)
		go func() { n, _ := a.Process(ctx, records(3, nil), ma); doneA <- n }()
		time.Sleep(30 * time.Second) // a retries the unavailable handler
		go func() { n, _ := b.Process(ctx, records(3, nil), mb); doneB <- n }()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if v := most.Load(); v > 1 {
			t.Fatalf("got %d handler calls at once for the same records, want 1: the claims of a's batch expired while it ran", v)
		}
		if v := testutil.ToFloat64(mb.InProgressWaits); v == 0 {
			t.Error("b did not wait for the records a holds")
		}
		down.Store(false)
		if n := <-doneA; n != 3 {
			t.Fatalf("a: got %d finished, want 3", n)
		}
		if n := <-doneB; n != 3 {
			t.Fatalf("b: got %d finished, want 3", n)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("got %d successful handler calls, want 1", n)
		}
		if v := testutil.ToFloat64(mb.Duplicates); v != 3 {
			t.Errorf("b: got %v duplicates, want 3", v)
		}
		// The batches are over: their claims are no longer renewed.
		if got := mem.Calls(idempotency.OpRenew); got == 0 {
			t.Error("got no renewals")
		}
		before := mem.Calls(idempotency.OpRenew)
		time.Sleep(time.Minute)
		if got := mem.Calls(idempotency.OpRenew); got != before {
			t.Errorf("got %d renewals after the batches ended, want none", got-before)
		}
	})
}

// TestIdempotencyLostClaimNotRenewed: claims that lapse while the store is
// unavailable for longer than IDEMPOTENCY_IN_PROGRESS_TTL are reported
// once, and no longer renewed, so that another member that claimed one
// keeps it.
func TestIdempotencyLostClaimNotRenewed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := idempotency.NewMemory(nil)
		g := idempotency.New("memory", mem, idempotency.Config{Prefix: "g", TTL: time.Hour, InProgressTTL: 3 * time.Second}, idempotency.Metrics{})
		keys := []string{"g:t:0:1", "g:t:0:2"}
		owner := g.Owner()
		v := make([]idempotency.Verdict, 2)
		if err := g.Claim(context.Background(), keys, nil, owner, v); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		lost := 0
		hold := g.Hold(keys, owner, func(n int) { mu.Lock(); lost += n; mu.Unlock() })
		defer hold.Stop()
		time.Sleep(10 * time.Second)
		if !mem.Held(keys[0], owner) || !mem.Held(keys[1], owner) {
			t.Fatal("claims not held after three TTLs of renewals")
		}
		mem.Fail(errors.New("down"))
		time.Sleep(4 * time.Second)
		mem.Fail(nil)
		g2 := idempotency.New("memory", mem, idempotency.Config{Prefix: "g", TTL: time.Hour, InProgressTTL: time.Hour}, idempotency.Metrics{})
		other := g2.Owner()
		if err := g2.Claim(context.Background(), keys[:1], nil, other, v[:1]); err != nil || v[0] != idempotency.Handle {
			t.Fatalf("another owner after the lapse: got %v %v, want it claimed", v[0], err)
		}
		time.Sleep(3 * time.Second)
		renewals := mem.Calls(idempotency.OpRenew)
		time.Sleep(10 * time.Second)
		mu.Lock()
		n := lost
		mu.Unlock()
		if n != 2 {
			t.Errorf("got %d claims reported lost, want 2", n)
		}
		if !mem.Held(keys[0], other) {
			t.Error("the lost claim was taken from the other owner")
		}
		if got := mem.Calls(idempotency.OpRenew); got != renewals {
			t.Errorf("got %d renewals of lost claims, want none", got-renewals)
		}
	})
}

// fakeSlot is a single in-flight slot shared by the batches of a test.
type fakeSlot struct {
	slots  chan struct{}
	yields atomic.Int32
}

type heldSlot struct{ f *fakeSlot }

func (s heldSlot) Yield() { s.f.yields.Add(1); <-s.f.slots }
func (s heldSlot) Take(ctx context.Context) error {
	select {
	case s.f.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestIdempotencyBusyWaitYieldsSlot: a batch waiting for records another
// batch holds gives its in-flight slot back while it waits, so that a
// batch that waits on nothing runs meanwhile.
func TestIdempotencyBusyWaitYieldsSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := idempotency.NewMemory(nil)
		h := &countingHandler{}
		p, m, _ := newIdemProc(t, h, &fakeDLQ{}, nil, mem, "")
		// Another member holds offset 100.
		g := idempotency.New("memory", mem, idempotency.Config{Prefix: "group", TTL: time.Hour, InProgressTTL: time.Hour}, idempotency.Metrics{})
		other := g.Owner()
		if err := g.Claim(context.Background(), []string{"group:t:2:100"}, nil, other, make([]idempotency.Verdict, 1)); err != nil {
			t.Fatal(err)
		}
		f := &fakeSlot{slots: make(chan struct{}, 1)}
		run := func(recs []*kgo.Record, done chan<- int) {
			s := heldSlot{f}
			ctx := context.Background()
			_ = s.Take(ctx)
			n, _ := p.ProcessIn(ctx, "t/2", s, recs, m)
			s.Yield()
			done <- n
		}
		busy, free := make(chan int, 1), make(chan int, 1)
		go run(records(1, nil), busy)
		time.Sleep(time.Second)
		synctest.Wait()
		later := records(2, nil)[1:] // offset 101: waits on nothing
		go run(later, free)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		select {
		case n := <-free:
			if n != 1 {
				t.Fatalf("the free batch: got %d finished, want 1", n)
			}
		default:
			t.Fatal("the free batch did not run while the other waited on a claim: the waiting batch kept the only slot")
		}
		if err := mem.Release(context.Background(), []string{"group:t:2:100"}, other); err != nil {
			t.Fatal(err)
		}
		if n := <-busy; n != 1 {
			t.Fatalf("the waiting batch: got %d finished, want 1", n)
		}
		if got := h.total(); got != 2 {
			t.Errorf("got %d handled, want 2", got)
		}
	})
}

// TestIdempotencyClaimHeldUntilMarked: a batch whose records were handled
// keeps them claimed until their completed marks are stored. Here marking
// fails for three times IDEMPOTENCY_IN_PROGRESS_TTL (renewals still work):
// another member that gets the records meanwhile must wait for them, not
// find the claims lapsed and handle the records a second time.
func TestIdempotencyClaimHeldUntilMarked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := idempotency.NewMemory(nil)
		var calls atomic.Int32
		h := handlerFunc(func(ctx context.Context, b handler.Batch) error {
			calls.Add(1)
			return nil
		})
		a, ma, _ := newIdemProc(t, h, &fakeDLQ{}, nil, mem, "") // InProgressTTL 10s
		b, mb, _ := newIdemProc(t, h, &fakeDLQ{}, nil, mem, "")
		ctx := context.Background()
		mem.FailOp(idempotency.OpComplete, errors.New("throttled"))
		doneA, doneB := make(chan int, 1), make(chan int, 1)
		go func() { n, _ := a.Process(ctx, records(3, nil), ma); doneA <- n }()
		time.Sleep(30 * time.Second) // a retries marking its handled records
		go func() { n, _ := b.Process(ctx, records(3, nil), mb); doneB <- n }()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if n := calls.Load(); n != 1 {
			t.Fatalf("got %d handler calls, want 1: the claims of a's handled records lapsed while their marks were retried", n)
		}
		mem.FailOp(idempotency.OpComplete, nil)
		if n := <-doneA; n != 3 {
			t.Fatalf("a: got %d finished, want 3", n)
		}
		if n := <-doneB; n != 3 {
			t.Fatalf("b: got %d finished, want 3", n)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("got %d handler calls in all, want 1", n)
		}
		if v := testutil.ToFloat64(mb.Duplicates); v != 3 {
			t.Errorf("b: got %v duplicates, want 3", v)
		}
	})
}
