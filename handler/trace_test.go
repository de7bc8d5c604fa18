package handler_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/msk-consumer/msk-consumer/handler"
)

func TestStartRecordSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, attempt := tp.Tracer("service").Start(context.Background(), "handle")
	defer attempt.End()

	producer := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xaa}, SpanID: trace.SpanID{0xbb}, TraceFlags: trace.FlagsSampled, Remote: true})
	withTrace := handler.Record{Raw: &kgo.Record{Topic: "orders", Offset: 7, Headers: []kgo.RecordHeader{
		{Key: "traceparent", Value: []byte("00-aa000000000000000000000000000000-bb00000000000000-01")},
	}}}
	without := handler.Record{Raw: &kgo.Record{Topic: "orders", Offset: 8}}

	_, s1 := handler.StartRecordSpan(ctx, withTrace, "store")
	s1.End()
	_, s2 := handler.StartRecordSpan(ctx, without, "store")
	s2.End()

	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2", len(spans))
	}
	if got := spans[0].Parent(); !got.Equal(producer) {
		t.Errorf("with traceparent: got parent %v, want the producer's %v", got, producer)
	}
	if l := spans[0].Links(); len(l) != 1 || l[0].SpanContext.SpanID() != attempt.SpanContext().SpanID() {
		t.Errorf("with traceparent: got links %v, want the attempt span", l)
	}
	if got := spans[1].Parent().SpanID(); got != attempt.SpanContext().SpanID() {
		t.Errorf("without traceparent: got parent %v, want the attempt span", got)
	}
	if got := handler.RecordContext(context.Background(), without); got != context.Background() {
		t.Error("RecordContext without traceparent: got a new context, want ctx")
	}

	// Tracing off: nothing records.
	_, off := handler.StartRecordSpan(context.Background(), withTrace, "store")
	if off.IsRecording() {
		t.Error("got a recording span with tracing off")
	}
	off.End()
}
