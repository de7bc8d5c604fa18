// Package example is a Go handler as a team would write one: it reads
// product events into its own type with handler.Typed, which dead-letters
// the invalid ones (dlq.error.kind=validation), and logs what it did. Copy
// it to handlers/<name> to start your own, and see docs/HANDLERS.md and
// docs/DECODING.md.
//
// It does not store anything; a real handler would upsert the products into
// its database where this one counts them.
package example

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/handler"
)

// ErrInvalidProduct is wrapped by the error of the records this handler
// rejects after decoding them.
var ErrInvalidProduct = errors.New("invalid product")

// Product is the value of a record of the products topic.
//
// The json tags read the JSON the pipeline decoded (handler.JSONValue: any
// VALUE_FORMAT). The avro tags are for the fast path, when the topic is Avro
// written with one known schema: decode the bytes as fetched straight into
// the struct with handler.AvroValue[Product](schema, framing), which skips
// JSON altogether (see docs/DECODING.md).
type Product struct {
	ID       int64   `json:"id" avro:"id"`
	SKU      string  `json:"sku" avro:"sku"`
	Name     string  `json:"name" avro:"name"`
	Price    float64 `json:"price" avro:"price"`
	Currency string  `json:"currency" avro:"currency"`
}

// Validate says why p cannot be accepted, or returns nil. handler.Typed
// calls it on every decoded product.
func (p *Product) Validate() error {
	switch {
	case p.SKU == "":
		return fmt.Errorf("%w: product %d has no sku", ErrInvalidProduct, p.ID)
	case p.Price < 0:
		return fmt.Errorf("%w: %s has a negative price %g", ErrInvalidProduct, p.SKU, p.Price)
	}
	return nil
}

// Handler handles batches of product events.
type Handler struct {
	logger *zap.Logger
	decode handler.DecodeFunc[Product]
}

// New is the handler's factory, named in cmd/consumer/main.go.
func New(d handler.Deps) (handler.Handler, error) {
	logger := d.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Handler{logger: logger.Named("example"), decode: handler.JSONValue[Product]()}, nil
}

// Handle upserts the valid products and deletes on tombstones; the records
// that do not decode into a Product or fail its validation are
// dead-lettered by handler.Typed. It is called concurrently for different
// partitions, so it keeps no state of its own between calls.
func (h *Handler) Handle(ctx context.Context, b handler.Batch) error {
	var upserted, deleted int
	err := handler.Typed(h.decode, func(ctx context.Context, tb handler.TypedBatch[Product]) error {
		for _, r := range tb.Records {
			if err := ctx.Err(); err != nil {
				// Shutting down: report the whole batch as not done;
				// it is retried by whoever owns the partition next.
				return err
			}
			if r.Tombstone {
				deleted++ // the product was deleted
				continue
			}
			// A real handler writes r.Value here, and says what an error
			// means: handler.Unavailable(err) when its database cannot
			// be reached (the batch waits and is retried without limit,
			// nothing is dead-lettered), handler.Permanent(err) when the
			// database rejects a record (the batch is bisected down to
			// that record, which is dead-lettered), a plain error when
			// the write failed in a way a retry may fix.
			upserted++
		}
		return nil
	}).Handle(ctx, b)

	rejected := 0
	var items *handler.ItemFailures
	if errors.As(err, &items) {
		rejected = len(items.Invalid)
		h.logger.Debug("products rejected", zap.Int64s("offsets", items.Invalid), zap.Error(items.Err))
	}
	h.logger.Info("batch handled",
		zap.String("topic", b.Topic),
		zap.Int32("partition", b.Partition),
		zap.Int("records", len(b.Records)),
		zap.Int("upserted", upserted),
		zap.Int("deleted", deleted),
		zap.Int("rejected", rejected),
	)
	return err
}
