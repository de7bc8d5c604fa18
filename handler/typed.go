package handler

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/framing"
)

// TypedRecord is a record whose value was decoded into a T by a Typed
// handler. As with Record, Raw and Key must not be kept after fn returns;
// the Values made by JSONValue, AvroValue and ProtoValue hold copies and
// may be kept.
type TypedRecord[T any] struct {
	// Raw is the record as fetched. Handlers must not modify it.
	Raw *kgo.Record
	// Key is the decoded key as JSON; null when the record has no key.
	Key json.RawMessage
	// Value is the decoded value; the zero T for a tombstone.
	Value T
	// Tombstone reports a record with a null value (a deletion on a
	// compacted topic). Value was not decoded.
	Tombstone bool
}

// TypedBatch is the records of one partition, in offset order, decoded
// into T. Records that could not be decoded into T or failed validation are
// not in it: they are dead-lettered.
type TypedBatch[T any] struct {
	Topic     string
	Partition int32
	Records   []TypedRecord[T]
}

// Validator is implemented by a T (or *T) that can say it is invalid. A
// Typed handler calls Validate on each decoded value; an error
// dead-letters the record with dlq.error.kind=validation, never retried.
type Validator interface {
	Validate() error
}

// DecodeFunc decodes the value of a record (never a tombstone) into a T.
// It may read r.Value (the JSON the pipeline decoded) or r.Raw.Value (the
// bytes as fetched: the fast path, see AvroValue and ProtoValue).
type DecodeFunc[T any] func(r *Record) (T, error)

// The errors of records fn reported without a reason.
var (
	errItemFailed  = errors.New("the handler reported the record failed")
	errItemInvalid = errors.New("the handler reported the record invalid")
)

// ErrNotDecodable is wrapped by the error of a record a Typed handler could
// not decode into its type.
var ErrNotDecodable = errors.New("value does not decode into the handler's type")

// Typed returns a Handler that decodes each record's value with decode,
// validates it when T (or *T) is a Validator, and hands the rest to fn.
//
// A record that does not decode into T, or fails validation, is reported
// as Invalid in an *ItemFailures, with its own error in RecordErrs (the
// message of its dead-letter copy): dead-lettered at once with
// dlq.error.kind=validation and never retried. (The bytes did decode in
// the configured format, or the record would never reach a handler; not
// fitting this handler's type is a rejection by the handler, like a
// failed validation, and retrying cannot change it.)
//
// fn's error means what a Handler's error means (see Handler), for the
// records it was given:
//   - nil: they succeeded; the invalid ones are reported in an
//     *ItemFailures;
//   - *ItemFailures: merged with the invalid records (each of fn's
//     records keeps its own error, or fn's Err);
//   - an error wrapping ErrUnavailable (see Unavailable), wrapping
//     ErrPermanent (see Permanent), or any other error: returned as it is,
//     for the whole batch, invalid records included. The batch is then
//     retried without limit (unavailable), bisected at once (rejected), or
//     retried and then bisected (failed); the invalid records are reported
//     once fn succeeds on a batch, or a part of one, that holds them, or
//     when one is handled alone. Turning such an error into an
//     *ItemFailures instead would dead-letter every record fn was given
//     after HANDLER_MAX_ATTEMPTS, though the downstream, or one record,
//     was at fault.
//
// When every record is invalid, fn is not called.
func Typed[T any](decode DecodeFunc[T], fn func(ctx context.Context, b TypedBatch[T]) error) Handler {
	return &typed[T]{decode: decode, fn: fn}
}

type typed[T any] struct {
	decode DecodeFunc[T]
	fn     func(ctx context.Context, b TypedBatch[T]) error
}

func (h *typed[T]) Handle(ctx context.Context, b Batch) error {
	tb := TypedBatch[T]{Topic: b.Topic, Partition: b.Partition, Records: make([]TypedRecord[T], 0, len(b.Records))}
	var (
		invalid  []int64
		errs     map[int64]error // each invalid record's own error
		firstErr error
	)
	for i := range b.Records {
		r := &b.Records[i]
		tr := TypedRecord[T]{Raw: r.Raw, Key: r.Key}
		if isNullJSON(r.Value) {
			tr.Tombstone = true
			tb.Records = append(tb.Records, tr)
			continue
		}
		v, err := h.decode(r)
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrNotDecodable, err)
		} else {
			err = validate(&v)
		}
		if err != nil {
			off := offsetOf(r)
			invalid = append(invalid, off)
			if errs == nil {
				errs = make(map[int64]error)
			}
			errs[off] = err
			if firstErr == nil {
				firstErr = fmt.Errorf("offset %d: %w", off, err)
			}
			continue
		}
		tr.Value = v
		tb.Records = append(tb.Records, tr)
	}
	var err error
	if len(tb.Records) > 0 {
		err = h.fn(ctx, tb)
	}
	if len(invalid) == 0 {
		return err
	}
	why := fmt.Errorf("%d of %d records invalid, first at %w", len(invalid), len(b.Records), firstErr)
	var items *ItemFailures
	switch {
	case err == nil:
		return &ItemFailures{Invalid: invalid, Err: why, RecordErrs: errs}
	case errors.As(err, &items):
		// fn's records keep their own errors, or fn's reason: not the
		// joined one, which names the first invalid record.
		for _, o := range items.Offsets {
			errs[o] = cmp.Or(items.RecordErrs[o], items.Err, errItemFailed)
		}
		for _, o := range items.Invalid {
			errs[o] = cmp.Or(items.RecordErrs[o], items.Err, errItemInvalid)
		}
		return &ItemFailures{
			Offsets:    items.Offsets,
			Invalid:    append(invalid, items.Invalid...),
			Err:        errors.Join(items.Err, why),
			RecordErrs: errs,
		}
	default:
		return err
	}
}

// validate calls Validate on *v or v, whichever is a Validator.
func validate[T any](v *T) error {
	if x, ok := any(v).(Validator); ok {
		return x.Validate()
	}
	if x, ok := any(*v).(Validator); ok {
		return x.Validate()
	}
	return nil
}

func offsetOf(r *Record) int64 {
	if r.Raw == nil {
		return -1
	}
	return r.Raw.Offset
}

func isNullJSON(v json.RawMessage) bool {
	return len(v) == 0 || string(v) == "null"
}

// JSONValue decodes r.Value, the JSON the pipeline made, with
// encoding/json. It works with every format and framing (Avro resolved to
// the reader schema, Protobuf in its canonical JSON, whose 64-bit integers
// are strings: use the ",string" option or json.Number for them), at the
// cost of a JSON round trip.
func JSONValue[T any]() DecodeFunc[T] {
	return func(r *Record) (T, error) {
		var v T
		err := json.Unmarshal(r.Value, &v)
		return v, err
	}
}

// AvroValue decodes the bytes as fetched straight into a T with twmb/avro
// (struct fields by their `avro` tags), after stripping registry's framing: the
// fast path, with no JSON in between. schema must be the schema the
// producer wrote with: with registry framing, the writer schema named in
// each record is not fetched here, so use it only where producers write
// with that one schema, else JSONValue, which the pipeline resolved.
func AvroValue[T any](schema *avro.Schema, registry config.Registry) DecodeFunc[T] {
	return func(r *Record) (T, error) {
		var v T
		if r.Raw == nil {
			return v, errors.New("no raw record")
		}
		fr, err := framing.Unframe(registry, config.FormatAvro, r.Raw.Value, 0)
		if err != nil {
			return v, err
		}
		rest, err := schema.Decode(fr.Payload, &v)
		if err != nil {
			return v, err
		}
		if len(rest) != 0 {
			return v, errors.New(strconv.Itoa(len(rest)) + " bytes left over after the value")
		}
		return v, nil
	}
}

// ProtoValue decodes the bytes as fetched into a new message of type T
// (a generated type, such as *shopv1.Product) with proto.Unmarshal, after
// stripping the framing (and the message indexes): the fast path. Protobuf
// needs no writer schema to read a newer or older message.
func ProtoValue[T proto.Message](registry config.Registry) DecodeFunc[T] {
	return func(r *Record) (T, error) {
		var zero T
		if r.Raw == nil {
			return zero, errors.New("no raw record")
		}
		fr, err := framing.Unframe(registry, config.FormatProtobuf, r.Raw.Value, 0)
		if err != nil {
			return zero, err
		}
		m := zero.ProtoReflect().Type().New().Interface().(T)
		if err := proto.Unmarshal(fr.Payload, m); err != nil {
			return zero, err
		}
		return m, nil
	}
}
