package builtin

import (
	"testing"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestLogCarriesTheTrace checks that the log handler's record lines of a
// traced attempt carry its trace_id and span_id, and that lines of an
// untraced one carry neither.
func TestLogCarriesTheTrace(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xaa, 1}, SpanID: trace.SpanID{0xbb, 2}, TraceFlags: trace.FlagsSampled,
	})
	for _, traced := range []bool{true, false} {
		core, logs := observer.New(zap.InfoLevel)
		ctx := t.Context()
		if traced {
			ctx = trace.ContextWithSpanContext(ctx, sc)
		}
		if err := NewLog(zap.New(core)).Handle(ctx, testRecords()); err != nil {
			t.Fatal(err)
		}
		for _, e := range logs.All() {
			f := e.ContextMap()
			if traced && (f["trace_id"] != sc.TraceID().String() || f["span_id"] != sc.SpanID().String()) {
				t.Errorf("traced: got trace_id %v span_id %v, want %s %s", f["trace_id"], f["span_id"], sc.TraceID(), sc.SpanID())
			}
			if _, has := f["trace_id"]; !traced && has {
				t.Errorf("not traced: got trace_id %v, want none", f["trace_id"])
			}
		}
	}
}
