package idempotency

import (
	"context"
	"fmt"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

// FromConfig builds the Guard IDEMPOTENCY_STORE names, or returns nil for
// none. It connects to nothing: a store that cannot be reached shows when
// the first batch is claimed (retried, and /readyz 503 after
// UNREADY_AFTER), as any unavailable infrastructure does.
func FromConfig(ctx context.Context, c config.Config, m *metrics.Metrics) (*Guard, error) {
	store, err := open(ctx, c)
	if store == nil || err != nil {
		return nil, err
	}
	var gm Metrics
	if m != nil {
		gm = Metrics{Seconds: m.IdempotencySeconds, Errors: m.IdempotencyErrors}
	}
	return New(string(c.Idempotency.Store), store, Config{
		Prefix:        c.IdempotencyPrefix(),
		Header:        c.Idempotency.Header(),
		TTL:           c.Idempotency.TTL,
		InProgressTTL: c.IdempotencyInProgressTTL(),
	}, gm), nil
}

// Ping builds the store IDEMPOTENCY_STORE names and reaches it once, for
// `consumer check`: false with none configured.
func Ping(ctx context.Context, c config.Config) (configured bool, err error) {
	store, err := open(ctx, c)
	if store == nil || err != nil {
		return err != nil, err
	}
	defer store.Close()
	p, ok := store.(interface{ Ping(context.Context) error })
	if !ok {
		return true, nil
	}
	return true, p.Ping(ctx)
}

// open builds the store IDEMPOTENCY_STORE names, connecting to nothing;
// nil for none.
func open(ctx context.Context, c config.Config) (Store, error) {
	switch c.Idempotency.Store {
	case "", config.StoreNone:
		return nil, nil
	case config.StoreRedis:
		return NewRedis(c.Idempotency.RedisURL)
	case config.StoreDynamoDB:
		return NewDynamoDB(ctx, c.Idempotency.Table, c.Kafka.AWSRegion)
	}
	return nil, fmt.Errorf("IDEMPOTENCY_STORE=%s: no such store", c.Idempotency.Store)
}
