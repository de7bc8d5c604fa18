package tracing

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// recorder returns a Tracer that records every span, and the recorder.
func recorder(t *testing.T) (*Tracer, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{
		AttributeCountLimit: -1, EventCountLimit: -1, LinkCountLimit: -1, AttributeValueLengthLimit: -1,
		AttributePerEventCountLimit: -1, AttributePerLinkCountLimit: -1,
	}))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return New(tp, "brands-sync", "http"), rec
}

// producerContext returns a sampled remote span context numbered n.
func producerContext(n byte) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xaa, n}, SpanID: trace.SpanID{0xbb, n},
		TraceFlags: trace.FlagsSampled, Remote: true,
	})
}

// record returns a record of products/3 at off, carrying sc as traceparent
// when it is valid.
func record(off int64, sc trace.SpanContext) *kgo.Record {
	r := &kgo.Record{Topic: "products", Partition: 3, Offset: off}
	if sc.IsValid() {
		r.Headers = []kgo.RecordHeader{{Key: "trace-id", Value: []byte("x")}, {Key: HeaderTraceparent, Value: AppendTraceparent(nil, sc)}}
	}
	return r
}

func attrs(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestStartBatchLinks(t *testing.T) {
	tr, rec := recorder(t)
	a, b := producerContext(1), producerContext(2)
	recs := []*kgo.Record{
		record(10, a), record(11, a), // one producer span, two records: one link
		record(12, trace.SpanContext{}), // no context: no link
		record(13, b),
	}
	_, s := tr.StartBatch(context.Background(), recs)
	s.End(nil)

	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("got %d spans, want 1", len(spans))
	}
	sp := spans[0]
	if sp.Name() != "process products" || sp.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("got %q kind %v, want process products, consumer", sp.Name(), sp.SpanKind())
	}
	if sp.Parent().IsValid() {
		t.Errorf("got parent %v, want a root: a batch has many producers", sp.Parent())
	}
	var got []trace.SpanContext
	for _, l := range sp.Links() {
		got = append(got, l.SpanContext)
	}
	if len(got) != 2 || !got[0].Equal(a) || !got[1].Equal(b) {
		t.Errorf("got links %v, want %v and %v", got, a, b)
	}
	want := map[attribute.Key]any{
		"messaging.system": "kafka", "messaging.destination.name": "products",
		"messaging.destination.partition.id": "3", "messaging.consumer.group.name": "brands-sync",
		"messaging.operation.type": "process", "messaging.batch.message_count": int64(4),
		AttrFirstOffset: int64(10), AttrLastOffset: int64(13),
	}
	got2 := attrs(sp.Attributes())
	for k, v := range want {
		if g := got2[k].AsInterface(); g != v {
			t.Errorf("%s: got %v, want %v", k, g, v)
		}
	}
}

func TestStartBatchOneRecordIsChild(t *testing.T) {
	tr, rec := recorder(t)
	a := producerContext(7)
	_, s := tr.StartBatch(context.Background(), []*kgo.Record{record(42, a)})
	s.End(nil)
	sp := rec.Ended()[0]
	if !sp.Parent().Equal(a) || sp.SpanContext().TraceID() != a.TraceID() {
		t.Errorf("got parent %v trace %v, want the producer's %v", sp.Parent(), sp.SpanContext().TraceID(), a)
	}
	if len(sp.Links()) != 1 || !sp.Links()[0].SpanContext.Equal(a) {
		t.Errorf("got links %v, want the producer's context too", sp.Links())
	}
	if off := attrs(sp.Attributes())["messaging.kafka.offset"]; off.AsInt64() != 42 {
		t.Errorf("got offset %v, want 42", off)
	}
}

func TestChildSpans(t *testing.T) {
	tr, rec := recorder(t)
	ctx, batch := tr.StartBatch(context.Background(), []*kgo.Record{record(1, trace.SpanContext{}), record(2, trace.SpanContext{})})
	_, dec := tr.StartDecode(ctx, 2)
	dec.SetFailures(1)
	dec.End(nil)
	bctx, bis := tr.StartBisect(ctx, 2)
	actx, att := tr.StartAttempt(bctx, 3, 1)
	SetHTTPStatus(actx, 500)
	att.SetOutcome("failed")
	att.End(errors.New("HTTP 500\nbody"))
	bis.End(nil)
	_, dl := tr.StartDeadLetter(ctx, 1)
	dl.End(nil)
	batch.End(nil)

	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		byName[s.Name()] = s
	}
	parent := map[string]string{"decode": "process products", "bisect": "process products", "handle": "bisect", "dead-letter": "process products"}
	for child, p := range parent {
		c, ok := byName[child]
		if !ok {
			t.Fatalf("got no %s span", child)
		}
		if c.Parent().SpanID() != byName[p].SpanContext().SpanID() {
			t.Errorf("%s: got parent %v, want %s", child, c.Parent().SpanID(), p)
		}
	}
	h := byName["handle"]
	if h.Status().Code != codes.Error || h.Status().Description != "HTTP 500" {
		t.Errorf("got status %v, want Error with the first line", h.Status())
	}
	if len(h.Events()) != 1 || h.Events()[0].Name != "exception" {
		t.Errorf("got events %v, want the exception", h.Events())
	}
	a := attrs(h.Attributes())
	if a["http.response.status_code"].AsInt64() != 500 || a[AttrOutcome].AsString() != "failed" ||
		a["error.type"].AsString() != "failed" || a[AttrAttempt].AsInt64() != 3 || a[AttrHandler].AsString() != "http" {
		t.Errorf("got attributes %v", h.Attributes())
	}
	if byName["dead-letter"].SpanKind() != trace.SpanKindProducer {
		t.Errorf("dead-letter: got kind %v, want producer", byName["dead-letter"].SpanKind())
	}
	if byName["decode"].Status().Code == codes.Error {
		t.Error("decode: got Error status for an undecodable record, want it counted only")
	}
}

func TestInjectHTTP(t *testing.T) {
	tr, _ := recorder(t)
	ctx, s := tr.StartAttempt(context.Background(), 1, 1)
	defer s.End(nil)
	h := http.Header{}
	InjectHTTP(ctx, h)
	want := string(AppendTraceparent(nil, s.SpanContext()))
	if got := h.Get("traceparent"); got != want {
		t.Errorf("got traceparent %q, want %q", got, want)
	}

	off := http.Header{}
	InjectHTTP(context.Background(), off)
	if len(off) != 0 {
		t.Errorf("got %v with tracing off, want no header", off)
	}
}

func TestExtract(t *testing.T) {
	a, b := producerContext(1), producerContext(2)
	tests := []struct {
		name string
		hs   []kgo.RecordHeader
		want trace.SpanContext
	}{
		{name: "none", hs: nil},
		{name: "other headers", hs: []kgo.RecordHeader{{Key: "trace-id", Value: []byte("t")}}},
		{name: "garbage", hs: []kgo.RecordHeader{{Key: HeaderTraceparent, Value: []byte("00-zz")}}},
		{name: "one", hs: []kgo.RecordHeader{{Key: HeaderTraceparent, Value: AppendTraceparent(nil, a)}}, want: a},
		{name: "the last one wins", hs: []kgo.RecordHeader{
			{Key: HeaderTraceparent, Value: AppendTraceparent(nil, a)}, {Key: HeaderTraceparent, Value: AppendTraceparent(nil, b)},
		}, want: b},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Extract(tt.hs); !got.Equal(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	withState := []kgo.RecordHeader{{Key: HeaderTraceparent, Value: AppendTraceparent(nil, a)}, {Key: HeaderTracestate, Value: []byte("vendor=v1")}}
	if got := Extract(withState).TraceState().Get("vendor"); got != "v1" {
		t.Errorf("got tracestate vendor=%q, want v1", got)
	}
}

// TestAppendTraceparent checks the hand-written format against the
// propagator's.
func TestAppendTraceparent(t *testing.T) {
	for _, sc := range []trace.SpanContext{producerContext(9), producerContext(3).WithTraceFlags(0)} {
		h := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), h)
		if got := string(AppendTraceparent(nil, sc)); got != h["traceparent"] {
			t.Errorf("got %q, want %q", got, h["traceparent"])
		}
	}
}

// TestOffAllocatesNothing: with tracing off every hook is a nil check.
func TestOffAllocatesNothing(t *testing.T) {
	var tr *Tracer
	recs := []*kgo.Record{record(1, producerContext(1)), record(2, producerContext(2))}
	ctx := context.Background()
	h := http.Header{}
	allocs := testing.AllocsPerRun(100, func() { offHooks(ctx, tr, recs, h) })
	if allocs != 0 {
		t.Errorf("got %v allocations per batch with tracing off, want 0", allocs)
	}
}

// offHooks calls every hook of a batch as the pipeline does.
func offHooks(ctx context.Context, tr *Tracer, recs []*kgo.Record, h http.Header) {
	bctx, batch := tr.StartBatch(ctx, recs)
	_, dec := tr.StartDecode(bctx, len(recs))
	dec.SetFailures(0)
	dec.End(nil)
	actx, att := tr.StartAttempt(bctx, 1, len(recs))
	SetHTTPStatus(actx, 200)
	InjectHTTP(actx, h)
	att.SetOutcome("ok")
	att.End(nil)
	_ = att.SpanContext()
	batch.End(nil)
}

// FuzzExtract checks Extract, a parser of a wire format written for speed,
// against the SDK's propagator.
func FuzzExtract(f *testing.F) {
	for _, s := range []string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
	} {
		f.Add(s, "vendor=v1,other=x")
	}
	f.Fuzz(func(t *testing.T, tp, ts string) {
		hs := []kgo.RecordHeader{{Key: HeaderTraceparent, Value: []byte(tp)}, {Key: HeaderTracestate, Value: []byte(ts)}}
		want := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{
			HeaderTraceparent: tp, HeaderTracestate: ts,
		}))
		if got := Extract(hs); !got.Equal(want) {
			t.Errorf("Extract(%q, %q): got %v, want %v", tp, ts, got, want)
		}
	})
}
