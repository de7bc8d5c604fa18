package consume

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"msk-consumer/internal/batch"
	"msk-consumer/internal/metrics"
)

// recordOverhead is what a buffered record costs besides its key and value:
// the client's record struct and headers, the queue entry, and a share of
// the fetch buffers. MAX_BUFFERED_BYTES counts it, so that the limit bounds
// memory for small records too (measured: 64 MiB of 200-byte values alone
// held about 6x the limit in RSS).
const recordOverhead = 256

// partition is one assigned partition: its queue of fetched records, the
// worker goroutine that cuts them into batches and processes them one after
// another, and its offsets.
type partition struct {
	flow  *flow
	proc  processor
	topic string
	id    int32
	m     *metrics.Topic
	lag   prometheus.Gauge

	gone   atomic.Bool     // taken from this member: never committed but by the revoke callback
	paused atomic.Bool     // fetching paused by flow; changed under flow.mu
	held   int64           // bytes fetched and not finished; under flow.mu
	ctx    context.Context // canceled to abandon work at once
	cancel context.CancelFunc
	halt   chan struct{} // closed to finish the in-flight batch and stop
	once   sync.Once
	wake   chan struct{} // a record arrived
	done   chan struct{} // closed when the worker returned

	mu        sync.Mutex
	batcher   *batch.Batcher[*kgo.Record]
	hwm       int64 // high watermark, as of the last fetch
	base      int64 // first offset fetched, for lag before anything is marked
	next      int64 // offset to commit: one past the last finished record; -1 if none
	epoch     int32 // leader epoch of the last finished record
	committed int64 // last committed offset; -1 if none by this member
}

// processor is what a worker hands its batches to (*process.Processor).
type processor interface {
	Process(ctx context.Context, recs []*kgo.Record, m *metrics.Topic) (int, error)
}

func newPartition(c *Consumer, topic string, id int32, m *metrics.Topic) *partition {
	ctx, cancel := context.WithCancel(c.abort)
	return &partition{
		flow: c.flow, proc: c.proc,
		topic: topic, id: id, m: m,
		lag:    c.metrics.LagFor(topic, id),
		ctx:    ctx,
		cancel: cancel,
		halt:   make(chan struct{}),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		batcher: batch.New[*kgo.Record](batch.Limits{
			MaxRecords: c.cfg.Batch.MaxRecords,
			MaxBytes:   c.cfg.Batch.MaxBytes,
			MaxWait:    c.cfg.Batch.MaxWait,
		}),
		base:      -1,
		next:      -1,
		committed: -1,
	}
}

// add queues fetched records and returns their size in bytes.
func (p *partition) add(recs []*kgo.Record, hwm int64, now time.Time) int64 {
	var n int64
	p.mu.Lock()
	for _, r := range recs {
		size := len(r.Key) + len(r.Value)
		p.batcher.Add(r, size, now)
		n += int64(size) + recordOverhead
	}
	p.hwm = hwm
	if p.base < 0 {
		p.base = recs[0].Offset
	}
	p.setLagLocked()
	p.mu.Unlock()
	p.poke()
	return n
}

// poke wakes the worker to look at its queue again.
func (p *partition) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// stop asks the worker to finish its in-flight batch and return.
func (p *partition) stop() { p.once.Do(func() { close(p.halt) }) }

// drain empties the queue of a stopped partition; flow.detach releases
// its bytes.
func (p *partition) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batcher.Drain()
}

// run is the worker: it waits for a batch to be ready, takes an in-flight
// slot, processes the batch and marks its finished prefix. It returns when
// stopped (after the batch in flight) or canceled (at once).
func (p *partition) run() {
	defer close(p.done)
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
		ready := p.batcher.Ready(time.Now()) || (p.paused.Load() && p.batcher.Len() > 0)
		var size int
		if ready {
			recs, size = p.batcher.Take(recs[:0])
		}
		held := int64(size) + int64(len(recs))*recordOverhead
		deadline, waiting := p.batcher.Deadline()
		p.mu.Unlock()

		if !ready {
			if waiting {
				timer.Reset(time.Until(deadline))
			}
			select {
			case <-p.wake:
			case <-timer.C:
			case <-p.halt:
				return
			case <-p.ctx.Done():
				return
			}
			timer.Stop()
			continue
		}

		release, ok := p.flow.acquire(p.ctx, p.halt, p, held)
		if !ok {
			return
		}
		n, err := p.proc.Process(p.ctx, recs, p.m)
		if n > 0 {
			last := recs[n-1]
			p.mark(last.Offset+1, last.LeaderEpoch)
		}
		clear(recs) // let the records be collected
		release()
		if err != nil {
			return // canceled: the rest is redelivered to whoever owns the partition next
		}
	}
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

// mark records that everything before offset is finished.
func (p *partition) mark(offset int64, epoch int32) {
	p.mu.Lock()
	if offset > p.next {
		p.next, p.epoch = offset, epoch
	}
	p.setLagLocked()
	p.mu.Unlock()
}

func (p *partition) setLagLocked() {
	pos := p.next
	if pos < 0 {
		pos = p.base
	}
	if pos >= 0 && p.hwm >= pos {
		p.lag.Set(float64(p.hwm - pos))
	}
}

// toCommit returns the marked offset if it moved past the last commit.
func (p *partition) toCommit() (kgo.EpochOffset, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next < 0 || p.next <= p.committed {
		return kgo.EpochOffset{}, false
	}
	return kgo.EpochOffset{Epoch: p.epoch, Offset: p.next}, true
}

func (p *partition) setCommitted(offset int64) {
	p.mu.Lock()
	p.committed = max(p.committed, offset)
	p.mu.Unlock()
}
