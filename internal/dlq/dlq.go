// Package dlq writes records that cannot be handled to a dead-letter topic:
// the original key, value and headers byte for byte, plus headers that say
// where the record came from and why it was given up on.
//
// Write returns only once the brokers acknowledged every record (the client
// must produce with acks=all), and retries without limit: a record is never
// skipped because the dead-letter topic is unavailable. It does not decide
// what fails; the caller does.
package dlq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/msk-consumer/msk-consumer/internal/backoff"
	"github.com/msk-consumer/msk-consumer/internal/tracing"
)

// Kind is why a record was dead-lettered: the dlq.error.kind header.
type Kind string

// The kinds of the contract.
const (
	KindDecode     Kind = "decode"     // the bytes could not be decoded; never retried
	KindHandler    Kind = "handler"    // the handler failed every attempt, or rejected it
	KindValidation Kind = "validation" // decoded but rejected as invalid; never retried
	KindExpired    Kind = "expired"    // older than HANDLER_MAX_RECORD_AGE while its handling failed
	// KindDeliveryLimit is a share group's record on its last allowed
	// delivery after deliveries that ended unacknowledged (members that
	// crashed or lost their locks holding it): dead-lettered before the
	// handler sees it, so the brokers never archive it.
	KindDeliveryLimit Kind = "delivery-limit"
)

// Header names of the dead-letter record.
const (
	HeaderTopic     = "dlq.original.topic"
	HeaderPartition = "dlq.original.partition"
	HeaderOffset    = "dlq.original.offset"
	HeaderTimestamp = "dlq.original.timestamp"
	HeaderGroup     = "dlq.consumer.group"
	HeaderKind      = "dlq.error.kind"
	HeaderMessage   = "dlq.error.message"
	HeaderAttempts  = "dlq.attempts"
	HeaderFailedAt  = "dlq.failed.at"
	// HeaderTraceparent and HeaderTracestate are the W3C trace context of
	// the span that gave up on the record (with tracing on): its decode
	// span, or the handler attempt that failed or rejected it last. They
	// are not named traceparent, so that the original's traceparent, the
	// producer's, stays the only one: a redriven record, stripped of its
	// dlq.* headers, continues the producer's trace.
	HeaderTraceparent = "dlq.traceparent"
	HeaderTracestate  = "dlq.tracestate"
)

// maxMessage bounds dlq.error.message so that a handler's huge error body
// cannot make the dead-letter record too large to write.
const maxMessage = 1024

// Failure is one record to dead-letter.
type Failure struct {
	Record   *kgo.Record
	Kind     Kind
	Err      error
	Attempts int // handler attempts that failed the record (not those that found it unavailable); 0 for decode failures
	// Trace is the context of the span that gave up on the record; the
	// zero value (tracing off) adds no header.
	Trace trace.SpanContext
}

// Build returns the dead-letter copy of f.Record for topic. The copy keeps
// the original key (so it is partitioned like the original), value and
// headers, and appends the dlq.* headers (dlq.traceparent and
// dlq.tracestate only with f.Trace). Its timestamp is left for the
// client to set to now, so that the dead-letter topic's retention counts
// from the failure, not from the original write.
func Build(topic, group string, f Failure, at time.Time) *kgo.Record {
	r := f.Record
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+11)
	headers = append(headers, r.Headers...)
	msg := ""
	if f.Err != nil {
		msg = oneLine(f.Err.Error())
	}
	headers = append(headers,
		kgo.RecordHeader{Key: HeaderTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderPartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
		kgo.RecordHeader{Key: HeaderOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
		kgo.RecordHeader{Key: HeaderTimestamp, Value: strconv.AppendInt(nil, r.Timestamp.UnixMilli(), 10)},
		kgo.RecordHeader{Key: HeaderGroup, Value: []byte(group)},
		kgo.RecordHeader{Key: HeaderKind, Value: []byte(f.Kind)},
		kgo.RecordHeader{Key: HeaderMessage, Value: []byte(msg)},
		kgo.RecordHeader{Key: HeaderAttempts, Value: strconv.AppendInt(nil, int64(f.Attempts), 10)},
		kgo.RecordHeader{Key: HeaderFailedAt, Value: at.UTC().AppendFormat(nil, "2006-01-02T15:04:05.000Z07:00")},
	)
	if f.Trace.IsValid() {
		headers = append(headers, kgo.RecordHeader{Key: HeaderTraceparent, Value: tracing.AppendTraceparent(nil, f.Trace)})
		if ts := f.Trace.TraceState().String(); ts != "" {
			headers = append(headers, kgo.RecordHeader{Key: HeaderTracestate, Value: []byte(ts)})
		}
	}
	return &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: headers}
}

// oneLine folds s onto one line and bounds its length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxMessage {
		cut := maxMessage
		for cut > 0 && s[cut]&0xc0 == 0x80 { // do not split a UTF-8 sequence
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// DefaultMaxMessageBytes is Kafka's default max.message.bytes, assumed for
// a dead-letter topic whose configuration cannot be read.
const DefaultMaxMessageBytes = 1048588

// MaxMessageBytes is the record batch limit to produce to a topic whose
// max.message.bytes reads n (0: not read): n, or DefaultMaxMessageBytes
// when n is below 512, which no real limit is (a record batch header and
// the dlq.* headers alone take a few hundred bytes). The consumer's
// dead-letter producer and redrive's producer both size batches with it.
func MaxMessageBytes(n int64) int32 {
	if n < 512 || n > 1<<31-1 {
		return DefaultMaxMessageBytes
	}
	return int32(n)
}

// HeaderValueOmitted is added, with the original value's size in bytes, to
// a dead-letter copy written without its value because the copy would not
// fit the dead-letter topic's max.message.bytes.
const HeaderValueOmitted = "dlq.value.omitted"

// HeaderHeadersOmitted is added, with the number of the original's headers
// left out, to a dead-letter copy written without them (its dlq.* headers
// kept) because the copy would not fit the dead-letter topic otherwise.
const HeaderHeadersOmitted = "dlq.headers.omitted"

// Producer is the part of *kgo.Client that Writer uses.
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Config is what a Writer writes and how it retries.
type Config struct {
	Group    string                     // the dlq.consumer.group header
	TopicFor func(source string) string // the dead-letter topic of a source topic
	Backoff  backoff.Policy             // between failed writes
	// MaxBytes returns the largest record batch a dead-letter topic takes
	// (its max.message.bytes); nil or 0 means DefaultMaxMessageBytes. The
	// producer must be configured with the same limit.
	MaxBytes func(topic string) int32
}

// OnError is told every failed produce attempt of a write, with the source
// record and the error: the failure path of whoever waits for the write.
type OnError func(source *kgo.Record, err error)

// Deps is what a Writer writes with and reports to.
type Deps struct {
	Producer Producer
	// OnOmitted, if set, is called for every copy acknowledged without
	// part of its source because it would not fit the dead-letter topic:
	// its value (HeaderValueOmitted), the original's headers
	// (HeaderHeadersOmitted), or both.
	OnOmitted func(source *kgo.Record, dest string, limit int32, value, headers bool)
	// RefreshMaxBytes, if set, reads a dead-letter topic's current
	// max.message.bytes again when a copy was refused as too large, so
	// that a copy loses its value only if the topic's limit, as it is now,
	// requires it. It must also update what Config.MaxBytes and the
	// producer's batch limit return. An error leaves the decision to the
	// limit as known.
	RefreshMaxBytes func(ctx context.Context, topic string) (int32, error)
	// OnWritten, if set, is called once Write has every copy of fs
	// acknowledged, with when they were built (the status page's last
	// dead letters, consumer_dead_letters_total).
	OnWritten func(fs []Failure, at time.Time)
	Now       func() time.Time // nil: time.Now
}

// Writer writes failures to the dead-letter topic.
type Writer struct {
	cfg Config
	d   Deps
}

// NewWriter returns a Writer.
func NewWriter(cfg Config, d Deps) *Writer {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Writer{cfg: cfg, d: d}
}

func (w *Writer) limit(topic string) int32 {
	if w.cfg.MaxBytes != nil {
		if n := w.cfg.MaxBytes(topic); n > 0 {
			return n
		}
	}
	return DefaultMaxMessageBytes
}

// Write dead-letters fs and returns nil once the brokers acknowledged every
// one of them. It retries failed records until they are acknowledged or ctx
// is done, in which case it returns ctx's error and the caller must not
// treat any of fs as finished. Every failed attempt is told to onError (nil:
// not told), the caller's own failure path.
//
// A copy that cannot fit the dead-letter topic leaves out what it must, in
// this order (see form): its value (HeaderValueOmitted), else the
// original's headers (HeaderHeadersOmitted), else both, both when its size
// says so before it is sent and when the client or the brokers refuse it
// as too large (MESSAGE_TOO_LARGE, or RECORD_LIST_TOO_LARGE: a batch above
// the topic's segment.bytes, which its size cannot predict): a record that
// can never be written must not hold its partition forever. Something is
// left out only when that is what makes the copy fit. A copy whose key and
// dlq.* headers alone do not fit (a topic whose limit is below the key) is
// an outage like any other: retried, with an error that says so (the
// reason /readyz shows), and the next attempt sends the whole copy again,
// so that the copy written once the topic is fixed is whole.
func (w *Writer) Write(ctx context.Context, fs []Failure, onError OnError) error {
	if len(fs) == 0 {
		return nil
	}
	at := w.d.Now()
	pending := make([]*kgo.Record, len(fs))
	sent := make(map[*kgo.Record]sentCopy, len(fs))     // copy -> its source and form
	whole := make(map[*kgo.Record]*kgo.Record, len(fs)) // source -> copy with everything
	for i, f := range fs {
		r := Build(w.cfg.TopicFor(f.Record.Topic), w.cfg.Group, f, at)
		whole[f.Record] = r
		fm, ok := fit(r, f.Record, w.limit(r.Topic))
		if !ok {
			fm = formWhole // the limit as known may be stale
		}
		r = shrink(r, f.Record, fm)
		pending[i] = r
		sent[r] = sentCopy{src: f.Record, form: fm}
	}
	for attempt := 1; ; attempt++ {
		results := w.produce(ctx, pending, sent)
		failed := pending[:0]
		again := false             // retry at once: a copy changed, the topic is fine
		var fresh map[string]int32 // limits read again in this attempt, 0 if unknown
		for _, res := range results {
			c := sent[res.Record]
			if res.Err == nil {
				w.acknowledged(c, res.Record.Topic)
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			next, alone, err := c.form, c.alone, res.Err
			switch tooLarge := errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge); {
			case tooLarge && !alone && len(pending) > 1:
				// The refusal may be of the record batch the client
				// put the copy in with others: it is sent alone, as
				// it is, before anything is left out of it.
				alone, again = true, true
			case tooLarge:
				var now bool
				if fresh == nil {
					fresh = map[string]int32{}
				}
				next, now, err = w.tooLarge(ctx, c, whole[c.src], err, fresh)
				again = again || now
			}
			if onError != nil {
				onError(c.src, err)
			}
			// The failed records are produced again as new records: a
			// record that failed is not reused by the client.
			r := shrink(whole[c.src], c.src, next)
			r = &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers}
			sent[r] = sentCopy{c.src, next, alone}
			failed = append(failed, r)
		}
		if len(failed) == 0 {
			if w.d.OnWritten != nil {
				w.d.OnWritten(fs, at)
			}
			return nil
		}
		pending = failed
		if again {
			continue
		}
		if err := backoff.Sleep(ctx, w.cfg.Backoff.Delay(attempt)); err != nil {
			return err
		}
	}
}

// sentCopy is what a copy in flight is: the copy of src in form, sent in
// a produce request of its own if alone.
type sentCopy struct {
	src   *kgo.Record
	form  form
	alone bool
}

// produce sends the copies of pending, those to be sent alone one after
// another, each in a request of its own, and returns every result.
func (w *Writer) produce(ctx context.Context, pending []*kgo.Record, sent map[*kgo.Record]sentCopy) kgo.ProduceResults {
	var together, alone []*kgo.Record
	for _, r := range pending {
		if sent[r].alone {
			alone = append(alone, r)
		} else {
			together = append(together, r)
		}
	}
	var results kgo.ProduceResults
	if len(together) > 0 {
		results = w.d.Producer.ProduceSync(ctx, together...)
	}
	for _, r := range alone {
		results = append(results, w.d.Producer.ProduceSync(ctx, r)...)
	}
	return results
}

// acknowledged reports a copy acknowledged without part of its source.
func (w *Writer) acknowledged(c sentCopy, dest string) {
	if c.form != formWhole && w.d.OnOmitted != nil {
		w.d.OnOmitted(c.src, dest, w.limit(dest), c.form.valueOmitted(), c.form.headersOmitted())
	}
}

// tooLarge decides what to send after c was refused as too large with
// err: the form that fits (at once) when leaving out more makes it fit,
// else the whole copy (after the backoff: the topic refuses even the key
// and the dlq.* headers, or was fixed since), with an error that says
// why. With MESSAGE_TOO_LARGE, the topic's limit is read again if
// RefreshMaxBytes allows, once per attempt (fresh holds what this attempt
// read), and decides; otherwise (the limit unknown, or
// RECORD_LIST_TOO_LARGE, which the limit does not explain) the next
// smaller form is sent, and after the smallest, the whole copy again.
func (w *Writer) tooLarge(ctx context.Context, c sentCopy, whole *kgo.Record, err error, fresh map[string]int32) (next form, now bool, _ error) {
	if errors.Is(err, kerr.MessageTooLarge) && w.d.RefreshMaxBytes != nil {
		limit, read := fresh[whole.Topic]
		if !read {
			if l, err := w.d.RefreshMaxBytes(ctx, whole.Topic); err == nil {
				limit = l
			}
			fresh[whole.Topic] = limit
		}
		if limit > 0 {
			fm, ok := fit(whole, c.src, limit)
			if !ok {
				return formWhole, false, &TooLargeError{Topic: whole.Topic, Source: c.src, Limit: limit, Bytes: BatchSize(shrink(whole, c.src, fm)), Err: err}
			}
			// At once, unless this very form was just refused: the
			// brokers and the limit disagree for a moment.
			return fm, fm != c.form, err
		}
	}
	if fm, ok := c.form.smaller(c.src); ok {
		return fm, true, err
	}
	return formWhole, false, &TooLargeError{Topic: whole.Topic, Source: c.src, Limit: w.limit(whole.Topic), Bytes: BatchSize(shrink(whole, c.src, c.form)), Err: err}
}

// TooLargeError is the error of a copy that its dead-letter topic refuses
// even in its smallest form: its key and dlq.* headers alone (Bytes) are
// above the topic's max.message.bytes (Limit, as the writer knows it) or
// its segment.bytes. Raising the topic's limit fixes it; the copy is
// retried until then.
type TooLargeError struct {
	Topic  string      // the dead-letter topic
	Source *kgo.Record // the record whose copy it is
	Limit  int32       // the topic's max.message.bytes, as known
	Bytes  int         // the smallest copy's record batch, as estimated (BatchSize)
	Err    error       // the refusal
}

func (e *TooLargeError) Error() string {
	limit := "max.message.bytes is " + strconv.FormatInt(int64(e.Limit), 10)
	if errors.Is(e.Err, kerr.RecordListTooLarge) {
		limit = "above the topic's segment.bytes"
	}
	return fmt.Sprintf("the copy of %s/%d@%d does not fit dead-letter topic %s even without its value and headers: its key and dlq.* headers take up to %d bytes, %s; raise it: %v",
		e.Source.Topic, e.Source.Partition, e.Source.Offset, e.Topic, e.Bytes, limit, e.Err)
}

func (e *TooLargeError) Unwrap() error { return e.Err }

// form is how much of its source a dead-letter copy holds. A copy is sent
// in the first form, in this order, that fits the dead-letter topic.
type form uint8

const (
	formWhole     form = iota // everything
	formNoValue               // without the value (HeaderValueOmitted)
	formNoHeaders             // with the value, without the original's headers (HeaderHeadersOmitted)
	formBare                  // without both: the key and the dlq.* headers
)

func (f form) valueOmitted() bool   { return f == formNoValue || f == formBare }
func (f form) headersOmitted() bool { return f == formNoHeaders || f == formBare }

// applies reports whether f leaves out something that src has.
func (f form) applies(src *kgo.Record) bool {
	return (!f.valueOmitted() || len(src.Value) > 0) && (!f.headersOmitted() || len(src.Headers) > 0)
}

// smaller returns the next form after f that leaves out something more of
// src, if there is one.
func (f form) smaller(src *kgo.Record) (form, bool) {
	for n := f + 1; n <= formBare; n++ {
		if n.applies(src) {
			return n, true
		}
	}
	return f, false
}

// fit returns the first form of whole, the copy of src, that fits in a
// record batch of limit bytes, and whether one does; if none does, the
// smallest.
func fit(whole, src *kgo.Record, limit int32) (form, bool) {
	f := formWhole
	for {
		if BatchSize(shrink(whole, src, f)) <= int(limit) {
			return f, true
		}
		n, ok := f.smaller(src)
		if !ok {
			return f, false
		}
		f = n
	}
}

// shrink returns whole, the copy of src, in form f.
func shrink(whole, src *kgo.Record, f form) *kgo.Record {
	if f == formWhole {
		return whole
	}
	headers := whole.Headers
	if f.headersOmitted() {
		headers = headers[len(src.Headers):] // the dlq.* headers
	}
	headers = slices.Clip(headers)
	r := &kgo.Record{Topic: whole.Topic, Key: whole.Key, Value: whole.Value}
	if f.valueOmitted() {
		r.Value = nil
		headers = append(headers, kgo.RecordHeader{Key: HeaderValueOmitted, Value: strconv.AppendInt(nil, int64(len(src.Value)), 10)})
	}
	if f.headersOmitted() {
		headers = append(headers, kgo.RecordHeader{Key: HeaderHeadersOmitted, Value: strconv.AppendInt(nil, int64(len(src.Headers)), 10)})
	}
	r.Headers = headers
	return r
}

// BatchSize returns the size of a record batch holding r alone, as Kafka
// counts it against max.message.bytes: the batch header and the record with
// its varint-encoded lengths. (The varints are counted at their largest, so
// that the estimate is never short.)
func BatchSize(r *kgo.Record) int {
	const (
		batchHeader = 61                         // v2 record batch header
		recordFixed = 1 + 5 + 10 + 5 + 5 + 5 + 5 // attributes, length, timestamp and offset deltas, key and value lengths, header count
		headerFixed = 5 + 5                      // key and value lengths
	)
	n := batchHeader + recordFixed + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += headerFixed + len(h.Key) + len(h.Value)
	}
	return n
}
