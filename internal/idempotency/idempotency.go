// Package idempotency keeps each record's side effects to once across
// redeliveries (IDEMPOTENCY_STORE): a store shared by the group's members
// (Redis or Valkey, DynamoDB) holds one entry per record key. Before a batch
// is handled its keys are looked up and claimed in one round trip: a record
// completed before is a duplicate and is dropped; one in progress under
// another member is waited for; the others are marked in progress, with an
// expiry, for this batch. A record is marked completed once the handler
// succeeded for it or its dead-letter copy was acknowledged, before its
// offset is committed.
//
// It holds the keys (Keys), the protocol over a Store (Guard), and the
// stores (NewRedis, NewDynamoDB, NewMemory). When a batch is claimed and
// completed, and how an unavailable store is waited for, is
// internal/process's: every error a Store returns means the store could not
// be used, and the caller retries.
package idempotency

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// State is what a Store found for a key when a batch began.
type State uint8

const (
	// Claimed: the key was absent, expired, or in progress for the same
	// owner (a retried Begin); it is now in progress for the caller.
	Claimed State = iota
	// Completed: the record was handled or dead-lettered before.
	Completed
	// InProgress: another owner holds it and its claim has not expired.
	InProgress
)

func (s State) String() string {
	switch s {
	case Claimed:
		return "claimed"
	case Completed:
		return "completed"
	case InProgress:
		return "in progress"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Store is the shared record of keys. Each call takes a whole batch's keys
// (distinct, non-empty) and makes one round trip where the store allows it
// (a Redis pipeline; DynamoDB's BatchGetItem and TransactWriteItems, in
// parallel chunks of the sizes DynamoDB allows). Every error means the
// store could not be used: the caller retries the call, which is safe, as
// each call is idempotent for the same owner.
type Store interface {
	// Begin claims, for owner, every key neither completed nor in progress
	// under another owner, in progress until inProgressTTL from now, and
	// returns what it found for each key, in order.
	Begin(ctx context.Context, keys []string, owner string, inProgressTTL time.Duration) ([]State, error)
	// Complete marks every key completed until ttl from now, whoever holds
	// it.
	Complete(ctx context.Context, keys []string, ttl time.Duration) error
	// Release removes the keys that are still in progress for owner, so
	// that they can be claimed at once rather than when they expire.
	Release(ctx context.Context, keys []string, owner string) error
	// Close releases the store's connections.
	Close() error
}

// Config is how a Guard keys records and how long entries live.
type Config struct {
	// Prefix starts every key (IDEMPOTENCY_KEY_PREFIX, by default the
	// group id), so that groups, or environments sharing a store, never
	// see each other's entries.
	Prefix string
	// Header, if set, names the record header whose value is the key
	// (IDEMPOTENCY_KEY=header:NAME); otherwise the key is the record's
	// topic, partition and offset.
	Header string
	// TTL is how long a completed entry is kept (IDEMPOTENCY_TTL).
	TTL time.Duration
	// InProgressTTL is how long a claim holds before another member may
	// take the record over (IDEMPOTENCY_IN_PROGRESS_TTL).
	InProgressTTL time.Duration
	// CallTimeout bounds each store call; 0 means DefaultCallTimeout.
	CallTimeout time.Duration
}

// DefaultCallTimeout bounds a store call that does not answer: it is then
// unavailable, and retried.
const DefaultCallTimeout = 5 * time.Second

// Metrics are the store's latency and errors by operation (begin,
// complete, release). Nil fields are not recorded.
type Metrics struct {
	Seconds *prometheus.HistogramVec // op
	Errors  *prometheus.CounterVec   // op
}

// The operations, as metric label values.
const (
	OpBegin    = "begin"
	OpComplete = "complete"
	OpRelease  = "release"
)

// Guard is the protocol over a Store for the service's batches. It is safe
// for concurrent use.
type Guard struct {
	name    string
	store   Store
	cfg     Config
	keys    Keys
	m       Metrics
	process string // this process, in owner tokens
	seq     atomic.Uint64
}

// New returns a Guard over store; name ("redis", "dynamodb") names it in
// logs and readiness reasons.
func New(name string, store Store, cfg Config, m Metrics) *Guard {
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	host, _ := os.Hostname()
	var r [4]byte
	_, _ = rand.Read(r[:])
	return &Guard{
		name: name, store: store, cfg: cfg, m: m,
		keys:    Keys{Prefix: cfg.Prefix, Header: cfg.Header},
		process: host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(r[:]),
	}
}

// Name names the store.
func (g *Guard) Name() string { return g.name }

// Owner returns a new owner token: one per batch, so that a batch never
// takes for its own a record that another batch of this process (one
// abandoned on a rebalance, still running) holds, while a retried Begin of
// the same batch finds its own claims.
func (g *Guard) Owner() string {
	return g.process + "#" + strconv.FormatUint(g.seq.Add(1), 10)
}

// Key returns r's key, or "" when r has none (IDEMPOTENCY_KEY=header:NAME
// and no such header).
func (g *Guard) Key(r *kgo.Record) string { return g.keys.Key(r) }

// Verdict is what to do with a record of a batch.
type Verdict uint8

const (
	// Handle: claimed for this batch; hand it to the handler, then
	// Complete it (or Release it if it was never handed over).
	Handle Verdict = iota
	// Unkeyed: it has no key, so it is handled without the check.
	Unkeyed
	// Duplicate: it was completed before, or it repeats the key of an
	// earlier record of the same batch; it is not handled again.
	Duplicate
	// Busy: another member holds it in progress; wait and claim again.
	Busy
)

// Claim looks up the keys of a batch (keys[i] is recs[i]'s, "" for none)
// and claims them for owner, in one Store call, setting v[i] for each
// record. A record whose key an earlier record of the batch has is a
// Duplicate of it. v is complete only when Claim returns nil; on error,
// retry.
func (g *Guard) Claim(ctx context.Context, keys []string, owner string, v []Verdict) error {
	uniq := make([]string, 0, len(keys))
	first := make(map[string]bool, len(keys))
	at := make([]int, len(keys)) // index in uniq of keys[i], or -1
	for i, k := range keys {
		at[i] = -1
		switch {
		case k == "":
			v[i] = Unkeyed
		case first[k]:
			v[i] = Duplicate
		default:
			first[k] = true
			at[i] = len(uniq)
			uniq = append(uniq, k)
		}
	}
	if len(uniq) == 0 {
		return nil
	}
	var states []State
	err := g.call(ctx, OpBegin, func(ctx context.Context) (err error) {
		states, err = g.store.Begin(ctx, uniq, owner, g.cfg.InProgressTTL)
		if err == nil && len(states) != len(uniq) {
			err = fmt.Errorf("store answered %d states for %d keys", len(states), len(uniq))
		}
		return err
	})
	if err != nil {
		return err
	}
	for i, j := range at {
		if j < 0 {
			continue
		}
		switch states[j] {
		case Claimed:
			v[i] = Handle
		case Completed:
			v[i] = Duplicate
		default:
			v[i] = Busy
		}
	}
	return nil
}

// Complete marks keys completed (for IDEMPOTENCY_TTL).
func (g *Guard) Complete(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	return g.call(ctx, OpComplete, func(ctx context.Context) error {
		return g.store.Complete(ctx, keys, g.cfg.TTL)
	})
}

// Release gives up owner's claims on keys.
func (g *Guard) Release(ctx context.Context, keys []string, owner string) error {
	if len(keys) == 0 {
		return nil
	}
	return g.call(ctx, OpRelease, func(ctx context.Context) error {
		return g.store.Release(ctx, keys, owner)
	})
}

// Close closes the store.
func (g *Guard) Close() error { return g.store.Close() }

// call runs one store call within CallTimeout and records its latency and
// outcome.
func (g *Guard) call(ctx context.Context, op string, fn func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, g.cfg.CallTimeout)
	defer cancel()
	start := time.Now()
	err := fn(cctx)
	if g.m.Seconds != nil {
		g.m.Seconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
	}
	if err != nil {
		if g.m.Errors != nil && ctx.Err() == nil {
			g.m.Errors.WithLabelValues(op).Inc()
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("%s store %s: no answer within %s: %w", g.name, op, g.cfg.CallTimeout, err)
		} else {
			err = fmt.Errorf("%s store %s: %w", g.name, op, err)
		}
	}
	return err
}
