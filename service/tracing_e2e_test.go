package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/msk-consumer/msk-consumer/internal/tracing"
	"github.com/msk-consumer/msk-consumer/internal/tracing/tracingtest"
	"github.com/msk-consumer/msk-consumer/service"
)

// sinkRequest is what the HTTP handler's downstream received.
type sinkRequest struct {
	traceparent string
	offsets     []int64
}

// poisonOffset is the record the sink always fails on (500): its batch
// is retried, then bisected down to it, and it is dead-lettered after
// HANDLER_MAX_ATTEMPTS attempts on its own.
const poisonOffset = 3

// TestTracingEndToEnd runs the service with the http handler and OTLP/HTTP
// export to an in-process receiver, on records produced with known
// traceparents: one batch span per batch, linked to exactly its records'
// producer contexts, with the messaging attributes and its child spans
// (decode, attempts, bisections, the dead-letter write); the downstream
// gets the attempt span's traceparent; the dead-letter copy
// carries the context of the attempt that gave up on it; a batch of one
// record is the child of its producer's span.
func TestTracingEndToEnd(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "products"), kfake.SeedTopics(1, "products.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("products"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// Six records, each from a producer span of its own; produced at once
	// so that they make one batch, which the test does not rely on.
	producers := map[int64]trace.SpanContext{}
	var recs []*kgo.Record
	for i := range 6 {
		sc := producerSpan(byte(i + 1))
		producers[int64(i)] = sc
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, `{"n":%d}`, i),
			Headers: []kgo.RecordHeader{{Key: "traceparent", Value: tracing.AppendTraceparent(nil, sc)}}})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var sunk []sinkRequest
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Records []struct{ Offset int64 } }
		data, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(data, &body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := sinkRequest{traceparent: r.Header.Get("traceparent")}
		for _, rec := range body.Records {
			req.offsets = append(req.offsets, rec.Offset)
		}
		mu.Lock()
		sunk = append(sunk, req)
		mu.Unlock()
		if slices.Contains(req.offsets, poisonOffset) {
			http.Error(w, "poison", http.StatusInternalServerError)
		}
	}))
	defer sink.Close()
	rcv := tracingtest.NewReceiver(t)

	env := map[string]string{
		"KAFKA_BROKERS":               strings.Join(cluster.ListenAddrs(), ","),
		"KAFKA_TOPICS":                "products",
		"KAFKA_GROUP_ID":              "traced",
		"KAFKA_AUTH":                  "none",
		"KAFKA_COMMIT_INTERVAL":       "100ms",
		"BATCH_MAX_WAIT":              "300ms",
		"HANDLER":                     "http",
		"HTTP_HANDLER_URL":            sink.URL,
		"HANDLER_MAX_ATTEMPTS":        "2",
		"HANDLER_RETRY_BACKOFF":       "10ms",
		"METRICS_ADDR":                "127.0.0.1:0",
		"LOG_LEVEL":                   "warn",
		"OTEL_TRACES_EXPORTER":        "otlp",
		"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL,
		"OTEL_RESOURCE_ATTRIBUTES":    "deployment.environment.name=test",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exit := make(chan int, 1)
	var stderr lockedBuilder
	go func() {
		exit <- service.Run(ctx, service.Env{
			Args:   []string{"run"},
			Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
			Stdout: io.Discard, Stderr: &stderr,
		}, nil)
	}()

	dead := readRecords(t, cluster.ListenAddrs(), "products.dlq", 1)[0]

	// A record of its own, once the first six are done: a batch of one.
	lone := producerSpan(0x42)
	producers[6] = lone
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(`{"n":6}`),
		Headers: []kgo.RecordHeader{{Key: "traceparent", Value: tracing.AppendTraceparent(nil, lone)}}}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.ContainsFunc(sunk, func(r sinkRequest) bool { return slices.Contains(r.offsets, 6) })
	})
	cancel() // the spans still queued are exported at shutdown
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit code: got %d, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the service did not stop within 40s of cancel")
	}
	spans := rcv.Spans()

	// One batch span per batch, together linked to every record once,
	// each link to the producer context of the record at its offset.
	batches := tracingtest.Named(spans, "process products")
	if len(batches) < 2 {
		t.Fatalf("got %d batch spans, want at least 2 (the six, the lone one)", len(batches))
	}
	linked := map[int64]bool{}
	for _, b := range batches {
		if b.Kind.String() != "SPAN_KIND_CONSUMER" {
			t.Errorf("batch span kind: got %v, want consumer", b.Kind)
		}
		first, last := b.Attr("consumer.batch.first_offset"), b.Attr("consumer.batch.last_offset")
		for k, want := range map[string]string{
			"messaging.system": "kafka", "messaging.destination.name": "products",
			"messaging.destination.partition.id": "0", "messaging.consumer.group.name": "traced",
			"messaging.operation.type": "process", "messaging.batch.message_count": fmt.Sprint(len(b.Links)),
		} {
			if got := b.Attr(k); got != want {
				t.Errorf("batch %s-%s: %s: got %q, want %q", first, last, k, got, want)
			}
		}
		if b.Resource["service.name"] != "msk-consumer" || b.Resource["deployment.environment.name"] != "test" {
			t.Errorf("resource: got %v", b.Resource)
		}
		// Every record of the batch has its own producer here, so the
		// links are exactly the contexts of offsets first..last, in order.
		var lo, hi int64
		fmt.Sscan(first, &lo)
		fmt.Sscan(last, &hi)
		if int64(len(b.Links)) != hi-lo+1 {
			t.Errorf("batch %d-%d: got %d links, want %d", lo, hi, len(b.Links), hi-lo+1)
		}
		for i, l := range b.Links {
			off := lo + int64(i)
			want := producers[off]
			if got := fmt.Sprintf("%x/%x", l.TraceId, l.SpanId); got != fmt.Sprintf("%s/%s", want.TraceID(), want.SpanID()) {
				t.Errorf("link %d of batch %d-%d: got %s, want the producer's of offset %d, %s/%s", i, lo, hi, got, off, want.TraceID(), want.SpanID())
			}
			if linked[off] {
				t.Errorf("offset %d linked twice", off)
			}
			linked[off] = true
		}
		if children := tracingtest.ChildrenOf(spans, b); len(tracingtest.Named(children, "decode")) != 1 || len(tracingtest.Named(children, "handle")) == 0 && len(tracingtest.Named(children, "bisect")) == 0 {
			t.Errorf("batch %s-%s: got children %v, want a decode span and handler attempts", first, last, names(children))
		}
	}
	if len(linked) != len(producers) {
		t.Errorf("got links to offsets %v, want all %d records", linked, len(producers))
	}

	// The lone record's batch is the child of its producer's span.
	for _, b := range batches {
		if b.Attr("consumer.batch.first_offset") == "6" {
			if b.TraceID() != lone.TraceID().String() || b.ParentID() != lone.SpanID().String() {
				t.Errorf("batch of one: got trace %s parent %s, want the producer's %s/%s", b.TraceID(), b.ParentID(), lone.TraceID(), lone.SpanID())
			}
		}
	}

	// Every request the sink got carries the traceparent of a handler
	// attempt span of this trace, with the response's status on it.
	attempts := map[string]tracingtest.Span{}
	for _, s := range tracingtest.Named(spans, "handle") {
		attempts[s.TraceID()+"-"+s.SpanID()] = s
	}
	mu.Lock()
	reqs := slices.Clone(sunk)
	mu.Unlock()
	var lastPoison string
	for _, r := range reqs {
		parts := strings.Split(r.traceparent, "-")
		if len(parts) != 4 {
			t.Errorf("request for %v: got traceparent %q, want one", r.offsets, r.traceparent)
			continue
		}
		a, ok := attempts[parts[1]+"-"+parts[2]]
		if !ok {
			t.Errorf("request for %v: traceparent %q names no attempt span", r.offsets, r.traceparent)
			continue
		}
		status, outcome := "200", "ok"
		if slices.Contains(r.offsets, poisonOffset) {
			lastPoison = r.traceparent
			status, outcome = "500", "failed"
		}
		if got := a.Attr("http.response.status_code"); got != status {
			t.Errorf("attempt %s for %v: got status %q, want %s", a.SpanID(), r.offsets, got, status)
		}
		if got := a.Attr("consumer.outcome"); got != outcome {
			t.Errorf("attempt %s for %v: got outcome %q, want %s", a.SpanID(), r.offsets, got, outcome)
		}
	}

	// The dead-letter copy carries the traceparent of the attempt that
	// gave up on it (the last one the poison record was in), besides the
	// original's own.
	h := map[string]string{}
	for _, kv := range dead.Headers {
		h[kv.Key] = string(kv.Value)
	}
	if h["dlq.traceparent"] == "" || h["dlq.traceparent"] != lastPoison {
		t.Errorf("dlq.traceparent: got %q, want the giving-up attempt's %q", h["dlq.traceparent"], lastPoison)
	}
	if want := string(tracing.AppendTraceparent(nil, producers[poisonOffset])); h["traceparent"] != want {
		t.Errorf("traceparent: got %q, want the original %q", h["traceparent"], want)
	}
	if len(tracingtest.Named(spans, "dead-letter")) != 1 {
		t.Errorf("got spans %v, want one dead-letter span", names(spans))
	}

	// The attempt that gave up on the poison record had it alone, under
	// bisect spans down from its batch's span.
	giving := attempts[strings.Join(strings.Split(lastPoison, "-")[1:3], "-")]
	if got := giving.Attr("messaging.batch.message_count"); got != "1" {
		t.Errorf("giving-up attempt: got %s records, want 1", got)
	}
	byID := map[string]tracingtest.Span{}
	for _, s := range spans {
		byID[s.SpanID()] = s
	}
	var chain []string
	for s, ok := giving, true; ok; s, ok = byID[s.ParentID()] {
		chain = append(chain, s.Name)
	}
	if len(chain) < 3 || chain[1] != "bisect" || chain[len(chain)-1] != "process products" {
		t.Errorf("got the giving-up attempt under %v, want handle, bisect..., process products", chain)
	}
}

func producerSpan(n byte) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x11, n, 0x22}, SpanID: trace.SpanID{0x33, n}, TraceFlags: trace.FlagsSampled,
	})
}

func names(spans []tracingtest.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readRecords reads want records from the start of topic.
func readRecords(t *testing.T, brokers []string, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want && ctx.Err() == nil {
		out = append(out, cl.PollFetches(ctx).Records()...)
	}
	if len(out) < want {
		t.Fatalf("%s: got %d records, want %d", topic, len(out), want)
	}
	return out
}

type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
