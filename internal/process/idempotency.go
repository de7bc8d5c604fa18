package process

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/internal/backoff"
	"github.com/msk-consumer/msk-consumer/internal/idempotency"
	"github.com/msk-consumer/msk-consumer/internal/shutdown"
)

// The idempotency phase (Deps.Idempotency, IDEMPOTENCY_STORE): before
// decoding, a batch's records are claimed in the store in one call; those
// completed before are skipped as duplicates, and those in progress under
// another member are waited for, without the batch's in-flight slot
// (Slot). The claims are renewed while the batch is in flight
// (idempotency.Hold), however long it takes. A record is marked completed
// in the store as soon as the handler succeeded for it, and a dead-lettered
// one is marked dead-lettered (not completed: a copy of it sent back by
// `consumer redrive` is handled) once its copy was acknowledged: before the
// record is Done, so before its offset can be committed. A store that cannot
// be reached is unavailable infrastructure: every call is retried without
// limit, the partition is reported stuck meanwhile, and no record is
// handled, skipped or committed on a guess.

// inProgressPoll is how often a batch looks again at records in progress
// under another member: their claims end when that member completes them,
// or when they expire (IDEMPOTENCY_IN_PROGRESS_TTL) if it died.
var inProgressPoll = backoff.Policy{First: 100 * time.Millisecond, Max: time.Second}

// Slot is the in-flight slot a batch runs in (MAX_IN_FLIGHT_BATCHES), given
// by the caller to Handle: a batch that waits for records in progress
// under another batch gives it back meanwhile, so that batches waiting on
// each other's keys cannot hold every slot and stop the partitions that
// wait on nothing. The batch still holds its place in its partition's (or
// lane's) order, and its records their bytes.
type Slot interface {
	// Yield gives the slot back.
	Yield()
	// Take waits for a slot again; its error (ctx's, or the caller's
	// when it stops the batch's work) abandons the batch.
	Take(ctx context.Context) error
}

// idem is one batch's idempotency state, pooled with its work.
type idem struct {
	keys       []string
	at         []string // Guard.At of each record
	verdicts   []idempotency.Verdict
	done       []bool // completed or marked dead-lettered in the store
	scratch    []string
	scratchAt  []string
	hold       *idempotency.Hold // renews the claims while the batch is in flight
	owner      string
	duplicates int
	unkeyed    int
}

func (d *idem) reset(n int) {
	d.keys = resize(d.keys, n)
	d.at = resize(d.at, n)
	d.verdicts = resize(d.verdicts, n)
	d.done = resize(d.done, n)
	clear(d.done)
	d.scratch, d.scratchAt = d.scratch[:0], d.scratchAt[:0]
	d.hold = nil
	d.owner, d.duplicates, d.unkeyed = "", 0, 0
}

// clearRefs ends the batch's renewals and drops the references to its
// keys.
func (d *idem) clearRefs() {
	d.hold.Stop()
	d.hold = nil
	clear(d.keys)
	clear(d.at)
	clear(d.scratch)
	clear(d.scratchAt)
}

// claim claims the batch's records, waiting out the store's outages and
// other members' claims, and marks the duplicates skipped.
func (w *work) claim(ctx context.Context) error {
	g, d := w.p.d.Idempotency, &w.idem
	for i, r := range w.recs {
		d.keys[i] = g.Key(r)
		d.at[i] = g.At(r)
	}
	d.owner = g.Owner()
	for failures, waits := 0, 0; ; {
		err := g.Claim(ctx, d.keys, d.at, d.owner, d.verdicts)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failures++
			if err := w.storeUnavailable(ctx, "claiming records", failures, err); err != nil {
				return err
			}
			continue
		}
		w.available()
		first, busy := -1, 0
		for i, v := range d.verdicts {
			if v == idempotency.Busy {
				busy++
				if first < 0 {
					first = i
				}
			}
		}
		if busy == 0 {
			break
		}
		// Records must be handled in offset order, so the whole batch
		// waits; what this attempt claimed is given back meanwhile, so
		// that no claim of ours runs out while we wait.
		waits++
		w.m.InProgressWaits.Inc()
		_ = g.Release(ctx, w.keysWhere(func(int) bool { return true }), d.owner)
		if waits == 1 || waits%20 == 0 {
			w.log.Info("records in progress under another member; waiting for it to complete them or for its claims to expire",
				zap.String("topic", w.recs[0].Topic), zap.Int32("partition", w.recs[0].Partition),
				zap.Int64("first_offset", w.recs[first].Offset), zap.Int("records", busy), zap.Int("wait", waits))
		}
		if w.slot != nil {
			w.slot.Yield()
		}
		if err := backoff.Sleep(ctx, inProgressPoll.Delay(waits)); err != nil {
			return err
		}
		if w.slot != nil {
			if err := w.slot.Take(ctx); err != nil {
				return err
			}
		}
	}
	topic, partition := w.recs[0].Topic, w.recs[0].Partition
	d.hold = g.Hold(w.keysWhere(func(int) bool { return true }), d.owner, func(n int) {
		w.log.Warn("claims of records in flight lapsed before they could be renewed (the idempotency store was unavailable for IDEMPOTENCY_IN_PROGRESS_TTL, or this process was paused); another member may handle them at the same time",
			zap.String("store", g.Name()), zap.String("topic", topic), zap.Int32("partition", partition), zap.Int("records", n))
	})
	for i, v := range d.verdicts {
		switch v {
		case idempotency.Duplicate:
			w.states[i] = skipped
			d.duplicates++
		case idempotency.Unkeyed:
			d.unkeyed++
		}
	}
	if d.duplicates > 0 {
		w.log.Debug("records completed before skipped as duplicates",
			zap.String("topic", w.recs[0].Topic), zap.Int32("partition", w.recs[0].Partition),
			zap.Int64("first_offset", w.recs[0].Offset), zap.Int("duplicates", d.duplicates))
	}
	return nil
}

// keysWhere collects into d.scratch the keys of the records claimed for
// this batch (verdict Handle) for which ok holds and that are not completed
// in the store yet, and into d.scratchAt their Guard.At.
func (w *work) keysWhere(ok func(i int) bool) []string {
	d := &w.idem
	d.scratch, d.scratchAt = d.scratch[:0], d.scratchAt[:0]
	for i, k := range d.keys {
		if d.verdicts[i] == idempotency.Handle && !d.done[i] && ok(i) {
			d.scratch = append(d.scratch, k)
			d.scratchAt = append(d.scratchAt, d.at[i])
		}
	}
	return d.scratch
}

// complete marks in the store the claimed records whose state is st:
// completed when handled, dead-lettered when lettered (so that a redelivery
// of the same record is not dead-lettered again, while another record with
// its key, such as its redriven copy, is handled). It retries while the
// store is unavailable, and returns only ctx's error: the records stay
// finished either way, and a redelivery of one whose mark was not stored
// is handled again, as without the store.
func (w *work) complete(ctx context.Context, st state) error {
	g, d := w.p.d.Idempotency, &w.idem
	keys := w.keysWhere(func(i int) bool { return w.states[i] == st })
	if len(keys) == 0 {
		return nil
	}
	// The claims are renewed until the marks are stored: a claim that
	// lapsed while marking was retried would let another member handle
	// the records again.
	defer d.hold.Drop(keys)
	for failures := 0; ; {
		var err error
		if st == lettered {
			err = g.Letter(ctx, keys, d.scratchAt, d.owner)
		} else {
			err = g.Complete(ctx, keys)
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		failures++
		if err := w.storeUnavailable(ctx, "marking records completed", failures, err); err != nil {
			return err
		}
	}
	w.available()
	for i := range d.done {
		if d.verdicts[i] == idempotency.Handle && w.states[i] == st {
			d.done[i] = true
		}
	}
	return nil
}

// release gives back, when the batch is abandoned, the claims of records
// never handed to the handler, so that the partition's next owner need not
// wait for them to expire. Records the handler was given keep their
// claims until they expire: a call cut short may have had effects.
func (w *work) release(ctx context.Context) {
	keys := w.keysWhere(func(i int) bool {
		return w.attempts[i] == 0 && (w.states[i] == pending || w.states[i] == dead)
	})
	if len(keys) == 0 {
		return
	}
	w.idem.hold.Drop(keys)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdown.ReleaseTimeout)
	defer cancel()
	_ = w.p.d.Idempotency.Release(rctx, keys, w.idem.owner)
}

// storeUnavailable reports the partition stuck on the store and waits
// before the next attempt.
func (w *work) storeUnavailable(ctx context.Context, what string, n int, err error) error {
	p, name := w.p, w.p.d.Idempotency.Name()
	if n == 1 || n%10 == 0 {
		p.log.Warn("idempotency store unavailable; retrying without limit, the partition waits",
			zap.String("store", name), zap.String("doing", what),
			zap.String("topic", w.recs[0].Topic), zap.Int32("partition", w.recs[0].Partition),
			zap.Int64("first_offset", w.recs[0].Offset), zap.Int("attempt", n), zap.Error(err))
	}
	if p.d.Stalls != nil {
		p.d.Stalls.Stuck(w.stallKey, "idempotency store "+name+" unavailable: "+err.Error())
		w.stalled = true
	}
	return backoff.Sleep(ctx, p.cfg.Backoff.Delay(n))
}
