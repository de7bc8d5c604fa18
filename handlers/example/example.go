// Package example is a Go handler as a team would write one: it reads
// product events, rejects the invalid ones and logs what it did. Copy it to
// handlers/<name> to start your own, and see docs/HANDLERS.md.
//
// It does not store anything; a real handler would upsert the products into
// its database where this one counts them.
package example

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"msk-consumer/internal/handler"
)

// ErrInvalidProduct is wrapped by the error of the records this handler
// rejects.
var ErrInvalidProduct = errors.New("invalid product")

// Product is the value of a record of the products topic, as the decoder
// renders it in JSON.
type Product struct {
	ID       int64   `json:"id"`
	SKU      string  `json:"sku"`
	Name     string  `json:"name"`
	Price    float64 `json:"price"`
	Currency string  `json:"currency"`
}

// Validate says why p cannot be accepted, or returns nil.
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
}

// New is the handler's factory, named in cmd/consumer/handlers.go.
func New(d handler.Deps) (handler.Handler, error) {
	logger := d.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Handler{logger: logger.Named("example")}, nil
}

// Handle accepts the valid products and tombstones of b and reports the
// others as item failures. It is called concurrently for different
// partitions, so it keeps no state of its own between calls.
func (h *Handler) Handle(ctx context.Context, b handler.Batch) error {
	var (
		upserted, deleted int
		failed            []int64
		firstErr          error
	)
	for _, r := range b.Records {
		if err := ctx.Err(); err != nil {
			// Shutting down: report the whole batch as not done; it is
			// retried by whoever owns the partition next.
			return err
		}
		if isNull(r.Value) {
			// A tombstone: the product was deleted.
			deleted++
			continue
		}
		var p Product
		err := json.Unmarshal(r.Value, &p)
		if err != nil {
			err = fmt.Errorf("%w: %v", ErrInvalidProduct, err)
		} else {
			err = p.Validate()
		}
		if err != nil {
			failed = append(failed, r.Raw.Offset)
			if firstErr == nil {
				firstErr = fmt.Errorf("offset %d: %w", r.Raw.Offset, err)
			}
			h.logger.Debug("product rejected", zap.Int64("offset", r.Raw.Offset), zap.Error(err))
			continue
		}
		upserted++
	}

	h.logger.Info("batch handled",
		zap.String("topic", b.Topic),
		zap.Int32("partition", b.Partition),
		zap.Int("records", len(b.Records)),
		zap.Int("upserted", upserted),
		zap.Int("deleted", deleted),
		zap.Int("rejected", len(failed)),
	)
	if len(failed) > 0 {
		return &handler.ItemFailures{
			Offsets: failed,
			Err:     fmt.Errorf("%d of %d products rejected, first at %w", len(failed), len(b.Records), firstErr),
		}
	}
	return nil
}

func isNull(v json.RawMessage) bool {
	return len(v) == 0 || string(v) == "null"
}
