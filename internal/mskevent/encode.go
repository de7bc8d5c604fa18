// Package mskevent builds the event that AWS Lambda's Kafka event source
// mapping sends a function, from a handler.Batch, and reads the function's
// answer. The lambda handler invokes a function with it and the http
// handler posts it with HTTP_HANDLER_BODY=msk, so a function written for
// the MSK or self-managed Kafka event source mapping (with or without
// Powertools for AWS Lambda) runs unchanged.
//
// The shape is that of:
//   - aws-lambda-go's events.KafkaEvent (events/kafka.go, and its
//     events/testdata/kafka-event.json): eventSource, eventSourceArn,
//     bootstrapServers, records keyed "topic-partition"; per record topic,
//     partition, offset, timestamp (Unix milliseconds), timestampType, key
//     and value in base64 (both `omitempty` there: absent when null), and
//     headers as a list of one-entry objects whose value is the header's
//     bytes as an array of numbers, signed as Java's byte (the type of
//     aws-lambda-java-events' KafkaEvent, which aws-lambda-go decodes as
//     []int8 since its pull request 506, and aws-lambda-dotnet as sbyte[]
//     since its pull request 1476);
//   - Powertools for AWS Lambda (Python)'s test events
//     tests/events/kafkaEventMsk.json and kafkaEventSelfManaged.json and
//     its kafka_consumer utility, which read the same fields.
//
// With the mapping's EventRecordFormat JSON (EVENT_RECORD_FORMAT=json), the
// key and value are the decoded data as JSON, base64, and a key or value
// that a schema registry framed carries keySchemaMetadata or
// valueSchemaMetadata {dataFormat, schemaId}.
package mskevent

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/framing"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/jsonx"
)

// MaxRequestBytes is the largest event sent: Lambda wants a synchronous
// invocation's request payload "smaller than 6291456 bytes" (6 MB), so one
// byte less than that.
const MaxRequestBytes = 6<<20 - 1

// The values of eventSource.
const (
	SourceMSK         = "aws:kafka"
	SourceSelfManaged = "SelfManagedKafka"
)

// RecordFormat is EVENT_RECORD_FORMAT.
type RecordFormat string

// The record formats.
const (
	// FormatSource sends each key and value as its original bytes, base64,
	// as the event source mapping does without schema registry
	// integration.
	FormatSource RecordFormat = "source"
	// FormatJSON sends the decoded key and value as JSON, base64, with
	// schema metadata where a registry framed them, as the mapping's
	// EventRecordFormat JSON does.
	FormatJSON RecordFormat = "json"
)

// Options describe the event source.
type Options struct {
	// ClusterARN is the MSK cluster's ARN (KAFKA_CLUSTER_ARN): the event's
	// eventSourceArn with eventSource aws:kafka. Empty, the event says
	// SelfManagedKafka and has no eventSourceArn.
	ClusterARN string
	// BootstrapServers are KAFKA_BROKERS, joined with commas.
	BootstrapServers []string
	// Format is FormatSource (the default when empty) or FormatJSON.
	Format RecordFormat
	// KeyRegistry, ValueRegistry, KeyFormat and ValueFormat are the
	// decoding configuration: with FormatJSON, a key or value framed by a
	// registry gets its schema metadata.
	KeyRegistry, ValueRegistry config.Registry
	KeyFormat, ValueFormat     config.Format
}

// Encoder appends events. It is safe for concurrent use.
type Encoder struct {
	opt    Options
	prefix []byte // {"eventSource":..,"eventSourceArn":..,"bootstrapServers":..,"records":{
}

// New returns an Encoder for the event source o.
func New(o Options) *Encoder {
	if o.Format == "" {
		o.Format = FormatSource
	}
	p := []byte(`{"eventSource":`)
	if o.ClusterARN != "" {
		p = jsonx.AppendString(p, SourceMSK)
		p = append(p, `,"eventSourceArn":`...)
		p = jsonx.AppendString(p, o.ClusterARN)
	} else {
		p = jsonx.AppendString(p, SourceSelfManaged)
	}
	p = append(p, `,"bootstrapServers":`...)
	p = jsonx.AppendString(p, strings.Join(o.BootstrapServers, ","))
	p = append(p, `,"records":{`...)
	return &Encoder{opt: o, prefix: p}
}

// Format returns the record format events are encoded in.
func (e *Encoder) Format() RecordFormat { return e.opt.Format }

// closing ends the records array, the records object and the event.
const closing = "]}}"

// Append appends to dst the event of the first records of recs, which are
// records of the batch's topic and partition in offset order, as many as
// fit in limit bytes (limit <= 0: all of them), and returns it with how
// many it took. The size is measured as it goes, on the encoded event,
// base64 included. When n is 0 and recs is not empty, the first record
// alone makes an event larger than limit: dst is returned unchanged (see
// Size).
func (e *Encoder) Append(dst []byte, topic string, partition int32, recs []handler.Record, limit int) (out []byte, n int) {
	start := len(dst)
	dst = append(dst, e.prefix...)
	dst = jsonx.AppendString(dst, topic+"-"+strconv.FormatInt(int64(partition), 10))
	dst = append(dst, `:[`...)
	for i := range recs {
		mark := len(dst)
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = e.appendRecord(dst, &recs[i])
		if limit > 0 && len(dst)-start+len(closing) > limit {
			if i == 0 {
				return dst[:start], 0
			}
			return append(dst[:mark], closing...), i
		}
	}
	return append(dst, closing...), len(recs)
}

// AppendProbe appends the event without records, its records an empty
// object: the probe `consumer check` posts to an HTTP handler with
// HTTP_HANDLER_BODY=msk, as it posts a batch without records otherwise.
// The service never sends one while consuming.
func (e *Encoder) AppendProbe(dst []byte) []byte {
	dst = append(dst, e.prefix...)
	return append(dst, "}}"...)
}

// Size returns the size in bytes of the event of the one record r.
func (e *Encoder) Size(topic string, partition int32, r *handler.Record) int {
	buf, _ := e.Append(nil, topic, partition, []handler.Record{*r}, 0)
	return len(buf)
}

// appendRecord appends one record of the event.
func (e *Encoder) appendRecord(dst []byte, r *handler.Record) []byte {
	raw := r.Raw
	dst = append(dst, `{"topic":`...)
	dst = jsonx.AppendString(dst, raw.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(raw.Partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, raw.Offset, 10)
	dst = append(dst, `,"timestamp":`...)
	switch raw.Attrs.TimestampType() {
	case -1:
		// Only the pre-0.10 message format has no timestamp; Kafka's
		// Java client, which the mapping uses, says -1.
		dst = append(dst, `-1,"timestampType":"NO_TIMESTAMP_TYPE"`...)
	case 1:
		dst = strconv.AppendInt(dst, raw.Timestamp.UnixMilli(), 10)
		dst = append(dst, `,"timestampType":"LOG_APPEND_TIME"`...)
	default:
		dst = strconv.AppendInt(dst, raw.Timestamp.UnixMilli(), 10)
		dst = append(dst, `,"timestampType":"CREATE_TIME"`...)
	}
	asJSON := e.opt.Format == FormatJSON
	// A null key is absent, as in the mapping's events and aws-lambda-go's
	// `omitempty`. A tombstone's value is null: Powertools' records
	// index "value" (a KeyError when it is absent) and leave it None
	// (original_value), and aws-lambda-go reads null as "".
	if key := e.field(raw.Key, r.Key, asJSON); key != nil {
		dst = append(dst, `,"key":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, key)
		dst = append(dst, '"')
	}
	if value := e.field(raw.Value, r.Value, asJSON); value != nil {
		dst = append(dst, `,"value":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, value)
		dst = append(dst, '"')
	} else {
		dst = append(dst, `,"value":null`...)
	}
	dst = append(dst, `,"headers":[`...)
	for i, h := range raw.Headers {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		dst = jsonx.AppendString(dst, h.Key)
		dst = append(dst, `:[`...)
		for j, c := range h.Value {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, int64(int8(c)), 10)
		}
		dst = append(dst, "]}"...)
	}
	dst = append(dst, ']')
	if asJSON {
		dst = e.appendSchemaMetadata(dst, `,"keySchemaMetadata":`, e.opt.KeyRegistry, e.opt.KeyFormat, raw.Key)
		dst = e.appendSchemaMetadata(dst, `,"valueSchemaMetadata":`, e.opt.ValueRegistry, e.opt.ValueFormat, raw.Value)
	}
	return append(dst, '}')
}

// field returns the bytes of a key or value to send in base64, nil for
// none: the original bytes, or with FormatJSON the decoded JSON.
func (e *Encoder) field(raw []byte, decoded json.RawMessage, asJSON bool) []byte {
	if raw == nil {
		return nil
	}
	if !asJSON {
		return raw
	}
	if len(decoded) == 0 || string(decoded) == "null" {
		return nil
	}
	return decoded
}

// appendSchemaMetadata appends name and {"dataFormat":..,"schemaId":..}
// for a key or value that registry r framed; nothing for none.
func (e *Encoder) appendSchemaMetadata(dst []byte, name string, r config.Registry, f config.Format, raw []byte) []byte {
	if r == "" || r == config.RegistryNone || raw == nil {
		return dst
	}
	// The records were decoded before, so the framing is valid; a key or
	// value that is not framed anyway goes without metadata.
	fr, err := framing.Unframe(r, f, raw, 0)
	if err != nil {
		return dst
	}
	dst = append(dst, name...)
	dst = append(dst, `{"dataFormat":`...)
	// The data in the event is JSON whatever the schema's format:
	// Powertools' JSON deserializer refuses any other dataFormat.
	dst = jsonx.AppendString(dst, "JSON")
	dst = append(dst, `,"schemaId":`...)
	dst = jsonx.AppendString(dst, fr.SchemaRef())
	return append(dst, '}')
}
