package tracing

import (
	"context"
	"net/http"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// discard is an exporter that drops every span: the cost measured is the
// SDK's and the hooks', not an exporter's.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkBatchHooks measures the tracing hooks of one batch of 500
// records (a batch span with its links, a decode span, one attempt span
// with the HTTP status and traceparent injection): "none" calls no hook,
// "off" calls every hook with tracing off (a nil *Tracer), "on" samples
// every batch into a batch span processor with a discarding exporter.
//
//	go test -run '^$' -bench BatchHooks -benchmem ./internal/tracing/
func BenchmarkBatchHooks(b *testing.B) {
	recs := make([]*kgo.Record, 500)
	for i := range recs {
		recs[i] = record(int64(i), producerContext(byte(i)))
	}
	ctx := context.Background()
	h := http.Header{}
	b.Run("none", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			noHooks(ctx, recs)
		}
	})
	b.Run("off", func(b *testing.B) {
		var tr *Tracer
		b.ReportAllocs()
		for b.Loop() {
			offHooks(ctx, tr, recs, h)
		}
	})
	b.Run("on", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}),
			sdktrace.WithRawSpanLimits(func() sdktrace.SpanLimits {
				l := sdktrace.NewSpanLimits()
				l.LinkCountLimit = 500
				return l
			}()))
		defer func() { _ = tp.Shutdown(ctx) }()
		tr := New(tp, "g", "http")
		b.ReportAllocs()
		for b.Loop() {
			offHooks(ctx, tr, recs, h)
		}
	})
	b.Run("on-unsampled", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}), sdktrace.WithSampler(sdktrace.NeverSample()))
		defer func() { _ = tp.Shutdown(ctx) }()
		tr := New(tp, "g", "http")
		b.ReportAllocs()
		for b.Loop() {
			offHooks(ctx, tr, recs, h)
		}
	})
}

// noHooks stands for the pipeline without tracing: it touches the batch as
// the hooks would be given it, and nothing else.
//
//go:noinline
func noHooks(ctx context.Context, recs []*kgo.Record) {
	_ = ctx
	_ = len(recs)
	_ = trace.SpanContext{}
}
