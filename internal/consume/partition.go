package consume

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/batch"
	"github.com/msk-consumer/msk-consumer/internal/health"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
	"github.com/msk-consumer/msk-consumer/internal/process"
)

// recordOverhead is what a buffered record costs besides its key and value:
// the client's record struct and headers, the queue entry, and a share of
// the fetch buffers. MAX_BUFFERED_BYTES counts it, so that the limit bounds
// memory for small records too (measured: 64 MiB of 200-byte values alone
// held about 6x the limit in RSS).
const recordOverhead = 256

// partition is one assigned partition: its fetched records, queued in its
// lanes, the lanes' workers that cut them into batches and process them,
// the dead-letter writes in flight, and its offsets.
//
// With PROCESSING_ORDER=partition it has one lane, so its batches are
// processed one after another in offset order; with key or none it has
// PARTITION_CONCURRENCY lanes, and a record's lane is a hash of its key
// (key) or its offset (none, and a null key with key). Either way records
// finish out of order (a lane goes on while the dead-letter copies of its
// earlier batches are written), and the tracker turns what finished into
// the offset to commit: one past the longest finished prefix.
type partition struct {
	flow  *flow
	proc  processor
	dlq   *deadLetters
	topic string
	id    int32
	m     *metrics.Topic
	lag   prometheus.Gauge
	order config.Order
	// eager lanes hand over what is queued at once rather than wait
	// BATCH_MAX_WAIT for more: a share group polls again only once these
	// records are finished, so no more can come.
	eager bool
	// solos are a share group's lanes for redelivered records (delivery
	// count above 1), one record each, started as the record arrives and
	// ended once it is handled (share.go): a record that crashed the
	// member holding it neither takes its batch-mates to the delivery
	// limit with it nor holds up the others delivered again with it.
	// Under mu.
	solos map[*lane]struct{}

	gone   atomic.Bool     // taken from this member: never committed but by the revoke callback
	paused atomic.Bool     // fetching paused by flow; changed under flow.mu
	held   int64           // bytes fetched and not finished; under flow.mu
	ctx    context.Context // canceled to abandon work at once
	cancel context.CancelFunc
	halt   chan struct{} // closed to finish the in-flight batches and stop
	once   sync.Once
	done   chan struct{} // closed when every lane and dead-letter write returned

	lanes   []*lane
	limits  batch.Limits // BATCH_MAX_*
	letters letters      // its dead-letter writes in flight, for deadLetters

	mu   sync.Mutex
	fin  completion // what becomes of its records: offs in a classic group
	offs *offsets   // the offset to commit and the last committed
	hwm  int64      // high watermark, as of the last fetch
}

// processor is what a lane hands its batches to (*process.Processor).
type processor interface {
	Handle(ctx context.Context, stall string, slot process.Slot, recs []*kgo.Record, m *metrics.Topic) (*process.Pending, error)
}

func newPartition(c *Consumer, topic string, id int32, m *metrics.Topic) *partition {
	ctx, cancel := context.WithCancel(c.abort)
	p := &partition{
		flow: c.flow, proc: c.proc, dlq: c.dlq,
		topic: topic, id: id, m: m,
		lag:    c.metrics.LagFor(topic, id),
		order:  c.cfg.Batch.Order,
		ctx:    ctx,
		cancel: cancel,
		halt:   make(chan struct{}),
		done:   make(chan struct{}),
		offs:   newOffsets(),
		limits: batch.Limits{
			MaxRecords: c.cfg.Batch.MaxRecords,
			MaxBytes:   c.cfg.Batch.MaxBytes,
			MaxWait:    c.cfg.Batch.MaxWait,
		},
		letters: letters{freed: make(chan struct{})},
	}
	p.fin = p.offs
	n := 1
	if p.order == config.OrderKey || p.order == config.OrderNone {
		n = max(c.cfg.Batch.Lanes, 1)
	}
	p.lanes = make([]*lane, n)
	for i := range p.lanes {
		p.lanes[i] = &lane{p: p, name: health.PartitionKey(topic, id), wake: make(chan struct{}, 1), batcher: batch.New[*kgo.Record](p.limits)}
		if n > 1 {
			p.lanes[i].name = health.LaneKey(topic, id, i)
		}
	}
	return p
}

// laneOf returns the lane of r: the only one in partition order, else by
// the hash of its key (key order), or by its offset (none, or a null key).
func (p *partition) laneOf(r *kgo.Record) *lane {
	n := uint64(len(p.lanes))
	if n == 1 {
		return p.lanes[0]
	}
	if p.order == config.OrderKey && r.Key != nil {
		return p.lanes[keyHash(r.Key)%n]
	}
	return p.lanes[uint64(r.Offset)%n]
}

// keyHash is 64-bit FNV-1a: stable across processes and versions, so that
// a key keeps its lane whichever member owns the partition.
func keyHash(key []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, b := range key {
		h ^= uint64(b)
		h *= 1099511628211
	}
	return h
}

// add queues fetched records in their lanes, tracks them, and returns their
// size in bytes.
func (p *partition) add(recs []*kgo.Record, hwm int64, now time.Time) int64 {
	var n int64
	p.mu.Lock()
	for _, r := range recs {
		size := len(r.Key) + len(r.Value)
		if released, rewound := p.fin.queued(r); rewound {
			n -= int64(released) * recordOverhead
			n -= p.unstartLocked(r.Offset)
		}
		if p.solos != nil && r.DeliveryCount() > 1 {
			p.soloLocked(r, size, now)
		} else {
			p.laneOf(r).add(r, size, now)
		}
		n += int64(size) + recordOverhead
	}
	p.hwm = hwm
	p.setLagLocked()
	p.mu.Unlock()
	p.poke()
	return n
}

// unstartLocked removes from the lanes' queues the records at or past off
// (0: every record queued) and tells the completion of each that it was
// never started; it returns their key and value bytes. p.mu is held.
//
// After a rewind (add), the records queued at or past the offset the
// client rewound to were delivered before it: they are gone from the log,
// and the records delivered again share their offsets, so a batch holding
// both would let an answer naming an offset (or an idempotency key made of
// one) take one for the other. Their key and value bytes are given back
// with them; the completion has counted their overhead as released
// already. Records of a batch in flight are not queued: they finish as
// orphans.
func (p *partition) unstartLocked(off int64) int64 {
	var freed int64
	remove := func(l *lane) {
		freed += int64(l.batcher.Remove(func(q *kgo.Record) bool {
			if q.Offset < off {
				return false
			}
			p.fin.unstarted(q)
			return true
		}))
	}
	for _, l := range p.lanes {
		remove(l)
	}
	for l := range p.solos {
		remove(l)
	}
	return freed
}

// queuedFullLocked reports whether the lanes' queues of a partition with
// several lanes hold a batch's worth of records or bytes together. p.mu is
// held.
func (p *partition) queuedFullLocked() bool {
	if len(p.lanes) == 1 {
		return false // the lane's own batch says
	}
	n, size := 0, 0
	for _, l := range p.lanes {
		n += l.batcher.Len()
		size += l.batcher.Bytes()
	}
	return n >= p.limits.MaxRecords || size >= p.limits.MaxBytes
}

// poke wakes the lanes to look at their queues again.
func (p *partition) poke() {
	for _, l := range p.lanes {
		l.poke()
	}
}

// stop asks the lanes to finish their in-flight batches and return.
func (p *partition) stop() { p.once.Do(func() { close(p.halt) }) }

// drain empties the queues of a stopped partition, telling the completion
// of each record never started, then that the partition stopped;
// flow.detach releases its bytes.
func (p *partition) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unstartLocked(0)
	p.fin.stopped()
}

// run runs the lanes and returns once they all returned and the dead-letter
// writes they started ended (acknowledged, or abandoned when ctx ends), so
// that what a revoke commits after it includes them.
func (p *partition) run() {
	defer close(p.done)
	var wg sync.WaitGroup
	for _, l := range p.lanes {
		wg.Go(l.run)
	}
	wg.Wait()
	// No lane is left to start a write: Wait cannot race an Add.
	p.letters.wg.Wait()
}

// finish is how lanes and dead-letter writes hand over finished records:
// it tells the completion of the records of recs for which done holds and
// gives back their bytes: a record's key and value when it finishes, its
// recordOverhead when the completion releases it (classic: when the
// finished prefix passes it).
func (p *partition) finish(recs []*kgo.Record, done func(i int) bool) {
	var freed int64
	p.mu.Lock()
	for i, r := range recs {
		if !done(i) {
			continue
		}
		ok, n := p.fin.finished(r)
		if !ok {
			continue
		}
		freed += int64(len(r.Key)+len(r.Value)) + int64(n)*recordOverhead
	}
	p.setLagLocked()
	p.mu.Unlock()
	p.flow.add(p, -freed)
}

// setEnd records the partition's end offset (high watermark), as refreshed
// while fetching may be paused.
func (p *partition) setEnd(hwm int64) {
	p.mu.Lock()
	if hwm > p.hwm {
		p.hwm = hwm
		p.setLagLocked()
	}
	p.mu.Unlock()
}

func (p *partition) setLagLocked() {
	if pos := p.fin.position(); pos >= 0 && p.hwm >= pos {
		p.lag.Set(float64(p.hwm - pos))
	}
}
