// Package idempotency keeps each record's side effects to once across
// redeliveries (IDEMPOTENCY_STORE): a store shared by the group's members
// (Redis or Valkey, DynamoDB) holds one entry per record key. Before a batch
// is handled its keys are looked up and claimed in one round trip: a record
// completed before is a duplicate and is dropped; one in progress under
// another member is waited for; the others are marked in progress, with an
// expiry, for this batch, and their claims are renewed while the batch is
// in flight (Hold). A record is marked completed once the handler
// succeeded for it, and dead-lettered once its dead-letter copy was
// acknowledged, both before its offset is committed.
//
// A dead-lettered record was not handled: its mark makes a redelivery of
// that same record (the same partition and offset, after a crash before
// the commit) a duplicate, so that it is not dead-lettered twice, but any
// other record with its key (its copy sent back by `consumer redrive`, or
// the message produced again) is claimed and handled. A completed mark is
// never replaced by a dead-letter mark.
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
	// Completed: the record was handled before, or this very record (the
	// same position) was dead-lettered.
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
//
// at, where a call takes it, names the record each key is for (Guard.At:
// "" for offset keys, which name their record themselves); nil is all "".
type Store interface {
	// Begin claims, for owner, every key neither completed nor in progress
	// under another owner, in progress until inProgressTTL from now, and
	// returns what it found for each key, in order. A key dead-lettered by
	// the record at at[i] is Completed; one dead-lettered by another
	// record is claimed.
	Begin(ctx context.Context, keys, at []string, owner string, inProgressTTL time.Duration) ([]State, error)
	// Complete marks every key completed until ttl from now, whoever holds
	// it.
	Complete(ctx context.Context, keys []string, ttl time.Duration) error
	// Letter marks every key dead-lettered by the record at at[i] until
	// ttl from now, unless it is completed or in progress under another
	// owner (which will mark it itself).
	Letter(ctx context.Context, keys, at []string, owner string, ttl time.Duration) error
	// Renew moves to inProgressTTL from now the expiry of every key still
	// in progress for owner, and reports, in order, which ones were: the
	// others are completed, released, or expired and perhaps claimed by
	// another owner.
	Renew(ctx context.Context, keys []string, owner string, inProgressTTL time.Duration) (held []bool, err error)
	// Release removes the keys that are still in progress for owner, so
	// that they can be claimed at once rather than when they expire.
	Release(ctx context.Context, keys []string, owner string) error
	// Close releases the store's connections.
	Close() error
}

// atOf is at[i], or "" for a nil at.
func atOf(at []string, i int) string {
	if at == nil {
		return ""
	}
	return at[i]
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
	// InProgressTTL is how long a claim holds, unless renewed, before
	// another member may take the record over
	// (IDEMPOTENCY_IN_PROGRESS_TTL). A batch in flight renews its claims
	// every third of it (Hold).
	InProgressTTL time.Duration
	// CallTimeout bounds each store call; 0 means DefaultCallTimeout.
	CallTimeout time.Duration
}

// DefaultCallTimeout bounds a store call that does not answer: it is then
// unavailable, and retried.
const DefaultCallTimeout = 5 * time.Second

// Metrics are the store's latency and errors by operation (begin,
// complete, renew, release; a dead-letter mark is a complete). Nil fields are not recorded.
type Metrics struct {
	Seconds *prometheus.HistogramVec // op
	Errors  *prometheus.CounterVec   // op
}

// The operations, as metric label values.
const (
	OpBegin    = "begin"
	OpComplete = "complete"
	OpRenew    = "renew"
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

// At names r among the records that may share its key, for Claim and
// Letter: "" with offset keys (the key names the record), its partition
// and offset with header keys (the key holds the topic).
func (g *Guard) At(r *kgo.Record) string {
	if g.keys.Header == "" {
		return ""
	}
	return strconv.FormatInt(int64(r.Partition), 10) + ":" + strconv.FormatInt(r.Offset, 10)
}

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

// Claim looks up the keys of a batch (keys[i] is recs[i]'s, "" for none;
// at[i] is At(recs[i]), or at is nil) and claims them for owner, in one
// Store call, setting v[i] for each record. A record whose key an earlier
// record of the batch has is a Duplicate of it. v is complete only when
// Claim returns nil; on error, retry.
func (g *Guard) Claim(ctx context.Context, keys, at []string, owner string, v []Verdict) error {
	if g.keys.Header == "" {
		at = nil // offset keys name their records
	}
	uniq := make([]string, 0, len(keys))
	var uat []string
	if at != nil {
		uat = make([]string, 0, len(keys))
	}
	first := make(map[string]bool, len(keys))
	idx := make([]int, len(keys)) // index in uniq of keys[i], or -1
	for i, k := range keys {
		idx[i] = -1
		switch {
		case k == "":
			v[i] = Unkeyed
		case first[k]:
			v[i] = Duplicate
		default:
			first[k] = true
			idx[i] = len(uniq)
			uniq = append(uniq, k)
			if at != nil {
				uat = append(uat, at[i])
			}
		}
	}
	if len(uniq) == 0 {
		return nil
	}
	var states []State
	err := g.call(ctx, OpBegin, func(ctx context.Context) (err error) {
		states, err = g.store.Begin(ctx, uniq, uat, owner, g.cfg.InProgressTTL)
		if err == nil && len(states) != len(uniq) {
			err = fmt.Errorf("store answered %d states for %d keys", len(states), len(uniq))
		}
		return err
	})
	if err != nil {
		return err
	}
	for i, j := range idx {
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

// Letter marks keys dead-lettered by the records at at (for
// IDEMPOTENCY_TTL), where owner holds them or nobody does.
func (g *Guard) Letter(ctx context.Context, keys, at []string, owner string) error {
	if len(keys) == 0 {
		return nil
	}
	return g.call(ctx, OpComplete, func(ctx context.Context) error {
		return g.store.Letter(ctx, keys, at, owner, g.cfg.TTL)
	})
}

// Renew extends owner's claims on keys to IDEMPOTENCY_IN_PROGRESS_TTL from
// now and reports which of them owner still held.
func (g *Guard) Renew(ctx context.Context, keys []string, owner string) (held []bool, err error) {
	if len(keys) == 0 {
		return nil, nil
	}
	err = g.call(ctx, OpRenew, func(ctx context.Context) (err error) {
		held, err = g.store.Renew(ctx, keys, owner, g.cfg.InProgressTTL)
		if err == nil && len(held) != len(keys) {
			err = fmt.Errorf("store answered %d renewals for %d keys", len(held), len(keys))
		}
		return err
	})
	return held, err
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
