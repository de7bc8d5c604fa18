package codec

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"reflect"
	"strconv"
	"testing"

	"github.com/twmb/avro"

	"github.com/msk-consumer/msk-consumer/config"
)

const productSchemaFile = "testdata/product.avsc"

// avroMapDecoder is the straightforward route: decode into an any with
// twmb/avro, then let its schema-aware JSON encoder write that value. It is
// the oracle the transcoder is held to, and the baseline it is measured
// against.
type avroMapDecoder struct{ schema *avro.Schema }

func (d avroMapDecoder) AppendJSON(_ context.Context, dst, src []byte) ([]byte, error) {
	var v any
	rest, err := d.schema.Decode(src, &v)
	if err != nil {
		return dst, &DecodeError{Format: config.FormatAvro, Err: err}
	}
	if len(rest) != 0 {
		return dst, decodeErr(config.FormatAvro, strconv.Itoa(len(rest))+" bytes left over after the value")
	}
	out, err := d.schema.AppendEncodeJSON(dst, v)
	if err != nil {
		return dst, &DecodeError{Format: config.FormatAvro, Err: err}
	}
	return out, nil
}

func mustSchemaFile(tb testing.TB, path string) *avro.Schema {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := avro.Parse(string(b))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func mustAvro(tb testing.TB, schema string) *avroDecoder {
	tb.Helper()
	d, err := newAvro(avro.MustParse(schema))
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// normJSON parses JSON into a comparable value: numbers become int64 when
// they are integers that fit, else float64, so that exact 64-bit ids are
// compared exactly.
func normJSON(tb testing.TB, b []byte) any {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("not JSON: %v: %q", err, b)
	}
	if dec.More() {
		tb.Fatalf("more than one JSON value: %q", b)
	}
	return normNumbers(v)
}

func normNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = normNumbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = normNumbers(x[k])
		}
	}
	return v
}

// sameJSON reports whether a and b are the same JSON value, regardless of
// spacing, escapes and key order.
func sameJSON(tb testing.TB, a, b []byte) bool {
	tb.Helper()
	return reflect.DeepEqual(normJSON(tb, a), normJSON(tb, b))
}

func configAvro(schemaFile string) config.Codec {
	return config.Codec{Format: config.FormatAvro, SchemaFile: schemaFile}
}
