// Package handler is the public API for batch handlers: what a handler is
// given (Batch, Record), what it returns (nil, ItemFailures, or an error
// marked with Permanent or Unavailable) and how it is built (Factory, Deps).
// Typed decodes each record into the handler's own type.
//
// A team writes a handler in its own module against this package and runs
// it with the whole service through github.com/msk-consumer/msk-consumer/service (see
// examples/own-binary), or compiles it into the stock binary under
// handlers/<name> (see handlers/example). The built-in handlers (log, http,
// discard) are built on the same API.
//
// This package does not decode, retry or dead-letter: the service hands it
// decoded records and acts on the error it returns.
package handler

import (
	"context"
	"encoding/json"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/config"
)

// Record is one decoded record of a batch. Its memory belongs to the
// service: a handler must not keep it, nor Key, Value or anything of Raw,
// after Handle returns; copy what it keeps.
type Record struct {
	// Raw is the record as fetched: topic, partition, offset, timestamp,
	// headers and the original key and value bytes. Handlers must not
	// modify it: the service dead-letters and commits from it.
	Raw *kgo.Record
	// Key is the decoded key as JSON; null when the record has no key.
	Key json.RawMessage
	// Value is the decoded value as JSON; null for a tombstone.
	Value json.RawMessage
}

// Batch is records of one partition, in offset order. The Records slice
// is the handler's: it may reorder, filter or re-slice it, because the
// service knows the records by their offsets, not their positions.
type Batch struct {
	Topic     string
	Partition int32
	Records   []Record
}

// Handler handles batches. Handle is called for one batch at a time per
// partition, and concurrently for different partitions.
//
// The error decides what happened to the batch, checked in this order:
//   - nil: every record succeeded.
//   - an error wrapping ErrUnavailable (see Unavailable), even an
//     *ItemFailures whose Err wraps it: the handler could not work at all
//     (its database or service is down, overloaded, or refuses the
//     credentials). Not the records' fault: the batch is retried without
//     limit with capped backoff, the partition waits, nothing is
//     dead-lettered for it (unless HANDLER_MAX_RECORD_AGE expires), and the
//     service turns unready after UNREADY_AFTER.
//   - *ItemFailures: the records at Offsets failed and are retried, up to
//     HANDLER_MAX_ATTEMPTS attempts in all, then dead-lettered as
//     "handler"; those at Invalid are dead-lettered at once as
//     "validation"; the others succeeded. Each dead-letter copy carries
//     its own record's error (RecordErrs), else Err.
//   - an error wrapping ErrPermanent (see Permanent): the batch was
//     rejected, some record in it is at fault and retrying the same batch
//     cannot help. It is bisected at once, down to single records; a
//     single rejected record is dead-lettered as "handler" without
//     retries.
//   - any other error: the batch failed. It is retried up to
//     HANDLER_MAX_ATTEMPTS, then bisected: each half retried on its own,
//     down to single records; a single record that still fails is
//     dead-lettered as "handler".
//
// An error returned because ctx ended (ctx.Err() or context.Cause(ctx)) is
// not counted against the records: the caller stopped waiting.
//
// What Handle may do with b: reorder, filter or re-slice b.Records (the
// service knows records by offset, not position). What it must not do:
// modify a Record's Raw, or keep a Record, its Key or Value, or anything of
// Raw after it returns: that memory is reused. Copy what must outlive the
// call.
type Handler interface {
	Handle(ctx context.Context, b Batch) error
}

// Deps is what a handler factory may use to build its handler.
type Deps struct {
	Config config.Handler
	Logger *zap.Logger
	// TracerProvider is the service's OpenTelemetry tracer provider (the
	// OTEL_* variables), for the handler's own instrumentation, such as
	// otelhttp.WithTracerProvider; a no-op provider with tracing off.
	// See RecordContext and StartRecordSpan for per-record spans.
	TracerProvider trace.TracerProvider
}

// Factory builds a handler. Go handlers compiled into the binary are
// registered as factories by name in cmd/consumer/main.go, or given to
// service.Main by a binary of their own.
//
// A factory checks its configuration and returns an error naming what is
// wrong, but must not connect to anything: `consumer config` calls it to
// check the configuration offline, and at start an unreachable downstream
// is an outage (the handler returns ErrUnavailable and the consumer waits
// and shows it on /readyz), not a reason to exit.
type Factory func(Deps) (Handler, error)
