// Package process runs one batch of one partition through the pipeline:
// decode keys and values, hand the decoded records to the handler, retry and
// bisect failures, dead-letter what cannot be handled, and report how many
// records from the start of the batch are finished.
//
// It holds the failure rules of the service in one place:
//
//   - decode and validation failures are permanent: dead-lettered at once;
//   - a handler that could not work at all (handler.ErrUnavailable) is
//     retried without limit with capped backoff; the partition waits,
//     nothing is dead-lettered for it, and the partition is reported stuck;
//   - a failed batch (any other handler error) is retried up to the attempt
//     limit, then bisected: each half is handled on its own, down to single
//     records, and a single record that still fails is dead-lettered;
//   - a rejected batch (handler.ErrPermanent) is bisected at once, and a
//     single rejected record is dead-lettered without retries;
//   - records named in *handler.ItemFailures are retried up to the attempt
//     limit, then dead-lettered;
//   - with HANDLER_MAX_RECORD_AGE, a record older than it whose handling
//     fails for any reason is dead-lettered as expired;
//   - unavailable infrastructure (a schema registry, the dead-letter topic,
//     the idempotency store) is retried without limit and never skipped;
//   - with an idempotency store (Deps.Idempotency), records completed
//     before are skipped as duplicates, and records in progress under
//     another member are waited for (idempotency.go).
//
// It knows nothing of consumer groups, polling or commits.
package process

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/backoff"
	"github.com/msk-consumer/msk-consumer/internal/codec"
	"github.com/msk-consumer/msk-consumer/internal/dlq"
	"github.com/msk-consumer/msk-consumer/internal/idempotency"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
	"github.com/msk-consumer/msk-consumer/internal/tracing"
)

// DeadLetterer writes failed records and returns once they are acknowledged
// (dlq.Writer), telling each failed attempt to onError.
type DeadLetterer interface {
	Write(ctx context.Context, fs []dlq.Failure, onError dlq.OnError) error
}

// Stalls is told when a partition or one of its lanes cannot make progress
// because infrastructure is unavailable, and when it can again
// (health.Health). Whoever waits reports and clears, under the key its
// caller named (Handle's stall); the dead-letter writes' stalls are the
// consumer's.
type Stalls interface {
	Stuck(key, reason string)
	Unstuck(key string)
}

// Config is the retry policy.
type Config struct {
	MaxAttempts int            // handler attempts per record before bisecting or dead-lettering, at least 1
	Backoff     backoff.Policy // between handler attempts and decode retries
	// MaxRecordAge, if positive, dead-letters a record older than it (by
	// its timestamp) as soon as its handling fails, for any reason.
	MaxRecordAge time.Duration
	// HandlerName names the handler in readiness reasons and logs.
	HandlerName string
	// HandlerTimeout is the handler's own bound on a call
	// (HTTP_HANDLER_TIMEOUT); 0 for a Go handler, which has none. A call
	// in flight for longer than it is reported (Overdue).
	HandlerTimeout time.Duration
}

// Deps is what a Processor works with.
type Deps struct {
	Key, Value codec.Decoder
	Handler    handler.Handler
	DLQ        DeadLetterer
	Stalls     Stalls           // nil: not reported
	Logger     *zap.Logger      // nil: no logs
	Now        func() time.Time // nil: time.Now; the clock of record ages

	// Idempotency, if not nil, is the idempotency store's phase
	// (IDEMPOTENCY_STORE); nil handles every record delivered.
	Idempotency *idempotency.Guard

	// Tracer starts the batch's spans (OTEL_TRACES_EXPORTER); nil is
	// tracing off, at the cost of a nil check per phase.
	Tracer *tracing.Tracer
}

// Processor processes batches. It is safe for concurrent use by many
// partitions' workers.
type Processor struct {
	cfg  Config
	d    Deps
	log  *zap.Logger
	pool sync.Pool // of *work
	// bufs holds the decoding buffers of batches that wait for their
	// dead-letter copies, for the next batch: they no longer need them,
	// and a batch that grew its buffer from nothing would copy its
	// decoded records about twice.
	bufs  sync.Pool // of *[]byte
	calls calls     // the handler calls in flight
}

// New returns a Processor.
func New(cfg Config, d Deps) *Processor {
	cfg.MaxAttempts = max(cfg.MaxAttempts, 1)
	if cfg.HandlerName == "" {
		cfg.HandlerName = "handler"
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Processor{cfg: cfg, d: d, log: d.Logger, calls: calls{m: map[*work]Call{}}}
}

// Handle processes recs, records of one partition (or of one lane of it) in
// offset order, except that it does not write the dead-letter copies of the
// records given up on: it returns once every record is handled or given up
// on, or ctx ends (with ctx's error). The Pending it returns (never nil)
// says which records are finished (handled, skipped as duplicates, or
// dead-lettered with an acknowledgement), and writes the copies of the
// others; the caller calls Close once it is done with it.
//
// Records are identified by offset: a handler may reorder or filter the
// batch it is given without changing which records are taken as failed.
//
// A caller may go on with later records while the copies are written: a
// record given up on is not finished, so not committed, until Write
// returned nil.
//
// stall names the caller's work in Stalls (health.PartitionKey, or
// health.LaneKey when its partition has several lanes): while the batch
// waits on an unavailable handler, decoder or idempotency store, it is
// reported stuck under that key, and cleared once it gets through, so a
// lane that recovers clears its own stall and not a sibling's. slot, if
// not nil, is the in-flight slot the batch runs in, given back while it
// waits for records in progress under another batch (Slot).
func (p *Processor) Handle(ctx context.Context, stall string, slot Slot, recs []*kgo.Record, m *metrics.Topic) (*Pending, error) {
	if len(recs) == 0 {
		return &Pending{}, nil
	}
	w := p.get(recs, m)
	w.stallKey, w.slot = stall, slot
	ctx, w.tspan = p.d.Tracer.StartBatch(ctx, recs)
	w.log = traceLogger(p.log, w.tspan.SpanContext())
	err := w.run(ctx)
	b := &Pending{w: w, err: err}
	if err != nil {
		return b, err
	}
	if len(w.fails) == 0 {
		return b, nil
	}
	// The decoded records are no longer needed: what waits for its
	// dead-letter write keeps only the raw records and their failures,
	// whose messages are read now, since an error may point into the
	// decoded records that the next batch reuses.
	for i, f := range w.fails {
		if f.Err != nil {
			w.fails[i].Err = &settledError{msg: f.Err.Error(), err: f.Err}
		}
		b.bytes += int64(len(f.Record.Key) + len(f.Record.Value))
	}
	p.putBuf(w.buf)
	w.buf = nil
	clear(w.records)
	b.letters = true
	return b, nil
}

// settledError is an error whose message was read when its record was
// given up on (errors.Is and errors.As still see the original).
type settledError struct {
	msg string
	err error
}

func (e *settledError) Error() string { return e.msg }
func (e *settledError) Unwrap() error { return e.err }

// Pending is a handled batch whose dead-letter copies may still have to be
// written. It is not safe for concurrent use.
type Pending struct {
	w       *work
	err     error // the last error of Handle or Write
	letters bool  // copies to write
	bytes   int64 // key and value bytes of the records to dead-letter
}

// Done reports whether recs[i] of the batch is finished: handled, skipped as
// a duplicate, or dead-lettered with an acknowledgement.
func (b *Pending) Done(i int) bool {
	if b.w == nil {
		return false
	}
	switch b.w.states[i] {
	case handled, lettered, skipped:
		return true
	}
	return false
}

// Letters returns how many records wait for their dead-letter copy, and the
// size of their keys and values.
func (b *Pending) Letters() (n int, bytes int64) {
	if !b.letters {
		return 0, 0
	}
	return len(b.w.fails), b.bytes
}

// Write writes the dead-letter copies of the records given up on and
// returns nil once the brokers acknowledged every one (then every record of
// the batch is Done), or ctx's error, in which case none of them is. Each
// failed attempt is told to onError: the caller's failure path (its stall,
// its logs), given with the write rather than looked up.
func (b *Pending) Write(ctx context.Context, onError dlq.OnError) error {
	if !b.letters {
		return b.err
	}
	w := b.w
	err := w.deadLetter(ctx, onError)
	if err == nil && w.p.d.Idempotency != nil {
		err = w.complete(ctx, lettered)
	}
	if err != nil {
		if w.p.d.Idempotency != nil {
			w.release(ctx)
		}
		b.err = err
		return err
	}
	b.letters = false
	return nil
}

// Close records the batch's metrics and releases its memory. A batch closed
// with copies unwritten counts as abandoned. It must be called once; Done
// must not be called after it.
func (b *Pending) Close() {
	w := b.w
	if w == nil {
		return
	}
	b.w = nil
	err := b.err
	if err == nil && b.letters {
		err = context.Canceled
	}
	w.observe(err)
	w.tspan.SetFailures(len(w.fails))
	w.tspan.End(err)
	w.p.put(w)
}

// state is where a record of the batch stands.
type state uint8

const (
	pending  state = iota // decoded, not yet handled
	handled               // the handler succeeded
	dead                  // given up on; its dead-letter copy is not yet acknowledged
	lettered              // its dead-letter copy was acknowledged
	skipped               // completed before, by the idempotency store: a duplicate
)

type span struct{ k0, k1, v0, v1 int }

// work is one batch's working memory, pooled between batches: decoded JSON,
// where each record stands, and the failures to dead-letter.
type work struct {
	p        *Processor
	m        *metrics.Topic
	recs     []*kgo.Record
	stallKey string // this batch's work in Stalls: its lane, or its partition
	slot     Slot   // its in-flight slot; nil: none to give back
	start    time.Time

	buf      []byte
	spans    []span
	states   []state
	attempts []int            // handler calls given each record
	unavail  []int            // of those, calls that found the handler unavailable
	records  []handler.Record // the batch handed to the handler
	fails    []dlq.Failure
	unit     []int // indexes of the decoded records, the first unit handled
	idem     idem  // with Deps.Idempotency

	processed    int
	decodeFailed bool
	stalled      bool // the partition is reported stuck on the handler or the idempotency store

	tspan tracing.Span // the batch's span (tracing on)
	// log is the Processor's logger, with trace_id and span_id of the
	// batch's span when it is sampled (traceLogger).
	log *zap.Logger
	// giving is the context of the span that gives up on records now:
	// the decode span, then the last handler attempt's. Dead-letter
	// records carry it (dlq.traceparent).
	giving trace.SpanContext
}

// maxKeptBuf bounds the decoded JSON buffer kept for the next batch: a batch
// of large records leaves its memory to the garbage collector rather than
// holding it for as long as the service runs.
const maxKeptBuf = 1 << 20

func (p *Processor) get(recs []*kgo.Record, m *metrics.Topic) *work {
	w, _ := p.pool.Get().(*work)
	if w == nil {
		w = &work{p: p}
	}
	n := len(recs)
	w.m, w.recs, w.start = m, recs, time.Now()
	if w.buf == nil {
		if b, ok := p.bufs.Get().(*[]byte); ok {
			w.buf = *b
		}
	}
	w.buf = w.buf[:0]
	w.spans = resize(w.spans, n)
	w.states = resize(w.states, n)
	clear(w.states) // all pending
	w.attempts = resize(w.attempts, n)
	clear(w.attempts)
	w.unavail = resize(w.unavail, n)
	clear(w.unavail)
	w.fails, w.unit = w.fails[:0], w.unit[:0]
	w.processed, w.decodeFailed, w.stalled = 0, false, false
	w.tspan, w.giving = tracing.Span{}, trace.SpanContext{}
	if p.d.Idempotency != nil {
		w.idem.reset(n)
	}
	return w
}

// put returns w to the pool without the references to this batch's records,
// so that they can be collected.
func (p *Processor) put(w *work) {
	w.m, w.recs, w.slot = nil, nil, nil
	clear(w.records)
	clear(w.fails)
	w.idem.clearRefs()
	if cap(w.buf) > maxKeptBuf {
		w.buf = nil
	}
	p.pool.Put(w)
}

// putBuf keeps buf for the next batch unless it is larger than maxKeptBuf.
func (p *Processor) putBuf(buf []byte) {
	if cap(buf) > 0 && cap(buf) <= maxKeptBuf {
		buf = buf[:0]
		p.bufs.Put(&buf)
	}
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// run takes the batch through its first phases: claim (with an idempotency
// store), decode and handle (handled records are completed as the handler
// succeeds for them). Pending.Write dead-letters what was given up on and
// completes it.
func (w *work) run(ctx context.Context) (err error) {
	if w.p.d.Idempotency != nil {
		if err := w.claim(ctx); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				w.release(ctx)
			}
		}()
	}
	if err := w.decodeAll(ctx); err != nil {
		return err
	}
	return w.handle(ctx, w.unit)
}

// observe records the batch's metrics, once, however it ended: records
// finished count even when the rest of the batch was abandoned.
func (w *work) observe(err error) {
	nLettered := 0
	for _, st := range w.states {
		if st == lettered {
			nLettered++
		}
	}
	w.m.Processed.Add(float64(w.processed))
	w.m.DeadLettered.Add(float64(nLettered))
	if w.p.d.Idempotency != nil {
		w.m.Duplicates.Add(float64(w.idem.duplicates))
		w.m.Unkeyed.Add(float64(w.idem.unkeyed))
	}
	if err != nil {
		return
	}
	switch {
	case nLettered == 0:
		w.m.BatchOK.Inc()
	case w.processed == 0:
		w.m.BatchF.Inc()
	default:
		w.m.BatchPartial.Inc()
	}
	w.m.BatchRecords.Observe(float64(len(w.recs)))
	w.m.BatchDuration.Observe(time.Since(w.start).Seconds())
}

// giveUp queues record i for the dead-letter topic.
func (w *work) giveUp(i int, kind dlq.Kind, err error) {
	w.states[i] = dead
	w.fails = append(w.fails, dlq.Failure{Record: w.recs[i], Kind: kind, Err: err, Attempts: w.failedAttempts(i), Trace: w.giving})
}

// failedAttempts returns the handler attempts that failed record i (its
// dlq.attempts): those that found the handler unavailable do not count.
func (w *work) failedAttempts(i int) int {
	return w.attempts[i] - w.unavail[i]
}

// --- decode ---

// decodeAll decodes every record, queueing the undecodable ones for the
// dead-letter topic and the others (w.unit) for the handler.
func (w *work) decodeAll(ctx context.Context) (err error) {
	ctx, dsp := w.p.d.Tracer.StartDecode(ctx, len(w.recs))
	w.giving = dsp.SpanContext()
	defer func() {
		dsp.SetFailures(len(w.fails)) // only decode failures so far
		dsp.End(err)
	}()
	for i, r := range w.recs {
		if w.states[i] == skipped {
			continue
		}
		sp, err := w.decode(ctx, r)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			w.giveUp(i, dlq.KindDecode, err)
			w.decodeFailed = true
			w.log.Error("record could not be decoded; dead-lettering it", recordFields(r, zap.Error(err))...)
			continue
		}
		w.spans[i] = sp
		w.unit = append(w.unit, i)
	}
	if w.decodeFailed {
		w.countDecodeFailures()
	}
	return nil
}

// decode appends the JSON of r's key and value to w.buf. A decoder that
// reports unavailable infrastructure is retried until it answers or ctx
// ends; the partition is reported stuck meanwhile.
func (w *work) decode(ctx context.Context, r *kgo.Record) (span, error) {
	p := w.p
	mark := len(w.buf)
	for attempt := 1; ; attempt++ {
		sp, part, err := w.decodeOnce(ctx, r)
		if err == nil {
			if attempt > 1 && p.d.Stalls != nil {
				p.d.Stalls.Unstuck(w.stallKey)
			}
			return sp, nil
		}
		w.buf = w.buf[:mark]
		if !errors.Is(err, codec.ErrUnavailable) {
			return span{}, &decodeError{part: part, err: err}
		}
		w.log.Warn("decoder unavailable; retrying",
			recordFields(r, zap.String("part", part), zap.Int("attempt", attempt), zap.Error(err))...)
		if p.d.Stalls != nil {
			p.d.Stalls.Stuck(w.stallKey, "decoding "+part+": "+err.Error())
		}
		if err := backoff.Sleep(ctx, p.cfg.Backoff.Delay(attempt)); err != nil {
			return span{}, err
		}
	}
}

func (w *work) decodeOnce(ctx context.Context, r *kgo.Record) (span, string, error) {
	var sp span
	var err error
	sp.k0 = len(w.buf)
	if r.Key == nil {
		w.buf = append(w.buf, "null"...)
	} else if w.buf, err = appendJSON(ctx, w.p.d.Key, w.buf, r.Key); err != nil {
		return sp, metrics.PartKey, err
	}
	sp.k1, sp.v0 = len(w.buf), len(w.buf)
	if r.Value == nil {
		w.buf = append(w.buf, "null"...)
	} else if w.buf, err = appendJSON(ctx, w.p.d.Value, w.buf, r.Value); err != nil {
		return sp, metrics.PartValue, err
	}
	sp.v1 = len(w.buf)
	return sp, "", nil
}

// appendJSON calls the decoder, turning a panic into a decode failure.
func appendJSON(ctx context.Context, d codec.Decoder, dst, src []byte) (out []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			out, err = dst, fmt.Errorf("%w: decoder panicked: %v", codec.ErrDecode, v)
		}
	}()
	return d.AppendJSON(ctx, dst, src)
}

// decodeError says which part of a record could not be decoded.
type decodeError struct {
	part string
	err  error
}

func (e *decodeError) Error() string { return e.part + ": " + e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

func (w *work) countDecodeFailures() {
	for _, f := range w.fails {
		var de *decodeError
		if f.Kind != dlq.KindDecode || !errors.As(f.Err, &de) {
			continue
		}
		if de.part == metrics.PartKey {
			w.m.KeyErrors.Inc()
		} else {
			w.m.ValueErrors.Inc()
		}
	}
}

// --- handle ---

// handle hands unit (indexes of pending records, in offset order) to the
// handler until every one of them is handled or queued for the dead-letter
// topic, or ctx ends. It may reorder nothing and filters unit in place.
func (w *work) handle(ctx context.Context, unit []int) error {
	p := w.p
	attempt, unavailable := 0, 0 // failed attempts, and attempts that found the handler unavailable
	for len(unit) > 0 {
		cls, err := w.call(ctx, unit)
		if ctx.Err() != nil {
			// The answer was applied: records the handler finished
			// are not redone. The rest is abandoned.
			return ctx.Err()
		}
		if cls == handler.ClassUnavailable {
			unavailable++
			if unit = w.expire(unit, cls, err); len(unit) == 0 {
				break
			}
			if err := w.waitUnavailable(ctx, unit, unavailable, err); err != nil {
				return err
			}
			continue
		}
		w.available()
		if cls == handler.ClassOK {
			return nil
		}
		attempt++
		unit = w.pendingOf(unit)
		unit = w.expire(unit, cls, err)
		if len(unit) == 0 {
			return nil
		}
		switch {
		case cls == handler.ClassRejected && len(unit) > 1,
			cls == handler.ClassFailed && attempt >= p.cfg.MaxAttempts && len(unit) > 1:
			return w.bisect(ctx, unit, cls, err)
		case cls == handler.ClassRejected, attempt >= p.cfg.MaxAttempts:
			w.log.Warn("handler failed records; dead-lettering them",
				zap.String("topic", w.recs[0].Topic), zap.Int32("partition", w.recs[0].Partition),
				zap.Int64("first_offset", w.recs[unit[0]].Offset), zap.Int("records", len(unit)),
				zap.Int("attempt", attempt), zap.Bool("rejected", cls == handler.ClassRejected), zap.Error(err))
			for _, i := range unit {
				rerr := w.reason(cls, err, i)
				w.giveUp(i, dlq.KindHandler, rerr)
				w.log.Error("record failed every handler attempt; dead-lettering it",
					recordFields(w.recs[i], zap.Int("attempts", w.failedAttempts(i)), zap.Error(rerr))...)
			}
			return nil
		}
		w.log.Warn("handler failed records; retrying",
			zap.String("topic", w.recs[0].Topic), zap.Int32("partition", w.recs[0].Partition),
			zap.Int64("first_offset", w.recs[unit[0]].Offset), zap.Int("records", len(unit)),
			zap.Int("attempt", attempt), zap.Error(err))
		w.m.Retries.Add(float64(len(unit)))
		if err := backoff.Sleep(ctx, p.cfg.Backoff.Delay(attempt)); err != nil {
			return err
		}
	}
	w.available()
	return nil
}

// bisect handles each half of unit on its own, the first half first, so
// that the records that make the batch fail are isolated and the others
// delivered.
func (w *work) bisect(ctx context.Context, unit []int, cls handler.Class, err error) (rerr error) {
	ctx, bsp := w.p.d.Tracer.StartBisect(ctx, len(unit))
	bsp.SetOutcome(cls.String())
	defer func() { bsp.End(rerr) }()
	w.m.Bisections.Inc()
	mid := len(unit) / 2
	w.log.Info("bisecting a batch the handler keeps failing",
		zap.String("topic", w.recs[0].Topic), zap.Int32("partition", w.recs[0].Partition),
		zap.Int64("first_offset", w.recs[unit[0]].Offset), zap.Int("records", len(unit)),
		zap.Bool("rejected", cls == handler.ClassRejected), zap.Error(err))
	// The halves are disjoint ranges of unit; capping the first keeps the
	// in-place filtering of one from touching the other.
	if err := w.handle(ctx, unit[:mid:mid]); err != nil {
		return err
	}
	return w.handle(ctx, unit[mid:])
}

// call hands the records of unit to the handler once, applies the answer
// to their states and returns its class.
func (w *work) call(ctx context.Context, unit []int) (handler.Class, error) {
	w.records = w.records[:0]
	for _, i := range unit {
		sp := w.spans[i]
		w.records = append(w.records, handler.Record{
			Raw:   w.recs[i],
			Key:   w.buf[sp.k0:sp.k1:sp.k1],
			Value: w.buf[sp.v0:sp.v1:sp.v1],
		})
		w.attempts[i]++
	}
	r := w.recs[unit[0]]
	actx, asp := w.p.d.Tracer.StartAttempt(ctx, w.attempts[unit[0]], len(unit))
	w.giving = asp.SpanContext()
	w.p.begin(w, unit)
	err := w.p.callHandler(actx, handler.Batch{Topic: r.Topic, Partition: r.Partition, Records: w.records})
	w.p.end(w)
	clear(w.records) // the handler may have kept the slice: drop the references
	cls, err := w.apply(unit, err)
	if cls == handler.ClassUnavailable {
		for _, i := range unit {
			w.unavail[i]++
		}
	}
	asp.SetOutcome(cls.String())
	asp.End(err)
	if w.p.d.Idempotency != nil {
		// Only ctx's error; handle sees ctx done and returns it.
		_ = w.complete(ctx, handled)
	}
	return cls, err
}

// apply sets the states of unit's records from the handler's answer and
// classifies it. Records are found by offset in unit, never by their place
// in the slice the handler was given.
func (w *work) apply(unit []int, err error) (handler.Class, error) {
	cls, items := handler.Classify(err)
	switch cls {
	case handler.ClassOK:
		for _, i := range unit {
			w.succeed(i)
		}
		return handler.ClassOK, nil
	case handler.ClassItems:
		if !w.knows(unit, items.Offsets) || !w.knows(unit, items.Invalid) {
			return handler.ClassFailed, fmt.Errorf("handler reported failures at offsets not in the batch, so the whole batch failed: %w", err)
		}
		for _, o := range items.Invalid {
			if i := w.find(unit, o); w.states[i] == pending {
				rerr := w.reason(handler.ClassItems, err, i)
				w.giveUp(i, dlq.KindValidation, rerr)
				w.log.Error("record rejected as invalid; dead-lettering it", recordFields(w.recs[i], zap.Error(rerr))...)
			}
		}
		failed := make(map[int]bool, len(items.Offsets))
		for _, o := range items.Offsets {
			failed[w.find(unit, o)] = true
		}
		for _, i := range unit {
			if w.states[i] == pending && !failed[i] {
				w.succeed(i)
			}
		}
		if len(failed) == 0 {
			return handler.ClassOK, nil
		}
		return handler.ClassItems, err
	}
	return cls, err
}

// The errors of records an *handler.ItemFailures names without a reason.
var (
	errItemFailed  = errors.New("the handler reported the record failed")
	errItemInvalid = errors.New("the handler reported the record invalid")
)

// reason returns the error of record i in the handler's answer err, of
// class cls: for item failures, the record's own error (RecordErrs), else
// the handler's reason (Err), never the list of the batch's failed
// offsets nor another record's error; for the other classes, err.
func (w *work) reason(cls handler.Class, err error, i int) error {
	var items *handler.ItemFailures
	if cls != handler.ClassItems || !errors.As(err, &items) {
		return err
	}
	off := w.recs[i].Offset
	switch {
	case items.RecordErrs[off] != nil:
		return items.RecordErrs[off]
	case items.Err != nil:
		return items.Err
	case slices.Contains(items.Invalid, off):
		return errItemInvalid
	}
	return errItemFailed
}

func (w *work) succeed(i int) {
	w.states[i] = handled
	w.processed++
}

// knows reports whether every offset is a record of unit. An answer naming
// other offsets cannot be trusted, so the whole batch is taken as failed,
// as AWS Lambda does.
func (w *work) knows(unit []int, offsets []int64) bool {
	for _, o := range offsets {
		if w.find(unit, o) < 0 {
			return false
		}
	}
	return true
}

// find returns the index in w.recs of the record of unit at offset o, or
// -1. unit is in offset order, so this is a binary search.
func (w *work) find(unit []int, o int64) int {
	j, ok := slices.BinarySearchFunc(unit, o, func(i int, o int64) int {
		switch off := w.recs[i].Offset; {
		case off < o:
			return -1
		case off > o:
			return 1
		}
		return 0
	})
	if !ok {
		return -1
	}
	return unit[j]
}

// pendingOf filters unit, in place, down to its records still pending.
func (w *work) pendingOf(unit []int) []int {
	return slices.DeleteFunc(unit, func(i int) bool { return w.states[i] != pending })
}

// expire queues for the dead-letter topic, as expired, the records of unit
// older than HANDLER_MAX_RECORD_AGE, whose handling has just failed with
// err, of class cls, and returns the others, filtered in place.
func (w *work) expire(unit []int, cls handler.Class, err error) []int {
	age := w.p.cfg.MaxRecordAge
	if age <= 0 {
		return unit
	}
	now := w.p.d.Now()
	return slices.DeleteFunc(unit, func(i int) bool {
		r := w.recs[i]
		if now.Sub(r.Timestamp) <= age {
			return false
		}
		rerr := w.reason(cls, err, i)
		w.giveUp(i, dlq.KindExpired, fmt.Errorf("older than HANDLER_MAX_RECORD_AGE (%s) and its handling failed: %w", age, rerr))
		w.log.Error("record expired while its handling failed; dead-lettering it",
			recordFields(r, zap.Time("timestamp", r.Timestamp), zap.Error(rerr))...)
		return true
	})
}

// waitUnavailable reports the partition stuck on the unavailable handler
// and waits before the next attempt.
func (w *work) waitUnavailable(ctx context.Context, unit []int, n int, err error) error {
	p := w.p
	w.m.Unavailable.Inc()
	if n == 1 || n%10 == 0 {
		w.log.Warn("handler unavailable; retrying without limit, the partition waits",
			zap.String("handler", p.cfg.HandlerName),
			zap.String("topic", w.recs[0].Topic), zap.Int32("partition", w.recs[0].Partition),
			zap.Int64("first_offset", w.recs[unit[0]].Offset), zap.Int("attempt", n), zap.Error(err))
	}
	if p.d.Stalls != nil {
		p.d.Stalls.Stuck(w.stallKey, "handler "+p.cfg.HandlerName+" unavailable: "+err.Error())
		w.stalled = true
	}
	start := time.Now()
	err = backoff.Sleep(ctx, p.cfg.Backoff.Delay(n))
	w.m.UnavailableSecs.Add(time.Since(start).Seconds())
	return err
}

// available clears the stall reported while the handler or the
// idempotency store was unavailable: the batch waits on one at a time.
func (w *work) available() {
	if w.stalled {
		w.stalled = false
		w.p.d.Stalls.Unstuck(w.stallKey)
	}
}

// callHandler calls the handler, turning a panic into a failure of the
// batch: a handler bug that one record triggers must not crash-loop the
// service on that record forever. It is retried and bisected like any
// failure, so that only the record that triggers it is dead-lettered.
func (p *Processor) callHandler(ctx context.Context, b handler.Batch) (err error) {
	defer func() {
		if v := recover(); v != nil {
			traceLogger(p.log, trace.SpanContextFromContext(ctx)).Error("handler panicked; the batch counts as failed",
				zap.String("topic", b.Topic), zap.Int32("partition", b.Partition),
				zap.Any("panic", v), zap.Stack("stack"))
			err = fmt.Errorf("handler panicked: %v", v)
		}
	}()
	return p.d.Handler.Handle(ctx, b)
}

// --- dead-letter ---

// deadLetter writes the queued failures, in offset order, and returns only
// once the brokers acknowledged them.
func (w *work) deadLetter(ctx context.Context, onError dlq.OnError) (err error) {
	if len(w.fails) == 0 {
		return nil
	}
	ctx, lsp := w.p.d.Tracer.StartDeadLetter(w.tspan.ContextWith(ctx), len(w.fails))
	defer func() { lsp.End(err) }()
	slices.SortFunc(w.fails, func(a, b dlq.Failure) int { return int(a.Record.Offset - b.Record.Offset) })
	if err := w.p.d.DLQ.Write(ctx, w.fails, onError); err != nil {
		return err
	}
	// One line per batch: each record's failure was logged with its
	// offset and error when it failed.
	offsets := make([]int64, len(w.fails))
	for i, f := range w.fails {
		offsets[i] = f.Record.Offset
	}
	w.log.Warn("records dead-lettered",
		zap.String("topic", w.recs[0].Topic), zap.Int32("partition", w.recs[0].Partition),
		zap.Int("count", len(w.fails)), zap.Int64s("offsets", offsets))
	for i, st := range w.states {
		if st == dead {
			w.states[i] = lettered
		}
	}
	return nil
}

// traceLogger returns log with the trace_id and span_id of sc when sc is
// sampled (the batch is traced), so that its log lines lead to its trace;
// log itself otherwise, at no cost.
func traceLogger(log *zap.Logger, sc trace.SpanContext) *zap.Logger {
	if !sc.IsSampled() {
		return log
	}
	return log.With(zap.Stringer("trace_id", sc.TraceID()), zap.Stringer("span_id", sc.SpanID()))
}

// recordFields names the record in a log line, as every error log about a
// record does.
func recordFields(r *kgo.Record, more ...zap.Field) []zap.Field {
	return append([]zap.Field{
		zap.String("topic", r.Topic), zap.Int32("partition", r.Partition), zap.Int64("offset", r.Offset),
	}, more...)
}
