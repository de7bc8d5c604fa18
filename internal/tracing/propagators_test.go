package tracing

import (
	"context"
	"net/http"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
)

// TestPropagators checks OTEL_PROPAGATORS: tracecontext (the default)
// reads the records' traceparent and sends the attempt's to the HTTP
// handler; baggage forwards a record's W3C baggage too; none does neither.
func TestPropagators(t *testing.T) {
	producer := producerContext(7)
	tests := []struct {
		name        string
		names       []string
		wantParent  bool     // the batch span is the producer's child
		wantHeaders []string // set on the HTTP request
		noHeaders   []string
	}{
		{name: "default", names: nil, wantParent: true, wantHeaders: []string{"Traceparent"}, noHeaders: []string{"Baggage"}},
		{name: "tracecontext and baggage", names: []string{"tracecontext", "baggage"}, wantParent: true, wantHeaders: []string{"Traceparent", "Baggage"}},
		{name: "none", names: []string{"none"}, wantParent: false, noHeaders: []string{"Traceparent", "Baggage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, rec := recorder(t)
			tr = tr.WithPropagators(tt.names)
			r := record(1, producer)
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: "baggage", Value: []byte("tenant=acme")})
			ctx, batch := tr.StartBatch(context.Background(), []*kgo.Record{r})
			actx, attempt := tr.StartAttempt(ctx, 1, 1)
			h := http.Header{}
			InjectHTTP(actx, h)
			// What a handler's per-record span is started from
			// (handler.RecordContext) follows the setting too.
			if got := ExtractIn(actx, r.Headers).TraceID() == producer.TraceID(); got != tt.wantParent {
				t.Errorf("the record's parent in the attempt: got the producer's %v, want %v", got, tt.wantParent)
			}
			attempt.End(nil)
			batch.End(nil)

			spans := rec.Ended()
			var b trace.SpanContext
			for _, s := range spans {
				if s.Name() == "process products" {
					b = s.Parent()
					if got := len(s.Links()); tt.wantParent != (got > 0) {
						t.Errorf("got %d links, want them only when records are read", got)
					}
				}
			}
			if got := b.TraceID() == producer.TraceID(); got != tt.wantParent {
				t.Errorf("child of the producer: got %v, want %v", got, tt.wantParent)
			}
			for _, k := range tt.wantHeaders {
				if h.Get(k) == "" {
					t.Errorf("got no %s header in %v, want one", k, h)
				}
			}
			for _, k := range tt.noHeaders {
				if v := h.Get(k); v != "" {
					t.Errorf("got %s: %s, want none", k, v)
				}
			}
			if tt.name == "tracecontext and baggage" && h.Get("Baggage") != "tenant=acme" {
				t.Errorf("got baggage %q, want the record's", h.Get("Baggage"))
			}
		})
	}
}
