package consume

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"msk-consumer/internal/batch"
	"msk-consumer/internal/process"
)

// lane is one worker of a partition: its own queue, cut into batches by
// BATCH_MAX_*, processed one after another in offset order. A partition in
// partition order has one lane; in key or none order, PARTITION_CONCURRENCY.
// Lanes of all partitions share the in-flight slots (MAX_IN_FLIGHT_BATCHES).
type lane struct {
	p       *partition
	ctx     context.Context             // p.ctx, naming the lane in Stalls when there are several
	wake    chan struct{}               // a record arrived, or fetching paused
	batcher *batch.Batcher[*kgo.Record] // under p.mu
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
// hands the dead-letter copies to the partition's writes in flight, then
// goes on without waiting for them. It returns when its partition is
// stopped (after the batch in flight) or canceled (at once).
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
		p.mu.Lock()
		// While fetching is paused this partition's share of the buffer
		// (or the whole buffer) is full: hand over what is queued rather
		// than wait for batches that cannot fill.
		ready := l.batcher.Ready(time.Now()) || (p.paused.Load() && l.batcher.Len() > 0)
		if ready {
			recs, _ = l.batcher.Take(recs[:0])
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
		release, ok := p.flow.acquire(p.ctx, p.halt, p, 0)
		if !ok {
			return
		}
		b, err := p.proc.Handle(l.ctx, recs, p.m)
		release()
		p.finish(recs, b.Done)
		if n, size := b.Letters(); n > 0 {
			if !p.letters.send(p, b, recs, size) {
				return // canceled
			}
			recs = nil // the write keeps the batch
			continue
		}
		b.Close()
		clear(recs) // let the records be collected
		if err != nil {
			return // canceled: the rest is redelivered to whoever owns the partition next
		}
	}
}

// pendingOverhead is what a batch waiting for its dead-letter copies holds
// per record besides the records (the processor's working state). It is
// counted in the partition's buffered bytes while the write is in flight.
const pendingOverhead = 64

// letters is a partition's dead-letter writes in flight: a lane hands over
// a batch's copies and goes on; the write finishes the records once the
// brokers acknowledged them, so the commit never passes a record whose copy
// is not acknowledged. The writes in flight are bounded in bytes (the
// failed records' keys and values plus pendingOverhead per record of their
// batches) by BATCH_MAX_BYTES, one write always allowed: a lane that would
// pass the bound waits, so an unavailable dead-letter topic stops a lane
// that dead-letters after a bounded amount of work, as it did when every
// batch waited for its copies.
type letters struct {
	limit int64
	wg    sync.WaitGroup // one per write in flight

	mu    sync.Mutex
	bytes int64
	freed chan struct{} // closed and replaced when a write ends
}

func (l *letters) init(limit int64) {
	l.limit = max(limit, 1)
	l.freed = make(chan struct{})
}

// send starts the write of b's copies (recs is b's batch, handed over) once
// the bound allows, and reports false if p was canceled first (b is then
// closed, its records not finished).
func (l *letters) send(p *partition, b *process.Pending, recs []*kgo.Record, size int64) bool {
	work := int64(len(recs)) * pendingOverhead
	cost := size + work
	for {
		l.mu.Lock()
		if l.bytes == 0 || l.bytes+cost <= l.limit {
			l.bytes += cost
			l.wg.Add(1)
			l.mu.Unlock()
			break
		}
		freed := l.freed
		l.mu.Unlock()
		select {
		case <-freed:
		case <-p.ctx.Done():
			b.Close()
			return false
		}
	}
	p.flow.add(p, work)
	go func() {
		defer l.wg.Done()
		if err := b.Write(p.ctx); err == nil {
			p.finish(recs, b.Done)
		}
		b.Close()
		p.flow.add(p, -work)
		l.mu.Lock()
		l.bytes -= cost
		close(l.freed)
		l.freed = make(chan struct{})
		l.mu.Unlock()
	}()
	return true
}
