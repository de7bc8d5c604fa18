package builtin

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/msk-consumer/msk-consumer/handler"
)

// TestHeaderWork checks that the work of rendering a record's headers grows
// linearly with their number, by counting key comparisons rather than
// timing it: comparing each header with every later one took seconds per
// attempt for 80,000 headers, and the request could not be canceled
// meanwhile. It also checks the rendering against a model: every key once,
// with its last value, at the place of its last occurrence.
func TestHeaderWork(t *testing.T) {
	distinct := func(n int) []kgo.RecordHeader {
		hs := make([]kgo.RecordHeader, n)
		for i := range hs {
			hs[i] = kgo.RecordHeader{Key: "k" + strconv.Itoa(i), Value: []byte(strconv.Itoa(i))}
		}
		return hs
	}
	oneKey := func(n int) []kgo.RecordHeader {
		hs := distinct(n)
		for i := range hs {
			hs[i].Key = "same"
		}
		return hs
	}
	tests := []struct {
		name string
		hs   []kgo.RecordHeader
	}{
		{name: "none", hs: nil},
		{name: "one", hs: distinct(1)},
		{name: "few with a repeat", hs: append(distinct(3), kgo.RecordHeader{Key: "k0", Value: []byte("last")})},
		{name: "16 distinct", hs: distinct(smallHeaders)},
		{name: "17 distinct", hs: distinct(smallHeaders + 1)},
		{name: "64 with repeats", hs: manyHeaders(64)},
		{name: "65 with repeats", hs: manyHeaders(65)},
		{name: "2000 distinct", hs: distinct(2000)},
		{name: "2000 of one key", hs: oneKey(2000)},
		{name: "5000 with repeats", hs: manyHeaders(5000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := len(tt.hs)
			// Linear, plus the comparisons of the small case.
			maxOps := n + smallHeaders*smallHeaders/2
			want := wantHeadersJSON(tt.hs)

			var ops, records int
			testHookHeaderWork = func(o int) { ops += o; records++ }
			t.Cleanup(func() { testHookHeaderWork = nil })

			b := handler.Batch{Topic: "t", Records: []handler.Record{{Raw: &kgo.Record{Topic: "t", Headers: tt.hs}}}}
			body := appendBody(nil, &b)
			if got := headersJSON(t, body); got != want {
				t.Errorf("http: got headers %s, want %s", truncate(got, 300), truncate(want, 300))
			}
			if records != 1 || ops > maxOps {
				t.Errorf("http: got %d operations in %d calls, want at most %d in 1", ops, records, maxOps)
			}

			ops, records = 0, 0
			enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{})
			line, err := enc.EncodeEntry(zapcore.Entry{}, []zapcore.Field{zap.Object("headers", logHeaders(tt.hs))})
			if err != nil {
				t.Fatalf("log: %v", err)
			}
			if got := headersJSON(t, line.Bytes()); got != want {
				t.Errorf("log: got headers %s, want %s", truncate(got, 300), truncate(want, 300))
			}
			if records != 1 || ops > maxOps {
				t.Errorf("log: got %d operations in %d calls, want at most %d in 1", ops, records, maxOps)
			}
		})
	}
}

// wantHeadersJSON renders hs as the handlers must, from each key's last
// index rather than the way the code finds it.
func wantHeadersJSON(hs []kgo.RecordHeader) string {
	last := make(map[string]int, len(hs))
	for i, h := range hs {
		last[h.Key] = i
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, h := range hs {
		if last[h.Key] != i {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(h.Key)
		v, _ := json.Marshal(string(h.Value))
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.String()
}

// headersJSON returns the "headers" object of a JSON text, as written.
func headersJSON(t *testing.T, data []byte) string {
	t.Helper()
	_, after, ok := bytes.Cut(data, []byte(`"headers":`))
	if !ok {
		t.Fatalf("no headers in %s", truncate(string(data), 300))
	}
	var obj json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(after)).Decode(&obj); err != nil {
		t.Fatalf("headers: %v", err)
	}
	return string(obj)
}

// manyHeaders returns n headers with distinct keys, the worst case for
// finding repeated keys, except that every tenth repeats an earlier key.
func manyHeaders(n int) []kgo.RecordHeader {
	hs := make([]kgo.RecordHeader, n)
	for i := range hs {
		k := i
		if i%10 == 9 {
			k = i / 2
		}
		hs[i] = kgo.RecordHeader{Key: "x-header-" + strconv.Itoa(k), Value: []byte("v" + strconv.Itoa(i))}
	}
	return hs
}

// BenchmarkHTTPBodyManyHeaders builds the request body of one record with
// 80,000 headers: the case that took seconds when each header was compared
// with every later one.
func BenchmarkHTTPBodyManyHeaders(b *testing.B) {
	batch := benchBatch(1)
	batch.Records[0].Raw.Headers = manyHeaders(80_000)
	buf := appendBody(nil, &batch)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = appendBody(buf[:0], &batch)
	}
}

// BenchmarkLogHeadersMany renders the headers of one record with 80,000
// headers for the log handler.
func BenchmarkLogHeadersMany(b *testing.B) {
	hs := logHeaders(manyHeaders(80_000))
	b.ReportAllocs()
	for b.Loop() {
		enc := zapcore.NewMapObjectEncoder()
		_ = hs.MarshalLogObject(enc)
	}
}

// BenchmarkLogHeaders renders the headers of the 500 records of benchBatch,
// two each: the common case.
func BenchmarkLogHeaders(b *testing.B) {
	batch := benchBatch(500)
	b.ReportAllocs()
	for b.Loop() {
		for i := range batch.Records {
			enc := zapcore.NewMapObjectEncoder()
			_ = logHeaders(batch.Records[i].Raw.Headers).MarshalLogObject(enc)
		}
	}
}
