package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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
	"github.com/msk-consumer/msk-consumer/internal/dlq"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

type handlerFunc func(context.Context, handler.Batch) error

func (f handlerFunc) Handle(ctx context.Context, b handler.Batch) error { return f(ctx, b) }

// fakeDLQ records writes; fail makes writes fail until ctx ends.
type fakeDLQ struct {
	mu      sync.Mutex
	written []dlq.Failure
	fail    bool
}

func (d *fakeDLQ) Write(ctx context.Context, fs []dlq.Failure, _ dlq.OnError) error {
	if d.fail {
		<-ctx.Done()
		return ctx.Err()
	}
	d.mu.Lock()
	d.written = append(d.written, fs...)
	d.mu.Unlock()
	return nil
}

type fakeStalls struct {
	mu    sync.Mutex
	stuck map[string]string
	ever  bool
}

func (s *fakeStalls) Stuck(k, why string) {
	s.mu.Lock()
	s.stuck[k], s.ever = why, true
	s.mu.Unlock()
}
func (s *fakeStalls) Unstuck(k string) { s.mu.Lock(); delete(s.stuck, k); s.mu.Unlock() }

func records(n int, value func(i int) []byte) []*kgo.Record {
	out := make([]*kgo.Record, n)
	for i := range out {
		v := fmt.Appendf(nil, `{"i":%d}`, i)
		if value != nil && value(i) != nil {
			v = value(i)
		}
		out[i] = &kgo.Record{Topic: "t", Partition: 2, Offset: int64(100 + i), Key: fmt.Appendf(nil, "k%d", i), Value: v}
	}
	return out
}

func newProc(t *testing.T, h handler.Handler, d DeadLetterer, st Stalls, value codec.Decoder) (*Processor, *metrics.Topic) {
	t.Helper()
	key, err := codec.New(config.Codec{Format: config.FormatString})
	if err != nil {
		t.Fatal(err)
	}
	if value == nil {
		if value, err = codec.New(config.Codec{Format: config.FormatJSON}); err != nil {
			t.Fatal(err)
		}
	}
	if st == nil {
		st = &fakeStalls{stuck: map[string]string{}}
	}
	m := metrics.New(prometheus.NewRegistry()).ForTopic("t")
	return New(Config{MaxAttempts: 3, Backoff: backoff.Policy{First: 100 * time.Millisecond, Max: time.Second}},
		Deps{Key: key, Value: value, Handler: h, DLQ: d, Stalls: st}), m
}

func TestDecodeFailuresDeadLetteredAtOnce(t *testing.T) {
	var got [][]int64
	h := handlerFunc(func(_ context.Context, b handler.Batch) error {
		var offs []int64
		for _, r := range b.Records {
			offs = append(offs, r.Raw.Offset)
			if string(r.Key) != fmt.Sprintf(`"k%d"`, r.Raw.Offset-100) {
				return fmt.Errorf("key %s", r.Key)
			}
		}
		got = append(got, offs)
		return nil
	})
	d := &fakeDLQ{}
	p, m := newProc(t, h, d, nil, nil)
	recs := records(5, func(i int) []byte {
		if i == 1 || i == 3 {
			return []byte("{bad")
		}
		return nil
	})
	recs[4].Value = nil // a tombstone is not a failure
	n, err := p.Process(context.Background(), recs, m)
	if n != 5 || err != nil {
		t.Fatalf("Process: got %d %v, want 5 nil", n, err)
	}
	if len(got) != 1 || fmt.Sprint(got[0]) != "[100 102 104]" {
		t.Fatalf("handler batches: got %v, want [[100 102 104]]", got)
	}
	if len(d.written) != 2 || d.written[0].Record.Offset != 101 || d.written[1].Record.Offset != 103 {
		t.Fatalf("dead letters: got %v", d.written)
	}
	for _, f := range d.written {
		if f.Kind != dlq.KindDecode || f.Attempts != 0 || !errors.Is(f.Err, codec.ErrDecode) {
			t.Fatalf("dead letter: got kind %s attempts %d err %v", f.Kind, f.Attempts, f.Err)
		}
	}
	if v := testutil.ToFloat64(m.ValueErrors); v != 2 {
		t.Fatalf("value decode errors: got %v, want 2", v)
	}
	if v := testutil.ToFloat64(m.BatchPartial); v != 1 {
		t.Fatalf("partial batches: got %v, want 1", v)
	}
}

func TestTombstoneAndMissingKeyAreNull(t *testing.T) {
	var rec handler.Record
	h := handlerFunc(func(_ context.Context, b handler.Batch) error { rec = b.Records[0]; return nil })
	p, m := newProc(t, h, &fakeDLQ{}, nil, nil)
	recs := records(1, nil)
	recs[0].Key, recs[0].Value = nil, nil
	if n, err := p.Process(context.Background(), recs, m); n != 1 || err != nil {
		t.Fatalf("got %d %v", n, err)
	}
	if string(rec.Key) != "null" || string(rec.Value) != "null" {
		t.Fatalf("got key %s value %s, want null null", rec.Key, rec.Value)
	}
}

func TestRetryClassification(t *testing.T) {
	// has reports whether the batch holds the record at offset o.
	has := func(b handler.Batch, o int64) bool {
		for _, r := range b.Records {
			if r.Raw.Offset == o {
				return true
			}
		}
		return false
	}
	tests := []struct {
		name      string
		answer    func(attempt int, b handler.Batch) error
		wantCalls int
		// wantDead maps each dead-lettered offset to its handler attempts.
		wantDead map[int64]int
	}{
		{"transient then ok", func(a int, _ handler.Batch) error {
			if a == 1 {
				return errors.New("500")
			}
			return nil
		}, 2, nil},
		// 3 attempts of [100 101 102], then 3 of [100] and of [101 102],
		// then 3 of [101] and of [102].
		{"always failing is bisected down to single records", func(int, handler.Batch) error { return errors.New("500") },
			15, map[int64]int{100: 6, 101: 9, 102: 9}},
		{"one record failing the batch is isolated", func(_ int, b handler.Batch) error {
			if has(b, 101) {
				return errors.New("500")
			}
			return nil
		}, 3 + 1 + 3 + 3 + 1, map[int64]int{101: 9}},
		// [100 101 102], [100], [101 102], [101], [102]: no retries.
		{"rejected is bisected at once", func(int, handler.Batch) error { return handler.Permanent(errors.New("400")) },
			5, map[int64]int{100: 2, 101: 3, 102: 3}},
		{"one rejected record is isolated without retries", func(_ int, b handler.Batch) error {
			if has(b, 101) {
				return handler.Permanent(errors.New("400"))
			}
			return nil
		}, 5, map[int64]int{101: 3}},
		{"one item always fails", func(_ int, b handler.Batch) error {
			if has(b, 101) {
				return &handler.ItemFailures{Offsets: []int64{101}}
			}
			return nil
		}, 3, map[int64]int{101: 3}},
		{"unknown item offset fails the batch", func(a int, _ handler.Batch) error {
			if a == 1 {
				return &handler.ItemFailures{Offsets: []int64{999}}
			}
			return nil
		}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				var delivered []int64
				h := handlerFunc(func(_ context.Context, b handler.Batch) error {
					calls++
					err := tt.answer(calls, b)
					var items *handler.ItemFailures
					for _, r := range b.Records {
						ok := err == nil || (errors.As(err, &items) && !slices.Contains(items.Offsets, r.Raw.Offset))
						if ok && !slices.Contains(delivered, r.Raw.Offset) {
							delivered = append(delivered, r.Raw.Offset)
						}
					}
					return err
				})
				d := &fakeDLQ{}
				p, m := newProc(t, h, d, nil, nil)
				if n, err := p.Process(context.Background(), records(3, nil), m); n != 3 || err != nil {
					t.Fatalf("Process: got %d %v", n, err)
				}
				if calls != tt.wantCalls {
					t.Fatalf("handler calls: got %d, want %d", calls, tt.wantCalls)
				}
				dead := map[int64]int{}
				for _, f := range d.written {
					dead[f.Record.Offset] = f.Attempts
					if f.Kind != dlq.KindHandler {
						t.Fatalf("dead letter %d: got kind %s, want handler", f.Record.Offset, f.Kind)
					}
				}
				if len(dead) != len(tt.wantDead) || (len(dead) > 0 && fmt.Sprint(dead) != fmt.Sprint(tt.wantDead)) {
					t.Fatalf("dead-lettered (offset:attempts): got %v, want %v", dead, tt.wantDead)
				}
				if !slices.IsSorted(delivered) {
					t.Fatalf("delivered out of offset order: %v", delivered)
				}
				if len(delivered)+len(dead) < 3 {
					t.Fatalf("delivered %v and dead-lettered %v: some records neither", delivered, dead)
				}
			})
		})
	}
}

// TestCanceledReturnsFinishedPrefix: when the batch is abandoned, only the
// records before the first unfinished one count as finished.
func TestCanceledReturnsFinishedPrefix(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		h := handlerFunc(func(_ context.Context, b handler.Batch) error {
			cancel() // during the backoff that follows
			return &handler.ItemFailures{Offsets: []int64{102}}
		})
		p, m := newProc(t, h, &fakeDLQ{}, nil, nil)
		n, err := p.Process(ctx, records(5, nil), m)
		if n != 2 || !errors.Is(err, context.Canceled) {
			t.Fatalf("got %d %v, want 2 (offsets 100 and 101) and context.Canceled", n, err)
		}
	})
}

// TestDLQDownHoldsThePartition: a dead-letter write that never succeeds
// keeps the failed record unfinished until the work is abandoned.
func TestDLQDownHoldsThePartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		p, m := newProc(t, handlerFunc(func(context.Context, handler.Batch) error { return nil }), &fakeDLQ{fail: true}, nil, nil)
		n, err := p.Process(ctx, records(4, func(i int) []byte {
			if i == 2 {
				return []byte("nope")
			}
			return nil
		}), m)
		if n != 2 || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %d %v, want 2 and a deadline error", n, err)
		}
	})
}

// unavailable fails with ErrUnavailable a few times, like an unreachable
// schema registry, then decodes as JSON.
type unavailable struct {
	left int
	json codec.Decoder
}

func (u *unavailable) AppendJSON(ctx context.Context, dst, src []byte) ([]byte, error) {
	if u.left > 0 {
		u.left--
		return dst, fmt.Errorf("registry: %w", codec.ErrUnavailable)
	}
	return u.json.AppendJSON(ctx, dst, src)
}

func TestUnavailableDecoderRetriedNotDeadLettered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		js, _ := codec.New(config.Codec{Format: config.FormatJSON})
		st := &fakeStalls{stuck: map[string]string{}}
		d := &fakeDLQ{}
		handled := 0
		p, m := newProc(t, handlerFunc(func(_ context.Context, b handler.Batch) error { handled += len(b.Records); return nil }),
			d, st, &unavailable{left: 5, json: js})
		n, err := p.Process(context.Background(), records(3, nil), m)
		if n != 3 || err != nil || handled != 3 || len(d.written) != 0 {
			t.Fatalf("got %d %v, handled %d, dead %d; want 3 nil 3 0", n, err, handled, len(d.written))
		}
		if !st.ever || len(st.stuck) != 0 {
			t.Fatalf("stalls: reported %v, still stuck %v; want reported and cleared", st.ever, st.stuck)
		}
	})
}

// TestInvalidDeadLetteredAtOnce: records the handler rejects as invalid are
// dead-lettered as validation after one attempt, while failed ones retry.
func TestInvalidDeadLetteredAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := map[int64]int{}
		h := handlerFunc(func(_ context.Context, b handler.Batch) error {
			var failed, bad []int64
			for _, r := range b.Records {
				calls[r.Raw.Offset]++
				switch {
				case r.Raw.Offset == 101:
					bad = append(bad, 101)
				case r.Raw.Offset == 102 && calls[102] == 1:
					failed = append(failed, 102)
				}
			}
			if failed == nil && bad == nil {
				return nil
			}
			return &handler.ItemFailures{Offsets: failed, Invalid: bad, Err: errors.New("price is negative")}
		})
		d := &fakeDLQ{}
		p, m := newProc(t, h, d, nil, nil)
		if n, err := p.Process(context.Background(), records(4, nil), m); n != 4 || err != nil {
			t.Fatalf("Process: got %d %v", n, err)
		}
		if len(d.written) != 1 || d.written[0].Record.Offset != 101 || d.written[0].Kind != dlq.KindValidation || d.written[0].Attempts != 1 {
			t.Fatalf("dead letters: got %+v, want offset 101 as validation after 1 attempt", d.written)
		}
		if calls[101] != 1 || calls[102] != 2 || calls[100] != 1 {
			t.Fatalf("handler calls by offset: got %v, want 100:1 101:1 102:2 103:1", calls)
		}
		if got := testutil.ToFloat64(m.Processed); got != 3 {
			t.Fatalf("processed: got %v, want 3", got)
		}
	})
}

type panicky struct{}

func (panicky) AppendJSON(context.Context, []byte, []byte) ([]byte, error) {
	panic("index out of range")
}

// TestPanicsAreFailures: a panicking handler is a failed attempt (retried,
// then dead-lettered) and a panicking decoder a decode failure; neither
// takes the process down.
func TestPanicsAreFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		h := handlerFunc(func(_ context.Context, b handler.Batch) error {
			calls++
			panic("nil map write")
		})
		d := &fakeDLQ{}
		p, m := newProc(t, h, d, nil, nil)
		if n, err := p.Process(context.Background(), records(2, nil), m); n != 2 || err != nil {
			t.Fatalf("Process: got %d %v", n, err)
		}
		// 3 attempts of both, then 3 of each alone.
		if calls != 9 || len(d.written) != 2 || d.written[0].Kind != dlq.KindHandler || d.written[0].Attempts != 6 {
			t.Fatalf("calls %d, dead letters %+v; want 9 calls and both dead-lettered as handler after 6", calls, d.written)
		}

		d = &fakeDLQ{}
		p, m = newProc(t, handlerFunc(func(context.Context, handler.Batch) error { return nil }), d, nil, panicky{})
		if n, err := p.Process(context.Background(), records(1, nil), m); n != 1 || err != nil {
			t.Fatalf("Process: got %d %v", n, err)
		}
		if len(d.written) != 1 || d.written[0].Kind != dlq.KindDecode || !errors.Is(d.written[0].Err, codec.ErrDecode) {
			t.Fatalf("dead letters: got %+v, want one decode failure", d.written)
		}
	})
}

// TestHandlerMayReorderItsBatch: a Go handler that sorts its batch (here by
// key, descending) and filters it must not change which record is taken as
// failed: records are identified by offset.
func TestHandlerMayReorderItsBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := map[int64]int{}
		h := handlerFunc(func(_ context.Context, b handler.Batch) error {
			slices.SortFunc(b.Records, func(a, b handler.Record) int { return -bytes.Compare(a.Key, b.Key) })
			if len(b.Records) > 1 {
				b.Records = b.Records[:len(b.Records)-1] // drops the lowest key: its record counts as handled
			}
			for _, r := range b.Records {
				calls[r.Raw.Offset]++
			}
			return &handler.ItemFailures{Offsets: []int64{103}}
		})
		d := &fakeDLQ{}
		p, m := newProc(t, h, d, nil, nil)
		if n, err := p.Process(context.Background(), records(6, nil), m); n != 6 || err != nil {
			t.Fatalf("Process: got %d %v", n, err)
		}
		if len(d.written) != 1 || d.written[0].Record.Offset != 103 {
			var got []int64
			for _, f := range d.written {
				got = append(got, f.Record.Offset)
			}
			t.Fatalf("dead-lettered: got %v, want [103]", got)
		}
		if calls[103] != 3 || calls[104] != 1 {
			t.Fatalf("handler calls by offset: got %v, want 103 three times, 104 once", calls)
		}
	})
}

// TestUnavailableHandlerRetriedWithoutLimit: an unavailable handler is
// retried far past HANDLER_MAX_ATTEMPTS, nothing is dead-lettered, the
// partition is reported stuck naming the handler and cleared once it
// answers, and the wait is counted.
func TestUnavailableHandlerRetriedWithoutLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStalls{stuck: map[string]string{}}
		calls := 0
		var stuckWhile string
		h := handlerFunc(func(_ context.Context, b handler.Batch) error {
			calls++
			if calls <= 50 {
				return handler.Unavailable(errors.New("dial tcp 127.0.0.1:1: connection refused"))
			}
			stuckWhile = st.stuck["t/2"]
			return nil
		})
		d := &fakeDLQ{}
		p, m := newProc(t, h, d, st, nil)
		p.cfg.HandlerName = "http"
		if n, err := p.Process(context.Background(), records(3, nil), m); n != 3 || err != nil {
			t.Fatalf("Process: got %d %v", n, err)
		}
		if calls != 51 || len(d.written) != 0 {
			t.Fatalf("calls %d, dead letters %d; want 51 and 0", calls, len(d.written))
		}
		if want := "handler http unavailable: dial tcp 127.0.0.1:1: connection refused"; stuckWhile != want {
			t.Fatalf("stuck reason: got %q, want %q", stuckWhile, want)
		}
		if len(st.stuck) != 0 {
			t.Fatalf("still stuck after the handler answered: %v", st.stuck)
		}
		if got := testutil.ToFloat64(m.Unavailable); got != 50 {
			t.Fatalf("unavailable attempts: got %v, want 50", got)
		}
		// 50 waits, capped at 1s, jittered into [0.5s, 1s] for most.
		if got := testutil.ToFloat64(m.UnavailableSecs); got < 20 || got > 50 {
			t.Fatalf("unavailable seconds: got %v, want 20..50", got)
		}
		if got := testutil.ToFloat64(m.Processed); got != 3 {
			t.Fatalf("processed: got %v, want 3", got)
		}
	})
}

// TestUnavailableHandlerWaitsUntilCanceled: while the handler is
// unavailable the batch is never finished; canceling returns nothing
// finished and dead-letters nothing.
func TestUnavailableHandlerWaitsUntilCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		d := &fakeDLQ{}
		p, m := newProc(t, handlerFunc(func(context.Context, handler.Batch) error {
			return handler.Unavailable(errors.New("503"))
		}), d, nil, nil)
		n, err := p.Process(ctx, records(3, nil), m)
		if n != 0 || !errors.Is(err, context.DeadlineExceeded) || len(d.written) != 0 {
			t.Fatalf("got %d %v, %d dead letters; want 0, a deadline error, none", n, err, len(d.written))
		}
	})
}

// TestMaxRecordAgeExpires: with HANDLER_MAX_RECORD_AGE, records older than
// it are dead-lettered as expired when their handling fails, whatever the
// reason (unavailability included); younger ones keep waiting.
func TestMaxRecordAgeExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Now()
		recs := records(4, nil)
		for i, r := range recs {
			r.Timestamp = now.Add(-time.Duration(4-i) * 30 * time.Minute) // 2h, 1.5h, 1h, 30m old
		}
		var got []int64
		h := handlerFunc(func(_ context.Context, b handler.Batch) error {
			for _, r := range b.Records {
				if r.Raw.Offset == 103 && time.Since(now) > 20*time.Minute {
					got = append(got, 103)
					return nil
				}
			}
			return handler.Unavailable(errors.New("connection refused"))
		})
		d := &fakeDLQ{}
		p, m := newProc(t, h, d, nil, nil)
		p.cfg.MaxRecordAge = 75 * time.Minute
		if n, err := p.Process(context.Background(), recs, m); n != 4 || err != nil {
			t.Fatalf("Process: got %d %v", n, err)
		}
		var dead []string
		for _, f := range d.written {
			dead = append(dead, fmt.Sprintf("%d:%s", f.Record.Offset, f.Kind))
		}
		// 100 (2h) and 101 (1.5h) at the first failure; 102 (1h) once
		// it passed 75 minutes; 103 handled after 20 minutes.
		if fmt.Sprint(dead) != "[100:expired 101:expired 102:expired]" || fmt.Sprint(got) != "[103]" {
			t.Fatalf("dead-lettered %v, handled %v; want 100..102 expired and 103 handled", dead, got)
		}
	})
}

// TestLargeBatchMemoryNotKept: the decoded JSON of a batch of large records
// is not kept for the next batch.
func TestLargeBatchMemoryNotKept(t *testing.T) {
	p, m := newProc(t, handlerFunc(func(context.Context, handler.Batch) error { return nil }), &fakeDLQ{}, nil, nil)
	big := records(4, func(int) []byte { return fmt.Appendf(nil, `{"s":"%s"}`, bytes.Repeat([]byte("x"), 1<<20)) })
	w := p.get(big, m)
	if err := w.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cap(w.buf) <= maxKeptBuf {
		t.Fatalf("the batch decoded into %d bytes; the test needs more than %d", cap(w.buf), maxKeptBuf)
	}
	p.put(w)
	if cap(w.buf) != 0 || w.recs != nil || slices.ContainsFunc(w.fails[:cap(w.fails)], func(f dlq.Failure) bool { return f.Record != nil }) {
		t.Fatalf("after the batch: buffer of %d bytes kept, records referenced %v", cap(w.buf), w.recs != nil)
	}
}

// lazyErr formats the decoded value it holds only when asked, as a
// handler's own error type may.
type lazyErr struct{ v []byte }

func (e lazyErr) Error() string { return "invalid " + string(e.v) }

// messagesDLQ keeps the message of every failure as it is when written.
type messagesDLQ struct{ msgs []string }

func (d *messagesDLQ) Write(_ context.Context, fs []dlq.Failure, _ dlq.OnError) error {
	for _, f := range fs {
		d.msgs = append(d.msgs, f.Err.Error())
	}
	return nil
}

// TestFailureMessageReadBeforeTheNextBatch: a batch waiting for its
// dead-letter copies gives its decoded records' memory to the next batch,
// so the message of an error that points into them (a handler's lazy
// error) is read when the record is given up on, not when its copy is
// written after the next batch was decoded.
func TestFailureMessageReadBeforeTheNextBatch(t *testing.T) {
	h := handlerFunc(func(_ context.Context, b handler.Batch) error {
		return handler.Permanent(lazyErr{b.Records[0].Value})
	})
	d := &messagesDLQ{}
	p, m := newProc(t, h, d, nil, nil)
	ctx := context.Background()
	first, err := p.Handle(ctx, "t/2", nil, records(1, func(int) []byte { return []byte(`{"v":"AAAA"}`) }), m)
	if err != nil {
		t.Fatal(err)
	}
	next, err := p.Handle(ctx, "t/2", nil, records(1, func(int) []byte { return []byte(`{"v":"BBBB"}`) }), m)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Write(ctx, nil); err != nil {
		t.Fatal(err)
	}
	first.Close()
	next.Close()
	if len(d.msgs) != 1 || !strings.Contains(d.msgs[0], "AAAA") {
		t.Fatalf("dead-letter message of the first batch: got %q, want its own value", d.msgs)
	}
}
