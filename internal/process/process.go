// Package process runs one batch of one partition through the pipeline:
// decode keys and values, hand the decoded records to the handler, retry
// failures with backoff, dead-letter what cannot be handled, and report how
// many records from the start of the batch are finished.
//
// It holds the failure rules of the service in one place: decode and
// validation failures are permanent (dead-lettered at once), handler
// failures are retried up to the attempt limit, and unavailable
// infrastructure (a schema registry, the dead-letter topic) is retried
// without limit and never skipped. It knows nothing of consumer groups,
// polling or commits.
package process

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"msk-consumer/internal/backoff"
	"msk-consumer/internal/codec"
	"msk-consumer/internal/dlq"
	"msk-consumer/internal/handler"
	"msk-consumer/internal/health"
	"msk-consumer/internal/metrics"
)

// DeadLetterer writes failed records and returns once they are acknowledged.
type DeadLetterer interface {
	Write(ctx context.Context, fs []dlq.Failure) error
}

// Stalls is told when a partition cannot make progress because
// infrastructure is unavailable, and when it can again (health.Health).
type Stalls interface {
	Stuck(key, reason string)
	Unstuck(key string)
}

// Config is the retry policy.
type Config struct {
	MaxAttempts int            // handler attempts per record, at least 1
	Backoff     backoff.Policy // between handler attempts and decode retries
}

// Processor processes batches. It is safe for concurrent use by many
// partitions' workers, each with its own Scratch.
type Processor struct {
	cfg     Config
	key     codec.Decoder
	value   codec.Decoder
	handler handler.Handler
	dlq     DeadLetterer
	stalls  Stalls
	log     *zap.Logger
}

// New returns a Processor. A nil logger logs nothing; nil stalls are ignored.
func New(cfg Config, key, value codec.Decoder, h handler.Handler, d DeadLetterer, stalls Stalls, log *zap.Logger) *Processor {
	if log == nil {
		log = zap.NewNop()
	}
	cfg.MaxAttempts = max(cfg.MaxAttempts, 1)
	return &Processor{cfg: cfg, key: key, value: value, handler: h, dlq: d, stalls: stalls, log: log}
}

// state is where a record of the batch stands.
type state uint8

const (
	pending  state = iota // decoded, not yet handled
	handled               // the handler succeeded
	failed                // the handler failed it; retried, then dead-lettered
	invalid               // the handler rejected it as invalid; dead-lettered at once
	lettered              // its dead-letter copy was acknowledged
)

// Scratch is one worker's reusable memory: decoded JSON of a batch, the
// handler's records and the states. Handlers must not keep a batch's
// records after Handle returns, because the memory is reused.
type Scratch struct {
	buf      []byte
	spans    []span
	states   []state
	records  []handler.Record
	idx      []int // indexes of the records in the handler batch
	fails    []dlq.Failure
	key      string // "topic/partition" of keyTopic and keyPart, for stall reports
	keyTopic string
	keyPart  int32
}

// stallKey names r's partition for stall reports, formatted once per worker.
func (s *Scratch) stallKey(r *kgo.Record) string {
	if s.key == "" || s.keyTopic != r.Topic || s.keyPart != r.Partition {
		s.key, s.keyTopic, s.keyPart = health.PartitionKey(r.Topic, r.Partition), r.Topic, r.Partition
	}
	return s.key
}

type span struct{ k0, k1, v0, v1 int }

// Process processes recs, records of one partition in offset order, and
// returns how many of them, from the first, are finished: handled, or
// dead-lettered with an acknowledgement. It returns len(recs) and nil unless
// ctx ends first, in which case it returns ctx's error and the finished
// prefix, which the caller may commit.
func (p *Processor) Process(ctx context.Context, s *Scratch, recs []*kgo.Record, m *metrics.Topic) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	start := time.Now()
	first := recs[0]
	stallKey := s.stallKey(first)
	s.reset(len(recs))

	// Decode. A failure is permanent for its record, unless the decoder
	// says infrastructure is unavailable: then wait and try again.
	decodeFailures := 0
	for i, r := range recs {
		sp, err := p.decode(ctx, s, r, m, stallKey)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			s.states[i] = failed
			s.fails = append(s.fails, dlq.Failure{Record: r, Kind: dlq.KindDecode, Err: err})
			decodeFailures++
			p.log.Error("record could not be decoded; dead-lettering it",
				recordFields(r, zap.Error(err))...)
			continue
		}
		s.spans[i] = sp
	}

	// Handle, retrying failed records up to the attempt limit.
	processed := 0
	for attempt := 1; ; attempt++ {
		s.records, s.idx = s.records[:0], s.idx[:0]
		for i, st := range s.states {
			if st != pending {
				continue
			}
			sp := s.spans[i]
			s.records = append(s.records, handler.Record{
				Raw:   recs[i],
				Key:   s.buf[sp.k0:sp.k1:sp.k1],
				Value: s.buf[sp.v0:sp.v1:sp.v1],
			})
			s.idx = append(s.idx, i)
		}
		if len(s.records) == 0 {
			break
		}
		err := p.handle(ctx, handler.Batch{Topic: first.Topic, Partition: first.Partition, Records: s.records})
		// The answer counts even if the work is being abandoned: records
		// the handler finished must not be redone.
		failedNow, invalidNow, permanent, err := s.classify(err)
		processed += len(s.idx) - failedNow - invalidNow
		for _, i := range s.idx {
			if s.states[i] == invalid {
				s.fails = append(s.fails, dlq.Failure{Record: recs[i], Kind: dlq.KindValidation, Err: err, Attempts: attempt})
				p.log.Error("record rejected as invalid; dead-lettering it",
					recordFields(recs[i], zap.Error(err))...)
			}
		}
		if ctx.Err() != nil {
			m.Processed.Add(float64(processed))
			return s.finished(), ctx.Err()
		}
		if failedNow == 0 {
			break
		}
		last := permanent || attempt >= p.cfg.MaxAttempts
		p.log.Warn("handler failed records",
			zap.String("topic", first.Topic), zap.Int32("partition", first.Partition),
			zap.Int64("first_offset", recs[s.idx[0]].Offset), zap.Int("failed", failedNow),
			zap.Int("attempt", attempt), zap.Bool("permanent", permanent),
			zap.Bool("dead_lettering", last), zap.Error(err))
		if last {
			for _, i := range s.idx {
				if s.states[i] == failed {
					s.fails = append(s.fails, dlq.Failure{Record: recs[i], Kind: dlq.KindHandler, Err: err, Attempts: attempt})
					p.log.Error("record failed every handler attempt; dead-lettering it",
						recordFields(recs[i], zap.Int("attempts", attempt), zap.Error(err))...)
				}
			}
			break
		}
		m.Retries.Add(float64(failedNow))
		for _, i := range s.idx {
			if s.states[i] == failed {
				s.states[i] = pending
			}
		}
		if err := backoff.Sleep(ctx, p.cfg.Backoff.Delay(attempt)); err != nil {
			return s.finished(), err
		}
	}

	// Dead-letter, and return only once the brokers acknowledged.
	if len(s.fails) > 0 {
		if err := p.dlq.Write(ctx, s.fails); err != nil {
			return s.finished(), err
		}
		if p.stalls != nil {
			p.stalls.Unstuck(stallKey)
		}
		// One line per batch: each record's failure was logged with its
		// offset and error when it failed; a line per record here too
		// doubled the write calls on the dead-letter path.
		offsets := make([]int64, len(s.fails))
		for i, f := range s.fails {
			offsets[i] = f.Record.Offset
		}
		p.log.Warn("records dead-lettered",
			zap.String("topic", first.Topic), zap.Int32("partition", first.Partition),
			zap.Int("count", len(s.fails)), zap.Int64s("offsets", offsets))
		for i, st := range s.states {
			if st == failed || st == invalid {
				s.states[i] = lettered
			}
		}
	}

	if decodeFailures > 0 {
		p.countDecodeFailures(s, m)
	}
	m.Processed.Add(float64(processed))
	m.DeadLettered.Add(float64(len(s.fails)))
	switch {
	case len(s.fails) == 0:
		m.BatchOK.Inc()
	case processed == 0:
		m.BatchF.Inc()
	default:
		m.BatchPartial.Inc()
	}
	m.BatchRecords.Observe(float64(len(recs)))
	m.BatchDuration.Observe(time.Since(start).Seconds())
	return len(recs), nil
}

// decode appends the JSON of r's key and value to s.buf. A decoder that
// reports unavailable infrastructure is retried until it answers or ctx
// ends; the partition is reported stuck meanwhile.
func (p *Processor) decode(ctx context.Context, s *Scratch, r *kgo.Record, m *metrics.Topic, stallKey string) (span, error) {
	mark := len(s.buf)
	for attempt := 1; ; attempt++ {
		sp, part, err := p.decodeOnce(ctx, s, r)
		if err == nil {
			if attempt > 1 && p.stalls != nil {
				p.stalls.Unstuck(stallKey)
			}
			return sp, nil
		}
		s.buf = s.buf[:mark]
		if !errors.Is(err, codec.ErrUnavailable) {
			return span{}, &decodeError{part: part, err: err}
		}
		p.log.Warn("decoder unavailable; retrying",
			recordFields(r, zap.String("part", part), zap.Int("attempt", attempt), zap.Error(err))...)
		if p.stalls != nil {
			p.stalls.Stuck(stallKey, "decoding "+part+": "+err.Error())
		}
		if err := backoff.Sleep(ctx, p.cfg.Backoff.Delay(attempt)); err != nil {
			return span{}, err
		}
	}
}

func (p *Processor) decodeOnce(ctx context.Context, s *Scratch, r *kgo.Record) (span, string, error) {
	var sp span
	var err error
	sp.k0 = len(s.buf)
	if r.Key == nil {
		s.buf = append(s.buf, "null"...)
	} else if s.buf, err = appendJSON(ctx, p.key, s.buf, r.Key); err != nil {
		return sp, metrics.PartKey, err
	}
	sp.k1, sp.v0 = len(s.buf), len(s.buf)
	if r.Value == nil {
		s.buf = append(s.buf, "null"...)
	} else if s.buf, err = appendJSON(ctx, p.value, s.buf, r.Value); err != nil {
		return sp, metrics.PartValue, err
	}
	sp.v1 = len(s.buf)
	return sp, "", nil
}

// handle calls the handler, turning a panic into a failure of the batch: a
// handler bug that one record triggers must not crash-loop the service on
// that record forever. It is retried like any failure, then dead-lettered.
func (p *Processor) handle(ctx context.Context, b handler.Batch) (err error) {
	defer func() {
		if v := recover(); v != nil {
			p.log.Error("handler panicked; the batch counts as failed",
				zap.String("topic", b.Topic), zap.Int32("partition", b.Partition),
				zap.Any("panic", v), zap.Stack("stack"))
			err = fmt.Errorf("handler panicked: %v", v)
		}
	}()
	return p.handler.Handle(ctx, b)
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

func (p *Processor) countDecodeFailures(s *Scratch, m *metrics.Topic) {
	for _, f := range s.fails {
		var de *decodeError
		if f.Kind != dlq.KindDecode || !errors.As(f.Err, &de) {
			continue
		}
		if de.part == metrics.PartKey {
			m.KeyErrors.Inc()
		} else {
			m.ValueErrors.Inc()
		}
	}
}

func (s *Scratch) reset(n int) {
	s.buf = s.buf[:0]
	s.spans = resize(s.spans, n)
	s.states = resize(s.states, n)
	clear(s.states) // all pending
	s.fails = s.fails[:0]
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// classify applies the handler's answer to the records of the handler batch
// (s.idx): the ones that failed become failed, the ones rejected as invalid
// become invalid, the others handled. It returns how many failed and how
// many are invalid, whether the failure is permanent, and the error to
// report.
func (s *Scratch) classify(err error) (failedN, invalidN int, permanent bool, _ error) {
	if err == nil {
		for _, i := range s.idx {
			s.states[i] = handled
		}
		return 0, 0, false, nil
	}
	var items *handler.ItemFailures
	if errors.As(err, &items) {
		if s.knows(items.Offsets) && s.knows(items.Invalid) {
			for _, i := range s.idx {
				s.states[i] = handled
			}
			invalidN = s.set(items.Invalid, invalid)
			failedN = s.set(items.Offsets, failed)
			return failedN, invalidN, false, err
		}
		err = fmt.Errorf("handler reported failures at offsets not in the batch, so the whole batch failed: %w", err)
	}
	for _, i := range s.idx {
		s.states[i] = failed
	}
	return len(s.idx), 0, errors.Is(err, handler.ErrPermanent), err
}

// knows reports whether every offset is a record of the handler batch. An
// answer naming other offsets cannot be trusted, so the whole batch is taken
// as failed, as AWS Lambda does.
func (s *Scratch) knows(offsets []int64) bool {
	for _, o := range offsets {
		if s.find(o) < 0 {
			return false
		}
	}
	return true
}

// set puts the records at offsets in state st, unless they are already in
// it or invalid (invalid wins over failed), and returns how many changed.
func (s *Scratch) set(offsets []int64, st state) int {
	n := 0
	for _, o := range offsets {
		i := s.idx[s.find(o)]
		if s.states[i] != st && s.states[i] != invalid {
			s.states[i] = st
			n++
		}
	}
	return n
}

// find returns the position in the handler batch of the record at offset o,
// or -1. The batch is in offset order, so this is a binary search.
func (s *Scratch) find(o int64) int {
	lo, hi := 0, len(s.records)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s.records[mid].Raw.Offset < o {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(s.records) && s.records[lo].Raw.Offset == o {
		return lo
	}
	return -1
}

// finished returns how many records from the first are handled or
// acknowledged in the dead-letter topic.
func (s *Scratch) finished() int {
	for i, st := range s.states {
		if st != handled && st != lettered {
			return i
		}
	}
	return len(s.states)
}

// recordFields names the record in a log line, as every error log about a
// record does.
func recordFields(r *kgo.Record, more ...zap.Field) []zap.Field {
	return append([]zap.Field{
		zap.String("topic", r.Topic), zap.Int32("partition", r.Partition), zap.Int64("offset", r.Offset),
	}, more...)
}
