package codec

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/twmb/avro"
)

// The fuzzers check that no input panics, that a success is valid JSON and
// a failure is an ErrDecode, and what each format promises beyond that. Run
// one with, for example:
//
//	go test -run '^$' -fuzz '^FuzzAvro$' -fuzztime 30s ./internal/codec/
//
// testdata/fuzz/<FuzzName>/ keeps inputs the fuzzers found: for the Avro
// fuzzers, one for each distinct error and a few records that decode. Plain
// go test runs them as seeds.

// checkResult checks what every decoder promises for any input.
func checkResult(t *testing.T, dst, out []byte, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrDecode) {
			t.Fatalf("got error %v, want one wrapping ErrDecode", err)
		}
		if !bytes.Equal(out, dst) {
			t.Fatalf("got dst %q after an error, want %q", out, dst)
		}
		return
	}
	if !bytes.HasPrefix(out, dst) {
		t.Fatalf("got %q, want it to start with %q", out, dst)
	}
	if js := out[len(dst):]; !json.Valid(js) || !utf8.Valid(js) {
		t.Fatalf("got %q, want valid JSON", js)
	}
}

func FuzzJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}]}`, `"x"`, ` 1 `, `{`, `[1,]`, "\"\xff\"", ``, `1 2`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		dst := []byte("dst")
		out, err := jsonDecoder{}.AppendJSON(context.Background(), dst, src)
		checkResult(t, dst, out, err)
		valid := len(src) > 0 && json.Valid(src) && utf8.Valid(src)
		if valid != (err == nil) {
			t.Fatalf("got error %v for %q, want an error only for invalid JSON", err, src)
		}
		if err == nil && !bytes.Equal(out[len(dst):], src) {
			t.Fatalf("got %q, want the input as it is", out[len(dst):])
		}
	})
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"SKU-1", "", "a\"\\\n\x00", "\xff", "日本", "\u2028"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		dst := []byte("dst")
		out, err := stringDecoder{}.AppendJSON(context.Background(), dst, src)
		checkResult(t, dst, out, err)
		if utf8.Valid(src) != (err == nil) {
			t.Fatalf("got error %v for %q, want an error only for invalid UTF-8", err, src)
		}
		if err == nil {
			var s string
			if err := json.Unmarshal(out[len(dst):], &s); err != nil || s != string(src) {
				t.Fatalf("got %q back from %s, want %q", s, out[len(dst):], src)
			}
		}
	})
}

func FuzzBytes(f *testing.F) {
	for _, s := range []string{"", "\x00", "\xff\xfe", "hello"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		dst := []byte("dst")
		out, err := bytesDecoder{}.AppendJSON(context.Background(), dst, src)
		checkResult(t, dst, out, err)
		if err != nil {
			t.Fatalf("got error %v, want none: any bytes are bytes", err)
		}
		var s string
		if err := json.Unmarshal(out[len(dst):], &s); err != nil {
			t.Fatal(err)
		}
		if b, err := base64.StdEncoding.DecodeString(s); err != nil || !bytes.Equal(b, src) {
			t.Fatalf("got %x (%v) back, want %x", b, err, src)
		}
	})
}

func FuzzInt(f *testing.F) {
	for _, s := range []string{"", "\x00\x00\x00\x01", "\xff\xff\xff\xff", "\x80\x00\x00\x00\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		dst := []byte("dst")
		out, err := intDecoder{}.AppendJSON(context.Background(), dst, src)
		checkResult(t, dst, out, err)
		if (len(src) == 4) != (err == nil) {
			t.Fatalf("got error %v for %d bytes, want one only when they are not 4", err, len(src))
		}
		if err == nil {
			var v int32
			if err := json.Unmarshal(out[len(dst):], &v); err != nil || v != int32(binary.BigEndian.Uint32(src)) {
				t.Fatalf("got %s, want %d", out[len(dst):], int32(binary.BigEndian.Uint32(src)))
			}
		}
	})
}

func FuzzLong(f *testing.F) {
	for _, s := range []string{"", "\x00\x00\x00\x00\x00\x00\x00\x01", "\x80\x00\x00\x00\x00\x00\x00\x00", "\x00\x00\x00\x01"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		dst := []byte("dst")
		out, err := longDecoder{}.AppendJSON(context.Background(), dst, src)
		checkResult(t, dst, out, err)
		if (len(src) == 8) != (err == nil) {
			t.Fatalf("got error %v for %d bytes, want one only when they are not 8", err, len(src))
		}
		if err == nil {
			var v int64
			if err := json.Unmarshal(out[len(dst):], &v); err != nil || v != int64(binary.BigEndian.Uint64(src)) {
				t.Fatalf("got %s, want %d", out[len(dst):], int64(binary.BigEndian.Uint64(src)))
			}
		}
	})
}

// fuzzAvro checks the transcoder against the map route on one input: they
// fail together, and when they succeed they give the same JSON value.
func fuzzAvro(t *testing.T, d *avroDecoder, oracle avroMapDecoder, src []byte) {
	dst := []byte("dst")
	out, err := d.AppendJSON(context.Background(), dst, src)
	checkResult(t, dst, out, err)
	want, werr := oracle.AppendJSON(context.Background(), nil, src)
	if (err == nil) != (werr == nil) {
		t.Fatalf("got (%s, %v), map route says (%s, %v)", out, err, want, werr)
	}
	if err != nil {
		return
	}
	got := out[len(dst):]
	// The output is bounded by the input: no length or count makes more
	// than a fixed amount of JSON per input byte, beyond the capped items
	// that take no bytes at all.
	if limit := 16*len(src) + 8*maxZeroByteItemsTotal + 1024; len(got) > limit {
		t.Fatalf("got %d bytes of JSON from %d of Avro, want at most %d", len(got), len(src), limit)
	}
	// Distinct invalid UTF-8 map keys both become "\ufffd", and the map
	// route writes them in Go's map order: compare only without them. The
	// map route renders bytes and fixed as Avro JSON's latin-1 strings,
	// the service as base64: bytesMapped allows exactly that difference.
	if !bytes.Contains(got, []byte("\ufffd")) {
		if p := bytesMapped(normJSON(t, want), normJSON(t, got), ""); p != "" {
			t.Fatalf("differs at %s: got %s, map route says %s", p, got, want)
		}
	}
}

func FuzzAvro(f *testing.F) {
	schema := mustSchemaFile(f, productSchemaFile)
	d, oracle := mustAvroSchema(f, schema), avroMapDecoder{schema}
	for _, name := range []string{"small", "large", "minimal", "edge", "nan"} {
		b := goldenBin(f, name)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add(cat(zz(42), str("s"), str("n"), le64(1), zz(0), zz(1<<60), []byte{1, 2}))
	f.Fuzz(func(t *testing.T, src []byte) {
		fuzzAvro(t, d, oracle, src)
	})
}

func FuzzAvroKitchen(f *testing.F) {
	schema := avro.MustParse(kitchenSchema)
	d, oracle := mustAvroSchema(f, schema), avroMapDecoder{schema}
	g := newKitchenGen(3)
	for range 8 {
		f.Add(g.value())
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		fuzzAvro(t, d, oracle, src)
	})
}
