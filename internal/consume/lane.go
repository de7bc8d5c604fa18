package consume

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/internal/batch"
	"github.com/msk-consumer/msk-consumer/internal/status"
)

// lane is one worker of a partition: its own queue, cut into batches by
// BATCH_MAX_*, processed one after another in offset order. A partition in
// partition order has one lane; in key or none order, PARTITION_CONCURRENCY.
// Lanes of all partitions share the in-flight slots (MAX_IN_FLIGHT_BATCHES).
type lane struct {
	p       *partition
	name    string                      // in /readyz's stalls: health.PartitionKey, or health.LaneKey when there are several
	wake    chan struct{}               // a record arrived, or fetching paused
	batcher *batch.Batcher[*kgo.Record] // under p.mu
	writes  []*letterWrite              // its dead-letter writes in flight, oldest first; under p.letters.mu
	solo    bool                        // a share group's lane of one redelivered record: ends after it
	// flight is the batch taken last, until the lane waits again (zero
	// Since: none), for the status page: taken from its queue, not yet
	// finished (waiting for a slot, decoding, with the handler, backing
	// off, or waiting for its dead-letter copies). Under p.mu.
	flight status.Batch
}

// add queues r; p.mu is held.
func (l *lane) add(r *kgo.Record, size int, now time.Time) { l.batcher.Add(r, size, now) }

func (l *lane) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run is the lane's worker: it waits for a batch to be ready, takes an
// in-flight slot, processes the batch, finishes the records handled and
// hands the dead-letter copies to deadLetters (send), then goes on without
// waiting for them. It returns when its partition is stopped (after the
// batch in flight) or canceled (at once).
func (l *lane) run() {
	p := l.p
	var (
		recs  []*kgo.Record
		timer = time.NewTimer(time.Hour)
	)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-p.halt:
			return // start no batch once stopped
		default:
		}
		if !p.dlq.healthy(l) {
			return // stopped or canceled while its dead-letter writes were failing
		}
		p.mu.Lock()
		// While fetching is paused this partition's share of the buffer
		// (or the whole buffer) is full: hand over what is queued rather
		// than wait for batches that cannot fill.
		// With several lanes, BATCH_MAX_RECORDS and BATCH_MAX_BYTES also
		// hold for the partition's queues together: once they hold a
		// batch's worth, each lane hands over its part of it rather than
		// wait until its own queue fills, which takes as many batches of
		// the partition as it has lanes. Those records were fetched
		// long before (at 1 KB and 8 lanes, 30 MB ago over 6 partitions,
		// out of the CPU's caches) and kept their fetches' memory, and
		// with 32 lanes the partition's share filled first and paused
		// fetching (issue 21: key order ran at half of partition order).
		now := time.Now()
		ready := l.batcher.Ready(now) || (l.batcher.Len() > 0 && (p.eager || p.paused.Load() || p.queuedFullLocked()))
		l.flight = status.Batch{}
		if ready {
			recs, _ = l.batcher.Take(recs[:0])
			l.flight = status.Batch{Since: now, FirstOffset: recs[0].Offset, LastOffset: recs[len(recs)-1].Offset, Records: len(recs)}
		}
		deadline, waiting := l.batcher.Deadline()
		p.mu.Unlock()

		if !ready {
			if waiting {
				timer.Reset(time.Until(deadline))
			}
			select {
			case <-l.wake:
			case <-timer.C:
			case <-p.halt:
				return
			case <-p.ctx.Done():
				return
			}
			timer.Stop()
			continue
		}

		// The batch's bytes stay counted until its records finish
		// (partition.finish): the slot is all that acquire takes.
		release, ok := p.flow.acquire(p.ctx, p.halt)
		if !ok {
			return
		}
		slot := &laneSlot{p: p, release: release} // given back while the batch waits on another's claims
		b, err := p.proc.Handle(p.ctx, l.name, slot, recs, p.m)
		slot.Yield()
		p.finish(recs, b.Done)
		if n, _ := b.Letters(); n > 0 {
			if !p.dlq.send(l, b, recs) {
				return // canceled
			}
			recs = nil // the write keeps the batch
			if l.solo {
				return
			}
			continue
		}
		b.Close()
		clear(recs) // let the records be collected
		if err != nil || l.solo {
			return // canceled: the rest is redelivered to whoever owns the partition next
		}
	}
}
