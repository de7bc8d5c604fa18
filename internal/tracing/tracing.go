// Package tracing is the service's OpenTelemetry tracing of batches, after
// the messaging semantic conventions: a span per batch (`process <topic>`,
// kind consumer) linked to the producer context of each of its records,
// read from their W3C traceparent and tracestate headers; child spans for
// decoding, each handler attempt, each bisection and the dead-letter
// write; and the propagation of the current span to the HTTP handler's
// requests and to dead-letter records.
//
// It uses the OpenTelemetry API only: which spans are kept and where they
// go (the SDK, its exporters, sampling and resource) is set up by the
// sub-package provider from the OTEL_* variables. A nil *Tracer is tracing
// off: every hook returns at once and allocates nothing, so the pipeline
// calls them unconditionally.
package tracing

import (
	"context"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the service's spans.
const ScopeName = "msk-consumer"

// The W3C trace-context header names, as records and HTTP requests carry
// them.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// Attributes of the service's own, beside the semantic conventions'.
const (
	// AttrFirstOffset and AttrLastOffset are the offsets of a batch's
	// first and last records (the conventions have messaging.kafka.offset
	// for one message only).
	AttrFirstOffset = attribute.Key("consumer.batch.first_offset")
	AttrLastOffset  = attribute.Key("consumer.batch.last_offset")
	// AttrAttempt is the handler attempt of the records, from 1.
	AttrAttempt = attribute.Key("consumer.attempt")
	// AttrOutcome is what a handler attempt came to: ok, partial,
	// unavailable, rejected or failed (docs/HANDLERS.md); and what a
	// decode span found: ok or failures.
	AttrOutcome = attribute.Key("consumer.outcome")
	// AttrFailures counts the records of a span that failed (undecodable
	// records, records dead-lettered).
	AttrFailures = attribute.Key("consumer.failures")
	// AttrHandler names the handler (HANDLER).
	AttrHandler = attribute.Key("consumer.handler")
)

// prop is the default propagation format: W3C trace context. Baggage is
// carried only when OTEL_PROPAGATORS names it (WithPropagators):
// forwarding a producer's baggage to every downstream is the operator's
// call.
var prop propagation.TextMapPropagator = propagation.TraceContext{}

// HeaderBaggage is the W3C baggage header.
const HeaderBaggage = "baggage"

// Tracer starts the spans of batches. It is safe for concurrent use. A nil
// *Tracer is tracing off.
type Tracer struct {
	tr      trace.Tracer
	group   string
	handler string
	// read: the records' traceparent is read (tracecontext); baggage: a
	// one-record batch's baggage header is carried to the handler.
	read, baggage bool
	// prop injects into the HTTP handler's requests; nil: the default.
	prop propagation.TextMapPropagator
}

// New returns a Tracer that starts spans with tp's tracer for the group's
// batches, or nil (tracing off) when tp is nil. handlerName names the
// handler on attempt spans.
func New(tp trace.TracerProvider, group, handlerName string) *Tracer {
	if tp == nil {
		return nil
	}
	return &Tracer{tr: tp.Tracer(ScopeName), group: group, handler: handlerName, read: true}
}

// WithPropagators returns t with the propagators of OTEL_PROPAGATORS
// (config.Tracing.PropagatorNames): tracecontext reads the records'
// traceparent and tracestate and sends the attempt's to the HTTP handler;
// baggage carries a one-record batch's W3C baggage to it; none (or only
// unknown names) propagates nothing. Nil stays nil.
func (t *Tracer) WithPropagators(names []string) *Tracer {
	if t == nil {
		return nil
	}
	c := *t
	c.read, c.baggage = false, false
	var ps []propagation.TextMapPropagator
	if len(names) == 0 {
		names = []string{"tracecontext"}
	}
	for _, n := range names {
		switch n {
		case "tracecontext":
			c.read = true
			ps = append(ps, propagation.TraceContext{})
		case "baggage":
			c.baggage = true
			ps = append(ps, propagation.Baggage{})
		}
	}
	c.prop = propagation.NewCompositeTextMapPropagator(ps...)
	return &c
}

// propKey carries a Tracer's propagation (an attemptProp) in the
// attempt's context, for InjectHTTP and ExtractIn.
type propKey struct{}

// attemptProp is what OTEL_PROPAGATORS says for an attempt: the propagator
// to inject, and whether the records' traceparent is read.
type attemptProp struct {
	prop propagation.TextMapPropagator
	read bool
}

// Span is a span of the service, or nothing when tracing is off (its zero
// value). Its methods do nothing on the zero value.
type Span struct{ s trace.Span }

// End records err, if not nil, as the span's error (an exception event and
// the Error status, described by the error's first line), and ends the
// span.
func (s Span) End(err error) {
	if s.s == nil {
		return
	}
	if err != nil && s.s.IsRecording() {
		s.s.RecordError(err)
		s.s.SetStatus(codes.Error, firstLine(err.Error()))
	}
	s.s.End()
}

// SpanContext is the span's context; invalid when tracing is off.
func (s Span) SpanContext() trace.SpanContext {
	if s.s == nil {
		return trace.SpanContext{}
	}
	return s.s.SpanContext()
}

// Recording reports whether the span records what it is told (it was
// sampled).
func (s Span) Recording() bool { return s.s != nil && s.s.IsRecording() }

// ContextWith returns ctx carrying s, for child spans started in another
// context than s's own (the dead-letter write of a batch, later); ctx
// itself with tracing off.
func (s Span) ContextWith(ctx context.Context) context.Context {
	if s.s == nil {
		return ctx
	}
	return trace.ContextWithSpan(ctx, s.s)
}

// SetOutcome sets AttrOutcome, and error.type to the outcome when it is
// not ok.
func (s Span) SetOutcome(outcome string) {
	if !s.Recording() {
		return
	}
	if outcome == "ok" {
		s.s.SetAttributes(AttrOutcome.String(outcome))
		return
	}
	s.s.SetAttributes(AttrOutcome.String(outcome), semconv.ErrorTypeKey.String(outcome))
}

// SetFailures sets AttrFailures.
func (s Span) SetFailures(n int) {
	if s.Recording() {
		s.s.SetAttributes(AttrFailures.Int(n))
	}
}

// StartBatch starts the span of a batch: recs, records of one partition in
// offset order. Its links are the producer contexts of the records, in
// offset order, one per run of records that carry the same context; a
// batch of one record is
// also the child of its producer's span (with a parent-based sampler it
// then follows the producer's sampling decision), a larger one is the root
// of a trace. The returned context carries the span, for the child spans
// and the handler.
func (t *Tracer) StartBatch(ctx context.Context, recs []*kgo.Record) (context.Context, Span) {
	if t == nil || len(recs) == 0 {
		return ctx, Span{}
	}
	first, last := recs[0], recs[len(recs)-1]
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKafka,
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName("process"),
		semconv.MessagingDestinationName(first.Topic),
		semconv.MessagingDestinationPartitionID(strconv.Itoa(int(first.Partition))),
		semconv.MessagingConsumerGroupName(t.group),
		semconv.MessagingBatchMessageCount(len(recs)),
		AttrFirstOffset.Int64(first.Offset),
		AttrLastOffset.Int64(last.Offset),
	}
	root := trace.WithNewRoot()
	if len(recs) == 1 {
		attrs = append(attrs, semconv.MessagingKafkaOffset(int(first.Offset)))
		if sc := t.extract(first.Headers); sc.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
			root = nil
		}
		if b := lastHeader(first.Headers, HeaderBaggage); t.baggage && len(b) > 0 {
			if bag, err := baggage.Parse(string(b)); err == nil {
				ctx = baggage.ContextWithBaggage(ctx, bag)
			}
		}
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...)}
	if root != nil {
		opts = append(opts, root)
	}
	ctx, s := t.tr.Start(ctx, "process "+first.Topic, opts...)
	if s.IsRecording() && t.read {
		// After the start: links cost an extraction per record, which a
		// batch that is not sampled does without. (The SDK's samplers
		// do not look at links.) A link has no attributes: an offset on
		// each made a sampled batch span 8 times as costly to export
		// (the case 3 throughput fell from 1.07M to 127k records/s,
		// against 600k without).
		var prev trace.SpanContext
		for _, r := range recs {
			sc := Extract(r.Headers)
			if !sc.IsValid() || sc.Equal(prev) {
				continue
			}
			prev = sc
			s.AddLink(trace.Link{SpanContext: sc})
		}
	}
	return ctx, Span{s}
}

// extract is Extract when the records' trace context is read
// (tracecontext), else an invalid context.
func (t *Tracer) extract(hs []kgo.RecordHeader) trace.SpanContext {
	if !t.read {
		return trace.SpanContext{}
	}
	return Extract(hs)
}

// StartDecode starts the span of decoding n records' keys and values.
func (t *Tracer) StartDecode(ctx context.Context, n int) (context.Context, Span) {
	if t == nil {
		return ctx, Span{}
	}
	ctx, s := t.tr.Start(ctx, "decode", trace.WithAttributes(semconv.MessagingBatchMessageCount(n)))
	return ctx, Span{s}
}

// StartAttempt starts the span of one handler call with n records, the
// attempt-th for them (from 1). The handler gets its context: the HTTP
// handler sends it as traceparent, and Go handlers parent their own spans
// on it (or on their records' contexts: handler.StartRecordSpan).
func (t *Tracer) StartAttempt(ctx context.Context, attempt, n int) (context.Context, Span) {
	if t == nil {
		return ctx, Span{}
	}
	ctx, s := t.tr.Start(ctx, "handle", trace.WithAttributes(
		AttrHandler.String(t.handler), AttrAttempt.Int(attempt), semconv.MessagingBatchMessageCount(n)))
	if t.prop != nil {
		ctx = context.WithValue(ctx, propKey{}, attemptProp{t.prop, t.read})
	}
	return ctx, Span{s}
}

// StartBisect starts the span of handling n records as two halves, the
// handler having failed or rejected them together.
func (t *Tracer) StartBisect(ctx context.Context, n int) (context.Context, Span) {
	if t == nil {
		return ctx, Span{}
	}
	ctx, s := t.tr.Start(ctx, "bisect", trace.WithAttributes(semconv.MessagingBatchMessageCount(n)))
	return ctx, Span{s}
}

// StartDeadLetter starts the span of writing n dead-letter records and
// waiting for their acknowledgement.
func (t *Tracer) StartDeadLetter(ctx context.Context, n int) (context.Context, Span) {
	if t == nil {
		return ctx, Span{}
	}
	ctx, s := t.tr.Start(ctx, "dead-letter", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(semconv.MessagingSystemKafka, semconv.MessagingOperationTypeSend,
			semconv.MessagingBatchMessageCount(n)))
	return ctx, Span{s}
}

// SetHTTPStatus sets http.response.status_code on ctx's span, if it
// records: the HTTP handler's answer on its attempt span.
func SetHTTPStatus(ctx context.Context, code int) {
	if s := trace.SpanFromContext(ctx); s.IsRecording() {
		s.SetAttributes(semconv.HTTPResponseStatusCode(code))
	}
}

// InjectHTTP sets traceparent (and tracestate) in h to ctx's span, if it
// has a valid context, and what else the propagators of the attempt's
// Tracer carry (WithPropagators: baggage, or nothing); with tracing off it
// does nothing.
func InjectHTTP(ctx context.Context, h map[string][]string) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	p := prop
	if ap, ok := ctx.Value(propKey{}).(attemptProp); ok {
		p = ap.prop
	}
	p.Inject(ctx, propagation.HeaderCarrier(h))
}

// ExtractIn is Extract for a handler attempt's ctx: it returns an invalid
// span context when the attempt's propagators (OTEL_PROPAGATORS) do not
// read the records' traceparent (none, or baggage alone), so that a
// handler's per-record spans follow the setting as the service's do.
func ExtractIn(ctx context.Context, hs []kgo.RecordHeader) trace.SpanContext {
	if ap, ok := ctx.Value(propKey{}).(attemptProp); ok && !ap.read {
		return trace.SpanContext{}
	}
	return Extract(hs)
}

// Extract returns the span context of a record's W3C traceparent and
// tracestate headers (the last of each, where a header repeats), or an
// invalid one when it has none or it does not parse. It accepts what the
// SDK's propagator (propagation.TraceContext) accepts, which FuzzExtract
// checks, without its allocations: it runs for every record of a sampled
// batch.
func Extract(hs []kgo.RecordHeader) trace.SpanContext {
	tp := lastHeader(hs, HeaderTraceparent)
	if tp == nil {
		return trace.SpanContext{}
	}
	scc, ok := parseTraceparent(tp)
	if !ok {
		return trace.SpanContext{}
	}
	if ts := lastHeader(hs, HeaderTracestate); len(ts) > 0 {
		// As the propagator does: a tracestate that does not parse is
		// dropped, the traceparent kept.
		scc.TraceState, _ = trace.ParseTraceState(string(ts))
	}
	return trace.NewSpanContext(scc)
}

// parseTraceparent parses a W3C traceparent value: version-traceid-
// parentid-flags in lower-case hex; a version other than 00 may carry more
// fields after a dash, and ff is invalid, as are all-zero ids and, in
// version 00, flags other than sampled (01) and random (02).
func parseTraceparent(b []byte) (trace.SpanContextConfig, bool) {
	var scc trace.SpanContextConfig
	const size = 55 // 00-<32>-<16>-<2>
	if len(b) < size || b[2] != '-' || b[35] != '-' || b[52] != '-' {
		return scc, false
	}
	var version [1]byte
	if !lowerHex(version[:], b[0:2]) || version[0] == 0xff {
		return scc, false
	}
	// A trailing dash with nothing after it is accepted in version 00
	// too, as the propagator does.
	if len(b) > size && (b[size] != '-' || (version[0] == 0 && len(b) > size+1)) {
		return scc, false
	}
	var flags [1]byte
	if !lowerHex(scc.TraceID[:], b[3:35]) || !lowerHex(scc.SpanID[:], b[36:52]) || !lowerHex(flags[:], b[53:55]) {
		return scc, false
	}
	if !scc.TraceID.IsValid() || !scc.SpanID.IsValid() || (version[0] == 0 && flags[0] > 3) {
		return scc, false // version 00 reserves the flags above sampled and random
	}
	scc.TraceFlags = trace.TraceFlags(flags[0]) & (trace.FlagsSampled | trace.FlagsRandom)
	scc.Remote = true
	return scc, true
}

// lowerHex decodes src, lower-case hex of exactly 2*len(dst) digits, into
// dst.
func lowerHex(dst, src []byte) bool {
	for i := range dst {
		hi, ok1 := hexDigit(src[2*i])
		lo, ok2 := hexDigit(src[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func lastHeader(hs []kgo.RecordHeader, key string) []byte {
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key == key {
			if hs[i].Value == nil {
				return []byte{}
			}
			return hs[i].Value
		}
	}
	return nil
}

// AppendTraceparent appends sc as a W3C traceparent value (version 00).
func AppendTraceparent(dst []byte, sc trace.SpanContext) []byte {
	tid, sid, flags := sc.TraceID(), sc.SpanID(), [1]byte{byte(sc.TraceFlags())}
	dst = append(dst, "00-"...)
	dst = hex.AppendEncode(dst, tid[:])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, sid[:])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, flags[:])
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
