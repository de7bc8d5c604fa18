package consume

import (
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/internal/batch"
	"github.com/msk-consumer/msk-consumer/internal/process"
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
	letters laneLetters                 // under p.letters.mu
	solo    bool                        // a share group's lane of one redelivered record: ends after it
	flight  inFlight                    // under p.mu: the batch taken last, until the lane waits again (status.go)
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
		if !p.letters.healthy(l) {
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
		l.flight = inFlight{}
		if ready {
			recs, _ = l.batcher.Take(recs[:0])
			l.flight = inFlight{since: now, first: recs[0].Offset, last: recs[len(recs)-1].Offset, n: len(recs)}
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
		b, err := p.proc.Handle(process.WithSlot(p.ctx, slot), l.name, recs, p.m)
		slot.Yield()
		p.finish(recs, b.Done)
		if n, size := b.Letters(); n > 0 {
			if !p.letters.send(l, b, recs, size) {
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

// pendingOverhead is what a batch waiting for its dead-letter copies holds
// per record besides the records (the processor's working state). It is
// counted in the partition's buffered bytes while the write is in flight.
const pendingOverhead = 64

// deadLetterOverlap is how long a dead-letter write may be in flight while
// the lane that sent it starts further batches. A healthy acks=all write
// takes milliseconds; one that takes longer is retrying (the client retries
// a produce for up to its delivery timeout before it reports an error).
// A variable for tests.
var deadLetterOverlap = time.Second

// letters is a partition's dead-letter writes in flight: a lane hands over
// a batch's copies and goes on; the write finishes the records once the
// brokers acknowledged them, so the commit never passes a record whose copy
// is not acknowledged.
//
// A lane goes on only while its own writes are healthy: once one of them
// has failed an attempt, or has been in flight for deadLetterOverlap, the
// lane starts no batch until its writes in flight end. Records handled past
// an unacknowledged copy are redone after a crash, so an outage of the
// dead-letter topic must not let them grow: it stops the lane after its
// batch in flight, as when every batch waited for its copies. Other lanes
// of the partition go on until they have a copy to write themselves.
//
// The writes in flight are bounded in bytes as well (the failed records'
// keys and values plus pendingOverhead per record of their batches) by
// BATCH_MAX_BYTES, one write always allowed.
type letters struct {
	limit int64
	// report logs and counts a failed attempt (and fails the consumer
	// on a fatal error), and returns the reason the lane's stall shows.
	report func(src *kgo.Record, err error) string
	wg     sync.WaitGroup // one per write in flight

	mu    sync.Mutex
	bytes int64
	freed chan struct{} // closed and replaced when a write ends
}

// laneLetters is a lane's share of letters, under letters.mu.
type laneLetters struct {
	writes []*letterWrite // the lane's writes in flight, oldest first
}

// letterWrite is one dead-letter write in flight: the copies of one batch.
type letterWrite struct {
	start  time.Time
	recs   []*kgo.Record // the batch
	failed bool          // an attempt of it failed, and no later one succeeded
}

// failing reports whether one of the lane's writes in flight is failing.
func (w *laneLetters) failing() bool {
	for _, lw := range w.writes {
		if lw.failed {
			return true
		}
	}
	return false
}

// deadLetterKey names a lane's dead-letter stall in /readyz. The lane owns
// it: only its own writes set and clear it, so a lane whose copies go to a
// dead-letter partition that takes writes does not hide one whose copies
// go to a partition that refuses them. It differs from the lane's handler
// stalls (its name alone), which its batch in flight sets and clears.
func deadLetterKey(name string) string { return name + " dead-letter" }

func (l *letters) init(limit int64, report func(src *kgo.Record, err error) string) {
	l.limit = max(limit, 1)
	l.report = report
	l.freed = make(chan struct{})
}

// healthy waits until ln's dead-letter writes let it start a batch, and
// reports false if its partition was stopped or canceled first.
func (l *letters) healthy(ln *lane) bool {
	p := ln.p
	for {
		l.mu.Lock()
		w := &ln.letters
		ok := len(w.writes) == 0 || (!w.failing() && time.Since(w.writes[0].start) < deadLetterOverlap)
		freed := l.freed
		l.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-freed:
		case <-p.halt:
			return false
		case <-p.ctx.Done():
			return false
		}
	}
}

// attemptFailed is the failure path of lw, one of ln's writes in flight,
// handed to the write: an attempt of it failed with err and the write
// retries. The lane is reported stuck until none of its writes is failing,
// unless its partition is gone from this member (as when the report
// looked the partition up among those assigned).
func (l *letters) attemptFailed(ln *lane, lw *letterWrite, src *kgo.Record, err error) {
	reason := l.report(src, err)
	if ln.p.gone.Load() {
		return // taken from this member: its stalls are no longer shown
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lw.failed = true
	if s := ln.p.stalls; s != nil {
		s.Stuck(deadLetterKey(ln.name), reason)
	}
}

// send starts the write of b's copies (recs is b's batch, handed over by
// ln) once the bound allows, and reports false if the partition was
// canceled first (b is then closed, its records not finished).
func (l *letters) send(ln *lane, b *process.Pending, recs []*kgo.Record, size int64) bool {
	p := ln.p
	w := &ln.letters
	work := int64(len(recs)) * pendingOverhead
	cost := size + work
	lw := &letterWrite{recs: recs}
	for {
		l.mu.Lock()
		if l.bytes == 0 || l.bytes+cost <= l.limit {
			l.bytes += cost
			lw.start = time.Now()
			w.writes = append(w.writes, lw)
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
		err := b.Write(p.ctx, func(src *kgo.Record, err error) { l.attemptFailed(ln, lw, src, err) })
		if err == nil {
			p.finish(recs, b.Done)
		}
		b.Close()
		p.flow.add(p, -work)
		l.mu.Lock()
		l.bytes -= cost
		i := slices.Index(w.writes, lw)
		w.writes = slices.Delete(w.writes, i, i+1)
		// The lane's stall ends when none of its writes is failing: a
		// write that succeeded says nothing of the others, whose copies
		// may go to another partition of the dead-letter topic.
		if lw.failed && !w.failing() && p.stalls != nil {
			p.stalls.Unstuck(deadLetterKey(ln.name))
		}
		close(l.freed)
		l.freed = make(chan struct{})
		l.mu.Unlock()
	}()
	return true
}
