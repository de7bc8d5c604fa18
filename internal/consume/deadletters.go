package consume

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/internal/backoff"
	"github.com/msk-consumer/msk-consumer/internal/dlq"
	"github.com/msk-consumer/msk-consumer/internal/kafkaclient"
	"github.com/msk-consumer/msk-consumer/internal/preflight"
	"github.com/msk-consumer/msk-consumer/internal/process"
)

// deadLetters owns the consumer's dead-letter writes, for every partition:
// the dead-letter topics' limits, the writer that fits and retries each
// copy (dlq.Writer, built and configured here only), the report of a failed
// attempt (log, metric, fatal errors), and each partition's writes in
// flight (its letters): their bound in bytes, the overlap gate and each
// lane's stall. A lane calls two methods: healthy before it starts a
// batch, send with a batch's copies (a share group's records on their last
// allowed delivery, which no lane holds, go through write). Each write
// reports its failed attempts through its lane's own failure path
// (attemptFailed), never by looking the partition up.
//
// A lane hands over a batch's copies and goes on; the write finishes the
// records once the brokers acknowledged them, so the commit never passes a
// record whose copy is not acknowledged. A lane goes on only while its own
// writes are healthy: once one of them has failed an attempt, or has been
// in flight for deadLetterOverlap, the lane starts no batch until its
// writes in flight end. Records handled past an unacknowledged copy are
// redone after a crash, so an outage of the dead-letter topic must not let
// them grow: it stops the lane after its batch in flight, as when every
// batch waited for its copies. Other lanes of the partition go on until
// they have a copy to write themselves. A partition's writes in flight are
// bounded in bytes as well (the failed records' keys and values plus
// pendingOverhead per record of their batches) by BATCH_MAX_BYTES, one
// write always allowed.
//
// The limits are each dead-letter topic's max.message.bytes
// (dlq.MaxMessageBytes, which redrive's producer uses too): read at start
// (checkDLQConfigs), and read again when a copy is refused as too large
// (dlq.Deps.RefreshMaxBytes), so that an operator who raises a topic's
// limit gets whole copies from then on. The producer's batch limit and the
// writer both read them.
type deadLetters struct {
	c      *Consumer
	writer *dlq.Writer  // set with the client
	adm    *kadm.Client // set with the client

	mu sync.Mutex
	m  map[string]int32
}

// letters is a partition's writes in flight, which only deadLetters
// touches (each lane's own are its writes).
type letters struct {
	wg sync.WaitGroup // one per write in flight

	mu    sync.Mutex
	bytes int64
	freed chan struct{} // closed and replaced when a write ends
}

// letterWrite is one dead-letter write in flight: the copies of one batch.
type letterWrite struct {
	start  time.Time
	failed bool // an attempt of it failed, and no later one succeeded
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

// deadLetterKey names a lane's dead-letter stall in /readyz. The lane owns
// it: only its own writes set and clear it, so a lane whose copies go to a
// dead-letter partition that takes writes does not hide one whose copies
// go to a partition that refuses them. It differs from the lane's handler
// stalls (its name alone), which its batch in flight sets and clears.
func deadLetterKey(name string) string { return name + " dead-letter" }

func newDeadLetters(c *Consumer, atStart map[string]int32) *deadLetters {
	m := maps.Clone(atStart)
	if m == nil {
		m = map[string]int32{}
	}
	return &deadLetters{c: c, m: m}
}

// start builds the writer on the group member's client cl.
func (d *deadLetters) start(cl *kgo.Client) {
	cfg := d.c.cfg
	d.adm = kadm.NewClient(cl)
	d.writer = dlq.NewWriter(dlq.Config{
		Group:    cfg.Kafka.GroupID,
		TopicFor: cfg.DLQ.TopicFor,
		Backoff:  backoff.Policy{First: cfg.Batch.HandlerRetryBackoff, Max: cfg.Batch.HandlerBackoffMax},
		MaxBytes: d.get,
	}, dlq.Deps{Producer: cl, OnOmitted: d.omitted, RefreshMaxBytes: d.refresh,
		OnWritten: d.c.deadLettered})
}

// healthy waits until l's dead-letter writes let it start a batch, and
// reports false if its partition was stopped or canceled first.
func (d *deadLetters) healthy(l *lane) bool {
	p := l.p
	for {
		p.letters.mu.Lock()
		ok := len(l.writes) == 0 || (!failing(l.writes) && time.Since(l.writes[0].start) < deadLetterOverlap)
		freed := p.letters.freed
		p.letters.mu.Unlock()
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

// failing reports whether one of writes is failing.
func failing(writes []*letterWrite) bool {
	return slices.ContainsFunc(writes, func(lw *letterWrite) bool { return lw.failed })
}

// send starts the write of b's copies (recs is b's batch, handed over by
// l) once the partition's bound allows, and reports false if the partition
// was canceled first (b is then closed, its records not finished).
func (d *deadLetters) send(l *lane, b *process.Pending, recs []*kgo.Record) bool {
	p, ls := l.p, &l.p.letters
	_, size := b.Letters()
	work := int64(len(recs)) * pendingOverhead
	cost := size + work
	lw := &letterWrite{}
	for {
		ls.mu.Lock()
		if ls.bytes == 0 || ls.bytes+cost <= max(int64(d.c.cfg.Batch.MaxBytes), 1) {
			ls.bytes += cost
			lw.start = time.Now()
			l.writes = append(l.writes, lw)
			ls.mu.Unlock()
			break
		}
		freed := ls.freed
		ls.mu.Unlock()
		select {
		case <-freed:
		case <-p.ctx.Done():
			b.Close()
			return false
		}
	}
	p.flow.add(p, work)
	ls.wg.Go(func() {
		err := b.Write(p.ctx, func(src *kgo.Record, err error) { d.attemptFailed(l, lw, src, err) })
		if err == nil {
			p.finish(recs, b.Done)
		}
		b.Close()
		p.flow.add(p, -work)
		ls.mu.Lock()
		ls.bytes -= cost
		i := slices.Index(l.writes, lw)
		l.writes = slices.Delete(l.writes, i, i+1)
		// The lane's stall ends when none of its writes is failing: a
		// write that succeeded says nothing of the others, whose copies
		// may go to another partition of the dead-letter topic.
		if lw.failed && !failing(l.writes) {
			d.c.health.Unstuck(deadLetterKey(l.name))
		}
		close(ls.freed)
		ls.freed = make(chan struct{})
		ls.mu.Unlock()
	})
	return true
}

// attemptFailed is the failure path of lw, one of l's writes in flight: an
// attempt of it failed with err and the write retries. The lane is
// reported stuck until none of its writes is failing, unless its partition
// is gone from this member (as when the report looked the partition up
// among those assigned).
func (d *deadLetters) attemptFailed(l *lane, lw *letterWrite, src *kgo.Record, err error) {
	reason := d.report(src, err)
	p := l.p
	if p.gone.Load() {
		return // taken from this member: its stalls are no longer shown
	}
	p.letters.mu.Lock()
	defer p.letters.mu.Unlock()
	lw.failed = true
	d.c.health.Stuck(deadLetterKey(l.name), reason)
}

// write writes fs, the copies of records of p that no lane holds (a share
// group's records on their last allowed delivery), reported stuck under
// stall while an attempt fails, and calls done once the brokers
// acknowledged them all; not if p is canceled first.
func (d *deadLetters) write(p *partition, stall string, fs []dlq.Failure, done func()) {
	p.letters.wg.Go(func() {
		err := d.writer.Write(p.ctx, fs, func(src *kgo.Record, err error) {
			d.c.health.Stuck(stall, d.report(src, err))
		})
		d.c.health.Unstuck(stall)
		if err == nil {
			done()
		}
	})
}

// report logs and counts a failed attempt of a dead-letter write, fails the
// consumer on a fatal error, and returns the reason the stall shows.
func (d *deadLetters) report(src *kgo.Record, err error) string {
	c := d.c
	c.metrics.DLQProduceErrors.Inc()
	dest := c.cfg.DLQ.TopicFor(src.Topic)
	c.log.Error("dead-letter write failed; retrying, the partition waits",
		zap.String("topic", src.Topic), zap.Int32("partition", src.Partition), zap.Int64("offset", src.Offset),
		zap.String("dlq_topic", dest), zap.Error(err))
	if kafkaclient.IsFatal(err) {
		c.fail(&FatalError{What: "writing to dead-letter topic " + dest, Err: err})
	}
	return "cannot write to dead-letter topic " + dest + ": " + err.Error()
}

// get is the record batch limit of a dead-letter topic: its
// max.message.bytes as last read, or Kafka's default.
func (d *deadLetters) get(topic string) int32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return dlq.MaxMessageBytes(int64(d.m[topic]))
}

var errNoLimit = errors.New("max.message.bytes not readable")

// refresh reads topic's max.message.bytes again and keeps it.
func (d *deadLetters) refresh(ctx context.Context, topic string) (int32, error) {
	rcs, err := d.adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return 0, err
	}
	configs, _, err := preflight.ReadConfigs(rcs)
	if err != nil {
		return 0, err
	}
	n := configs[topic].MaxMessageBytes
	if n <= 0 {
		return 0, errNoLimit
	}
	d.mu.Lock()
	d.m[topic] = n
	d.mu.Unlock()
	return n, nil
}

func (d *deadLetters) omitted(src *kgo.Record, dest string, limit int32, value, headers bool) {
	at := []zap.Field{zap.String("topic", src.Topic), zap.Int32("partition", src.Partition), zap.Int64("offset", src.Offset),
		zap.String("dlq_topic", dest), zap.Int32("max_message_bytes", limit)}
	if value {
		d.c.log.Warn("dead-letter copy too large for its topic; writing it without the value (dlq.value.omitted holds its size)",
			append(at, zap.Int("value_bytes", len(src.Value)))...)
	}
	if headers {
		d.c.log.Warn("dead-letter copy too large for its topic; writing it without the original's headers (dlq.headers.omitted holds how many)",
			append(at, zap.Int("headers", len(src.Headers)))...)
	}
}
