// Package handler defines what a batch handler is and holds the built-in
// ones: log, http and discard. Handlers written in Go by the teams that run
// the service live in their own packages (see handlers/example) and are
// compiled into the binary by naming them in cmd/consumer/handlers.go.
//
// It does not decode, retry or dead-letter: the caller hands it decoded
// records and acts on the error it returns.
package handler

import (
	"context"
	"encoding/json"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"msk-consumer/config"
)

// Record is one decoded record of a batch.
type Record struct {
	// Raw is the record as fetched: topic, partition, offset, timestamp,
	// headers and the original key and value bytes. Handlers must not
	// modify it.
	Raw *kgo.Record
	// Key is the decoded key as JSON; null when the record has no key.
	Key json.RawMessage
	// Value is the decoded value as JSON; null for a tombstone.
	Value json.RawMessage
}

// Batch is records of one partition, in offset order.
type Batch struct {
	Topic     string
	Partition int32
	Records   []Record
}

// Handler handles batches. Handle is called for one batch at a time per
// partition, and concurrently for different partitions.
//
// The error decides what happened to the batch:
//   - nil: every record succeeded;
//   - *ItemFailures: the records at those offsets failed (they are retried),
//     the others succeeded;
//   - an error wrapping ErrPermanent (see Permanent): every record failed and
//     retrying cannot help; they are dead-lettered at once;
//   - any other error: every record failed transiently and is retried.
type Handler interface {
	Handle(ctx context.Context, b Batch) error
}

// Deps is what a handler factory may use to build its handler.
type Deps struct {
	Config config.Handler
	Logger *zap.Logger
}

// Factory builds a handler. Go handlers compiled into the binary are
// registered as factories by name in cmd/consumer/handlers.go.
type Factory func(Deps) (Handler, error)
