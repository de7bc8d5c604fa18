package dlq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/msk-consumer/msk-consumer/internal/backoff"
)

func TestBuild(t *testing.T) {
	src := &kgo.Record{
		Topic: "orders", Partition: 3, Offset: 42,
		Key: []byte{0, 1, 2}, Value: []byte{0xff, 'x'},
		Timestamp: time.UnixMilli(1795000000123),
		Headers:   []kgo.RecordHeader{{Key: "trace-id", Value: []byte("t-42")}, {Key: "bin", Value: []byte{0}}},
	}
	at := time.Date(2026, 11, 22, 11, 30, 0, 123e6, time.FixedZone("x", 3600))
	r := Build("orders.dlq", "g", Failure{Record: src, Kind: KindHandler, Err: errors.New("HTTP 500:\nboom\tnow"), Attempts: 3}, at)
	if r.Topic != "orders.dlq" || string(r.Key) != string(src.Key) || string(r.Value) != string(src.Value) {
		t.Fatalf("got %s %q %q", r.Topic, r.Key, r.Value)
	}
	if !r.Timestamp.IsZero() {
		t.Fatalf("timestamp: got %v, want zero (set by the client at produce)", r.Timestamp)
	}
	want := []string{
		"trace-id=t-42", "bin=\x00",
		"dlq.original.topic=orders", "dlq.original.partition=3", "dlq.original.offset=42",
		"dlq.original.timestamp=1795000000123", "dlq.consumer.group=g", "dlq.error.kind=handler",
		"dlq.error.message=HTTP 500: boom now", "dlq.attempts=3", "dlq.failed.at=2026-11-22T10:30:00.123Z",
	}
	if len(r.Headers) != len(want) {
		t.Fatalf("headers: got %d, want %d", len(r.Headers), len(want))
	}
	for i, h := range r.Headers {
		if got := h.Key + "=" + string(h.Value); got != want[i] {
			t.Fatalf("header %d: got %q, want %q", i, got, want[i])
		}
	}
}

func TestOneLineBounded(t *testing.T) {
	long := strings.Repeat("é", 2000)
	got := oneLine(long)
	if len(got) > maxMessage+len("…") || !strings.HasSuffix(got, "…") {
		t.Fatalf("got %d bytes", len(got))
	}
	if strings.ContainsRune(got[:len(got)-len("…")], '\uFFFD') {
		t.Fatal("cut inside a UTF-8 sequence")
	}
}

type flaky struct {
	failures int
	calls    int
	produced []*kgo.Record
}

func (f *flaky) ProduceSync(_ context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	f.calls++
	var out kgo.ProduceResults
	for _, r := range rs {
		var err error
		if f.failures > 0 {
			err = errors.New("NOT_ENOUGH_REPLICAS")
		} else {
			f.produced = append(f.produced, r)
		}
		out = append(out, kgo.ProduceResult{Record: r, Err: err})
	}
	if f.failures > 0 {
		f.failures--
	}
	return out
}

func TestWriteRetriesUntilAcknowledged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &flaky{failures: 4}
		var reported int
		w := NewWriter(testConfig(), Deps{Producer: p})
		err := w.Write(context.Background(), []Failure{{Record: &kgo.Record{Topic: "t", Offset: 7}, Kind: KindDecode, Err: errors.New("x")}}, func(src *kgo.Record, err error) {
			if src.Offset != 7 {
				t.Errorf("OnError source offset: got %d, want 7", src.Offset)
			}
			reported++
		})
		if err != nil {
			t.Fatal(err)
		}
		if p.calls != 5 || reported != 4 || len(p.produced) != 1 || p.produced[0].Topic != "t.dlq" {
			t.Fatalf("calls %d reported %d produced %d", p.calls, reported, len(p.produced))
		}
	})
}

func TestWriteStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &flaky{failures: 1 << 30}
		w := NewWriter(testConfig(), Deps{Producer: p})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := w.Write(ctx, []Failure{{Record: &kgo.Record{Topic: "t"}}}, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want a deadline error", err)
		}
		if len(p.produced) != 0 || p.calls < 60 {
			t.Fatalf("produced %d in %d calls; want 0 in at least 60 (one a second for a minute)", len(p.produced), p.calls)
		}
	})
}

func testConfig() Config {
	return Config{
		Group:    "g",
		TopicFor: func(s string) string { return s + ".dlq" },
		Backoff:  backoff.Policy{First: 100 * time.Millisecond, Max: time.Second},
	}
}

// limited refuses, as a broker does, record batches over max bytes.
type limited struct {
	mu       sync.Mutex
	max      int
	produced []*kgo.Record
	refused  int
}

func (l *limited) ProduceSync(_ context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out kgo.ProduceResults
	for _, r := range rs {
		var err error
		if BatchSize(r) > l.max {
			err = kerr.MessageTooLarge
			l.refused++
		} else {
			l.produced = append(l.produced, r)
		}
		out = append(out, kgo.ProduceResult{Record: r, Err: err})
	}
	return out
}

// TestCopyTooLargeForTheTopicOmitsTheValue: a record close to the dead-letter
// topic's max.message.bytes, with the dead-letter headers added, would be
// refused forever; it is written without its value, with the value's size
// in dlq.value.omitted, whether the writer knew the limit or the broker
// refused the copy.
func TestCopyTooLargeForTheTopicOmitsTheValue(t *testing.T) {
	big := &kgo.Record{Topic: "t", Offset: 9, Key: []byte("k"), Value: make([]byte, 1000000),
		Headers: []kgo.RecordHeader{{Key: "trace-id", Value: []byte("x")}}}
	small := &kgo.Record{Topic: "t", Offset: 10, Key: []byte("k"), Value: []byte("v")}
	for _, tt := range []struct {
		name     string
		known    int32 // the limit the writer was told; 0: unknown
		broker   int
		wantSent int // produce attempts refused
	}{
		{"limit known", 1000100, 1000100, 0},
		// Refused when sent with the small copy, then alone.
		{"limit unknown, refused by the broker", 0, 1000100, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &limited{max: tt.broker}
			cfg := testConfig()
			cfg.MaxBytes = func(string) int32 { return tt.known }
			var omitted []int64
			w := NewWriter(cfg, Deps{Producer: p, OnOmitted: func(src *kgo.Record, _ string, _ int32, value, _ bool) {
				if value {
					omitted = append(omitted, src.Offset)
				}
			}})
			err := w.Write(context.Background(), []Failure{
				{Record: big, Kind: KindDecode, Err: errors.New("bad")},
				{Record: small, Kind: KindDecode, Err: errors.New("bad")},
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if p.refused != tt.wantSent || len(p.produced) != 2 {
				t.Fatalf("refused %d, produced %d; want %d and 2", p.refused, len(p.produced), tt.wantSent)
			}
			var got *kgo.Record
			for _, r := range p.produced {
				if string(headerOf(r, HeaderOffset)) == "9" {
					got = r
				} else if r.Value == nil || headerOf(r, HeaderValueOmitted) != nil {
					t.Fatalf("the small record lost its value")
				}
			}
			if got == nil || got.Value != nil || string(headerOf(got, HeaderValueOmitted)) != "1000000" ||
				string(got.Key) != "k" || string(headerOf(got, "trace-id")) != "x" || string(headerOf(got, HeaderKind)) != "decode" {
				t.Fatalf("copy of the large record: %+v", got)
			}
			if fmt.Sprint(omitted) != "[9]" {
				t.Fatalf("reported omitted: got %v, want [9]", omitted)
			}
		})
	}
}

func headerOf(r *kgo.Record, key string) []byte {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// TestTopicRefusingEvenTheHeadersIsAnOutage: when the dead-letter topic's
// max.message.bytes is below the size of a copy without its value (a
// misconfigured topic), omitting the value cannot help. The writer keeps
// retrying, and once the topic is fixed, the copy keeps its value: the
// value is dropped only when that is what makes the copy fit.
func TestTopicRefusingEvenTheHeadersIsAnOutage(t *testing.T) {
	for _, known := range []int32{0, 64} {
		t.Run(fmt.Sprintf("limit known %d", known), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &limited{max: 64}
				cfg := testConfig()
				cfg.MaxBytes = func(string) int32 { return known }
				var errs, omitted int
				w := NewWriter(cfg, Deps{
					Producer: p,
					OnOmitted: func(_ *kgo.Record, _ string, _ int32, value, _ bool) {
						if value {
							omitted++
						}
					},
				})
				done := make(chan error)
				go func() {
					done <- w.Write(context.Background(), []Failure{{Record: &kgo.Record{Topic: "t", Offset: 40, Value: []byte("not json")}, Kind: KindDecode, Err: errors.New("bad")}}, func(*kgo.Record, error) { errs++ })
				}()
				time.Sleep(10 * time.Second)
				synctest.Wait()
				p.mu.Lock()
				if len(p.produced) != 0 {
					t.Errorf("during the outage: produced %d", len(p.produced))
				}
				p.max = 1 << 20 // the topic is fixed
				p.mu.Unlock()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				if errs < 5 || omitted != 0 {
					t.Errorf("errors reported %d, omissions reported %d; want at least 5 and none", errs, omitted)
				}
				if len(p.produced) != 1 || string(p.produced[0].Value) != "not json" || headerOf(p.produced[0], HeaderValueOmitted) != nil {
					t.Fatalf("after the fix: got %+v, want the copy with its value", p.produced)
				}
			})
		})
	}
}

// raised refuses records over max like limited, and raises max to 1 MiB
// right after its first refusal: the topic fixed while a write is in flight.
type raised struct{ limited }

func (r *raised) ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	out := r.limited.ProduceSync(ctx, rs...)
	r.mu.Lock()
	if r.refused > 0 {
		r.max = 1 << 20
	}
	r.mu.Unlock()
	return out
}

// TestTopicFixedBetweenAttemptsKeepsTheValue: a copy refused as too large
// is written without its value only if the topic's current limit says the
// whole copy does not fit. When the limit was raised meanwhile (an operator
// fixing the topic), the whole copy goes.
func TestTopicFixedBetweenAttemptsKeepsTheValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &raised{limited{max: 64}}
		cfg := testConfig()
		cfg.MaxBytes = func(string) int32 { return 0 } // unknown at start
		w := NewWriter(cfg, Deps{
			Producer: p,
			RefreshMaxBytes: func(context.Context, string) (int32, error) {
				p.mu.Lock()
				defer p.mu.Unlock()
				return int32(p.max), nil
			},
		})
		err := w.Write(context.Background(), []Failure{{Record: &kgo.Record{Topic: "t", Offset: 40, Value: []byte("not json")}, Kind: KindDecode, Err: errors.New("bad")}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.produced) != 1 || string(p.produced[0].Value) != "not json" || headerOf(p.produced[0], HeaderValueOmitted) != nil {
			t.Fatalf("got %+v, want the copy with its value", p.produced)
		}
	})
}

func TestBuildTraceContext(t *testing.T) {
	producer := "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01"
	src := &kgo.Record{Topic: "orders", Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte(producer)}}}
	ts, _ := trace.ParseTraceState("vendor=v1")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xcc, 1}, SpanID: trace.SpanID{0xdd, 2}, TraceFlags: trace.FlagsSampled, TraceState: ts,
	})
	tests := []struct {
		name string
		sc   trace.SpanContext
		want map[string]string
	}{
		{name: "tracing off", want: map[string]string{"traceparent": producer}},
		{name: "the giving-up span", sc: sc, want: map[string]string{
			"traceparent":     producer, // the original's, untouched
			"dlq.traceparent": "00-cc010000000000000000000000000000-dd02000000000000-01",
			"dlq.tracestate":  "vendor=v1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Build("orders.dlq", "g", Failure{Record: src, Kind: KindHandler, Trace: tt.sc}, time.Now())
			got := map[string]string{}
			for _, h := range r.Headers {
				if h.Key == "traceparent" || strings.HasPrefix(h.Key, "dlq.trace") {
					if _, dup := got[h.Key]; dup {
						t.Errorf("got %s twice, want it once", h.Key)
					}
					got[h.Key] = string(h.Value)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLimitReadOncePerAttempt: when several copies for one topic are
// refused as too large in one attempt, the topic's limit is read once for
// all of them, not once per copy (each read is a round trip to the
// brokers).
func TestLimitReadOncePerAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &limited{max: 700}
		cfg := testConfig()
		cfg.MaxBytes = func(string) int32 { return 0 } // unknown at start
		var reads int
		w := NewWriter(cfg, Deps{
			Producer: p,
			RefreshMaxBytes: func(context.Context, string) (int32, error) {
				reads++
				return 700, nil
			},
		})
		var fs []Failure
		for i := range 5 {
			fs = append(fs, Failure{Record: &kgo.Record{Topic: "t", Offset: int64(i), Value: make([]byte, 1000)}, Kind: KindDecode, Err: errors.New("bad")})
		}
		if err := w.Write(context.Background(), fs, nil); err != nil {
			t.Fatal(err)
		}
		if len(p.produced) != 5 || headerOf(p.produced[0], HeaderValueOmitted) == nil {
			t.Fatalf("got %d copies (first %+v), want 5 without their values", len(p.produced), p.produced[0])
		}
		if reads != 1 {
			t.Fatalf("got %d reads of the topic's limit for 5 copies refused in one attempt, want 1", reads)
		}
	})
}

// TestCopyFittingNoFormIsSentWhole: when the limit the writer knows says
// no form of the copy fits, the whole copy is sent first: the limit may be
// stale (the topic fixed since), and nothing is left out of a copy unless
// that is what makes it fit.
func TestCopyFittingNoFormIsSentWhole(t *testing.T) {
	p := &limited{max: 1 << 20} // the topic as it is now
	cfg := testConfig()
	cfg.MaxBytes = func(string) int32 { return 64 } // as it was read
	w := NewWriter(cfg, Deps{Producer: p})
	src := &kgo.Record{Topic: "t", Offset: 40, Value: []byte("not json"), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}}
	if err := w.Write(context.Background(), []Failure{{Record: src, Kind: KindDecode, Err: errors.New("bad")}}, nil); err != nil {
		t.Fatal(err)
	}
	if len(p.produced) != 1 || string(p.produced[0].Value) != "not json" || string(headerOf(p.produced[0], "h")) != "x" {
		t.Fatalf("got %+v, want the whole copy", p.produced)
	}
}
