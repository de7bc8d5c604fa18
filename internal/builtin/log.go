package builtin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/msk-consumer/msk-consumer/handler"
)

// Log writes one structured log line per record, at info level, with the
// message "record" and the fields topic, partition, offset, timestamp, key,
// value and headers. Key and value are embedded as JSON, not as escaped
// strings. It never fails; with the level above info it does nothing.
type Log struct {
	logger *zap.Logger
}

// NewLog returns a Log handler writing to logger; a nil logger discards.
func NewLog(logger *zap.Logger) *Log {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Log{logger: logger}
}

// Handle logs every record of b and returns nil. In a traced attempt
// (ctx's span is sampled) each line carries its trace_id and span_id too.
func (l *Log) Handle(ctx context.Context, b handler.Batch) error {
	log := l.logger
	if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
		log = log.With(zap.Stringer("trace_id", sc.TraceID()), zap.Stringer("span_id", sc.SpanID()))
	}
	for i := range b.Records {
		// Check first, so that a disabled level costs no field building.
		ce := log.Check(zapcore.InfoLevel, "record")
		if ce == nil {
			return nil
		}
		r := &b.Records[i]
		ce.Write(
			zap.String("topic", r.Raw.Topic),
			zap.Int32("partition", r.Raw.Partition),
			zap.Int64("offset", r.Raw.Offset),
			zap.Time("timestamp", r.Raw.Timestamp),
			zap.Any("key", rawOrNull(r.Key)),
			zap.Any("value", rawOrNull(r.Value)),
			zap.Object("headers", logHeaders(r.Raw.Headers)),
		)
	}
	return nil
}

var jsonNull = json.RawMessage("null")

// rawOrNull returns m, or null when m is empty: an empty RawMessage is not
// valid JSON and the encoder would log an error in its place.
func rawOrNull(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return jsonNull
	}
	return m
}

// logHeaders renders headers as an object, with the same rules as the HTTP
// handler's request: UTF-8 values as strings, others in base64, and the
// last value of a repeated key.
type logHeaders []kgo.RecordHeader

func (hs logHeaders) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	shadowed := shadowedHeaders(hs)
	for i, h := range hs {
		if shadowed.has(i) {
			continue
		}
		if utf8.Valid(h.Value) {
			enc.AddString(h.Key, string(h.Value))
		} else {
			enc.AddString(h.Key, base64.StdEncoding.EncodeToString(h.Value))
		}
	}
	return nil
}
