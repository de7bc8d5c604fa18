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
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"msk-consumer/internal/backoff"
)

// Kind is why a record was dead-lettered: the dlq.error.kind header.
type Kind string

// The kinds of the contract.
const (
	KindDecode     Kind = "decode"     // the bytes could not be decoded; never retried
	KindHandler    Kind = "handler"    // the handler failed every attempt, or rejected it
	KindValidation Kind = "validation" // decoded but rejected as invalid; never retried
	KindExpired    Kind = "expired"    // older than HANDLER_MAX_RECORD_AGE while its handling failed
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
)

// maxMessage bounds dlq.error.message so that a handler's huge error body
// cannot make the dead-letter record too large to write.
const maxMessage = 1024

// Failure is one record to dead-letter.
type Failure struct {
	Record   *kgo.Record
	Kind     Kind
	Err      error
	Attempts int // handler attempts made; 0 for decode failures
}

// Build returns the dead-letter copy of f.Record for topic. The copy keeps
// the original key (so it is partitioned like the original), value and
// headers, and appends the dlq.* headers. Its timestamp is left for the
// client to set to now, so that the dead-letter topic's retention counts
// from the failure, not from the original write.
func Build(topic, group string, f Failure, at time.Time) *kgo.Record {
	r := f.Record
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+9)
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

// Producer is the part of *kgo.Client that Writer uses.
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Writer writes failures to the dead-letter topic.
type Writer struct {
	producer Producer
	group    string
	topicFor func(source string) string
	backoff  backoff.Policy
	now      func() time.Time
	// OnError, if set, is called for every failed produce attempt, with
	// the source record and the error.
	OnError func(source *kgo.Record, err error)
}

// NewWriter returns a Writer producing through p for group. topicFor maps a
// source topic to its dead-letter topic. Failed writes are retried after
// backoff, doubling up to backoffMax.
func NewWriter(p Producer, group string, topicFor func(string) string, first, maxDelay time.Duration) *Writer {
	return &Writer{
		producer: p,
		group:    group,
		topicFor: topicFor,
		backoff:  backoff.Policy{First: first, Max: maxDelay},
		now:      time.Now,
	}
}

// Write dead-letters fs and returns nil once the brokers acknowledged every
// one of them. It retries failed records until they are acknowledged or ctx
// is done, in which case it returns ctx's error and the caller must not
// treat any of fs as finished.
func (w *Writer) Write(ctx context.Context, fs []Failure) error {
	if len(fs) == 0 {
		return nil
	}
	at := w.now()
	pending := make([]*kgo.Record, len(fs))
	sources := make(map[*kgo.Record]*kgo.Record, len(fs))
	for i, f := range fs {
		pending[i] = Build(w.topicFor(f.Record.Topic), w.group, f, at)
		sources[pending[i]] = f.Record
	}
	for attempt := 1; ; attempt++ {
		results := w.producer.ProduceSync(ctx, pending...)
		failed := pending[:0]
		for _, res := range results {
			if res.Err == nil {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed = append(failed, res.Record)
			if w.OnError != nil {
				w.OnError(sources[res.Record], res.Err)
			}
		}
		if len(failed) == 0 {
			return nil
		}
		// The failed records are produced again as they are: a record
		// that failed is not reused by the client.
		for i, r := range failed {
			failed[i] = &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers}
			sources[failed[i]] = sources[r]
		}
		pending = failed
		if err := backoff.Sleep(ctx, w.backoff.Delay(attempt)); err != nil {
			return err
		}
	}
}
