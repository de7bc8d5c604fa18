package builtin

import (
	"context"
	"net/http"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/msk-consumer/msk-consumer/internal/tracing"
)

// TestHTTPTraceparent: the request carries the traceparent of the attempt
// span it is made in, and the span gets the response's status; with
// tracing off the request has no trace headers.
func TestHTTPTraceparent(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	h, _ := newTestHTTP(t, s.URL, time.Second)

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr := tracing.New(tp, "g", "http")
	ctx, att := tr.StartAttempt(t.Context(), 1, 3)
	_ = h.Handle(ctx, testRecords())
	att.End(nil)

	_ = h.Handle(t.Context(), testRecords()) // tracing off

	reqs := s.requests()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests, want 2", len(reqs))
	}
	want := string(tracing.AppendTraceparent(nil, att.SpanContext()))
	if got := reqs[0].header.Get("traceparent"); got != want {
		t.Errorf("traceparent: got %q, want the attempt span's %q", got, want)
	}
	if got := reqs[1].header.Get("traceparent"); got != "" {
		t.Errorf("traceparent with tracing off: got %q, want none", got)
	}
	var code int64
	for _, kv := range rec.Ended()[0].Attributes() {
		if kv.Key == "http.response.status_code" {
			code = kv.Value.AsInt64()
		}
	}
	if code != 500 {
		t.Errorf("http.response.status_code: got %d, want 500", code)
	}
}
