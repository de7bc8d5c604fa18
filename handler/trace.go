package handler

import (
	"context"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/msk-consumer/msk-consumer/internal/tracing"
)

// RecordContext returns ctx with the record's producer span context,
// from its W3C traceparent and tracestate headers, as the remote parent:
// a span started from it belongs to the trace the record was produced in.
// A record without a valid traceparent leaves ctx as it is, so a span
// started from it is a child of the handler attempt's span (with tracing
// on) or of nothing. With OTEL_PROPAGATORS not naming tracecontext
// (none), the traceparent is not read and ctx is returned as it is.
//
// With tracing on (OTEL_TRACES_EXPORTER), the ctx Handle is given carries
// the span of the handler attempt, a child of the batch's span, which is
// linked to every record's producer context. Use StartRecordSpan to start a
// per-record span that also links back to that attempt.
func RecordContext(ctx context.Context, r Record) context.Context {
	if r.Raw == nil {
		return ctx
	}
	if sc := tracing.ExtractIn(ctx, r.Raw.Headers); sc.IsValid() {
		return trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return ctx
}

// StartRecordSpan starts a span for handling one record of a batch: a
// child of the record's producer span (RecordContext), kind consumer, with
// the record's topic, partition and offset, and a link to the handler
// attempt's span in ctx. It uses the tracer provider of the service
// (Deps.TracerProvider), which it finds through the attempt's span: with
// tracing off the span records nothing and costs little. End the span when
// the record is handled; opts are applied after the defaults.
//
//	for _, r := range b.Records {
//		ctx, span := handler.StartRecordSpan(ctx, r, "store order")
//		err := store(ctx, r)
//		span.End()
//	}
func StartRecordSpan(ctx context.Context, r Record, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	attempt := trace.SpanFromContext(ctx)
	defaults := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	if r.Raw != nil {
		defaults = append(defaults, trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.destination.name", r.Raw.Topic),
			attribute.String("messaging.destination.partition.id", strconv.Itoa(int(r.Raw.Partition))),
			attribute.Int64("messaging.kafka.offset", r.Raw.Offset),
		))
	}
	if sc := attempt.SpanContext(); sc.IsValid() {
		defaults = append(defaults, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	tr := attempt.TracerProvider().Tracer(tracing.ScopeName + "/handler")
	return tr.Start(RecordContext(ctx, r), name, append(defaults, opts...)...)
}
