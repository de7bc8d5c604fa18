package codec

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/avro"
)

// Wire helpers for hand-written Avro.

func zz(v int64) []byte { return binary.AppendUvarint(nil, uint64(v<<1^v>>63)) }

func str(s string) []byte { return append(zz(int64(len(s))), s...) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func le32(f float32) []byte { return binary.LittleEndian.AppendUint32(nil, math.Float32bits(f)) }

func le64(f float64) []byte { return binary.LittleEndian.AppendUint64(nil, math.Float64bits(f)) }

// kitchenSchema has every kind of Avro type, named references in and across
// namespaces, recursion and the logical types, for the differential test
// and the fuzzer.
const kitchenSchema = `{
  "type": "record", "name": "Kitchen", "namespace": "test.k",
  "fields": [
    {"name": "n", "type": "null"},
    {"name": "b", "type": "boolean"},
    {"name": "i", "type": "int"},
    {"name": "l", "type": "long"},
    {"name": "f", "type": "float"},
    {"name": "d", "type": "double"},
    {"name": "s", "type": "string"},
    {"name": "by", "type": "bytes"},
    {"name": "fx", "type": {"type": "fixed", "name": "Four", "size": 4}},
    {"name": "fx2", "type": "Four"},
    {"name": "e", "type": {"type": "enum", "name": "Color", "namespace": "other", "symbols": ["RED", "GREEN", "BLUE"]}},
    {"name": "e2", "type": "other.Color"},
    {"name": "ai", "type": {"type": "array", "items": "int"}},
    {"name": "ml", "type": {"type": "map", "values": "long"}},
    {"name": "u", "type": ["null", "string", "long", "other.Color", {"type": "array", "items": "double"}]},
    {"name": "inner", "type": {"type": "record", "name": "Inner", "fields": [
      {"name": "x", "type": "int"},
      {"name": "tags", "type": {"type": "map", "values": {"type": "array", "items": "string"}}}
    ]}},
    {"name": "opt", "type": ["null", "Inner"]},
    {"name": "list", "type": {"type": "array", "items": "test.k.Inner"}},
    {"name": "nulls", "type": {"type": "array", "items": "null"}},
    {"name": "empties", "type": {"type": "array", "items": {"type": "record", "name": "Empty", "fields": []}}},
    {"name": "next", "type": ["null", "Kitchen"]},
    {"name": "date", "type": {"type": "int", "logicalType": "date"}},
    {"name": "tmillis", "type": {"type": "int", "logicalType": "time-millis"}},
    {"name": "tmicros", "type": {"type": "long", "logicalType": "time-micros"}},
    {"name": "tsmillis", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "tsmicros", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "tsnanos", "type": {"type": "long", "logicalType": "timestamp-nanos"}},
    {"name": "ltsmillis", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
    {"name": "uuid", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "uuidfx", "type": {"type": "fixed", "name": "U16", "size": 16, "logicalType": "uuid"}},
    {"name": "dur", "type": {"type": "fixed", "name": "Dur", "size": 12, "logicalType": "duration"}},
    {"name": "dec", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
    {"name": "decfx", "type": {"type": "fixed", "name": "Dec8", "size": 8, "logicalType": "decimal", "precision": 18, "scale": 3}},
    {"name": "unknown", "type": {"type": "string", "logicalType": "made-up"}}
  ]
}`

func TestAvro(t *testing.T) {
	decs := map[string]*avroDecoder{}
	get := func(schema string) *avroDecoder {
		if d := decs[schema]; d != nil {
			return d
		}
		d := mustAvro(t, schema)
		decs[schema] = d
		return d
	}
	maxVarlong := []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	list := `{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"]}]}`
	deep := bytes.Repeat([]byte{0x02, 0x02}, 1001) // v=1, next=branch 1, ...
	tests := []struct {
		name, schema string
		src          []byte
		want         string // JSON, or the error text with wantErr
		wantErr      bool
		wantEOF      bool // the error wraps io.ErrUnexpectedEOF
	}{
		{name: "null", schema: `"null"`, src: []byte{}, want: `null`},
		{name: "null leaves nothing", schema: `"null"`, src: []byte{0}, want: "1 byte left over after the value", wantErr: true},
		{name: "true", schema: `"boolean"`, src: []byte{1}, want: `true`},
		{name: "false", schema: `"boolean"`, src: []byte{0}, want: `false`},
		{name: "boolean 2 is false, as in Java", schema: `"boolean"`, src: []byte{2}, want: `false`},
		{name: "boolean missing", schema: `"boolean"`, src: []byte{}, want: "boolean needs 1 bytes, 0 left", wantErr: true, wantEOF: true},
		{name: "int -1", schema: `"int"`, src: []byte{1}, want: `-1`},
		{name: "int 64", schema: `"int"`, src: []byte{0x80, 0x01}, want: `64`},
		{name: "int max", schema: `"int"`, src: zz(math.MaxInt32), want: `2147483647`},
		{name: "int min", schema: `"int"`, src: zz(math.MinInt32), want: `-2147483648`},
		{name: "int overflow", schema: `"int"`, src: []byte{0xff, 0xff, 0xff, 0xff, 0x10}, want: "overflows 32 bits", wantErr: true},
		{name: "int truncated", schema: `"int"`, src: []byte{0x80, 0x80}, want: "input ends inside int", wantErr: true, wantEOF: true},
		{name: "long max", schema: `"long"`, src: maxVarlong, want: `9223372036854775807`},
		{name: "long overflow", schema: `"long"`, src: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, want: "overflows 64 bits", wantErr: true},
		{name: "long empty", schema: `"long"`, src: []byte{}, want: "input ends inside long", wantErr: true, wantEOF: true},
		{name: "float", schema: `"float"`, src: le32(0.1), want: `0.1`},
		{name: "float NaN", schema: `"float"`, src: le32(float32(math.NaN())), want: `"NaN"`},
		{name: "double -Inf", schema: `"double"`, src: le64(math.Inf(-1)), want: `"-Infinity"`},
		{name: "double big", schema: `"double"`, src: le64(1e300), want: `1e+300`},
		{name: "double short", schema: `"double"`, src: []byte{0, 0, 0}, want: "double needs 8 bytes, 3 left", wantErr: true, wantEOF: true},
		{name: "string", schema: `"string"`, src: str("héllo \"x\""), want: `"héllo \"x\""`},
		{name: "string invalid utf8 replaced, as the library does", schema: `"string"`, src: str("a\xffb"), want: "\"a\ufffdb\""},
		{name: "string negative length", schema: `"string"`, src: zz(-2), want: "negative string length -2", wantErr: true},
		{name: "string past the end", schema: `"string"`, src: cat(zz(10), []byte("abc")), want: "string needs 10 bytes, 3 left", wantErr: true, wantEOF: true},
		{name: "string huge length", schema: `"string"`, src: cat(zz(math.MaxInt64), []byte("abc")), want: "string needs", wantErr: true, wantEOF: true},
		{name: "bytes", schema: `"bytes"`, src: str("\x00\xffa\"\\\n"), want: `"AP9hIlwK"`},
		{name: "fixed", schema: `{"type":"fixed","name":"F","size":3}`, src: []byte{'a', 0x80, 'c'}, want: `"YYBj"`},
		{name: "fixed short", schema: `{"type":"fixed","name":"F","size":3}`, src: []byte{'a'}, want: "fixed needs 3 bytes, 1 left", wantErr: true, wantEOF: true},
		{name: "enum", schema: `{"type":"enum","name":"E","symbols":["A","B"]}`, src: zz(1), want: `"B"`},
		{name: "enum out of range", schema: `{"type":"enum","name":"E","symbols":["A","B"]}`, src: zz(2), want: "enum index 2 out of range [0, 2)", wantErr: true},
		{name: "enum negative", schema: `{"type":"enum","name":"E","symbols":["A","B"]}`, src: zz(-1), want: "enum index -1 out of range", wantErr: true},
		{name: "union null", schema: `["null","string"]`, src: zz(0), want: `null`},
		{name: "union bare", schema: `["null","string"]`, src: cat(zz(1), str("x")), want: `"x"`},
		{name: "union out of range", schema: `["null","string"]`, src: zz(2), want: "union index 2 out of range [0, 2)", wantErr: true},
		{
			// The writer's branch is kept; the map route re-picks a branch
			// by the decoded value's shape and gives {"x":1}.
			name:   "union of records keeps the written branch",
			schema: `["null",{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]},{"type":"record","name":"B","fields":[{"name":"x","type":"int"},{"name":"y","type":"string"}]}]`,
			src:    cat(zz(2), zz(1), str("abc")), want: `{"x":1,"y":"abc"}`,
		},
		{name: "array in blocks", schema: `{"type":"array","items":"int"}`, src: cat(zz(2), zz(1), zz(2), zz(1), zz(3), zz(0)), want: `[1,2,3]`},
		{name: "array block with byte size", schema: `{"type":"array","items":"int"}`, src: cat(zz(-2), zz(2), zz(1), zz(2), zz(0)), want: `[1,2]`},
		{name: "array empty", schema: `{"type":"array","items":"int"}`, src: zz(0), want: `[]`},
		{name: "array without end", schema: `{"type":"array","items":"int"}`, src: cat(zz(1), zz(1)), want: "input ends inside long", wantErr: true, wantEOF: true},
		{name: "array huge count", schema: `{"type":"array","items":"string"}`, src: cat(zz(1<<62), []byte{0, 0}), want: "cannot fit in the 2 bytes left", wantErr: true},
		{name: "array min count", schema: `{"type":"array","items":"int"}`, src: cat(zz(math.MinInt64), []byte{0}), want: "invalid block count", wantErr: true},
		{name: "array item error has a path", schema: `{"type":"array","items":"string"}`, src: cat(zz(2), str("a"), zz(5)), want: "[1]: string needs 5 bytes, 0 left", wantErr: true, wantEOF: true},
		{name: "array of 4096 nulls", schema: `{"type":"array","items":"null"}`, src: cat(zz(4096), zz(0)), want: "[" + strings.Repeat("null,", 4095) + "null]"},
		{name: "array of 4097 nulls", schema: `{"type":"array","items":"null"}`, src: cat(zz(4000), zz(97), zz(0)), want: "more than 4096 items", wantErr: true},
		{name: "array of a billion nulls", schema: `{"type":"array","items":"null"}`, src: cat(zz(1e9), zz(0)), want: "more than 4096 items", wantErr: true},
		{name: "map", schema: `{"type":"map","values":"long"}`, src: cat(zz(2), str("a"), zz(1), str("b\""), zz(-2), zz(0)), want: `{"a":1,"b\"":-2}`},
		{name: "map keeps duplicate keys", schema: `{"type":"map","values":"long"}`, src: cat(zz(2), str("a"), zz(1), str("a"), zz(2), zz(0)), want: `{"a":1,"a":2}`},
		{name: "map huge count", schema: `{"type":"map","values":"long"}`, src: cat(zz(1<<40), str("a"), zz(1)), want: "map block of 1099511627776 entries cannot fit", wantErr: true},
		{name: "map value error has a path", schema: `{"type":"map","values":"int"}`, src: cat(zz(1), str("k"), []byte{0x80}), want: `["k"]: input ends inside int`, wantErr: true, wantEOF: true},
		{name: "recursive", schema: list, src: cat(zz(1), zz(1), zz(2), zz(0)), want: `{"v":1,"next":{"v":2,"next":null}}`},
		{name: "recursion too deep", schema: list, src: deep, want: "nesting deeper than 1000", wantErr: true},
		{name: "record field error has a path", schema: list, src: cat(zz(1), zz(1), zz(2), zz(7)), want: "next.next: union index 7 out of range [0, 2)", wantErr: true},
		{name: "record leftover", schema: list, src: cat(zz(1), zz(0), []byte{1, 2, 3}), want: "avro: 3 bytes left over after the value", wantErr: true},
		{name: "timestamp-millis is a number", schema: `{"type":"long","logicalType":"timestamp-millis"}`, src: zz(1795347000123), want: `1795347000123`},
		{name: "date is a number", schema: `{"type":"int","logicalType":"date"}`, src: zz(-1), want: `-1`},
		{name: "time-micros", schema: `{"type":"long","logicalType":"time-micros"}`, src: zz(86399999999), want: `86399999999`},
		{name: "time-micros overflow, as the library", schema: `{"type":"long","logicalType":"time-micros"}`, src: zz(math.MaxInt64 / 100), want: "overflows a duration", wantErr: true},
		{name: "uuid string", schema: `{"type":"string","logicalType":"uuid"}`, src: str("not-a-uuid"), want: `"not-a-uuid"`},
		{name: "decimal through the library", schema: `{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}`, src: str("\x30\x39"), want: `"09"`},
		{name: "decimal short", schema: `{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}`, src: zz(3), want: "short buffer", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := get(tt.schema)
			got, err := d.AppendJSON(context.Background(), []byte("dst"), tt.src)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %s, want an error containing %q", got, tt.want)
				}
				if !errors.Is(err, ErrDecode) {
					t.Errorf("got error %v, want one wrapping ErrDecode", err)
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("got error %q, want it to contain %q", err, tt.want)
				}
				if got := errors.Is(err, io.ErrUnexpectedEOF); got != tt.wantEOF {
					t.Errorf("got errors.Is(err, io.ErrUnexpectedEOF) %v, want %v (%v)", got, tt.wantEOF, err)
				}
				if string(got) != "dst" {
					t.Errorf("got dst %q after an error, want %q", got, "dst")
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want %s", err, tt.want)
			}
			if want := "dst" + tt.want; string(got) != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
}

// TestAvroGarbage holds the decoder to the contract: bytes that do not
// decode completely and exactly are an error, never a record of empty or
// zero fields. (Some Avro libraries return a map of nils for garbage.)
func TestAvroGarbage(t *testing.T) {
	schema := mustSchemaFile(t, productSchemaFile)
	decoders := map[string]Decoder{"transcoder": mustAvroSchema(t, schema), "map route": avroMapDecoder{schema}}
	small := goldenBin(t, "small")
	tests := []struct {
		name string
		src  []byte
	}{
		{"empty", []byte{}},
		{"one zero byte", []byte{0}},
		{"all 0xff", bytes.Repeat([]byte{0xff}, 64)},
		{"all zeros", make([]byte, 64)},
		{"ascii text", []byte("this is not avro at all, it is a sentence")},
		{"json", []byte(`{"id":42,"sku":"SKU-000042"}`)},
		{"huge tags count", cat(zz(42), str("s"), str("n"), le64(1), zz(0), zz(1<<60), []byte{1, 2})},
		{"huge attributes count", cat(zz(42), str("s"), str("n"), le64(1), zz(0), zz(0), zz(-(1 << 60)), zz(3), []byte{1, 2})},
		{"huge sku length", cat(zz(42), zz(1<<50), []byte("abc"))},
		{"currency out of range", cat(zz(42), str("s"), str("n"), le64(1), zz(4), zz(0), zz(0), zz(0), zz(0))},
		{"description branch out of range", cat(zz(42), str("s"), str("n"), le64(1), zz(0), zz(0), zz(0), zz(2), zz(0))},
		{"one byte extra", append(bytes.Clone(small), 0)},
		{"record twice", cat(small, small)},
	}
	for i := range len(small) {
		tests = append(tests, struct {
			name string
			src  []byte
		}{"small cut to " + strconv.Itoa(i) + " bytes", small[:i]})
	}
	for dname, d := range decoders {
		for _, tt := range tests {
			t.Run(dname+"/"+tt.name, func(t *testing.T) {
				got, err := d.AppendJSON(context.Background(), nil, tt.src)
				if err == nil {
					t.Fatalf("got %s, want an error", got)
				}
				if !errors.Is(err, ErrDecode) {
					t.Errorf("got error %v, want one wrapping ErrDecode", err)
				}
			})
		}
	}

	// Random bytes: whatever decodes must be a real record (the map route
	// agrees on it), and everything else must fail.
	rnd := rand.New(rand.NewPCG(1, 2))
	dec := decoders["transcoder"]
	ok := 0
	for range 20000 {
		src := make([]byte, rnd.IntN(80))
		for i := range src {
			src[i] = byte(rnd.Uint32())
		}
		got, err := dec.AppendJSON(context.Background(), nil, src)
		want, werr := decoders["map route"].AppendJSON(context.Background(), nil, src)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%x: got (%s, %v), map route says (%s, %v)", src, got, err, want, werr)
		}
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("%x: got error %v, want one wrapping ErrDecode", src, err)
			}
			continue
		}
		ok++
		if !sameJSON(t, got, want) {
			t.Fatalf("%x: got %s, map route says %s", src, got, want)
		}
	}
	t.Logf("%d of 20000 random inputs were valid records", ok)
}

func mustAvroSchema(tb testing.TB, s *avro.Schema) *avroDecoder {
	tb.Helper()
	d, err := newAvro(s)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// TestAvroLengthPrefixes checks that a length or count claiming far more
// than the input holds fails at once, without allocating for it.
func TestAvroLengthPrefixes(t *testing.T) {
	d := mustAvro(t, kitchenSchema)
	oracle := avroMapDecoder{avro.MustParse(kitchenSchema)}
	prefix := cat([]byte{1}, zz(1), zz(1), le32(1), le64(1)) // b, i, l, f, d
	tests := []struct {
		name string
		src  []byte
	}{
		{"string", cat(prefix, zz(1<<62), []byte("x"))},
		{"bytes", cat(prefix, str(""), zz(math.MaxInt64), []byte("x"))},
		{"array", cat(prefix, str(""), str(""), []byte("abcdabcd"), zz(0), zz(0), zz(1<<61), zz(1))},
		{"negative array", cat(prefix, str(""), str(""), []byte("abcdabcd"), zz(0), zz(0), zz(-(1 << 61)), zz(1<<61), zz(1))},
		{"map", cat(prefix, str(""), str(""), []byte("abcdabcd"), zz(0), zz(0), zz(0), zz(1<<61), str("k"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, dec := range map[string]Decoder{"transcoder": d, "map route": oracle} {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				start := time.Now()
				got, err := dec.AppendJSON(context.Background(), nil, tt.src)
				elapsed := time.Since(start)
				runtime.ReadMemStats(&after)
				if err == nil {
					t.Fatalf("%s: got %s, want an error", name, got)
				}
				if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
					t.Errorf("%s: got %d bytes allocated, want under 1 MiB", name, alloc)
				}
				if elapsed > 100*time.Millisecond {
					t.Errorf("%s: got %v, want a quick failure", name, elapsed)
				}
			}
		})
	}
}

// TestAvroConcurrent decodes from many goroutines at once (run it with
// -race).
func TestAvroConcurrent(t *testing.T) {
	d, err := New(configAvro(productSchemaFile))
	if err != nil {
		t.Fatal(err)
	}
	kd := mustAvro(t, kitchenSchema)
	small, large := goldenBin(t, "small"), goldenBin(t, "large")
	want, _ := d.AppendJSON(context.Background(), nil, small)
	kitchen := newKitchenGen(7).value()
	kwant, err := kd.AppendJSON(context.Background(), nil, kitchen)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var buf []byte
			for range 200 {
				var err error
				if buf, err = d.AppendJSON(context.Background(), buf[:0], small); err != nil || !bytes.Equal(buf, want) {
					t.Errorf("got (%s, %v), want %s", buf, err, want)
					return
				}
				if _, err = d.AppendJSON(context.Background(), buf[:0], large); err != nil {
					t.Error(err)
					return
				}
				if buf, err = kd.AppendJSON(context.Background(), buf[:0], kitchen); err != nil || !bytes.Equal(buf, kwant) {
					t.Errorf("got (%s, %v), want %s", buf, err, kwant)
					return
				}
			}
		})
	}
	wg.Wait()
}
