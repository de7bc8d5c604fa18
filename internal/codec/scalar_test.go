package codec

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/msk-consumer/msk-consumer/config"
)

// decodeCase is one row of a format's table: src decodes to want, or fails
// with an error wrapping ErrDecode whose text contains wantErr.
type decodeCase struct {
	name    string
	src     []byte
	want    string
	wantErr string
}

func runDecodeCases(t *testing.T, d Decoder, cases []decodeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("prefix")
			got, err := d.AppendJSON(context.Background(), dst, tc.src)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("got %s, want an error containing %q", got, tc.wantErr)
				}
				if !errors.Is(err, ErrDecode) {
					t.Errorf("got error %v, want one wrapping ErrDecode", err)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("got error %q, want it to contain %q", err, tc.wantErr)
				}
				if string(got) != "prefix" {
					t.Errorf("got dst %q after an error, want %q", got, "prefix")
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want %s", err, tc.want)
			}
			if want := "prefix" + tc.want; string(got) != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	runDecodeCases(t, jsonDecoder{}, []decodeCase{
		{name: "object", src: []byte(`{"id":42,"tags":["a"]}`), want: `{"id":42,"tags":["a"]}`},
		{name: "kept as is", src: []byte(" {\"b\": 1, \"a\" : [ ]}\n"), want: " {\"b\": 1, \"a\" : [ ]}\n"},
		{name: "string", src: []byte(`"x"`), want: `"x"`},
		{name: "number", src: []byte(`-1.5e3`), want: `-1.5e3`},
		{name: "null", src: []byte(`null`), want: `null`},
		{name: "empty", src: []byte{}, wantErr: "json: empty input"},
		{name: "only space", src: []byte("  "), wantErr: "not valid JSON"},
		{name: "two values", src: []byte(`{} {}`), wantErr: "not valid JSON"},
		{name: "truncated", src: []byte(`{"a":`), wantErr: "not valid JSON: unexpected end of JSON input"},
		{name: "trailing comma", src: []byte(`[1,]`), wantErr: "not valid JSON"},
		{name: "bad utf8 in string", src: []byte("\"\xff\""), wantErr: "json: not valid UTF-8"},
		{name: "single quotes", src: []byte(`{'a':1}`), wantErr: "not valid JSON"},
		{name: "NaN", src: []byte(`NaN`), wantErr: "not valid JSON"},
	})
}

func TestString(t *testing.T) {
	runDecodeCases(t, stringDecoder{}, []decodeCase{
		{name: "plain", src: []byte("SKU-000042"), want: `"SKU-000042"`},
		{name: "empty", src: []byte{}, want: `""`},
		{name: "escapes", src: []byte("a\"b\\c\nd\x00"), want: `"a\"b\\c\nd\u0000"`},
		{name: "unicode", src: []byte("日本語 ✓"), want: `"日本語 ✓"`},
		{name: "looks like json", src: []byte(`{"a":1}`), want: `"{\"a\":1}"`},
		{name: "invalid utf8", src: []byte("a\xffb"), wantErr: "string: not valid UTF-8"},
		{name: "truncated rune", src: []byte("\xe6\x97"), wantErr: "not valid UTF-8"},
		{name: "surrogate", src: []byte("\xed\xa0\x80"), wantErr: "not valid UTF-8"},
	})
}

func TestBytes(t *testing.T) {
	runDecodeCases(t, bytesDecoder{}, []decodeCase{
		{name: "empty", src: []byte{}, want: `""`},
		{name: "one byte", src: []byte{0xff}, want: `"/w=="`},
		{name: "text", src: []byte("hello"), want: `"aGVsbG8="`},
		{name: "standard alphabet", src: []byte{0xfb, 0xff, 0xbf}, want: `"+/+/"`},
	})
}

func TestInt(t *testing.T) {
	runDecodeCases(t, intDecoder{}, []decodeCase{
		{name: "zero", src: []byte{0, 0, 0, 0}, want: `0`},
		{name: "one", src: []byte{0, 0, 0, 1}, want: `1`},
		{name: "big endian", src: []byte{0x01, 0x02, 0x03, 0x04}, want: `16909060`},
		{name: "minus one", src: []byte{0xff, 0xff, 0xff, 0xff}, want: `-1`},
		{name: "min", src: []byte{0x80, 0, 0, 0}, want: `-2147483648`},
		{name: "max", src: []byte{0x7f, 0xff, 0xff, 0xff}, want: `2147483647`},
		{name: "empty", src: []byte{}, wantErr: "int: got 0 bytes, want 4"},
		{name: "short", src: []byte{1, 2, 3}, wantErr: "got 3 bytes, want 4"},
		{name: "long", src: []byte{0, 0, 0, 0, 1}, wantErr: "got 5 bytes, want 4"},
	})
}

func TestLong(t *testing.T) {
	runDecodeCases(t, longDecoder{}, []decodeCase{
		{name: "zero", src: make([]byte, 8), want: `0`},
		{name: "42", src: []byte{0, 0, 0, 0, 0, 0, 0, 42}, want: `42`},
		{name: "minus one", src: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, want: `-1`},
		{name: "min", src: []byte{0x80, 0, 0, 0, 0, 0, 0, 0}, want: `-9223372036854775808`},
		{name: "max", src: []byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, want: `9223372036854775807`},
		{name: "beyond float64", src: []byte{0, 0x20, 0, 0, 0, 0, 0, 1}, want: `9007199254740993`},
		{name: "empty", src: []byte{}, wantErr: "long: got 0 bytes, want 8"},
		{name: "an int", src: []byte{0, 0, 0, 1}, wantErr: "got 4 bytes, want 8"},
		{name: "nine", src: make([]byte, 9), wantErr: "got 9 bytes, want 8"},
	})
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	badSchema := filepath.Join(dir, "bad.avsc")
	if err := os.WriteFile(badSchema, []byte(`{"type":"record","name":"X","fields":[{"name":"a","type":"nope"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.avsc")
	tests := []struct {
		name    string
		c       config.Codec
		wantErr string // "" for success
		wantIs  error
	}{
		{name: "json", c: config.Codec{Format: config.FormatJSON}},
		{name: "string, registry none", c: config.Codec{Format: config.FormatString, Registry: config.RegistryNone}},
		{name: "bytes", c: config.Codec{Format: config.FormatBytes}},
		{name: "int", c: config.Codec{Format: config.FormatInt}},
		{name: "long", c: config.Codec{Format: config.FormatLong}},
		{name: "avro", c: config.Codec{Format: config.FormatAvro, SchemaFile: productSchemaFile}},
		{name: "avro without schema", c: config.Codec{Format: config.FormatAvro}, wantErr: "avro needs a schema file"},
		{name: "avro missing file", c: config.Codec{Format: config.FormatAvro, SchemaFile: missing}, wantErr: missing, wantIs: os.ErrNotExist},
		{name: "avro bad schema", c: config.Codec{Format: config.FormatAvro, SchemaFile: badSchema}, wantErr: badSchema},
		{name: "confluent", c: config.Codec{Format: config.FormatAvro, SchemaFile: productSchemaFile, Registry: config.RegistryConfluent},
			wantErr: "NewKeyValue", wantIs: ErrUnsupported},
		{name: "glue json", c: config.Codec{Format: config.FormatJSON, Registry: config.RegistryGlue}},
		{name: "glue string", c: config.Codec{Format: config.FormatString, Registry: config.RegistryGlue}, wantErr: "only to avro, protobuf and json", wantIs: ErrUnsupported},
		{name: "protobuf", c: config.Codec{Format: config.FormatProtobuf, SchemaFile: protoSetFile, ProtoMessage: "shop.v1.Product"}},
		{name: "protobuf missing file", c: config.Codec{Format: config.FormatProtobuf, SchemaFile: "x.pb", ProtoMessage: "a.B"}, wantErr: "x.pb", wantIs: os.ErrNotExist},
		{name: "protobuf unknown message", c: config.Codec{Format: config.FormatProtobuf, SchemaFile: protoSetFile, ProtoMessage: "a.B"}, wantErr: `"a.B"`},
		{name: "protobuf not a descriptor set", c: config.Codec{Format: config.FormatProtobuf, SchemaFile: productSchemaFile, ProtoMessage: "a.B"}, wantErr: "FileDescriptorSet"},
		{name: "unknown format", c: config.Codec{Format: "xml"}, wantErr: `"xml"`, wantIs: ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(tt.c)
			if tt.wantErr == "" {
				if err != nil || d == nil {
					t.Fatalf("got (%v, %v), want a decoder", d, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got a decoder, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %q, want it to contain %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("got error %v, want one wrapping %v", err, tt.wantIs)
			}
			if errors.Is(err, ErrDecode) {
				t.Errorf("got error %v wrapping ErrDecode, want a configuration error", err)
			}
		})
	}
}

func TestDecodeError(t *testing.T) {
	inner := errors.New("inner")
	tests := []struct {
		name string
		err  *DecodeError
		want string
	}{
		{"reason", &DecodeError{Format: config.FormatAvro, Reason: "3 bytes left over after the value"}, "avro: 3 bytes left over after the value"},
		{"reason and err", &DecodeError{Format: config.FormatJSON, Reason: "not valid JSON", Err: inner}, "json: not valid JSON: inner"},
		{"err only", &DecodeError{Format: config.FormatAvro, Err: inner}, "avro: inner"},
		{"one line", &DecodeError{Format: config.FormatAvro, Err: errors.New("a\nb\r\nc")}, "avro: a b c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			var err error = tt.err
			if !errors.Is(err, ErrDecode) {
				t.Errorf("got errors.Is(err, ErrDecode) false, want true")
			}
			if errors.Is(err, ErrUnavailable) {
				t.Errorf("got errors.Is(err, ErrUnavailable) true, want false")
			}
			if got := errors.Is(err, inner); got != (tt.err.Err == inner) {
				t.Errorf("got errors.Is(err, inner) %v, want %v", got, tt.err.Err == inner)
			}
			var de *DecodeError
			if !errors.As(err, &de) || de != tt.err {
				t.Errorf("got errors.As %v, want the same *DecodeError", de)
			}
		})
	}
}
