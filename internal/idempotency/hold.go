package idempotency

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Hold keeps a batch's claims from expiring while the batch is in flight:
// every third of IDEMPOTENCY_IN_PROGRESS_TTL it renews the claims it still
// holds (Renew), so that however long the batch takes (handler attempts,
// bisection, an unavailable handler retried without limit, a dead-letter
// outage, a revoke's wait) no other member claims its records meanwhile,
// while the claims of a member that died still expire within the TTL. A
// batch shorter than a third of the TTL makes no store call for it. A
// renewal that fails (the store unavailable) is tried again after
// retryEvery, within the same TTL.
//
// It is safe for concurrent use.
type Hold struct {
	g      *Guard
	owner  string
	lost   func(n int) // told of claims found lost; may be nil
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	keys    []string // claims held and not yet completed, lettered or released
	timer   *time.Timer
	stopped bool
	wg      sync.WaitGroup // a renewal in flight
}

// renewRetry is the wait before a failed renewal is tried again (capped at
// the renewal period).
const renewRetry = time.Second

// Hold starts renewing owner's claims on keys (copied) until Stop. lost, if
// not nil, is called with the number of claims a renewal found no longer
// owner's (expired, perhaps claimed by another member): they are no longer
// renewed. Hold returns nil for no keys; a nil *Hold's methods do nothing.
func (g *Guard) Hold(keys []string, owner string, lost func(n int)) *Hold {
	if len(keys) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hold{g: g, owner: owner, lost: lost, ctx: ctx, cancel: cancel, keys: slices.Clone(keys)}
	h.mu.Lock()
	h.timer = time.AfterFunc(h.period(), h.renew)
	h.mu.Unlock()
	return h
}

func (h *Hold) period() time.Duration { return max(h.g.cfg.InProgressTTL/3, time.Millisecond) }

// Drop stops renewing keys: they are about to be completed, lettered or
// released.
func (h *Hold) Drop(keys []string) {
	if h == nil || len(keys) == 0 {
		return
	}
	h.mu.Lock()
	h.keys = without(h.keys, keys)
	h.mu.Unlock()
}

// without removes drop from keys, in place. drop is most often a
// subsequence of keys (both in the batch's order): that takes one pass and
// no memory; the rest of drop, if any, a set.
func without(keys, drop []string) []string {
	j := 0
	keys = slices.DeleteFunc(keys, func(k string) bool {
		if j < len(drop) && drop[j] == k {
			j++
			return true
		}
		return false
	})
	if j == len(drop) {
		return keys
	}
	rest := make(map[string]struct{}, len(drop)-j)
	for _, k := range drop[j:] {
		rest[k] = struct{}{}
	}
	return slices.DeleteFunc(keys, func(k string) bool { _, ok := rest[k]; return ok })
}

// Stop ends the renewals, waiting for one in flight (which it cuts short).
// The claims still held then expire by themselves.
func (h *Hold) Stop() {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.stopped = true
	h.timer.Stop()
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
}

func (h *Hold) renew() {
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	keys := slices.Clone(h.keys)
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()

	next := h.period()
	if len(keys) > 0 {
		if held, err := h.g.Renew(h.ctx, keys, h.owner); err != nil {
			next = min(next, renewRetry)
		} else {
			h.dropLost(keys, held)
		}
	}
	h.mu.Lock()
	if !h.stopped {
		h.timer.Reset(next)
	}
	h.mu.Unlock()
}

// dropLost stops renewing the keys a renewal found no longer held, and
// reports those not dropped meanwhile (a batch drops its keys before it
// completes them, so that a renewal crossing the completion is no loss).
func (h *Hold) dropLost(keys []string, held []bool) {
	var lost []string
	for i, ok := range held {
		if !ok {
			lost = append(lost, keys[i])
		}
	}
	if len(lost) == 0 {
		return
	}
	h.mu.Lock()
	n := len(h.keys)
	h.keys = without(h.keys, lost)
	n -= len(h.keys)
	h.mu.Unlock()
	if n > 0 && h.lost != nil {
		h.lost(n)
	}
}
