package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/backoff"
	"github.com/msk-consumer/msk-consumer/internal/codec"
	"github.com/msk-consumer/msk-consumer/internal/idempotency"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

// newIdemProc is newProc with an idempotency store; header, if set, keys
// records by that header.
func newIdemProc(t *testing.T, h handler.Handler, d DeadLetterer, st Stalls, store idempotency.Store, header string) (*Processor, *metrics.Topic, *metrics.Metrics) {
	t.Helper()
	key, err := codec.New(config.Codec{Format: config.FormatString})
	if err != nil {
		t.Fatal(err)
	}
	value, err := codec.New(config.Codec{Format: config.FormatJSON})
	if err != nil {
		t.Fatal(err)
	}
	if st == nil {
		st = &fakeStalls{stuck: map[string]string{}}
	}
	all := metrics.New(prometheus.NewRegistry())
	g := idempotency.New("memory", store, idempotency.Config{
		Prefix: "group", Header: header, TTL: time.Hour, InProgressTTL: 10 * time.Second,
	}, idempotency.Metrics{Seconds: all.IdempotencySeconds, Errors: all.IdempotencyErrors})
	p := New(Config{MaxAttempts: 3, Backoff: backoff.Policy{First: 100 * time.Millisecond, Max: time.Second}},
		Deps{Key: key, Value: value, Handler: h, DLQ: d, Stalls: st, Idempotency: g})
	return p, all.ForTopic("t"), all
}

// countingHandler counts each record's successful deliveries by offset.
type countingHandler struct {
	mu   sync.Mutex
	seen map[int64]int
	fail func(o int64) bool // a record that fails every attempt
}

func (c *countingHandler) Handle(_ context.Context, b handler.Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[int64]int{}
	}
	var failed []int64
	for _, r := range b.Records {
		if c.fail != nil && c.fail(r.Raw.Offset) {
			failed = append(failed, r.Raw.Offset)
			continue
		}
		c.seen[r.Raw.Offset]++
	}
	if len(failed) > 0 {
		return &handler.ItemFailures{Offsets: failed, Err: errors.New("failed")}
	}
	return nil
}

func (c *countingHandler) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.seen {
		n += v
	}
	return n
}

func TestIdempotencyRedeliveryHandledOnce(t *testing.T) {
	h := &countingHandler{fail: func(o int64) bool { return o == 103 }}
	d := &fakeDLQ{}
	mem := idempotency.NewMemory(nil)
	p, m, all := newIdemProc(t, h, d, nil, mem, "")
	recs := records(6, func(i int) []byte {
		if i == 1 {
			return []byte("{bad") // dead-lettered as decode
		}
		return nil
	})
	ctx := context.Background()
	if n, err := p.Process(ctx, recs, m); n != 6 || err != nil {
		t.Fatalf("first delivery: got %d %v, want 6 nil", n, err)
	}
	if got := h.total(); got != 4 {
		t.Fatalf("first delivery: got %d handled, want 4", got)
	}
	if len(d.written) != 2 {
		t.Fatalf("first delivery: got %d dead letters, want 2 (decode, handler)", len(d.written))
	}
	for _, r := range recs {
		key := fmt.Sprintf("group:t:2:%d", r.Offset)
		lettered := r.Offset == 101 || r.Offset == 103
		if mem.Completed(key) == lettered || mem.Lettered(key) != lettered {
			t.Errorf("%s: got completed %v, dead-lettered %v; want the handled ones completed, the others marked dead-lettered",
				key, mem.Completed(key), mem.Lettered(key))
		}
	}

	// The whole batch again (a crash before the commit), and a longer one
	// that overlaps it.
	if n, err := p.Process(ctx, records(6, nil), m); n != 6 || err != nil {
		t.Fatalf("redelivery: got %d %v, want 6 nil", n, err)
	}
	if n, err := p.Process(ctx, records(8, nil), m); n != 8 || err != nil {
		t.Fatalf("overlap: got %d %v, want 8 nil", n, err)
	}
	h.mu.Lock()
	for o, n := range h.seen {
		if n != 1 {
			t.Errorf("offset %d: handled %d times, want once", o, n)
		}
	}
	h.mu.Unlock()
	if got := h.total(); got != 6 {
		t.Errorf("got %d handled in all, want 6 (4, then 106 and 107)", got)
	}
	if len(d.written) != 2 {
		t.Errorf("got %d dead letters in all, want 2: a redelivered dead letter is not written again", len(d.written))
	}
	if got := testutil.ToFloat64(m.Duplicates); got != 12 {
		t.Errorf("consumer_records_total{outcome=duplicate}: got %v, want 12", got)
	}
	if got := mem.Calls(idempotency.OpBegin); got != 3 {
		t.Errorf("got %d begin calls, want one per batch (3)", got)
	}
	if got := testutil.CollectAndCount(all.IdempotencySeconds); got != 2 {
		t.Errorf("consumer_idempotency_store_seconds: got %d series, want 2 (begin, complete)", got)
	}
}

func TestIdempotencyHeaderKey(t *testing.T) {
	h := &countingHandler{}
	p, m, _ := newIdemProc(t, h, &fakeDLQ{}, nil, idempotency.NewMemory(nil), "message-id")
	recs := records(4, nil)
	ids := []string{"m-1", "", "m-1", "m-2"} // record 101 has no id; 102 repeats 100's
	for i, id := range ids {
		if id != "" {
			recs[i].Headers = []kgo.RecordHeader{{Key: "message-id", Value: []byte(id)}}
		}
	}
	if n, err := p.Process(context.Background(), recs, m); n != 4 || err != nil {
		t.Fatalf("got %d %v, want 4 nil", n, err)
	}
	h.mu.Lock()
	got := slices.Sorted(func(yield func(int64) bool) {
		for o := range h.seen {
			if !yield(o) {
				return
			}
		}
	})
	h.mu.Unlock()
	if want := []int64{100, 101, 103}; !slices.Equal(got, want) {
		t.Errorf("handled %v, want %v", got, want)
	}
	if v := testutil.ToFloat64(m.Unkeyed); v != 1 {
		t.Errorf("unkeyed: got %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.Duplicates); v != 1 {
		t.Errorf("duplicates: got %v, want 1", v)
	}
	// The same ids again in a later batch (the producer sent them twice):
	// only the unkeyed record is handled again.
	more := records(6, nil)[4:]
	more[0].Headers = []kgo.RecordHeader{{Key: "message-id", Value: []byte("m-2")}}
	if n, err := p.Process(context.Background(), more, m); n != 2 || err != nil {
		t.Fatalf("got %d %v, want 2 nil", n, err)
	}
	if v := h.total(); v != 4 {
		t.Errorf("got %d handled in all, want 4", v)
	}
}

// TestIdempotencyInProgressRace: two members get the same record at once
// (a partition moved while its old owner still handles it). The second
// waits for the first rather than handling it too, then skips it.
func TestIdempotencyInProgressRace(t *testing.T) {
	for name, mk := range raceStores(t) {
		t.Run(name, func(t *testing.T) {
			store := mk(t)
			var calls atomic.Int32
			release := make(chan struct{})
			entered := make(chan struct{}, 1)
			h := handlerFunc(func(ctx context.Context, b handler.Batch) error {
				calls.Add(1)
				entered <- struct{}{}
				<-release
				return nil
			})
			st := &fakeStalls{stuck: map[string]string{}}
			a, ma, _ := newIdemProc(t, h, &fakeDLQ{}, st, store, "")
			b, mb, _ := newIdemProc(t, h, &fakeDLQ{}, st, store, "")
			rec := func() []*kgo.Record { r := records(1, nil); r[0].Offset = time.Now().UnixNano(); return r }()
			// Keys must be unique per run on a shared store.
			ctx := context.Background()
			doneA := make(chan int, 1)
			go func() { n, _ := a.Process(ctx, rec, ma); doneA <- n }()
			<-entered // a is in the handler
			doneB := make(chan int, 1)
			go func() { n, _ := b.Process(ctx, rec, mb); doneB <- n }()
			deadline := time.Now().Add(5 * time.Second)
			for testutil.ToFloat64(mb.InProgressWaits) == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if v := testutil.ToFloat64(mb.InProgressWaits); v == 0 {
				t.Fatal("b did not wait for the record in progress under a")
			}
			time.Sleep(300 * time.Millisecond) // b keeps waiting
			if n := calls.Load(); n != 1 {
				t.Fatalf("got %d handler calls while a holds the record, want 1", n)
			}
			close(release)
			if n := <-doneA; n != 1 {
				t.Fatalf("a: got %d finished, want 1", n)
			}
			select {
			case n := <-doneB:
				if n != 1 {
					t.Fatalf("b: got %d finished, want 1", n)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("b did not finish after a completed the record")
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("got %d handler calls, want 1", n)
			}
			if v := testutil.ToFloat64(mb.Duplicates); v != 1 {
				t.Errorf("b: got %v duplicates, want 1", v)
			}
			if st.ever {
				t.Error("waiting for another member made the partition stuck; want it ready: nothing is unavailable")
			}
		})
	}
}

// raceStores are the stores the race runs on: memory, and Redis with
// REDIS_TEST_URL (the store protocol itself is tested on every store in
// internal/idempotency).
func raceStores(t *testing.T) map[string]func(t *testing.T) idempotency.Store {
	m := map[string]func(t *testing.T) idempotency.Store{
		"memory": func(*testing.T) idempotency.Store { return idempotency.NewMemory(nil) },
	}
	if url := os.Getenv("REDIS_TEST_URL"); url != "" {
		m["redis"] = func(t *testing.T) idempotency.Store { return redisStore(t, url) }
	}
	return m
}

// redisStore connects to the Redis at url until the test ends.
func redisStore(tb testing.TB, url string) idempotency.Store {
	r, err := idempotency.NewRedis(url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// TestIdempotencyStoreOutage: a store that cannot be reached holds the
// partition, unready, and nothing is handled, skipped or handled twice
// because of it, whether it is down before the handler or after.
func TestIdempotencyStoreOutage(t *testing.T) {
	for _, phase := range []string{"claim", "complete"} {
		t.Run(phase, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mem := idempotency.NewMemory(nil)
				outage := errors.New("dial tcp 10.0.0.1:6379: connect: connection refused")
				h := &countingHandler{}
				var once sync.Once
				wrapped := handlerFunc(func(ctx context.Context, b handler.Batch) error {
					err := h.Handle(ctx, b)
					if phase == "complete" {
						once.Do(func() { mem.Fail(outage) })
					}
					return err
				})
				st := &fakeStalls{stuck: map[string]string{}}
				p, m, all := newIdemProc(t, wrapped, &fakeDLQ{}, st, mem, "")
				if phase == "claim" {
					mem.Fail(outage)
				}
				done := make(chan int, 1)
				go func() { n, _ := p.Process(context.Background(), records(4, nil), m); done <- n }()
				time.Sleep(time.Minute)
				synctest.Wait()
				select {
				case n := <-done:
					t.Fatalf("Process returned %d during the outage, want it to wait", n)
				default:
				}
				st.mu.Lock()
				reason := st.stuck["t/2"]
				st.mu.Unlock()
				if !strings.Contains(reason, "idempotency store memory unavailable: ") || !strings.Contains(reason, "connection refused") {
					t.Errorf("stuck reason: got %q, want the store named with its error", reason)
				}
				want := 0
				if phase == "complete" {
					want = 4
				}
				if got := h.total(); got != want {
					t.Errorf("handled during the outage: got %d, want %d", got, want)
				}
				if v := testutil.ToFloat64(all.IdempotencyErrors.WithLabelValues(phaseOp(phase))); v < 5 {
					t.Errorf("store errors: got %v, want one per attempt over a minute", v)
				}
				mem.Fail(nil)
				if n := <-done; n != 4 {
					t.Fatalf("after the outage: got %d finished, want 4", n)
				}
				if got := h.total(); got != 4 {
					t.Errorf("handled in all: got %d, want 4: once each", got)
				}
				if len(st.stuck) != 0 {
					t.Errorf("still stuck after the outage: %v", st.stuck)
				}
				for i := range 4 {
					if key := fmt.Sprintf("group:t:2:%d", 100+i); !mem.Completed(key) {
						t.Errorf("%s: got not completed, want completed", key)
					}
				}
			})
		})
	}
}

func phaseOp(phase string) string {
	if phase == "claim" {
		return idempotency.OpBegin
	}
	return idempotency.OpComplete
}

// TestIdempotencyAbandonedBatchReleasesClaims: a batch canceled before the
// handler saw its records gives their claims back, so the partition's next
// owner need not wait for them to expire.
func TestIdempotencyAbandonedBatchReleasesClaims(t *testing.T) {
	mem := idempotency.NewMemory(nil)
	ctx, cancel := context.WithCancel(context.Background())
	h := handlerFunc(func(context.Context, handler.Batch) error {
		cancel() // abandoned while the handler runs: what it held keeps its claim
		return handler.Unavailable(errors.New("down"))
	})
	p, m, _ := newIdemProc(t, h, &fakeDLQ{}, nil, mem, "")
	recs := records(3, func(i int) []byte {
		if i == 2 {
			return []byte("{bad") // never handed to the handler
		}
		return nil
	})
	if n, err := p.Process(ctx, recs, m); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %d %v, want 0 and canceled", n, err)
	}
	other := idempotency.New("memory", mem, idempotency.Config{Prefix: "group", InProgressTTL: time.Minute, TTL: time.Hour}, idempotency.Metrics{})
	keys := []string{"group:t:2:100", "group:t:2:101", "group:t:2:102"}
	v := make([]idempotency.Verdict, 3)
	if err := other.Claim(context.Background(), keys, nil, other.Owner(), v); err != nil {
		t.Fatal(err)
	}
	want := []idempotency.Verdict{idempotency.Busy, idempotency.Busy, idempotency.Handle}
	if !slices.Equal(v, want) {
		t.Errorf("next owner: got %v, want %v", v, want)
	}
}
