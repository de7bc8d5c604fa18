package process

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/backoff"
	"github.com/msk-consumer/msk-consumer/internal/codec"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
	"github.com/msk-consumer/msk-consumer/internal/tracing"
)

// TestLogLinesCarryTheTrace checks that the log lines of a traced batch
// carry trace_id and span_id of its span, so that a log line leads to its
// trace; without tracing they carry neither.
func TestLogLinesCarryTheTrace(t *testing.T) {
	for _, traced := range []bool{true, false} {
		core, logs := observer.New(zapcore.DebugLevel)
		var tr *tracing.Tracer
		if traced {
			tp := sdktrace.NewTracerProvider()
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			tr = tracing.New(tp, "g", "h")
		}
		key, _ := codec.New(config.Codec{Format: config.FormatString})
		value, _ := codec.New(config.Codec{Format: config.FormatJSON})
		p := New(Config{MaxAttempts: 3, Backoff: backoff.Policy{First: time.Millisecond, Max: time.Millisecond}},
			Deps{Key: key, Value: value, Handler: handlerFunc(func(context.Context, handler.Batch) error { return nil }),
				DLQ: &fakeDLQ{}, Stalls: &fakeStalls{stuck: map[string]string{}}, Logger: zap.New(core), Tracer: tr})
		m := metrics.New(prometheus.NewRegistry()).ForTopic("t")
		recs := records(3, func(i int) []byte {
			if i == 1 {
				return []byte("{bad")
			}
			return nil
		})
		if n, err := p.Process(context.Background(), recs, m); n != 3 || err != nil {
			t.Fatalf("Process: got %d %v, want 3 nil", n, err)
		}
		entries := logs.FilterMessage("record could not be decoded; dead-lettering it").AllUntimed()
		entries = append(entries, logs.FilterMessage("records dead-lettered").AllUntimed()...)
		if len(entries) != 2 {
			t.Fatalf("traced %v: got %d lines, want 2: %v", traced, len(entries), logs.AllUntimed())
		}
		for _, e := range entries {
			f := e.ContextMap()
			tid, _ := f["trace_id"].(string)
			sid, _ := f["span_id"].(string)
			if traced && (len(tid) != 32 || len(sid) != 16) {
				t.Errorf("traced: %q: got trace_id %v span_id %v, want the batch span's", e.Message, tid, sid)
			}
			if _, has := f["trace_id"]; !traced && (has || sid != "") {
				t.Errorf("not traced: %q: got trace_id %v span_id %v, want neither", e.Message, tid, sid)
			}
		}
	}
}
