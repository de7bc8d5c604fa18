package main

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/handler"
)

// Order is the value of a record of the orders topic.
type Order struct {
	ID       string  `json:"id"`
	Amount   float64 `json:"amount"`
	Currency string  `json:"currency"`
}

// Validate rejects an order that no retry can fix: handler.Typed
// dead-letters it with dlq.error.kind=validation.
func (o *Order) Validate() error {
	if o.ID == "" || o.Amount <= 0 {
		return fmt.Errorf("order %q: want an id and a positive amount, got %v", o.ID, o.Amount)
	}
	return nil
}

// Store is where the orders go: a database in a real handler.
type Store interface {
	// Put stores the orders of a batch. An error wrapping
	// handler.ErrUnavailable (the database is down) makes the service
	// wait and retry without dead-lettering anything.
	Put(ctx context.Context, orders []Order) error
}

// logStore logs what it is given; the binary uses it when no store is set.
type logStore struct{ log *zap.Logger }

func (s logStore) Put(_ context.Context, orders []Order) error {
	for _, o := range orders {
		s.log.Info("order", zap.String("id", o.ID), zap.Float64("amount", o.Amount), zap.String("currency", o.Currency))
	}
	return nil
}

// NewOrders is the factory the service calls once at start. It checks its
// configuration and connects to nothing (see handler.Factory).
func NewOrders(d handler.Deps) (handler.Handler, error) {
	return newOrders(logStore{d.Logger}), nil
}

func newOrders(store Store) handler.Handler {
	return handler.Typed(handler.JSONValue[Order](), func(ctx context.Context, b handler.TypedBatch[Order]) error {
		orders := make([]Order, 0, len(b.Records))
		for _, r := range b.Records {
			orders = append(orders, r.Value)
		}
		if err := store.Put(ctx, orders); err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			return handler.Unavailable(err)
		}
		return nil
	})
}
